"""Shape ops: reshape/view, permute/transpose, squeeze/unsqueeze, flatten, repeat, cat/stack,
split/chunk, pad, flip, contiguous/clone, and moves between devices."""
from __future__ import annotations

import numpy as np

from ..autograd import Function, _mode, _raw_tensor
from ..tensor import Tensor, _wrap_dim
from .reduction import broadcast_to  # noqa: F401  (re-exported)


def _shape_arg(shape, opname):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        return tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{opname}: shape must be ints, got {shape!r}") from None


class Reshape(Function):
    is_view = True
    display_name = "View"  # as PyTorch names view/reshape of contiguous tensors

    @staticmethod
    def forward(ctx, a, shape):
        ctx.in_shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        if not _mode.enabled:
            return _raw_tensor(g.data.reshape(ctx.in_shape), g.data)
        return Reshape.apply(g, shape=ctx.in_shape)


def reshape(x, *shape):
    shape = _shape_arg(shape, "reshape")
    cur = x.data.shape
    if shape == cur:
        return x
    n = x.data.size
    known = 1
    neg = 0
    for s in shape:
        if s == -1:
            neg += 1
        elif s < 0:
            raise RuntimeError(f"reshape: invalid shape dimension {s} in {shape}")
        else:
            known *= s
    if neg > 1:
        raise RuntimeError(f"reshape: only one dimension can be inferred, got {shape}")
    if (neg and (known == 0 or n % known)) or (not neg and known != n):
        raise RuntimeError(f"reshape: shape {shape} is invalid for input of size {n} (shape {tuple(cur)})")
    return Reshape.apply(x, shape=shape)


def view(x, *shape):
    """`view(*shape)` reshapes (a view); `view(dtype)` reinterprets the bytes as another dtype of
    the same size, as PyTorch (not differentiable; shares memory and version counter)."""
    if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int, np.integer)):
        from ..autograd import _new_tensor
        from ..dtypes import normalize_dtype
        dt = normalize_dtype(shape[0])
        if dt.itemsize != x.data.dtype.itemsize:
            raise RuntimeError(f"view: cannot view a {x.data.dtype} tensor as {dt} (element sizes differ)")
        out = _new_tensor(x.data.view(dt))
        out._vc = x._vc
        return out
    try:
        out = reshape(x, *shape)
    except RuntimeError as e:
        raise RuntimeError("view" + str(e)[len("reshape"):]) from None
    if out is not x and x.data.size > 1 and not _shares_memory(out.data, x.data):
        raise RuntimeError(f"view: shape {tuple(out.shape)} is not compatible with the size and strides of the "
                           f"input (shape {tuple(x.shape)}, strides {x.stride()}): at least one dimension spans "
                           "two non-contiguous subspaces. Use .reshape(...) instead, as PyTorch")
    return out


def _shares_memory(a, b):
    from .. import backends
    xp = backends._by_array_type[type(a)].xp
    return bool(xp.may_share_memory(a, b))


def flatten(x, start_dim=0, end_dim=-1):
    nd = x.data.ndim
    if nd == 0:
        return reshape(x, 1)
    s = _wrap_dim(start_dim, nd, "flatten")
    e = _wrap_dim(end_dim, nd, "flatten")
    if s > e:
        raise RuntimeError(f"flatten: start_dim {start_dim} cannot come after end_dim {end_dim}")
    shp = x.data.shape
    n = 1
    for d in shp[s:e + 1]:
        n *= d
    return reshape(x, shp[:s] + (n,) + shp[e + 1:])


def unflatten(x, dim, sizes):
    d = _wrap_dim(dim, x.data.ndim, "unflatten")
    shp = x.data.shape
    sizes = tuple(int(v) for v in sizes)
    known = int(np.prod([v for v in sizes if v != -1])) if sizes else 1
    if (-1 not in sizes and known != shp[d]) or (-1 in sizes and (known == 0 or shp[d] % known)):
        raise RuntimeError(f"unflatten: sizes {sizes} don't multiply up to the size of dim {d} ({shp[d]}) "
                           f"of the input of shape {tuple(shp)}")
    return reshape(x, shp[:d] + sizes + shp[d + 1:])


def squeeze(x, dim=None):
    shp = x.data.shape
    if dim is None:
        new = tuple(s for s in shp if s != 1)
    else:
        dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
        axes = {_wrap_dim(d, len(shp), "squeeze") for d in dims} if shp else set()
        new = tuple(s for i, s in enumerate(shp) if not (i in axes and s == 1))
    return reshape(x, new) if new != shp else x


def unsqueeze(x, dim):
    nd = x.data.ndim
    if not -(nd + 1) <= dim <= nd:
        raise IndexError(f"unsqueeze: dimension {dim} out of range for a tensor of {nd} dimensions "
                         f"(expected in [{-(nd + 1)}, {nd}])")
    d = dim % (nd + 1)
    shp = x.data.shape
    return reshape(x, shp[:d] + (1,) + shp[d:])


class Permute(Function):
    is_view = True

    @staticmethod
    def forward(ctx, a, dims):
        ctx.dims = dims
        return a.transpose(dims)

    @staticmethod
    def backward(ctx, g):
        dims = ctx.dims
        inv = [0] * len(dims)
        for i, d in enumerate(dims):
            inv[d] = i
        inv = tuple(inv)
        if not _mode.enabled:
            return _raw_tensor(g.data.transpose(inv), g.data)
        return Permute.apply(g, dims=inv)


def permute(x, *dims):
    dims = _shape_arg(dims, "permute")
    nd = x.data.ndim
    if len(dims) != nd:
        raise RuntimeError(f"permute: got {len(dims)} dims {dims} for a tensor of {nd} dimensions")
    dims = tuple(_wrap_dim(d, nd, "permute") for d in dims)
    if sorted(dims) != list(range(nd)):
        raise RuntimeError(f"permute: dims {dims} are not a permutation of 0..{nd - 1}")
    if dims == tuple(range(nd)):
        return x
    return Permute.apply(x, dims=dims)


def transpose(x, dim0, dim1):
    nd = x.data.ndim
    if nd < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return x
    a, b = _wrap_dim(dim0, nd, "transpose"), _wrap_dim(dim1, nd, "transpose")
    dims = list(range(nd))
    dims[a], dims[b] = dims[b], dims[a]
    return permute(x, dims)


swapaxes = transpose


def t(x):
    if x.data.ndim > 2:
        raise RuntimeError(f"t: expects a tensor with <= 2 dimensions, got {x.data.ndim}")
    return transpose(x, 0, 1) if x.data.ndim == 2 else x


def movedim(x, source, destination):
    nd = x.data.ndim
    src = [_wrap_dim(s, nd, "movedim") for s in ((source,) if isinstance(source, int) else source)]
    dst = [_wrap_dim(s, nd, "movedim") for s in ((destination,) if isinstance(destination, int) else destination)]
    order = [d for d in range(nd) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(x, order)


def expand(x, *sizes):
    return broadcast_to(x, _shape_arg(sizes, "expand"))


def expand_as(x, other):
    return broadcast_to(x, other.data.shape)


class Copy(Function):
    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, g):
        return g


def clone(x):
    return Copy.apply(x)


def contiguous(x):
    d = x.data
    if d.flags.c_contiguous:
        return x
    return Copy.apply(x)


class Repeat(Function):
    @staticmethod
    def forward(ctx, a, reps):
        ctx.in_shape = a.shape
        ctx.reps = reps
        return ctx.backend.xp.tile(a, reps)

    @staticmethod
    def backward(ctx, g):
        # View g as (r0, s0, r1, s1, ...) and sum the r axes.
        reps = ctx.reps
        in_shape = (1,) * (len(reps) - len(ctx.in_shape)) + tuple(ctx.in_shape)
        inter = []
        for r, s in zip(reps, in_shape):
            inter += [r, s]
        gs = g.reshape(tuple(inter))
        from .reduction import sum as _sum
        out = _sum(gs, tuple(range(0, 2 * len(reps), 2)))
        return out.reshape(ctx.in_shape)


def repeat(x, *sizes):
    sizes = _shape_arg(sizes, "repeat")
    if len(sizes) < x.data.ndim:
        raise RuntimeError(f"repeat: number of repeat dims ({len(sizes)}) can not be smaller than the number "
                           f"of tensor dims ({x.data.ndim})")
    return Repeat.apply(x, reps=sizes)


def tile(x, *dims):
    """Repeat x by `dims` (a tuple, or ints as varargs); missing leading dims count as 1."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]
    dims = tuple(int(d) for d in dims)
    if any(d < 0 for d in dims):
        raise RuntimeError(f"tile: trying to create a tensor with negative dimension: dims {dims}")
    if len(dims) < x.data.ndim:
        dims = (1,) * (x.data.ndim - len(dims)) + dims
    return repeat(x, dims)


class Cat(Function):
    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        ctx.sizes = [a.shape[axis] for a in arrays]
        return ctx.backend.xp.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, g):
        out = []
        start = 0
        for s in ctx.sizes:
            out.append(narrow(g, ctx.axis, start, s))
            start += s
        return tuple(out)


def cat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("cat: expected a non-empty list of tensors")
    # PyTorch skips 1-D empty tensors in cat
    tensors = [t for t in tensors if not (t.data.ndim == 1 and t.data.shape[0] == 0)] or tensors[:1]
    ref = tensors[0]
    nd = ref.data.ndim
    if nd == 0:
        raise RuntimeError("cat: zero-dimensional tensors cannot be concatenated")
    axis = _wrap_dim(dim, nd, "cat")
    from .elementwise import cast
    from ..dtypes import result_type
    dt = ref.data.dtype
    for i, t in enumerate(tensors):
        if t.data.ndim != nd or any(a != b for k, (a, b) in enumerate(zip(t.data.shape, ref.data.shape)) if k != axis):
            raise RuntimeError(f"cat: sizes of tensors must match except in dimension {axis}; tensor 0 has shape "
                               f"{tuple(ref.shape)} and tensor {i} has shape {tuple(t.shape)}")
        dt = result_type((dt, 1), (t.data.dtype, 1))
    tensors = [cast(t, dt) for t in tensors]
    if len(tensors) == 1:
        return tensors[0]
    return Cat.apply(*tensors, axis=axis)


concatenate = cat
concat = cat


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack: expected a non-empty list of tensors")
    shp = tensors[0].data.shape
    for i, t in enumerate(tensors):
        if t.data.shape != shp:
            raise RuntimeError(f"stack: expects each tensor to be equal size, but got {tuple(shp)} at entry 0 "
                               f"and {tuple(t.shape)} at entry {i}")
    nd = len(shp) + 1
    if not -nd <= dim < nd:
        raise IndexError(f"stack: dimension {dim} out of range for tensors of {nd - 1} dimensions "
                         f"(expected in [{-nd}, {nd - 1}])")
    d = dim % nd
    return cat([unsqueeze(t, d) for t in tensors], d)


def narrow(x, dim, start, length):
    """x[..., start:start + length, ...] along `dim` (a view); a negative start counts from the end."""
    d = _wrap_dim(dim, x.data.ndim, "narrow")
    n = x.data.shape[d]
    start, length = int(start), int(length)
    if start < 0:
        start += n
    if not 0 <= start <= n or length < 0 or start + length > n:
        raise IndexError(f"narrow: start {start} and length {length} are out of range for dimension {d} of size {n} "
                         f"(shape {tuple(x.shape)})")
    key = (slice(None),) * d + (slice(start, start + length),)
    from .indexing import getitem
    return getitem(x, key)


def split(x, split_size_or_sections, dim=0):
    d = _wrap_dim(dim, x.data.ndim, "split")
    n = x.data.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        s = int(split_size_or_sections)
        if s <= 0 and n:
            raise RuntimeError(f"split: split_size must be positive, got {s}")
        sizes = [min(s, n - i) for i in range(0, n, s)] if n else [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins_sum(sizes) != n:
            raise RuntimeError(f"split: split sizes {sizes} do not sum to the dimension size {n}")
    out, start = [], 0
    for s in sizes:
        out.append(narrow(x, d, start, s))
        start += s
    return tuple(out)


def builtins_sum(xs):
    total = 0
    for v in xs:
        total += v
    return total


def chunk(x, chunks, dim=0):
    d = _wrap_dim(dim, x.data.ndim, "chunk")
    n = x.data.shape[d]
    if chunks <= 0:
        raise RuntimeError(f"chunk: chunks must be positive, got {chunks}")
    size = -(-n // chunks) if n else 0
    return split(x, size, d) if size else (x,)


def unbind(x, dim=0):
    d = _wrap_dim(dim, x.data.ndim, "unbind")
    return tuple(squeeze(narrow(x, d, i, 1), d) for i in range(x.data.shape[d]))


class Pad(Function):
    @staticmethod
    def forward(ctx, a, widths, value):
        ctx.slices = tuple(slice(lo, lo + s) for (lo, hi), s in zip(widths, a.shape))
        return ctx.backend.xp.pad(a, widths, constant_values=value)

    @staticmethod
    def backward(ctx, g):
        from .indexing import getitem
        return getitem(g, ctx.slices)


def pad(x, pad, mode="constant", value=0.0):
    """PyTorch's F.pad: `pad` lists (left, right) pairs starting from the LAST dimension. Constant
    mode only here; negative padding crops."""
    if mode != "constant":
        from .indexing import pad_nonconstant
        k, nd = len(pad), x.data.ndim
        if k not in (2, 4, 6) or not (k // 2 + 1 <= nd <= k // 2 + 2):
            raise NotImplementedError(
                f"pad: {mode} padding of length {k} is not supported for a {nd}-D input of shape "
                f"{tuple(x.shape)} (as PyTorch: length 2 for 2-D/3-D, 4 for 3-D/4-D, 6 for 4-D/5-D inputs)")
        return pad_nonconstant(x, pad, mode)
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.data.ndim:
        raise RuntimeError(f"pad: padding length {len(pad)} must be even and at most 2 * ndim "
                           f"({2 * x.data.ndim}) for shape {tuple(x.shape)}")
    nd = x.data.ndim
    widths = [(0, 0)] * nd
    for i in range(len(pad) // 2):
        widths[nd - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if any(lo < 0 or hi < 0 for lo, hi in widths):  # crop first, then pad the rest
        from .indexing import getitem
        key = tuple(slice(-lo if lo < 0 else 0, (s + hi) if hi < 0 else s) for (lo, hi), s in
                    zip(widths, x.data.shape))
        x = getitem(x, key)
        widths = [(builtins_max(lo, 0), builtins_max(hi, 0)) for lo, hi in widths]
    if all(lo == 0 and hi == 0 for lo, hi in widths):
        return x
    return Pad.apply(x, widths=tuple(widths), value=value)


def builtins_max(a, b):
    return a if a > b else b


class Flip(Function):
    @staticmethod
    def forward(ctx, a, axes):
        ctx.axes = axes
        return ctx.backend.xp.flip(a, axes)

    @staticmethod
    def backward(ctx, g):
        return Flip.apply(g, axes=ctx.axes)


def flip(x, dims):
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    axes = tuple(_wrap_dim(d, x.data.ndim, "flip") for d in dims)
    if x.data.ndim == 0:
        return clone(x)
    return Flip.apply(x, axes=axes)


class ToDevice(Function):
    """Copy to another backend/device; backward copies the gradient back."""

    @staticmethod
    def forward(ctx, a, target_backend, target_device, src_device):
        ctx.src_device = src_device
        return target_backend.asarray(a, device=target_device)

    @staticmethod
    def backward(ctx, g):
        return to_device(g, ctx.src_device)


def to_device(x, dev):
    from ..device import backend_for
    src = x.device
    if src == dev or (dev.type == "cuda" and dev.index is None and src.type == "cuda"):
        return x
    b = backend_for(dev)
    # ToDevice.apply would run forward on the *source* backend; do it explicitly.
    ctx = object.__new__(ToDevice)
    ctx.backend = b
    out_arr = ToDevice.forward(ctx, x.data, b, dev, src)
    from ..autograd import _mode, _new_tensor
    out = _new_tensor(out_arr)
    if _mode.enabled and x.requires_grad:
        ctx.edges = [x.grad_fn if x.grad_fn is not None else x]
        ctx.in_meta = [(x.data.shape, x.data.dtype)]
        out.grad_fn = ctx
        out.requires_grad = True
    return out


def meshgrid(*tensors, indexing="ij"):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    for t in tensors:
        if t.data.ndim > 1:
            raise RuntimeError(f"meshgrid: expected 0-D or 1-D tensors, got shape {tuple(t.shape)}")
    tensors = tuple(reshape(t, (1,)) if t.data.ndim == 0 else t for t in tensors)
    n = len(tensors)
    shape = tuple(t.data.shape[0] for t in tensors)
    if indexing == "xy" and n >= 2:
        shape = (shape[1], shape[0]) + shape[2:]
    out = []
    for i, t in enumerate(tensors):
        pos = i
        if indexing == "xy" and n >= 2 and i < 2:
            pos = 1 - i
        s = [1] * n
        s[pos] = t.data.shape[0]
        out.append(broadcast_to(reshape(t, tuple(s)), shape))
    return tuple(out)


def _is_tensor(x):
    return isinstance(x, Tensor)


# ----------------------------------------------------------------------------- more shape ops (PyTorch names)
moveaxis = movedim
swapdims = transpose


def select(x, dim, index):
    """x.select(dim, index): the slice at `index` along `dim` (a view), as x[..., index, ...]."""
    from .indexing import getitem
    d = _wrap_dim(dim, x.data.ndim, "select")
    return getitem(x, (slice(None),) * d + (int(index),))


def _take_positions(x, d, pos):
    """x indexed along dimension d by the host integer array `pos` (backward accumulates)."""
    from .indexing import getitem
    return getitem(x, (slice(None),) * d + (np.asarray(pos, dtype=np.int64),))


def roll(x, shifts, dims=None):
    """Roll elements along `dims` (flattened first when dims is None), as torch.roll."""
    if dims is None:
        s = shifts if isinstance(shifts, (int, np.integer)) else shifts[0]
        flat = reshape(x, -1)
        n = flat.data.shape[0]
        return reshape(_take_positions(flat, 0, (np.arange(n) - int(s)) % n if n else np.arange(0)), x.data.shape)
    shifts = (shifts,) if isinstance(shifts, (int, np.integer)) else tuple(shifts)
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts {shifts} and dims {dims} must have the same length")
    out = x
    for s, dim in zip(shifts, dims):
        d = _wrap_dim(dim, x.data.ndim, "roll")
        n = x.data.shape[d]
        if n:
            out = _take_positions(out, d, (np.arange(n) - int(s)) % n)
    return out


def rot90(x, k=1, dims=(0, 1)):
    """Rotate by 90 degrees k times in the plane of `dims` (from the first towards the second)."""
    d0, d1 = (_wrap_dim(d, x.data.ndim, "rot90") for d in dims)
    if d0 == d1:
        raise RuntimeError(f"rot90: dims must differ, got {tuple(dims)}")
    k %= 4
    if k == 0:
        return clone(x)
    if k == 1:
        return transpose(flip(x, (d1,)), d0, d1)
    if k == 2:
        return flip(x, (d0, d1))
    return flip(transpose(x, d0, d1), (d1,))


def fliplr(x):
    if x.data.ndim < 2:
        raise RuntimeError(f"fliplr: input must be at least 2-D, got shape {tuple(x.shape)}")
    return flip(x, (1,))


def flipud(x):
    if x.data.ndim < 1:
        raise RuntimeError("flipud: input must be at least 1-D")
    return flip(x, (0,))


def atleast_1d(x):
    return reshape(x, (1,)) if x.data.ndim == 0 else x


def atleast_2d(x):
    if x.data.ndim >= 2:
        return x
    return reshape(x, (1, -1)) if x.data.ndim == 1 else reshape(x, (1, 1))


def atleast_3d(x):
    nd = x.data.ndim
    if nd >= 3:
        return x
    if nd == 0:
        return reshape(x, (1, 1, 1))
    if nd == 1:
        return reshape(x, (1, -1, 1))
    return unsqueeze(x, -1)


def hstack(tensors):
    ts = [atleast_1d(t) for t in tensors]
    return cat(ts, 0 if ts and ts[0].data.ndim == 1 else 1)


def vstack(tensors):
    return cat([atleast_2d(t) for t in tensors], 0)


row_stack = vstack


def dstack(tensors):
    return cat([atleast_3d(t) for t in tensors], 2)


def column_stack(tensors):
    return cat([reshape(t, (-1, 1)) if t.data.ndim <= 1 else t for t in tensors], 1)


def tensor_split(x, indices_or_sections, dim=0):
    """Split into `n` nearly equal parts (the first n % size parts one larger) or at the given
    indices, as torch.tensor_split (always a tuple; parts may be empty)."""
    d = _wrap_dim(dim, x.data.ndim, "tensor_split")
    n = x.data.shape[d]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k <= 0:
            raise RuntimeError(f"tensor_split: number of sections must be positive, got {k}")
        q, r = divmod(n, k)
        bounds, start = [], 0
        for i in range(k - 1):
            start += q + (1 if i < r else 0)
            bounds.append(start)
    else:
        bounds = [int(i) for i in indices_or_sections]
    out, prev = [], 0
    for b in bounds + [n]:
        b = min(max(b + n if b < 0 else b, 0), n)
        lo = min(prev, b)
        out.append(narrow(x, d, lo, b - lo))
        prev = max(prev, b)
    return tuple(out)


def hsplit(x, sections):
    return tensor_split(x, sections, 1 if x.data.ndim > 1 else 0)


def vsplit(x, sections):
    return tensor_split(x, sections, 0)


def repeat_interleave(x, repeats, dim=None, output_size=None):
    """Repeat each element `repeats` times along `dim` (flattened when dim is None)."""
    if not _is_tensor(x):  # torch.repeat_interleave(repeats_tensor): arange repeated
        from ..autograd import _new_tensor
        r = np.asarray(x.data if hasattr(x, "data") else x)
        return _new_tensor(np.repeat(np.arange(len(r)), r).astype(np.int64))
    if dim is None:
        x, d = reshape(x, -1), 0
    else:
        d = _wrap_dim(dim, x.data.ndim, "repeat_interleave")
    n = x.data.shape[d]
    r = repeats.data if _is_tensor(repeats) else repeats
    if hasattr(r, "get"):  # a device array: repeats is host metadata (one transfer)
        r = r.get()
    r = np.asarray(r, dtype=np.int64)
    if r.ndim and r.shape[0] not in (1, n):
        raise RuntimeError(f"repeat_interleave: repeats of shape {tuple(r.shape)} must have 1 or {n} elements "
                           f"(dimension {d} of shape {tuple(x.shape)})")
    if (r < 0).any():
        raise RuntimeError("repeat_interleave: repeats can not be negative")
    return _take_positions(x, d, np.repeat(np.arange(n), r.reshape(-1) if r.ndim else int(r)))


def broadcast_tensors(*tensors):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    try:
        shape = np.broadcast_shapes(*[tuple(t.data.shape) for t in tensors])
    except ValueError:
        raise RuntimeError(f"broadcast_tensors: shapes {[tuple(t.shape) for t in tensors]} cannot be broadcast "
                           "together") from None
    from .reduction import broadcast_to
    return tuple(broadcast_to(t, shape) for t in tensors)


def diff(x, n=1, dim=-1, prepend=None, append=None):
    """n-th forward difference along `dim` (with optional prepend/append), as torch.diff."""
    from .elementwise import sub, logical_xor
    d = _wrap_dim(dim, x.data.ndim, "diff")
    if prepend is not None or append is not None:
        parts = [p for p in (prepend, x, append) if p is not None]
        x = cat(parts, d)
    for _ in range(n):
        m = x.data.shape[d]
        if m == 0:
            break
        a, b = narrow(x, d, 1, m - 1), narrow(x, d, 0, m - 1)
        x = logical_xor(a, b) if x.data.dtype.kind == "b" else sub(a, b)
    return x


def tensordot(a, b, dims=2):
    """Contract the last `dims` dimensions of a with the first `dims` of b, or the listed pairs."""
    from .linalg import matmul
    if isinstance(dims, (int, np.integer)):
        k = int(dims)
        da, db = list(range(a.data.ndim - k, a.data.ndim)), list(range(k))
    else:
        da, db = dims
        da = [da] if isinstance(da, (int, np.integer)) else list(da)
        db = [db] if isinstance(db, (int, np.integer)) else list(db)
    da = [_wrap_dim(i, a.data.ndim, "tensordot") for i in da]
    db = [_wrap_dim(i, b.data.ndim, "tensordot") for i in db]
    for i, j in zip(da, db):
        if a.data.shape[i] != b.data.shape[j]:
            raise RuntimeError(f"tensordot: contracted dimensions differ: {tuple(a.shape)} dim {i} vs "
                               f"{tuple(b.shape)} dim {j}")
    fa = [i for i in range(a.data.ndim) if i not in da]
    fb = [j for j in range(b.data.ndim) if j not in db]
    ka = int(np.prod([a.data.shape[i] for i in da])) if da else 1
    am = reshape(permute(a, fa + da), (-1, ka))
    bm = reshape(permute(b, db + fb), (ka, -1))
    return reshape(matmul(am, bm), tuple(a.data.shape[i] for i in fa) + tuple(b.data.shape[j] for j in fb))


def kron(a, b):
    """Kronecker product (both padded to the same number of dimensions)."""
    from .elementwise import mul
    nd = max(a.data.ndim, b.data.ndim)
    a = reshape(a, (1,) * (nd - a.data.ndim) + tuple(a.data.shape))
    b = reshape(b, (1,) * (nd - b.data.ndim) + tuple(b.data.shape))
    ai = reshape(a, tuple(s for n in a.data.shape for s in (n, 1)))
    bi = reshape(b, tuple(s for n in b.data.shape for s in (1, n)))
    return reshape(mul(ai, bi), tuple(p * q for p, q in zip(a.data.shape, b.data.shape)))


def unfold(x, dimension, size, step):
    """Tensor.unfold: all windows of `size` elements with stride `step` along `dimension`; that
    dimension becomes the window count and a new last dimension holds each window."""
    from .indexing import getitem
    d = _wrap_dim(dimension, x.data.ndim, "unfold") if x.data.ndim else 0
    n_in = x.data.shape[d] if x.data.ndim else 1
    if size > n_in or size < 0 or step <= 0:
        raise RuntimeError(f"unfold: size {size} and step {step} invalid for dimension {d} of size {n_in} "
                           f"(shape {tuple(x.shape)})")
    if x.data.ndim == 0:
        return reshape(x, (1,))
    n = (n_in - size) // step + 1
    idx = (np.arange(n)[:, None] * step + np.arange(size)[None, :]).astype(np.int64)
    out = getitem(x, (slice(None),) * d + (idx,))
    return movedim(out, d + 1, -1)


def ravel(x):
    return reshape(x, (-1,))
