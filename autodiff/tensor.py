"""Tensor: a backend array plus what autograd needs (grad, requires_grad, grad_fn, version counter).

Operator sugar and methods forward to the functional ops in `autodiff.ops`; they are attached at the
bottom of this module so that each op is written once.
"""
from __future__ import annotations

import numpy as np

from . import autograd, backends
from .device import as_device, backend_for, device as Device
from .dtypes import default_float_dtype, infer_dtype, normalize_dtype

_by_array_type = backends._by_array_type


class Size(tuple):
    """A tensor's shape: a tuple (compares equal to plain tuples) printed like `torch.Size`."""
    __slots__ = ()

    def __repr__(self):
        return f"autodiff.Size({list(self)})"

    __str__ = __repr__

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n

    def __getitem__(self, key):
        out = tuple.__getitem__(self, key)
        return Size(out) if isinstance(key, slice) else out

    def __add__(self, other):
        return Size(tuple.__add__(self, tuple(other)))


class Tensor:
    """An n-dimensional array on a device that records the operations applied to it.

    `data` is the raw backend array (NumPy or CuPy), settable like PyTorch's `.data` (assigning it
    bypasses autograd). Leaves are tensors created by the user; non-leaves carry the `grad_fn` node
    that made them.
    """
    __slots__ = ("data", "grad", "_rg", "grad_fn", "_vc", "_hooks", "__weakref__")
    __array_priority__ = 1000  # so that `ndarray * Tensor` defers to Tensor.__rmul__

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        if isinstance(data, Tensor):
            data = data.data
        dtype = normalize_dtype(dtype)
        if device is None:
            b = _by_array_type.get(type(data))
            if b is None:
                b = backend_for(as_device(None))
        else:
            b = backend_for(as_device(device))
        if dtype is None:
            dtype = infer_dtype(data)
        self.data = b.asarray(data, dtype=dtype, device=None if device is None else as_device(device))
        self.grad = None
        self.grad_fn = None
        self._vc = [0]
        self._hooks = None
        self._rg = False
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------------ attributes
    @property
    def shape(self):
        return Size(self.data.shape)

    def size(self, dim=None):
        if dim is None:
            return Size(self.data.shape)
        return self.data.shape[_wrap_dim(dim, self.data.ndim, "size")]

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return Device(_by_array_type[type(self.data)].device_of(self.data))

    @property
    def is_cuda(self):
        return self.device.type == "cuda"

    @property
    def ndim(self):
        return self.data.ndim

    def dim(self):
        return self.data.ndim

    def numel(self):
        return int(self.data.size)

    def element_size(self):
        return self.data.dtype.itemsize

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def _version(self):
        return self._vc[0]

    @property
    def T(self):
        """All dimensions reversed (a view), as PyTorch's deprecated-for-ndim>2 `.T`."""
        nd = self.data.ndim
        if nd < 2:
            return self
        return _shape_ops.Permute.apply(self, dims=(1, 0) if nd == 2 else tuple(range(nd - 1, -1, -1)))

    @property
    def mT(self):
        return _shape_ops.transpose(self, -2, -1)

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))

    __hash__ = object.__hash__  # identity (C slot, fast in dicts); __eq__ is elementwise as PyTorch

    def __bool__(self):
        if self.data.size != 1:
            raise RuntimeError(f"bool: a tensor with {self.data.size} elements is ambiguous; use .any() or .all()")
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.kind not in "iub" or self.data.size != 1:
            raise TypeError(f"only integer tensors of a single element can be converted to an index, "
                            f"got {self.dtype} of shape {tuple(self.data.shape)}")
        return int(self.item())

    # ------------------------------------------------------------------ conversion
    def numpy(self):
        """A NumPy array (a copy for CUDA tensors). Fails for tensors that require grad, as PyTorch."""
        if self.requires_grad:
            raise RuntimeError("numpy: can't call numpy() on a tensor that requires grad; use "
                               "tensor.detach().numpy()")
        return _by_array_type[type(self.data)].to_numpy(self.data)

    def __array__(self, dtype=None, copy=None):
        """NumPy interop (`np.asarray(t)`), as torch.Tensor: refused for tensors that require grad."""
        a = self.numpy()
        if dtype is not None and a.dtype != dtype:
            return a.astype(dtype)
        return a.copy() if copy else a

    def item(self):
        if self.data.size != 1:
            raise RuntimeError(f"item: a tensor with {self.data.size} elements (shape {tuple(self.data.shape)}) cannot be "
                               "converted to a Python scalar")
        return _by_array_type[type(self.data)].to_numpy(self.data).reshape(()).item()

    def tolist(self):
        return _by_array_type[type(self.data)].to_numpy(self.data).tolist()

    def detach(self):
        t = autograd._new_tensor(self.data)
        t._vc = self._vc  # shares storage, so it shares the version counter
        return t

    def detach_(self):
        self.grad_fn = None
        self._rg = False
        return self

    def clone(self):
        from .ops import shape as _s
        return _s.clone(self)

    @property
    def requires_grad(self):
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value):
        self._set_requires_grad(value, "requires_grad")

    def _set_requires_grad(self, value, opname):
        value = bool(value)
        if value and self.data.dtype.kind not in "fc":
            raise RuntimeError(f"{opname}: only floating point tensors can require gradients, "
                               f"got {self.data.dtype}")
        if not value and self.grad_fn is not None:
            raise RuntimeError(f"{opname}: you can only change requires_grad flags of leaf tensors; "
                               "use detach() for a non-leaf")
        self._rg = value

    def requires_grad_(self, requires_grad=True):
        self._set_requires_grad(requires_grad, "requires_grad_")
        return self

    def retain_grad(self):
        if self.grad_fn is None:
            if not self.requires_grad:
                raise RuntimeError("retain_grad: can't retain_grad on a tensor that does not require grad")
            return  # leaves keep their grad anyway
        node = self.grad_fn
        if not any(h.__class__ is autograd._RetainGrad for h in (node.hooks or ())):
            node.register_hook(autograd._RetainGrad(self))

    def register_hook(self, hook):
        """Call hook(grad) when the gradient w.r.t. this tensor is computed; a non-None return replaces it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that doesn't require grad")
        if self.grad_fn is not None:
            self.grad_fn.register_hook(hook)
        else:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)
        return _RemovableHandle(hook, self)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's .grad; with `inputs`, only into those tensors'
        .grad (leaves or not), as PyTorch."""
        if inputs is None:
            autograd.backward(self, gradient, retain_graph, create_graph)
            return
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        if not inputs:
            raise RuntimeError("backward: 'inputs' argument to backward() cannot be empty")
        grads = autograd.grad(self, inputs, gradient, retain_graph=retain_graph, create_graph=create_graph,
                              allow_unused=True)
        for t, g in zip(inputs, grads):
            if g is None:
                continue
            if create_graph:
                t.grad = g if t.grad is None else t.grad + g
            elif t.grad is None:
                t.grad = autograd._new_tensor(g.data.copy())
            else:
                t.grad = autograd._new_tensor(t.grad.data + g.data)

    # ------------------------------------------------------------------ dtype / device moves
    def to(self, *args, **kwargs):
        """`to(dtype)`, `to(device)`, `to(device, dtype)`, `to(other_tensor)`; differentiable."""
        dev = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        copy = kwargs.pop("copy", False)
        if kwargs:
            raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                dev, dtype = a.device, a.dtype
            elif isinstance(a, (str, Device)) and not _looks_like_dtype(a):
                dev = a
            else:
                dtype = a
        out = self
        if dev is not None:
            from .ops import shape as _s
            out = _s.to_device(out, as_device(dev))
        if dtype is not None:
            from .ops import elementwise as _e
            out = _e.cast(out, normalize_dtype(dtype))
        if copy and out is self:
            out = self.clone()
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to(Device("cuda", device) if isinstance(device, int) else (device or "cuda"))

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def half(self):
        return self.to(np.float16)

    def long(self):
        return self.to(np.int64)

    def int(self):
        return self.to(np.int32)

    def bool(self):
        return self.to(np.bool_)

    def type_as(self, other):
        return self.to(other.dtype)

    def is_floating_point(self):
        return self.data.dtype.kind == "f"

    def is_contiguous(self):
        return bool(self.data.flags.c_contiguous)

    def type(self, dtype=None):
        """`x.type(dtype)` converts (as `.to(dtype)`); `x.type()` names the type, e.g.
        'autodiff.FloatTensor' ('autodiff.cuda.FloatTensor' on a GPU)."""
        if dtype is not None:
            return self.to(normalize_dtype(dtype))
        names = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long", "int32": "Int",
                 "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}
        prefix = "autodiff.cuda." if self.is_cuda else "autodiff."
        return prefix + names.get(str(self.data.dtype), str(self.data.dtype)) + "Tensor"

    # new_* factories: same dtype and device as self unless given (PyTorch)
    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        return Tensor(data, dtype=dtype or self.data.dtype, device=device or self.device,
                      requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        from .ops import creation
        return creation.zeros(*size, dtype=dtype or self.data.dtype, device=device or self.device,
                              requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        from .ops import creation
        return creation.ones(*size, dtype=dtype or self.data.dtype, device=device or self.device,
                             requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        return self.new_zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
        from .ops import creation
        return creation.full(size, fill_value, dtype=dtype or self.data.dtype, device=device or self.device,
                             requires_grad=requires_grad)

    # ------------------------------------------------------------------ printing
    def __repr__(self):
        arr = _by_array_type[type(self.data)].to_numpy(self.data)
        body = _format_array(arr)
        extras = []
        if self.data.dtype not in (default_float_dtype(), np.dtype(np.int64), np.dtype(np.bool_)):
            extras.append(f"dtype={self.data.dtype}")
        dev = self.device
        if dev.type != "cpu":
            extras.append(f"device='{dev}'")
        if self.grad_fn is not None:
            extras.append(f"grad_fn={self.grad_fn!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        out = "tensor(" + body
        last = len(out) - out.rfind("\n") + 1
        for e in extras:  # PyTorch's _add_suffixes: a suffix that does not fit goes on its own line
            if last + len(e) + 2 > _PRINT_LINEWIDTH:
                out += ",\n" + " " * len("tensor(") + e
                last = len("tensor(") + len(e)
            else:
                out += ", " + e
                last += len(e) + 2
        return out + ")"

    __str__ = __repr__


# ----------------------------------------------------------------------------- printing (PyTorch's layout)
_PRINT_PRECISION, _PRINT_THRESHOLD, _PRINT_EDGEITEMS, _PRINT_LINEWIDTH = 4, 1000, 3, 80
_PRINT_SCI = None


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """As torch.set_printoptions (profile 'default' / 'short' / 'full')."""
    global _PRINT_PRECISION, _PRINT_THRESHOLD, _PRINT_EDGEITEMS, _PRINT_LINEWIDTH, _PRINT_SCI
    if profile is not None:
        _PRINT_PRECISION, _PRINT_THRESHOLD, _PRINT_EDGEITEMS, _PRINT_LINEWIDTH = {
            "default": (4, 1000, 3, 80), "short": (2, 1000, 2, 80), "full": (4, float("inf"), 3, 80)}[profile]
    if precision is not None:
        _PRINT_PRECISION = precision
    if threshold is not None:
        _PRINT_THRESHOLD = threshold
    if edgeitems is not None:
        _PRINT_EDGEITEMS = edgeitems
    if linewidth is not None:
        _PRINT_LINEWIDTH = linewidth
    _PRINT_SCI = sci_mode


class _Formatter:
    """torch._tensor_str._Formatter: one width and one mode (integral / fixed / scientific) for all
    elements, decided from the non-zero finite values."""

    def __init__(self, flat):
        self.floating = flat.dtype.kind == "f"
        self.int_mode, self.sci_mode, self.max_width = True, False, 1
        p = _PRINT_PRECISION
        if not self.floating:
            for v in flat.tolist():
                self.max_width = max(self.max_width, len(str(v)))
            return
        vals = flat[np.isfinite(flat) & (flat != 0)].astype(np.float64)
        if vals.size == 0:
            return
        a = np.abs(vals)
        lo, hi = float(a.min()), float(a.max())
        self.int_mode = bool(np.all(vals == np.ceil(vals)))
        if self.int_mode:
            if hi / lo > 1000.0 or hi > 1.0e8:
                self.sci_mode = True
                self.max_width = max(len(f"{v:.{p}e}") for v in vals.tolist())
            else:
                self.max_width = max(len(f"{v:.0f}") + 1 for v in vals.tolist())
        elif hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4:
            self.sci_mode = True
            self.max_width = max(len(f"{v:.{p}e}") for v in vals.tolist())
        else:
            self.max_width = max(len(f"{v:.{p}f}") for v in vals.tolist())
        if _PRINT_SCI is not None and _PRINT_SCI != self.sci_mode:
            self.sci_mode = _PRINT_SCI
            if self.sci_mode:
                self.max_width = max(len(f"{v:.{p}e}") for v in vals.tolist())

    def format(self, v):
        p = _PRINT_PRECISION
        if self.floating:
            if self.sci_mode:
                r = f"{v:{self.max_width}.{p}e}"
            elif self.int_mode:
                r = f"{v:.0f}"
                if not (np.isinf(v) or np.isnan(v)):
                    r += "."
            else:
                r = f"{v:.{p}f}"
        else:
            r = str(v)
        return (self.max_width - len(r)) * " " + r


def _summarized(a):
    """The elements PyTorch shows of a large array (edge items of every dimension)."""
    e = _PRINT_EDGEITEMS
    if a.ndim == 0:
        return a.reshape(-1)
    if a.ndim == 1:
        return np.concatenate([a[:e], a[-e:]]) if a.shape[0] > 2 * e else a
    rows = list(range(e)) + list(range(a.shape[0] - e, a.shape[0])) if a.shape[0] > 2 * e else range(a.shape[0])
    parts = [_summarized(a[i]) for i in rows]
    return np.concatenate(parts) if parts else a.reshape(-1)


def _format_array(arr):
    if arr.size == 0:
        return "[]" if arr.ndim == 1 else f"[], size={tuple(arr.shape)}"
    summarize = arr.size > _PRINT_THRESHOLD
    fmt = _Formatter(_summarized(arr) if summarize else arr.reshape(-1))
    e, indent0 = _PRINT_EDGEITEMS, len("tensor(")

    def vec(a, indent):
        per_line = max(1, (_PRINT_LINEWIDTH - indent) // (fmt.max_width + 2))
        vals = a.tolist()
        if summarize and len(vals) > 2 * e:
            data = [fmt.format(v) for v in vals[:e]] + [" ..."] + [fmt.format(v) for v in vals[-e:]]
        else:
            data = [fmt.format(v) for v in vals]
        lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"

    def rec(a, indent):
        if a.ndim == 0:
            return fmt.format(a.item())
        if a.ndim == 1:
            return vec(a, indent)
        n = a.shape[0]
        if summarize and n > 2 * e:
            parts = [rec(a[i], indent + 1) for i in range(e)] + ["..."] + [rec(a[i], indent + 1)
                                                                       for i in range(n - e, n)]
        else:
            parts = [rec(a[i], indent + 1) for i in range(n)]
        return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(parts) + "]"

    return rec(arr, indent0)


def _looks_like_dtype(a):
    if isinstance(a, Device):
        return False
    try:
        Device(a)
        return False
    except (ValueError, TypeError):
        return True


def _wrap_dim(dim, ndim, opname):
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{opname}: dimension {dim} out of range for a tensor of {ndim} dimensions "
                         f"(expected in [{-n}, {n - 1}])")
    return dim % n


class _RemovableHandle:
    def __init__(self, hook, tensor):
        self._hook = hook
        self._tensor = tensor

    def remove(self):
        t = self._tensor
        lst = t.grad_fn.hooks if t.grad_fn is not None else t._hooks
        if lst and self._hook in lst:
            lst.remove(self._hook)


autograd._Tensor = Tensor


# ----------------------------------------------------------------------------- methods from the ops
_shape_ops = None  # autodiff.ops.shape, set by _install_methods (import cycle)


def _install_methods():
    global _shape_ops
    from .ops import elementwise as E, indexing as I, inplace as P, linalg as L, reduction as R, shape as S
    _shape_ops = S

    T = Tensor
    # operators
    T.__add__ = T.__radd__ = E.add
    T.__sub__ = E.sub
    T.__rsub__ = E.rsub
    T.__mul__ = T.__rmul__ = E.mul
    T.__truediv__ = E.div
    T.__rtruediv__ = E.rdiv
    T.__pow__ = E.pow
    T.__rpow__ = E.rpow
    T.__matmul__ = L.matmul
    T.__rmatmul__ = lambda self, other: L.matmul(other if isinstance(other, Tensor) else Tensor(other), self)
    T.__neg__ = E.neg
    T.__pos__ = lambda self: self
    T.__abs__ = E.abs
    T.__floordiv__ = E.floor_divide
    T.__rfloordiv__ = lambda self, other: E.floor_divide(other, self)
    T.__mod__ = E.remainder
    T.__rmod__ = lambda self, other: E.remainder(other, self)

    def __format__(self, spec):
        """A 0-d tensor formats as its Python number (f"{t:.2f}"), as PyTorch."""
        if self.data.ndim == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec) if spec else repr(self)

    T.__format__ = __format__
    T.__eq__ = E.eq
    T.__ne__ = E.ne
    T.__lt__ = E.lt
    T.__le__ = E.le
    T.__gt__ = E.gt
    T.__ge__ = E.ge
    T.__and__ = T.__rand__ = E.bitwise_and  # bitwise on integers, logical on bools, as PyTorch
    T.__or__ = T.__ror__ = E.bitwise_or
    T.__xor__ = T.__rxor__ = E.bitwise_xor
    T.__lshift__ = E.bitwise_left_shift
    T.__rshift__ = E.bitwise_right_shift
    T.__rlshift__ = lambda self, other: E.bitwise_left_shift(other, self)
    T.__rrshift__ = lambda self, other: E.bitwise_right_shift(other, self)
    T.__iand__ = lambda self, other: P.binary_inplace(self, other, E.bitwise_and, "bitwise_and_")
    T.__ior__ = lambda self, other: P.binary_inplace(self, other, E.bitwise_or, "bitwise_or_")
    T.__ixor__ = lambda self, other: P.binary_inplace(self, other, E.bitwise_xor, "bitwise_xor_")
    T.__invert__ = E.bitwise_not
    T.__getitem__ = I.getitem

    def __setitem__(self, key, value):
        I.setitem_(self, key, value)

    T.__setitem__ = __setitem__

    def _ip(fn, name):
        def method(self, other):
            return P.binary_inplace(self, other, fn, name)
        method.__name__ = name
        return method

    T.__iadd__ = T.add_ = _ip(E.add, "add_")
    T.__isub__ = T.sub_ = _ip(E.sub, "sub_")
    T.__imul__ = T.mul_ = _ip(E.mul, "mul_")
    T.__itruediv__ = T.div_ = _ip(E.div, "div_")
    T.pow_ = _ip(E.pow, "pow_")

    def zero_(self):
        return self.fill_(0)

    def fill_(self, value):
        v = value.data if isinstance(value, Tensor) else value
        return P.apply_inplace(self, lambda old: E.add(E.mul_const(old, 0), _const(self, v)), "fill_",
                               fast=lambda: self.data.fill(v) if not hasattr(v, "shape") else
                               self.data.__setitem__(Ellipsis, v))

    def copy_(self, src):
        if not isinstance(src, Tensor):
            src = Tensor(src)
        if src.device != self.device:
            src = src.to(self.device)
        if tuple(src.shape) != tuple(self.shape):
            try:
                import numpy as _np
                _np.broadcast_shapes(tuple(src.shape), tuple(self.shape))
            except ValueError:
                raise RuntimeError(f"copy_: source of shape {tuple(src.shape)} cannot be broadcast to "
                                   f"{tuple(self.shape)}") from None
        return P.apply_inplace(self, lambda old: E.add(E.mul_const(old, 0), E.cast(src, self.dtype)), "copy_",
                               fast=lambda: self.data.__setitem__(Ellipsis, src.data), others=(src,))

    def clamp_(self, min=None, max=None):
        return P.apply_inplace(self, lambda old: E.clamp(old, min, max), "clamp_",
                               fast=lambda: self.data.__setitem__(Ellipsis, E.clamp(self.detach(), min, max).data))

    T.zero_ = zero_
    T.fill_ = fill_
    T.copy_ = copy_
    T.clamp_ = clamp_

    # plain methods: name -> function(self, ...)
    for name, fn in {
        "add": E.add, "sub": E.sub, "mul": E.mul, "div": E.div, "pow": E.pow, "neg": E.neg, "abs": E.abs,
        "exp": E.exp, "log": E.log, "log1p": E.log1p, "expm1": E.expm1, "sqrt": E.sqrt, "rsqrt": E.rsqrt,
        "square": E.square, "reciprocal": E.reciprocal, "sin": E.sin, "cos": E.cos, "tanh": E.tanh,
        "sigmoid": E.sigmoid, "relu": E.relu, "sign": E.sign, "clamp": E.clamp, "clip": E.clamp,
        "maximum": E.maximum, "minimum": E.minimum, "erf": E.erf,
        "eq": E.eq, "ne": E.ne, "lt": E.lt, "le": E.le, "gt": E.gt, "ge": E.ge, "isnan": E.isnan,
        "isinf": E.isinf, "isfinite": E.isfinite, "floor": E.floor, "ceil": E.ceil, "round": E.round,
        "logical_and": E.logical_and, "logical_or": E.logical_or, "logical_not": E.logical_not,
        "remainder": E.remainder, "nonzero": E.nonzero, "allclose": E.allclose, "equal": E.equal,
        "sum": R.sum, "mean": R.mean, "prod": R.prod, "max": R.max, "min": R.min, "amax": R.amax,
        "amin": R.amin, "var": R.var, "std": R.std, "logsumexp": R.logsumexp, "norm": R.norm,
        "argmax": R.argmax, "argmin": R.argmin, "all": R.all, "any": R.any, "cumsum": R.cumsum,
        "reshape": S.reshape, "view": S.view, "flatten": S.flatten, "unflatten": S.unflatten,
        "squeeze": S.squeeze, "unsqueeze": S.unsqueeze, "permute": S.permute, "transpose": S.transpose,
        "t": S.t, "swapaxes": S.transpose, "movedim": S.movedim, "expand": S.expand, "expand_as": S.expand_as,
        "broadcast_to": S.broadcast_to, "repeat": S.repeat, "tile": S.tile, "split": S.split,
        "chunk": S.chunk, "unbind": S.unbind, "narrow": S.narrow, "flip": S.flip, "contiguous": S.contiguous,
        "matmul": L.matmul, "mm": L.mm, "bmm": L.bmm, "mv": L.mv, "dot": L.dot, "outer": L.outer,
        "gather": I.gather, "index_select": I.index_select, "masked_fill": I.masked_fill,
        "scatter_add": I.scatter_add, "take_along_dim": I.take_along_dim, "tril": I.tril, "triu": I.triu,
        "sort": R.sort, "argsort": R.argsort, "topk": R.topk, "isclose": E.isclose,
    }.items():
        setattr(T, name, fn)
    try:  # softmax / log_softmax live with the nn primitives; bind them as methods when present
        from .ops import nn as _nn_ops
        T.softmax = lambda self, dim, dtype=None: _nn_ops.softmax(self, dim, dtype)
        T.log_softmax = lambda self, dim, dtype=None: _nn_ops.log_softmax(self, dim, dtype)
    except ImportError:
        pass
    T.view_as = lambda self, other: S.reshape(self, other.shape)
    T.reshape_as = lambda self, other: S.reshape(self, other.shape)
    T.leaky_relu = E.leaky_relu
    T.softplus = E.softplus

    def masked_fill_(self, mask, value):
        """In place: self[mask] = value (mask broadcast to self's shape), with autograd."""
        m = mask.data if isinstance(mask, Tensor) else mask
        if getattr(m, "dtype", None) != np.bool_:
            raise RuntimeError(f"masked_fill_: mask must be a bool tensor, got {getattr(m, 'dtype', type(m))}")

        def fast():
            xp = _by_array_type[type(self.data)].xp
            v = value.data if isinstance(value, Tensor) else value
            self.data[...] = xp.where(m, xp.asarray(v, dtype=self.data.dtype), self.data)

        return P.apply_inplace(self, lambda old: I.masked_fill(old, mask, value), "masked_fill_", fast=fast,
                               others=(value,) if isinstance(value, Tensor) else ())

    T.masked_fill_ = masked_fill_

    # more PyTorch-named methods
    from .ops import reduction as R2
    for name in ("trunc", "floor_divide", "true_divide", "fmod", "frac", "lerp", "addcmul", "addcdiv", "clamp_min",
                 "clamp_max", "negative", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "log2", "log10",
                 "exp2", "nan_to_num", "logaddexp", "xlogy", "hypot", "signbit", "logical_xor", "subtract",
                 "multiply", "divide", "absolute", "erfc", "float_power", "heaviside", "arctan2", "greater",
                 "greater_equal", "less", "less_equal", "not_equal"):
        setattr(T, name, getattr(E, name))
    for name in ("cumprod", "median", "count_nonzero", "nansum", "nanmean", "var_mean", "std_mean", "unique", "kthvalue", "dist", "aminmax", "bincount", "histc"):
        setattr(T, name, getattr(R2, name))
    for name in ("roll", "rot90", "select", "repeat_interleave", "moveaxis", "swapdims", "tensor_split", "hsplit",
                 "vsplit", "diff", "tensordot", "kron", "fliplr", "flipud"):
        setattr(T, name, getattr(S, name))
    for name in ("diag", "diagonal", "trace", "masked_select", "scatter", "index_add", "index_fill", "index_copy",
                 "take", "index_put"):
        setattr(T, name, getattr(I, name))
    T.where = lambda self, condition, other: E.where(condition, self, other)
    T.bitwise_and, T.bitwise_or, T.bitwise_xor = E.bitwise_and, E.bitwise_or, E.bitwise_xor
    T.bitwise_not = E.bitwise_not
    T.bitwise_left_shift, T.bitwise_right_shift = E.bitwise_left_shift, E.bitwise_right_shift
    T.unfold = S.unfold
    T.ravel = S.ravel
    T.msort = R2.msort
    T.cummax = R2.cummax
    T.cummin = R2.cummin
    T.arccos, T.arcsin, T.arctan = E.acos, E.asin, E.atan
    T.logit = E.logit
    T.sinc = E.sinc
    T.isneginf = E.isneginf
    T.isposinf = E.isposinf
    T.inner = L.inner
    T.addmm = L.addmm
    T.baddbmm = L.baddbmm
    T.argwhere = lambda self: E.nonzero(self)
    T.inverse = L.inv
    T.pin_memory = lambda self: self

    def sum_to_size(self, *size):
        """Sum broadcast dimensions down to `size` (expand's adjoint), as Tensor.sum_to_size."""
        size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
        try:
            if np.broadcast_shapes(size, tuple(self.shape)) != tuple(self.shape):
                raise ValueError
        except ValueError:
            raise RuntimeError(f"sum_to_size: size {size} is not expandable to the tensor's shape "
                               f"{tuple(self.shape)}") from None
        return R2.sum_to_shape(self, size)

    T.sum_to_size = sum_to_size
    T.sgn = E.sign
    T.deg2rad = E.deg2rad
    T.rad2deg = E.rad2deg
    T.nelement = T.numel
    T.byte = lambda self: self.to(np.uint8)
    T.char = lambda self: self.to(np.int8)
    T.short = lambda self: self.to(np.int16)
    T.mH = property(lambda self: _shape_ops.transpose(self, -2, -1))
    T.H = property(lambda self: self.T)

    def stride(self, dim=None):
        """Strides in elements (of the backing array), as PyTorch."""
        st = tuple(s // self.data.dtype.itemsize for s in self.data.strides)
        return st if dim is None else st[_wrap_dim(dim, self.data.ndim, "stride")]

    T.stride = stride

    def _ip_fn(fn, name):
        """An in-place method `x.name(*args)` computing x = fn(x, *args) with autograd."""
        def method(self, *args, **kwargs):
            def fast():
                r = fn(autograd._new_tensor(self.data), *args, **kwargs).data
                if r.dtype != self.data.dtype and not P._castable(r.dtype, self.data.dtype):
                    raise RuntimeError(f"{name}: result type {r.dtype} can't be cast to the desired output type "
                                       f"{self.data.dtype}")
                self.data[...] = r
            others = tuple(a for a in list(args) + list(kwargs.values()) if isinstance(a, Tensor))
            return P.apply_inplace(self, lambda old: fn(old, *args, **kwargs), name, fast, others=others)
        method.__name__ = name
        return method

    for name, fn in {
        "abs_": E.abs, "neg_": E.neg, "negative_": E.neg, "exp_": E.exp, "log_": E.log, "sqrt_": E.sqrt,
        "rsqrt_": E.rsqrt, "sigmoid_": E.sigmoid, "tanh_": E.tanh, "relu_": E.relu, "square_": E.square,
        "floor_": E.floor, "ceil_": E.ceil, "round_": E.round, "trunc_": E.trunc, "frac_": E.frac,
        "sign_": E.sign, "sin_": E.sin, "cos_": E.cos, "reciprocal_": E.reciprocal, "expm1_": E.expm1,
        "log1p_": E.log1p, "clamp_min_": E.clamp_min, "clamp_max_": E.clamp_max, "clip_": E.clamp,
        "fmod_": E.fmod, "remainder_": E.remainder, "lerp_": E.lerp, "addcmul_": E.addcmul,
        "addcdiv_": E.addcdiv, "floor_divide_": E.floor_divide, "true_divide_": E.div, "erf_": E.erf,
        "logical_not_": E.logical_not, "leaky_relu_": E.leaky_relu, "nan_to_num_": E.nan_to_num,
        "scatter_": I.scatter, "scatter_add_": I.scatter_add, "index_add_": I.index_add,
        "index_fill_": I.index_fill, "index_copy_": I.index_copy, "index_put_": I.index_put, "atan2_": E.atan2, "hypot_": E.hypot,
        "tan_": E.tan, "sinh_": E.sinh, "cosh_": E.cosh, "log2_": E.log2, "log10_": E.log10,
        "exp2_": E.exp2, "asin_": E.asin, "acos_": E.acos, "atan_": E.atan, "cumsum_": R.cumsum,
        "cumprod_": R2.cumprod, "masked_scatter_": None, "tril_": I.tril, "triu_": I.triu,
        "logit_": E.logit, "sgn_": E.sign, "deg2rad_": E.deg2rad, "rad2deg_": E.rad2deg,
    }.items():
        if fn is not None:
            setattr(T, name, _ip_fn(fn, name))

    def _random_(kind):
        def method(self, a=None, b=None, *, generator=None):
            from .ops import creation
            if kind == "uniform":
                lo, hi = (0.0 if a is None else a), (1.0 if b is None else b)
                r = creation.rand(*self.shape, dtype=self.dtype, device=self.device)
                val = E.add(E.mul(r, hi - lo), lo) if (lo, hi) != (0.0, 1.0) else r
            else:
                mean, std = (0.0 if a is None else a), (1.0 if b is None else b)
                r = creation.randn(*self.shape, dtype=self.dtype, device=self.device)
                val = E.add(E.mul(r, std), mean) if (mean, std) != (0.0, 1.0) else r
            return P.apply_inplace(self, lambda old: E.add(E.mul_const(old, 0), val), kind + "_",
                                   fast=lambda: self.data.__setitem__(Ellipsis, val.data))
        method.__name__ = kind + "_"
        return method

    def _meta_ip(fn, name):
        """In-place shape change (t_, squeeze_, ...): x takes the result's array and node."""
        def method(self, *args, **kwargs):
            P.check_leaf(self, name)
            r = fn(self, *args, **kwargs)
            self.data = r.data
            if r.grad_fn is not None:
                self.grad_fn = r.grad_fn
            self._vc[0] += 1
            return self
        method.__name__ = name
        return method

    for name, fn in {"t_": S.t, "transpose_": S.transpose, "squeeze_": S.squeeze, "unsqueeze_": S.unsqueeze,
                     "swapaxes_": S.transpose, "swapdims_": S.transpose}.items():
        setattr(T, name, _meta_ip(fn, name))

    def data_ptr(self):
        """Address of the first element (numpy: ctypes.data, cupy: data.ptr)."""
        d = self.data
        if hasattr(d, "ctypes"):
            return int(d.ctypes.data)
        return int(d.data.ptr)

    T.data_ptr = data_ptr
    T.uniform_ = _random_("uniform")
    T.normal_ = _random_("normal")


def _const(like, v):
    from .autograd import _new_tensor
    return _new_tensor(_by_array_type[type(like.data)].xp.asarray(v, dtype=like.data.dtype))


_install_methods()
