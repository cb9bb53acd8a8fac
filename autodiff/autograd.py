"""Grad mode, the `Function` base class of every primitive op, and the backward engine.

A primitive is one `Function` subclass with `forward(ctx, *arrays, **params)` (backend arrays in,
one backend array out) and `backward(ctx, grad)` (Tensors in, one Tensor or None per input out,
written with Tensor ops so that `create_graph=True` differentiates through it). The instance that
`apply` creates is both the `ctx` and the graph node (`tensor.grad_fn`).

The node keeps, per input, an *edge*: the input's own `grad_fn` captured at creation time, the
input tensor itself if it is a leaf that requires grad, or None. It keeps the inputs' shapes and
dtypes so that the engine can undo broadcasting (sum-to-shape) and dtype promotion in one place.
It keeps only the tensors its backward declared it needs (`save_inputs`, `save_output`), so
intermediates that backward does not use are freed during the forward pass, and everything saved
is released after backward unless `retain_graph=True`.

The engine (`_run_backward`) counts, for every node and leaf, the edges pointing at it, then runs
nodes in reverse topological order from a ready stack (no recursion: a 100,000-op chain is fine).
Incoming gradients are summed before a node runs; a leaf's hooks run and its `.grad` is stored as
soon as its last consumer has run. Backward formulas run under no-grad unless `create_graph=True`;
the hot ops then compute on raw arrays (`_raw_tensor` wraps the result), and the engine sums
gradients into buffers it owns, in place. Un-broadcasting and dtype restoration happen here, once.
"""
from __future__ import annotations

import functools
import itertools
import operator
import threading
import weakref

from . import backends

_by_array_type = backends._by_array_type
# C-level getters for Function.apply's per-input loops (a comprehension costs a Python frame in 3.11)
_get_data = operator.attrgetter("data")
_get_meta = operator.attrgetter("shape", "dtype")
_get_vc = operator.attrgetter("_vc")
_first = operator.itemgetter(0)
_zip_longest = itertools.zip_longest


# ----------------------------------------------------------------------------- grad mode
class _GradMode(threading.local):
    enabled = True


_mode = _GradMode()


def is_grad_enabled() -> bool:
    return _mode.enabled


class _GradModeContext:
    """Base of no_grad / enable_grad / set_grad_enabled: a context manager and a decorator.

    The mode lives in a `threading.local`, so entering one in a thread does not affect others;
    the previous mode is kept on a per-entry stack, so one instance may be re-entered."""
    _target = True

    def __enter__(self):
        prev = self.__dict__.setdefault("_prev_stack", [])
        prev.append(_mode.enabled)
        _mode.enabled = self._target

    def __exit__(self, *exc):
        _mode.enabled = self._prev_stack.pop()
        return False

    def __call__(self, fn):
        target = self._target

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = _mode.enabled
            _mode.enabled = target
            try:
                return fn(*args, **kwargs)
            finally:
                _mode.enabled = prev
        return wrapper


class _NoArgGradMode(_GradModeContext):
    """`no_grad()` / `enable_grad()`: usable as `with no_grad():`, `@no_grad()` and, as in recent
    PyTorch, the bare decorator `@no_grad`."""

    def __new__(cls, fn=None):
        self = super().__new__(cls)
        if fn is not None:
            if not callable(fn):
                raise TypeError(f"{cls.__name__}() takes no arguments (got {type(fn).__name__})")
            return self.__call__(fn)
        return self


class no_grad(_NoArgGradMode):
    """Disable graph recording in this thread (context manager or decorator)."""
    _target = False


class enable_grad(_NoArgGradMode):
    """Enable graph recording in this thread (context manager or decorator)."""
    _target = True


class set_grad_enabled(_GradModeContext):
    """`set_grad_enabled(b)` switches grad mode at once (like PyTorch); used with `with` it restores
    the previous mode on exit, and used as a decorator it restores the mode at once and switches
    only while the decorated function runs."""

    def __init__(self, mode: bool):
        self._prev = _mode.enabled
        self._target = bool(mode)
        _mode.enabled = self._target

    def __enter__(self):
        pass  # already switched in __init__

    def __exit__(self, *exc):
        _mode.enabled = self._prev
        return False

    def __call__(self, fn):
        _mode.enabled = self._prev
        return super().__call__(fn)


# ----------------------------------------------------------------------------- Function
class Function:
    """Base of every primitive op. Subclasses set the class attributes below and implement
    `forward(ctx, *arrays, **params)` and `backward(ctx, grad)`."""

    save_inputs: tuple = ()    # indices of the input tensors that backward needs (True: all)
    save_output: bool = False  # backward needs the output (see `output()`)
    is_view: bool = False      # output may share memory with input 0: share its version counter
    differentiable: bool = True
    display_name = None        # name in reprs/errors when not the class name (MulScalar shows as Mul)

    # Filled by apply when the graph is recorded. Subclasses may add attributes of their own in
    # forward (they live in the instance __dict__).
    edges = None
    in_meta = None
    saved = None
    saved_versions = None
    hooks = None
    freed = False

    def __init_subclass__(cls, **kwargs):
        """A subclass written PyTorch-style (outside the library's packages, forward on Tensors, no
        array-level attributes) gets PyTorch's custom-Function `apply` (see custom_function.py)."""
        super().__init_subclass__(**kwargs)
        style = cls.__dict__.get("pytorch_style")
        if style is None:
            library = cls.__module__.split(".")[0] in ("autodiff", "nn", "optim")
            array_level = any(k in cls.__dict__ for k in ("save_inputs", "save_output", "is_view"))
            style = getattr(cls, "_pytorch_style", False) or not (library or array_level)
        cls._pytorch_style = style
        if style:
            from .custom_function import apply_user_function, user_backward_dispatch
            if "backward" in cls.__dict__:
                cls._user_backward = staticmethod(cls.__dict__["backward"].__func__
                                                  if isinstance(cls.__dict__["backward"], staticmethod)
                                                  else cls.__dict__["backward"])
                cls.backward = staticmethod(user_backward_dispatch)
            cls.apply = classmethod(apply_user_function)

    # -- PyTorch's ctx API for custom Functions (also usable by array-level ones)
    def save_for_backward(self, *tensors):
        self.saved = tensors
        self.saved_versions = tuple(None if t is None else t._vc[0] for t in tensors)

    def mark_non_differentiable(self, *tensors):
        self._non_diff.update(id(t) for t in tensors)

    def mark_dirty(self, *tensors):
        for t in tensors:
            t._vc[0] += 1

    def set_materialize_grads(self, value):
        self._materialize = bool(value)

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the forward on the inputs' backend and record a node if grad is enabled.

        This is the per-op hot path: no validation beyond the device check (ops validate their
        arguments once at entry), one dict lookup for the backend, and no graph work at all under
        no_grad or when no input requires grad."""
        n_in = len(inputs)
        if n_in == 1:
            a0 = inputs[0].data
            t0 = type(a0)
            arrays = (a0,)
            ctx = object.__new__(cls)
            ctx.backend = backend = _by_array_type[t0]
            out_arr = cls.forward(ctx, a0, **params) if params else cls.forward(ctx, a0)
        else:
            arrays = list(map(_get_data, inputs))  # map with C getters: no Python frame per comprehension
            t0 = type(arrays[0])
            for a in arrays:
                if type(a) is not t0:
                    arrays = _reconcile_devices(cls, inputs, arrays)
                    t0 = type(arrays[0])
                    break
            ctx = object.__new__(cls)
            ctx.backend = backend = _by_array_type[t0]
            if not params:
                out_arr = cls.forward(ctx, *arrays)
            else:
                out_arr = cls.forward(ctx, *arrays, **params)
        if type(out_arr) is not t0:
            out_arr = backend.xp.asarray(out_arr)
        out = object.__new__(_Tensor)
        out.data = out_arr
        out.grad = None
        out._rg = False
        out.grad_fn = None
        out._vc = inputs[0]._vc if cls.is_view else [0]
        out._hooks = None
        if _mode.enabled and cls.differentiable:
            edges = None
            i = 0
            for t in inputs:
                if t._rg:
                    if edges is None:
                        edges = [None] * len(inputs)
                    edges[i] = t.grad_fn or t
                i += 1
            if edges is not None:
                ctx.edges = edges
                ctx.in_meta = list(map(_get_meta, arrays))  # (shape, dtype) per input
                si = cls.save_inputs
                if si:
                    saved = inputs if si is True else tuple(map(inputs.__getitem__, si))
                    ctx.saved = saved
                    ctx.saved_versions = tuple(map(_first, map(_get_vc, saved)))
                if cls.save_output:
                    ctx.out_data = out_arr
                    ctx.out_vc = out._vc
                    ctx.out_version = out._vc[0]
                out.grad_fn = ctx
                out._rg = True
        return out

    @staticmethod
    def forward(ctx, *arrays, **params):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError

    # -- helpers for backward
    @property
    def xp(self):
        return self.backend.xp

    @property
    def needs_input_grad(self):
        return tuple(e is not None for e in self.edges)

    @property
    def saved_tensors(self):
        """The tensors named by `save_inputs`, after checking none was modified in place."""
        saved = self.saved
        if saved is None:
            raise RuntimeError(_FREED_MSG.format(type(self).__name__))
        for t, v in zip(saved, self.saved_versions):
            if t is not None and t._vc[0] != v:
                raise RuntimeError(
                    f"{self.name()}: a tensor of shape {tuple(t.shape)} needed for gradient computation "
                    f"was modified by an in-place operation (version {t._vc[0]}, expected {v})")
        return saved

    def output(self):
        """The op's output as a Tensor whose grad_fn is this node, so that higher-order gradients
        flow through it even when the user dropped the original output tensor."""
        if self.freed:
            raise RuntimeError(_FREED_MSG.format(type(self).__name__))
        if self.out_vc[0] != self.out_version:
            raise RuntimeError(f"{self.name()}: its output, needed for gradient computation, was modified "
                               f"by an in-place operation")
        out = _new_tensor(self.out_data)
        out._vc = self.out_vc
        out.grad_fn = self
        out._rg = True
        return out

    def output_data(self):
        """The saved output array, after the same checks as `output()` (for no-grad fast paths)."""
        if self.freed:
            raise RuntimeError(_FREED_MSG.format(type(self).__name__))
        if self.out_vc[0] != self.out_version:
            raise RuntimeError(f"{self.name()}: its output, needed for gradient computation, was modified "
                               f"by an in-place operation")
        return self.out_data

    @classmethod
    def name(cls):
        if cls.display_name:
            return cls.display_name
        n = cls.__name__
        return n[:-8] if n.endswith("Backward") else n

    def register_hook(self, fn):
        if self.hooks is None:
            self.hooks = []
        self.hooks.append(fn)

    def __repr__(self):
        return f"<{self.name()}Backward0>"  # PyTorch's spelling: <MulBackward0>

    @property
    def next_functions(self):
        return tuple((e, 0) for e in (self.edges or ()))


class _RetainGrad:
    """Entry in a node's hook list made by `Tensor.retain_grad()`: the engine stores the gradient
    of the node's output into the (weakly referenced) tensor's .grad."""
    __slots__ = ("ref",)

    def __init__(self, tensor):
        self.ref = weakref.ref(tensor)


_FREED_MSG = ("{}: trying to backward through the graph a second time (or to read saved tensors after "
              "they were freed). Pass retain_graph=True to the first backward() if you need to backward twice.")


def _reconcile_devices(cls, inputs, arrays):
    """Inputs on different devices: allow 0-d CPU tensors beside a device tensor (as PyTorch does),
    otherwise raise naming the op and both devices."""
    cpu = backends.get_cpu_backend()
    kinds = {type(a) for a in arrays}
    np_type = type(cpu.xp.empty(0))
    others = [a for a in arrays if type(a) is not np_type]
    if len(kinds) == 2 and np_type in kinds and others:
        target = _by_array_type.get(type(others[0]))
        if target is not None and all(a.ndim == 0 for a in arrays if type(a) is np_type):
            return [target.asarray(a) if type(a) is np_type else a for a in arrays]
    devs = ", ".join(str(t.device) for t in inputs)
    raise RuntimeError(f"{cls.name()}: expected all tensors on the same device, got {devs}")


_Tensor = None  # set by tensor.py (avoids an import cycle)
_anomaly_hook = None  # set by autodiff.detect_anomaly(): called as hook(node, grads_in) after each backward


def _new_tensor(data):
    t = object.__new__(_Tensor)
    t.data = data
    t.grad = None
    t._rg = False
    t.grad_fn = None
    t._vc = [0]
    t._hooks = None
    return t


# ----------------------------------------------------------------------------- the engine
_queued_callbacks: list = []
_depth = [0]  # nesting of _run_backward (checkpoint re-enters it); callbacks run at the outermost


def queue_callback(fn):
    """Run fn() once after the leaf gradients of the current (outermost) backward() pass are stored
    (PyTorch's `Variable._execution_engine.queue_callback`; DDP waits for its all-reduces there).
    Dropped if the pass raises or is an `autodiff.grad` call."""
    _queued_callbacks.append(fn)


def _raw_tensor(r, like):
    """A constant Tensor around the raw result `r` of array math on arrays of `like`'s type (NumPy's
    0-d arithmetic returns scalars; they become 0-d arrays again). For the no-grad fast paths of
    backward formulas."""
    if type(r) is not type(like):
        r = _by_array_type[type(like)].xp.asarray(r)
    t = object.__new__(_Tensor)
    t.data = r
    t.grad = None
    t._rg = False
    t.grad_fn = None
    t._vc = [0]
    t._hooks = None
    return t


def _accumulate(table, key, g):
    old = table.get(key)
    if old is None:
        table[key] = g
    elif _mode.enabled:  # create_graph: keep the sum differentiable
        table[key] = old + g
    else:
        table[key] = _raw_tensor(old.data + g.data, old.data)


def _sum_to_shape_raw(a, shape):
    """Sum array `a` down to `shape` (undo broadcasting) without recording anything. The result
    is a fresh array (not a view), so it can become a leaf's .grad without a copy."""
    lead = a.ndim - len(shape)
    r = a.sum(axis=tuple(range(lead))) if lead else a
    if r.shape == shape:  # the common case (a bias): only leading dimensions were broadcast
        return r
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and r.shape[i] != 1)
    if axes:
        r = r.sum(axis=axes, keepdims=True)
    return r


def _run_backward(roots, root_grads, retain_graph, create_graph, inputs=None, allow_unused=False):
    """Walk the graph from `roots` in reverse topological order (iteratively: no recursion limit).

    With `inputs=None`, leaf gradients accumulate into `.grad`; otherwise returns the gradients of
    `inputs` (for `autodiff.grad`) and leaves `.grad` untouched.
    """
    if create_graph:  # the one place broadcasting is undone (differentiably here; raw below)
        from .ops.reduction import sum_to_shape

    grads: dict = {}
    leaves: dict = {}   # leaf tensor -> accumulated grad (dict keeps first-seen order)
    nodes = []
    for r, g in zip(roots, root_grads):
        if not r._rg:
            raise RuntimeError(f"backward: element of shape {tuple(r.shape)} does not require grad and has "
                               "no grad_fn")
        if r.grad_fn is None:
            _accumulate(leaves, r, g)
        else:
            _accumulate(grads, r.grad_fn, g)
            nodes.append(r.grad_fn)
    if len(nodes) > 1:
        nodes = list(dict.fromkeys(nodes))

    # Count, for every node and every leaf, how many edges from nodes in this graph point to it:
    # a node runs once all its consumers have run, and a leaf's gradient is final (its hooks run
    # and .grad is stored at once, so e.g. DDP can start reducing it while backward goes on) once
    # its count reaches zero. A node is pushed when first counted; only roots can be reached
    # before being counted, so they alone need a "seen" check.
    deps: dict = {}
    ldeps: dict = {}
    stack = nodes[:]
    roots = nodes if len(nodes) < 8 else set(nodes)  # usually one root: a list is cheaper than a set
    Fn = Function
    while stack:
        edges = stack.pop().edges
        if edges is None:
            continue
        for e in edges:
            if e is None:
                continue
            if isinstance(e, Fn):
                n = deps.get(e)
                if n is None:
                    deps[e] = 1
                    if e not in roots:
                        stack.append(e)
                else:
                    deps[e] = n + 1
            else:
                ldeps[e] = ldeps.get(e, 0) + 1
    handed_out = set()  # ids of arrays (or their bases) already stored as some leaf's .grad

    def finish(leaf, g):
        """Run the leaf's hooks on its complete gradient g and accumulate it into leaf.grad."""
        owned = None
        if g.__class__ is list:  # an engine-owned sum: may become .grad without a copy
            owned = g[0]
            g = _raw_tensor(owned, owned)
            if not leaf._hooks and leaf.grad is None:
                handed_out.add(id(owned))
                leaf.grad = g
                return
        if leaf._hooks:
            for h in leaf._hooks:
                r = h(g)
                if r is not None:
                    g = r
        if create_graph:
            leaf.grad = g if leaf.grad is None else leaf.grad + g
        elif leaf.grad is None:
            # .grad is C-contiguous and writable (PyTorch's layout contract: optimizers update it in
            # place), and never aliases another leaf's .grad: one gradient array (or two views of one
            # buffer) may reach two leaves in a pass. Gradient arrays are otherwise the engine's own
            # (fresh results of backward formulas), so no copy is needed.
            d = g.data
            flags = d.flags
            if d is owned:
                handed_out.add(id(d))
            elif not flags.c_contiguous or not getattr(flags, "writeable", True):
                d = d.copy()
            else:
                key = id(d if d.base is None else d.base)
                if key in handed_out:
                    d = d.copy()
                else:
                    handed_out.add(key)
            leaf.grad = _new_tensor(d)
        else:  # (_raw_tensor: the sum of two 0-d NumPy arrays is a scalar, made an array again)
            leaf.grad = _raw_tensor(leaf.grad.data + g.data, g.data)

    eager = inputs is None  # autodiff.grad returns leaf gradients instead of storing them

    capture = None
    if inputs is not None:
        capture = {t.grad_fn: None for t in inputs if t.grad_fn is not None}

    # Gradients are summed as they arrive (each node runs once, after all its consumers). Under
    # no-grad the sum is raw array math into an engine-owned buffer, held as a one-element list so
    # that it is never confused with a tensor that was handed out (which must not be modified).
    raw = not create_graph
    free = not retain_graph
    anomaly = _anomaly_hook
    ready = [n for n in nodes if n not in deps] if len(nodes) != 1 else [] if nodes[0] in deps else nodes[:]
    prev_mode = _mode.enabled
    _mode.enabled = create_graph
    _depth[0] += 1
    try:
        while ready:
            node = ready.pop()
            edges = node.edges
            g = grads.pop(node, None)
            if g is None:  # no gradient reached this node: just release what it points to
                gin = ()
            else:
                if g.__class__ is list:
                    g = _raw_tensor(g[0], g[0])
                hooks = node.hooks
                if hooks:  # tensor hooks of the node's output, and retain_grad (a _RetainGrad entry)
                    for h in hooks:
                        if h.__class__ is _RetainGrad:
                            t = h.ref()
                            if t is not None and inputs is None:
                                t.grad = g if t.grad is None else t.grad + g
                            continue
                        r = h(g)
                        if r is not None:
                            g = r
                if capture is not None and node in capture:
                    capture[node] = g
                gin = node.backward(node, g)
                if gin.__class__ is not tuple:
                    gin = (gin,)
                if anomaly is not None:
                    anomaly(node, gin)
                if free:  # saved values go now; backward through them again raises (see saved_tensors)
                    node.saved = None
                    if node.save_output:
                        node.out_data = None
                    node.freed = True
            # One pass over (edge, gradient, (input shape, dtype)): undo broadcasting and dtype
            # promotion, sum into the target's slot, and release the target when this was its last
            # consumer. zip_longest: backward may return fewer gradients than inputs (the rest are
            # None) or more (Linear without bias: the extra ones meet no edge and are skipped).
            for e, gi, meta in _zip_longest(edges, gin, node.in_meta):
                if e is None:
                    continue
                left = deps.get(e)  # None for a leaf (only nodes are counted in deps)
                if gi is not None:
                    d = gi.data
                    shape, dtype = meta
                    if d.shape != shape:
                        if raw:
                            gi = _raw_tensor(_sum_to_shape_raw(d, shape), d)
                        else:
                            gi = sum_to_shape(gi, shape)
                        d = gi.data
                    dt = d.dtype
                    if dt is not dtype and dt != dtype:  # (built-in dtypes are singletons: `is` decides)
                        gi = _raw_tensor(d.astype(dtype), d) if raw else gi.to(dtype)
                    if left is None and raw and eager and ldeps[e] == 1 and not e._hooks and e.grad is None:
                        # a leaf's only gradient (the usual parameter): finish()'s common case, inline
                        flags = d.flags
                        if flags.c_contiguous and getattr(flags, "writeable", True) and e not in leaves:
                            key = id(d if d.base is None else d.base)
                            if key not in handed_out:
                                handed_out.add(key)
                                ldeps[e] = 0
                                e.grad = _new_tensor(d)
                                continue
                    table = leaves if left is None else grads
                    old = table.get(e)
                    if old is None:
                        table[e] = gi
                    elif not raw:
                        table[e] = old + gi
                    elif old.__class__ is list:
                        old[0] += gi.data
                    else:
                        acc = old.data + gi.data
                        if type(acc) is not type(d):
                            acc = _by_array_type[type(d)].xp.asarray(acc)
                        table[e] = [acc]
                if left is not None:
                    left -= 1
                    deps[e] = left
                    if not left:
                        ready.append(e)
                else:
                    left = ldeps[e] - 1
                    ldeps[e] = left
                    if not left and eager:
                        gl = leaves.pop(e, None)
                        if gl is not None:
                            finish(e, gl)

        if inputs is not None:
            out = []
            for t in inputs:
                g = leaves.get(t) if t.grad_fn is None else capture.get(t.grad_fn)
                if g.__class__ is list:
                    g = _raw_tensor(g[0], g[0])
                if g is None and not allow_unused:
                    raise RuntimeError("grad: one of the differentiated tensors (shape "
                                       f"{tuple(t.shape)}) does not appear in the graph of the outputs; "
                                       "pass allow_unused=True to get None for it")
                if g is not None and t._hooks:
                    for h in t._hooks:
                        r = h(g)
                        if r is not None:
                            g = r
                out.append(g)
            return tuple(out)

        for leaf, g in leaves.items():  # leaves that are roots themselves
            finish(leaf, g)
    finally:
        _mode.enabled = prev_mode
        _depth[0] -= 1
        callbacks = _queued_callbacks[:] if _depth[0] == 0 else []
        if _depth[0] == 0:
            _queued_callbacks.clear()
    for cb in callbacks:
        cb()
    return None


def _as_grad_list(outputs, grad_outputs, opname):
    Tensor = _Tensor
    if isinstance(outputs, Tensor):
        outputs = [outputs]
    outputs = list(outputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"{opname}: got {len(outputs)} outputs but {len(grad_outputs)} gradients")
    gs = []
    for o, g in zip(outputs, grad_outputs):
        if g is None:
            if o.data.size != 1:
                raise RuntimeError(f"{opname}: grad can be implicitly created only for scalar outputs; "
                                   f"got an output of shape {tuple(o.shape)} (pass gradient=...)")
            xp = _by_array_type[type(o.data)].xp
            g = _new_tensor(xp.ones(o.data.shape, dtype=o.data.dtype))
        else:
            if not isinstance(g, Tensor):
                g = Tensor(g, dtype=o.dtype, device=o.device)
            if tuple(g.shape) != tuple(o.shape):
                raise RuntimeError(f"{opname}: gradient has shape {tuple(g.shape)} but the output has "
                                   f"shape {tuple(o.shape)}")
            if type(g.data) is not type(o.data):
                raise RuntimeError(f"{opname}: gradient is on {g.device} but the output is on {o.device}")
            if g.grad_fn is None:
                g = _new_tensor(g.data.copy())
        gs.append(g)
    return outputs, gs


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False):
    """Accumulate d(tensors)/d(leaves) into each leaf's `.grad` (PyTorch's `torch.autograd.backward`)."""
    if grad_tensors is None and tensors.__class__ is _Tensor and tensors.grad_fn is not None:
        # fast path for the usual `loss.backward()`: one scalar root, implicit gradient of ones
        d = tensors.data
        if d.size == 1:
            g = _new_tensor(_by_array_type[type(d)].xp.ones(d.shape, dtype=d.dtype))
            _run_backward((tensors,), (g,), create_graph if retain_graph is None else retain_graph,
                          create_graph)
            return
    outputs, gs = _as_grad_list(tensors, grad_tensors, "backward")
    if retain_graph is None:
        retain_graph = create_graph
    _run_backward(outputs, gs, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, returned as a tuple (`.grad` is untouched)."""
    from .tensor import Tensor
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError(f"grad: an input of shape {tuple(t.shape)} does not require grad")
    outputs, gs = _as_grad_list(outputs, grad_outputs, "grad")
    if retain_graph is None:
        retain_graph = create_graph
    return _run_backward(outputs, gs, retain_graph, create_graph, inputs=inputs, allow_unused=allow_unused)


from .custom_function import once_differentiable  # noqa: E402,F401  (torch.autograd.function.once_differentiable)
