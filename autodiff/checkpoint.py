"""Gradient (activation) checkpointing: `autodiff.checkpoint(fn, *args)`.

The segment `fn(*args)` runs once under no-grad, so none of its intermediate activations are kept:
the graph holds a single `Checkpoint` node whose saved state is just the inputs. When backward
reaches that node it re-runs `fn` under enable-grad on detached copies of the inputs (with the RNG
state of the first run, so dropout draws the same mask), backpropagates the incoming gradient
through the recomputed graph, and returns the gradients of the inputs to the outer graph.

Parameters captured by `fn` (a module's weights) are leaves of the recomputed graph: the inner
backward accumulates into their `.grad` exactly once (the outer graph never saw them, since the first
run recorded nothing), so the gradients equal those of the plain run. Peak memory falls from
"all activations of all segments" to "segment inputs + one segment's activations during its
recomputation", for one extra forward per segment.

Differences from PyTorch (documented): one implementation serves both `use_reentrant` values (it is
the reentrant algorithm, but it also records the node when no input requires grad, so parameter-only
segments work like PyTorch's non-reentrant default). Like PyTorch's reentrant variant it supports
`loss.backward()` but not `autodiff.grad(...)` through the segment, nor double backward; tensors that
require grad and are *not* leaves must be passed as arguments, not captured by `fn`.
"""
from __future__ import annotations

import copy
import warnings

from . import autograd, backends
from .autograd import Function, _new_tensor
from .tensor import Tensor

__all__ = ["checkpoint", "checkpoint_sequential"]


def _rng_snapshot():
    """Copies of every loaded backend's generator (None for one that cannot be copied)."""
    snap = {}
    for b in list(backends._instances.values()):
        g = b._rng
        if g is None:
            continue
        try:
            snap[b] = copy.deepcopy(g)
        except Exception as e:  # noqa: BLE001 - a generator that cannot be copied is left alone
            warnings.warn(f"checkpoint: cannot save the RNG state of the {b.name} backend ({e}); random ops "
                          "inside the segment will draw different numbers when recomputed", RuntimeWarning)
    return snap


class Checkpoint(Function):
    """Single node standing for a whole checkpointed segment (see the module doc). Input 0 is a
    dummy 0-d tensor that requires grad, so the node is recorded even when no real input does.
    A segment returning several tensors yields one flat output (their concatenation) that
    `checkpoint` splits back with differentiable slices."""

    @staticmethod
    def forward(ctx, dummy, *arrays, fn, spec, kwargs, preserve_rng_state, req, versions):
        ctx.fn, ctx.spec, ctx.kwargs, ctx.req, ctx.versions = fn, spec, kwargs, req, versions
        ctx.rng = _rng_snapshot() if preserve_rng_state else None
        ctx.arrays = arrays
        with autograd.no_grad():
            out = fn(*_rebuild(spec, [_new_tensor(a) for a in arrays]), **kwargs)
        flat = _flat_outputs(out)
        ctx.out_meta = [(t.data.shape, t.data.dtype) for t in flat]
        ctx.out_type = None if isinstance(out, Tensor) else type(out)
        if ctx.out_type is None:
            return out.data
        xp = ctx.backend.xp
        dt = flat[0].data.dtype
        for t in flat[1:]:
            dt = xp.promote_types(dt, t.data.dtype)
        return xp.concatenate([t.data.reshape(-1).astype(dt, copy=False) for t in flat])

    @staticmethod
    def backward(ctx, g):
        if autograd.is_grad_enabled():
            raise RuntimeError("checkpoint: double backward (create_graph=True) through a checkpointed "
                               "segment is not supported")
        for vc, v in ctx.versions:
            if vc[0] != v:
                raise RuntimeError("checkpoint: an input of the checkpointed segment was modified in place "
                                   "after the forward pass; the recomputation would differ")
        inputs = []
        for a, r in zip(ctx.arrays, ctx.req):
            t = _new_tensor(a)
            if r:
                t.requires_grad = True
            inputs.append(t)
        saved_rngs = None
        if ctx.rng:
            saved_rngs = {b: b._rng for b in ctx.rng}
            for b, gen in ctx.rng.items():
                b._rng = copy.deepcopy(gen)
        try:
            with autograd.enable_grad():
                out = ctx.fn(*_rebuild(ctx.spec, inputs), **ctx.kwargs)
        finally:
            if saved_rngs is not None:
                for b, gen in saved_rngs.items():
                    b._rng = gen
        outs = _flat_outputs(out)
        if ctx.out_type is None:
            grads = [g]
        else:
            grads, off = [], 0
            for (shape, dtype), o in zip(ctx.out_meta, outs):
                n = 1
                for s in shape:
                    n *= s
                grads.append(_new_tensor(g.data[off:off + n].reshape(shape).astype(dtype, copy=False)))
                off += n
        pairs = [(o, gi) for o, gi in zip(outs, grads) if o.requires_grad]
        if pairs:
            autograd._run_backward([o for o, _ in pairs], [gi for _, gi in pairs], retain_graph=False,
                                   create_graph=False)
        res = [None]  # the dummy input
        for t, r in zip(inputs, ctx.req):
            res.append(t.grad if r else None)
        return tuple(res)


def _flatten(args):
    """(spec, tensors): spec rebuilds args with the tensors substituted."""
    spec, tensors = [], []
    for a in args:
        if isinstance(a, Tensor):
            spec.append(("T", len(tensors)))
            tensors.append(a)
        else:
            spec.append(("C", a))
    return tuple(spec), tensors


def _rebuild(spec, tensors):
    return [tensors[v] if k == "T" else v for k, v in spec]


def _flat_outputs(out):
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)) and out and all(isinstance(o, Tensor) for o in out):
        return list(out)
    raise TypeError("checkpoint: fn must return a Tensor or a non-empty tuple/list of Tensors, got "
                    f"{type(out).__name__}")


_DUMMY: dict = {}


def _dummy(backend):
    d = _DUMMY.get(backend)
    if d is None:
        d = _new_tensor(backend.xp.zeros((), dtype="float32"))
        d.requires_grad = True
        _DUMMY[backend] = d
    return d


def checkpoint(function, *args, use_reentrant=None, context_fn=None, determinism_check="default",
               debug=False, preserve_rng_state=True, **kwargs):
    """Run `function(*args, **kwargs)` without storing its activations; recompute them in backward.

    Returns what `function` returns (a Tensor or a tuple/list of Tensors). With grad disabled it
    simply calls `function`. `use_reentrant`, `context_fn`, `determinism_check` and `debug` are
    accepted for PyTorch compatibility (see the module doc); `preserve_rng_state=True` replays the
    generators' state in the recomputation so random ops (dropout) match the first run.
    """
    if not callable(function):
        raise TypeError(f"checkpoint: expected a callable, got {type(function).__name__}")
    if not autograd.is_grad_enabled():
        return function(*args, **kwargs)
    spec, tensors = _flatten(args)
    backend = (backends._by_array_type[type(tensors[0].data)] if tensors else backends.get_cpu_backend())
    req = tuple(bool(t.requires_grad) for t in tensors)
    versions = tuple((t._vc, t._vc[0]) for t in tensors)
    out = Checkpoint.apply(_dummy(backend), *tensors, fn=function, spec=spec, kwargs=kwargs,
                           preserve_rng_state=preserve_rng_state, req=req, versions=versions)
    node = out.grad_fn
    if node.out_type is None:
        return out
    pieces, off = [], 0
    for shape, dtype in node.out_meta:
        n = 1
        for s in shape:
            n *= s
        p = out[off:off + n].reshape(shape)
        if p.data.dtype != dtype:
            p = p.to(dtype)
        pieces.append(p)
        off += n
    return node.out_type(pieces)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """Split `functions` (a Sequential or a list of modules/callables) into `segments` chunks and
    checkpoint each chunk except the last, as torch.utils.checkpoint.checkpoint_sequential."""
    if hasattr(functions, "children") and not isinstance(functions, (list, tuple)):
        functions = list(functions.children())
    functions = list(functions)
    if segments < 1:
        raise ValueError(f"checkpoint_sequential: segments must be >= 1, got {segments}")

    def run_chunk(start, end):
        def forward(x):
            for j in range(start, end + 1):
                x = functions[j](x)
            return x
        return forward

    size = len(functions) // segments
    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(run_chunk(start, end), input, use_reentrant=use_reentrant, **kwargs)
    return run_chunk(end + 1, len(functions) - 1)(input)
