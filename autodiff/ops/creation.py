"""Factories: tensor, zeros, ones, full, empty, arange, linspace, eye, rand, randn, randint, *_like,
manual_seed. dtype defaults follow PyTorch (floats -> default float dtype, ints -> int64)."""
from __future__ import annotations

import builtins

import numpy as np

from ..autograd import _new_tensor
from ..device import as_device, backend_for
from ..dtypes import default_float_dtype, normalize_dtype
from ..tensor import Tensor


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor that always owns a copy of `data` (as torch.tensor; as_tensor/from_numpy share)."""
    t = Tensor(data, dtype=dtype, device=device, requires_grad=False)
    src = data.data if isinstance(data, Tensor) else data
    if t.data is src or (hasattr(src, "__array_interface__") or hasattr(src, "__cuda_array_interface__")) and \
            _shares(t.data, src):
        t.data = t.data.copy(order="K")  # keeps the memory layout (tests build non-contiguous inputs this way)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _shares(a, b):
    from .. import backends
    try:
        return bool(backends._by_array_type[type(a)].xp.may_share_memory(a, b))
    except (TypeError, ValueError, KeyError):
        return False


def as_tensor(data, dtype=None, device=None):
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    return Tensor(data, dtype=dtype, device=device)


def from_numpy(a):
    return _new_tensor(np.asarray(a))


def _size(size, opname):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    try:
        size = tuple(int(s) for s in size)
    except TypeError:
        raise TypeError(f"{opname}: size must be ints, got {size!r}") from None
    if any(s < 0 for s in size):
        raise RuntimeError(f"{opname}: negative dimension in size {size}")
    return size


def _finish(arr, requires_grad):
    t = _new_tensor(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _backend(device):
    d = as_device(device)
    return backend_for(d), d


def _make(fill, size, dtype, device, requires_grad, opname):
    size = _size(size, opname)
    b, d = _backend(device)
    dtype = normalize_dtype(dtype) or default_float_dtype()
    arr = b.full(size, fill, dtype, d)
    return _finish(arr, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _make(0, size, dtype, device, requires_grad, "zeros")


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _make(1, size, dtype, device, requires_grad, "ones")


def empty(*size, dtype=None, device=None, requires_grad=False):
    return _make(0, size, dtype, device, requires_grad, "empty")


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    if dtype is None:
        dtype = (np.dtype(np.bool_) if isinstance(fill_value, bool) else
                 np.dtype(np.int64) if isinstance(fill_value, (int, np.integer)) else default_float_dtype())
    return _make(fill_value, (size,) if isinstance(size, int) else tuple(size), dtype, device, requires_grad,
                 "full")


def _like(x, dtype, device):
    return (normalize_dtype(dtype) or x.dtype), (device if device is not None else x.device)


def zeros_like(x, dtype=None, device=None, requires_grad=False):
    dt, dev = _like(x, dtype, device)
    return zeros(x.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def ones_like(x, dtype=None, device=None, requires_grad=False):
    dt, dev = _like(x, dtype, device)
    return ones(x.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def empty_like(x, dtype=None, device=None, requires_grad=False):
    dt, dev = _like(x, dtype, device)
    return empty(x.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def full_like(x, fill_value, dtype=None, device=None, requires_grad=False):
    dt, dev = _like(x, dtype, device)
    return full(x.shape, fill_value, dtype=dt, device=dev, requires_grad=requires_grad)


def _host_scalar(v):
    """A 0-d Tensor argument of a factory as a Python number (factories may read the host)."""
    return v.item() if isinstance(v, Tensor) else v


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    start, end, step = _host_scalar(start), _host_scalar(end), _host_scalar(step)
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.dtype(np.int64) if is_int else default_float_dtype()
    b, d = _backend(device)
    arr = np.arange(start, end, step, dtype=np.float64 if normalize_dtype(dtype).kind == "f" else None)
    return _finish(b.asarray(arr, dtype=normalize_dtype(dtype), device=d), requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    start, end = _host_scalar(start), _host_scalar(end)
    b, d = _backend(device)
    arr = np.linspace(start, end, int(steps))
    return _finish(b.asarray(arr, dtype=normalize_dtype(dtype) or default_float_dtype(), device=d), requires_grad)


def logspace(start, end, steps, base=10.0, dtype=None, device=None, requires_grad=False):
    b, d = _backend(device)
    arr = np.logspace(start, end, int(steps), base=base)
    return _finish(b.asarray(arr, dtype=normalize_dtype(dtype) or default_float_dtype(), device=d), requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    b, d = _backend(device)
    arr = np.eye(n, m if m is not None else n)
    return _finish(b.asarray(arr, dtype=normalize_dtype(dtype) or default_float_dtype(), device=d), requires_grad)


# ----------------------------------------------------------------------------- random
def manual_seed(seed):
    """Seed the generators of every backend loaded so far (CPU and, if loaded, CUDA)."""
    from .. import backends
    for b in list(backends._instances.values()):
        b.manual_seed(int(seed))
    backends.note_global_seed(int(seed))  # backends loaded later (CUDA) start from this seed
    return seed


def seed():
    s = int(np.random.SeedSequence().entropy % (2 ** 63))
    manual_seed(s)
    return s


def _rand(kind, size, dtype, device, requires_grad, opname, **kw):
    size = _size(size, opname)
    b, d = _backend(device)
    dtype = normalize_dtype(dtype) or default_float_dtype()
    arr = b.random(kind, size, dtype, d, **kw)
    return _finish(arr, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False, generator=None):
    return _rand("uniform", size, dtype, device, requires_grad, "rand")


def randn(*size, dtype=None, device=None, requires_grad=False, generator=None):
    return _rand("normal", size, dtype, device, requires_grad, "randn")


def randint(low, high=None, size=None, dtype=None, device=None, generator=None):
    """randint(high, size) or randint(low, high, size), as torch.randint."""
    if size is None and isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint: size is required")
    if low >= high:
        raise RuntimeError(f"randint: expected low < high, got {low} >= {high}")
    size = _size((size,) if isinstance(size, int) else tuple(size), "randint")
    b, d = _backend(device)
    dtype = normalize_dtype(dtype) or np.dtype(np.int64)
    return _finish(b.random("integers", size, dtype, d, low=low, high=high), False)


def rand_like(x, dtype=None, device=None, requires_grad=False):
    dt, dev = _like(x, dtype, device)
    return rand(x.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def randn_like(x, dtype=None, device=None, requires_grad=False):
    dt, dev = _like(x, dtype, device)
    return randn(x.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def randint_like(x, low, high=None, dtype=None, device=None):
    dt, dev = _like(x, dtype, device)
    return randint(low, high, x.shape, dtype=dt, device=dev)


def randperm(n, dtype=None, device=None):
    b, d = _backend(device)
    arr = b.random("permutation", (int(n),), normalize_dtype(dtype) or np.dtype(np.int64), d)
    return _finish(arr, False)


def normal(mean, std, size, dtype=None, device=None):
    t = randn(size, dtype=dtype, device=device)
    return _new_tensor(t.data * std + mean)


del builtins


def tril_indices(row, col, offset=0, dtype=None, device=None):
    """2 x N indices of the lower triangle (row-major), as torch.tril_indices."""
    r, c = np.tril_indices(row, offset, col)
    b, d = _backend(device)
    return _new_tensor(b.asarray(np.stack([r, c]).astype(np.int64), dtype=normalize_dtype(dtype) or np.dtype(np.int64),
                                 device=d))


def triu_indices(row, col, offset=0, dtype=None, device=None):
    """2 x N indices of the upper triangle (row-major), as torch.triu_indices."""
    r, c = np.triu_indices(row, offset, col)
    b, d = _backend(device)
    return _new_tensor(b.asarray(np.stack([r, c]).astype(np.int64), dtype=normalize_dtype(dtype) or np.dtype(np.int64),
                                 device=d))
