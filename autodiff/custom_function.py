"""PyTorch-style custom autograd functions (`torch.autograd.Function`).

A user subclass of `autodiff.autograd.Function` written as for PyTorch —

    class Exp(autodiff.autograd.Function):
        @staticmethod
        def forward(ctx, x):            # Tensors in (run under no_grad), Tensor(s) out
            y = x.exp()
            ctx.save_for_backward(y)
            return y
        @staticmethod
        def backward(ctx, g):           # one gradient per output, one result per forward argument
            (y,) = ctx.saved_tensors
            return g * y

— is routed here by `Function.__init_subclass__`: classes defined outside the library's own packages
(`autodiff`, `nn`, `optim`) that do not use the array-level attributes (`save_inputs`, `save_output`,
`is_view`) of the library's primitives get this `apply`. The node is the ctx itself. A forward that
returns several tensors gets one small selector node per output, all feeding one hub (the ctx), so the
user's backward runs once with every output's gradient (zeros for outputs that got none, unless
`ctx.set_materialize_grads(False)`).
"""
from __future__ import annotations

import functools

from .autograd import Function, _mode, _new_tensor, no_grad
from .tensor import Tensor


def _alias(t):
    """A new tensor sharing t's data (a forward that returns its input must not rewire the input)."""
    out = _new_tensor(t.data)
    out._vc = t._vc
    return out


def apply_user_function(cls, *args, **kwargs):
    ctx = object.__new__(cls)
    ctx.backend = None
    ctx.saved = ()
    ctx.saved_versions = ()
    ctx._non_diff = set()
    ctx._materialize = True
    record = _mode.enabled and any(isinstance(a, Tensor) and a.requires_grad for a in args)
    ctx.edges = [((a.grad_fn or a) if record and isinstance(a, Tensor) and a.requires_grad else None)
                 for a in args]  # so that ctx.needs_input_grad works inside forward
    with no_grad():
        out = cls.forward(ctx, *args, **kwargs)
    single = isinstance(out, Tensor)
    outs = (out,) if single else tuple(out)
    input_ids = {id(a) for a in args if isinstance(a, Tensor)}
    outs = tuple(_alias(o) if isinstance(o, Tensor) and id(o) in input_ids else o for o in outs)
    if not record:
        ctx.edges = None
        return outs[0] if single else outs
    ctx.in_meta = [(a.data.shape, a.data.dtype) if isinstance(a, Tensor) else (None, None) for a in args]
    ctx._out_meta = [(o.data, o.data.shape, o.data.dtype) if isinstance(o, Tensor) else None for o in outs]
    ctx._n_out = len(outs)
    ctx._grads = [None] * len(outs)
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor) or id(o) in ctx._non_diff or o.data.dtype.kind not in "fc":
            continue
        if single:
            o.grad_fn = ctx
        else:
            sel = object.__new__(_Select)
            from . import backends
            sel.backend = backends._by_array_type[type(o.data)]
            sel.edges = [ctx]
            sel.in_meta = [((), o.data.dtype)]
            sel.hub = ctx
            sel.index = i
            o.grad_fn = sel
        o._rg = True
    ctx._out_meta = [(m[1], m[2], type(m[0])) if m is not None else None for m in ctx._out_meta]
    return outs[0] if single else outs


def user_backward_dispatch(ctx, g):
    """The engine's entry to a user Function node: gather the outputs' gradients, call backward."""
    if ctx._n_out == 1:
        grads = (g,)
    else:
        grads = tuple(ctx._grads)
        ctx._grads = [None] * ctx._n_out
        if ctx._materialize:
            grads = tuple(_zeros(m) if gi is None and m is not None else gi for gi, m in zip(grads, ctx._out_meta))
    res = type(ctx)._user_backward(ctx, *grads)
    if not isinstance(res, tuple):
        res = (res,)
    n = len(ctx.edges)
    if len(res) != n:
        raise RuntimeError(f"{type(ctx).__name__}.backward: returned {len(res)} gradients but forward took "
                           f"{n} arguments (return None for arguments that have no gradient)")
    return res


def _zeros(meta):
    shape, dtype, atype = meta
    from . import backends
    return _new_tensor(backends._by_array_type[atype].xp.zeros(shape, dtype=dtype))


class _Select(Function):
    """Output i of a multi-output user Function: hands its gradient to the hub (the user's ctx) and
    sends it a 0-d zero so that the engine runs the hub once all outputs are done."""
    display_name = "Select"

    @staticmethod
    def backward(ctx, g):
        hub = ctx.hub
        prev = hub._grads[ctx.index]
        hub._grads[ctx.index] = g if prev is None else prev + g
        return _new_tensor(ctx.backend.xp.zeros((), dtype=g.data.dtype))


def once_differentiable(backward):
    """Decorator for a custom backward that is not itself differentiable: runs it under no_grad."""
    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        with no_grad():
            return backward(ctx, *grads)
    return wrapper
