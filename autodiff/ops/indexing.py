"""Indexing: `x[key]` (ints, slices, steps, None, ..., integer arrays, boolean masks), its adjoint
`index_put` (scatter with accumulation of repeated indices), gather/scatter_add, index_select,
masked_fill, and `x[key] = v`."""
from __future__ import annotations

import numpy as np

from ..autograd import Function, _mode, _new_tensor, _raw_tensor
from ..tensor import Tensor, _wrap_dim


def _normalize_key(x, key):
    """Tensors in the key become arrays; lists become host arrays, range-checked on the host (no
    device sync) and then moved to x's device; ints are range-checked with a clear message."""
    if not isinstance(key, tuple):
        key = (key,)
    conv = []
    for k in key:
        if isinstance(k, Tensor):
            k = k.data
        if isinstance(k, list):
            k = np.asarray(k) if k else np.zeros(0, dtype=np.int64)  # [] indexes nothing, as PyTorch
        conv.append(k)
    key = conv
    consumed = sum(k.ndim if getattr(k, "dtype", None) == np.bool_ and hasattr(k, "ndim") else 1
                   for k in key if k is not None and k is not Ellipsis and not isinstance(k, bool))
    out = []
    advanced = False
    dim = 0
    shape = x.data.shape
    for k in key:
        if k is None:
            out.append(None)
            continue
        if k is Ellipsis:
            out.append(k)
            dim += max(len(shape) - consumed, 0)
            continue
        if hasattr(k, "dtype") and not isinstance(k, (int, np.integer)) and getattr(k, "ndim", 0) >= 0 \
                and not isinstance(k, slice):
            if k.dtype == np.bool_:
                if k.ndim and tuple(k.shape) != tuple(shape[dim:dim + k.ndim]):
                    raise IndexError(f"getitem: boolean mask of shape {tuple(k.shape)} does not match the "
                                     f"indexed dimensions {tuple(shape[dim:dim + k.ndim])} of shape {tuple(shape)}")
                advanced = True
                dim += k.ndim
                out.append(_on_device(k, x))
                continue
            if k.dtype.kind not in "iu":
                raise IndexError(f"getitem: tensors used as indices must be long, int or bool, got {k.dtype}")
            if dim < len(shape) and k.size and isinstance(k, np.ndarray):
                # Range-checked on the host only: checking a device index array would sync with
                # the host on every indexing op (out-of-range device indices are not diagnosed).
                n = shape[dim]
                lo, hi = int(k.min()), int(k.max())
                if lo < -n or hi >= n:
                    raise IndexError(f"getitem: index {hi if hi >= n else lo} is out of bounds for dimension {dim} "
                                     f"with size {n}")
            advanced = True
            dim += 1
            out.append(_on_device(k, x))
            continue
        if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            if dim >= len(shape):
                raise IndexError(f"getitem: too many indices for a tensor of {len(shape)} dimensions")
            n = shape[dim]
            if not -n <= k < n:
                raise IndexError(f"getitem: index {k} is out of bounds for dimension {dim} with size {n}")
            out.append(int(k))
            dim += 1
            continue
        if isinstance(k, slice):
            if k.step is not None and k.step <= 0:
                raise ValueError("getitem: step must be greater than zero")
            out.append(k)
            dim += 1
            continue
        if isinstance(k, bool):
            out.append(k)
            continue
        raise TypeError(f"getitem: unsupported index type {type(k).__name__}")
    n_index_dims = sum(1 for k in out if k is not None and k is not Ellipsis and not isinstance(k, bool)
                       and not (hasattr(k, "dtype") and k.dtype == np.bool_)) + \
        sum(k.ndim for k in out if hasattr(k, "dtype") and k.dtype == np.bool_)
    if n_index_dims > len(shape):
        raise IndexError(f"getitem: too many indices ({n_index_dims}) for a tensor of shape {tuple(shape)}")
    return tuple(out), advanced


def _on_device(k, x):
    """Index array k on x's device (host index arrays are moved once, after validation)."""
    if type(k) is type(x.data) or not isinstance(k, np.ndarray):
        return k
    from .. import backends
    return backends._by_array_type[type(x.data)].xp.asarray(k)


class GetItem(Function):
    display_name = "Index"  # PyTorch's IndexBackward0 (advanced indexing)

    @staticmethod
    def forward(ctx, a, key, advanced):
        ctx.key, ctx.advanced = key, advanced
        ctx.in_shape = a.shape
        return a[key]

    @staticmethod
    def backward(ctx, g):
        if not _mode.enabled:
            return _raw_tensor(_index_put_raw(ctx.backend, g.data, ctx.key, ctx.in_shape, ctx.advanced), g.data)
        return IndexPut.apply(g, key=ctx.key, shape=ctx.in_shape, accumulate=ctx.advanced)


def _index_put_raw(backend, g, key, shape, accumulate):
    if accumulate:
        return backend.index_add(shape, g.dtype, key, g)
    out = backend.xp.zeros(shape, dtype=g.dtype)
    out[key] = g
    return out


class _GetItemView(GetItem):
    is_view = True
    display_name = "Slice"  # basic indexing: a view (PyTorch's SliceBackward0 / SelectBackward0)


class IndexPut(Function):
    """zeros(shape) with g added at key (accumulating repeated indices): the adjoint of getitem."""

    @staticmethod
    def forward(ctx, g, key, shape, accumulate):
        ctx.key, ctx.accumulate = key, accumulate
        return _index_put_raw(ctx.backend, g, key, shape, accumulate)

    @staticmethod
    def backward(ctx, g):
        return GetItem.apply(g, key=ctx.key, advanced=ctx.accumulate)


def getitem(x, key):
    """`x[key]`. Basic keys (ints, slices, None, ...) give a view; integer arrays and boolean masks
    copy, and their backward scatters with accumulation of repeated indices.

    Differs from NumPy as PyTorch does: integers in a key that also holds index arrays are applied
    first (as `select`), so they never count as advanced indices. `x[0, :, [1, 2]]` on a (3, 4, 5)
    tensor has shape (4, 2) (NumPy: (2, 4), the advanced axes moved to the front)."""
    key, advanced = _normalize_key(x, key)
    if not advanced:
        if not any(k is Ellipsis for k in key):
            key = key + (Ellipsis,)  # NumPy: a[1] of a 1-D array is a scalar copy, a[1, ...] a 0-d view
        out = _GetItemView.apply(x, key=key, advanced=False)
        if out.grad_fn is not None:
            out.grad_fn.view_base = x  # lets an in-place op on the view write through x (inplace.py)
        return out
    split = _split_int_key(key)
    if split is not None:
        x = _GetItemView.apply(x, key=split[0], advanced=False)
        key = split[1]
    return GetItem.apply(x, key=key, advanced=True)


def _split_int_key(key):
    """A normalized advanced key holding plain ints -> (basic, rest): `a[basic][rest]` is `a[key]` with
    PyTorch's placement of the advanced axes (ints applied first, as `select`). None when no int."""
    if not any(type(k) is int for k in key):
        return None
    basic, rest = [], []
    for k in key:
        if type(k) is int:
            basic.append(k)
        elif k is None or isinstance(k, (slice, bool)):
            basic.append(k)
            rest.append(slice(None))
        elif k is Ellipsis:
            basic.append(k)
            rest.append(k)
        else:  # an index array: a full slice in the first step, the array in the second
            basic.extend([slice(None)] * (k.ndim if k.dtype == np.bool_ else 1))
            rest.append(k)
    return tuple(basic), tuple(rest)


def _assign(a, key, v):
    """a[key] = v in place, with PyTorch's placement of advanced axes (see getitem)."""
    split = None
    if isinstance(key, tuple) and any(hasattr(k, "ndim") for k in key):
        split = _split_int_key(key)
    if split is None:
        a[key] = v
    else:
        a[split[0]][split[1]] = v  # a[basic] is a view (ints, slices, None, ... only)


class SetItem(Function):
    """out = a with out[key] = v (out of place; Tensor.__setitem__ writes it back in place)."""

    @staticmethod
    def forward(ctx, a, v, key):
        xp = ctx.backend.xp
        ctx.key = key
        out = a.copy()
        _assign(out, key, v)
        mask = xp.ones(a.shape, dtype=bool)
        _assign(mask, key, False)
        ctx.mask = mask
        ctx.v_shape = v.shape
        return out

    @staticmethod
    def backward(ctx, g):
        from .elementwise import mul_const
        gv = None
        if ctx.edges[1] is not None:
            gv = getitem(g, ctx.key)
        return mul_const(g, ctx.mask), gv


def setitem_(x, key, value):
    """In place `x[key] = value` with autograd (see Tensor.__setitem__)."""
    from .inplace import apply_inplace
    key, _ = _normalize_key(x, key)
    if not isinstance(value, Tensor):
        from .. import backends
        xp = backends._by_array_type[type(x.data)].xp
        value = _new_tensor(xp.asarray(value, dtype=x.data.dtype))
    if value.data.dtype != x.data.dtype:
        from .elementwise import cast
        value = cast(value, x.data.dtype)
    try:
        return apply_inplace(x, lambda old: SetItem.apply(old, value, key=key), "setitem",
                             fast=lambda: _assign(x.data, key, value.data), others=(value,))
    except ValueError as e:  # NumPy's broadcast error, as PyTorch's RuntimeError naming the op and shapes
        raise RuntimeError(f"setitem: value of shape {tuple(value.shape)} cannot be broadcast to the indexed "
                           f"part of the tensor of shape {tuple(x.shape)} ({e})") from None


class Gather(Function):
    """torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] for dim=1; backward scatter-adds."""

    @staticmethod
    def forward(ctx, a, index, axis):
        xp = ctx.backend.xp
        ctx.index, ctx.axis, ctx.in_shape = index, axis, a.shape
        return xp.take_along_axis(a, index, axis=axis)

    @staticmethod
    def backward(ctx, g):
        return ScatterAdd.apply(g, index=ctx.index, axis=ctx.axis, shape=ctx.in_shape)


class ScatterAdd(Function):
    """zeros(shape) with src added along `axis` at `index`; the adjoint of Gather."""

    @staticmethod
    def forward(ctx, src, index, axis, shape):
        ctx.index, ctx.axis = index, axis
        xp = ctx.backend.xp
        full = _full_index(xp, index, axis)
        return ctx.backend.index_add(shape, src.dtype, full, src)

    @staticmethod
    def backward(ctx, g):
        return Gather.apply(g, index=ctx.index, axis=ctx.axis)


def _full_index(xp, index, axis):
    grids = xp.meshgrid(*[xp.arange(s) for s in index.shape], indexing="ij", sparse=True)
    grids = list(grids)
    grids[axis] = index
    return tuple(grids)


def gather(x, dim, index):
    if x.data.ndim == 0:  # a 0-d input with a 0-d (or one-element) index, as PyTorch
        _wrap_dim(dim, 0, "gather")
        idx = index if isinstance(index, Tensor) else Tensor(np.asarray(index))
        return gather(x.reshape(1), 0, idx.reshape(-1)).reshape(idx.shape)
    axis = _wrap_dim(dim, x.data.ndim, "gather")
    idx = index.data if isinstance(index, Tensor) else index
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"gather: index must be an integer tensor, got {idx.dtype}")
    if idx.ndim != x.data.ndim:
        raise RuntimeError(f"gather: index has {idx.ndim} dimensions but input has {x.data.ndim}")
    for d in range(idx.ndim):
        if d != axis and idx.shape[d] > x.data.shape[d]:
            raise RuntimeError(f"gather: index shape {tuple(idx.shape)} exceeds input shape {tuple(x.shape)} "
                               f"in dimension {d}")
    if idx.size and type(idx) is np.ndarray:  # host indices only: no device sync (see getitem)
        n = x.data.shape[axis]
        if int(idx.min()) < -n or int(idx.max()) >= n:
            raise RuntimeError(f"gather: index out of range for dimension {axis} of size {n}")
    idx = _on_device(idx, x)
    if tuple(idx.shape) != tuple(x.data.shape):
        # take_along_axis broadcasts; torch.gather uses the leading sub-block: slice x to index's shape
        key = tuple(slice(0, s) if d != axis else slice(None) for d, s in enumerate(idx.shape))
        x = getitem(x, key)
    return Gather.apply(x, index=idx, axis=axis)


def take_along_dim(x, indices, dim=None):
    """torch.take_along_dim: gather along `dim` after broadcasting `x` and `indices` against each
    other in every other dimension; with dim=None both are flattened first."""
    idx = indices if isinstance(indices, Tensor) else Tensor(np.asarray(indices))
    if dim is None:
        return gather(x.reshape(-1), 0, idx.reshape(-1))
    axis = _wrap_dim(dim, x.data.ndim, "take_along_dim")
    if idx.data.ndim != x.data.ndim:
        raise RuntimeError(f"take_along_dim: input {tuple(x.shape)} and indices {tuple(idx.shape)} should have "
                           "the same number of dimensions")
    xs, is_ = list(x.data.shape), list(idx.data.shape)
    try:
        b = list(np.broadcast_shapes(tuple(xs[:axis] + [1] + xs[axis + 1:]), tuple(is_[:axis] + [1] + is_[axis + 1:])))
    except ValueError:
        raise RuntimeError(f"take_along_dim: input {tuple(x.shape)} and indices {tuple(idx.shape)} cannot be "
                           f"broadcast outside dimension {axis}") from None
    from .reduction import broadcast_to
    bx, bi = b[:axis] + [xs[axis]] + b[axis + 1:], b[:axis] + [is_[axis]] + b[axis + 1:]
    if bx != xs:
        x = broadcast_to(x, bx)
    if bi != is_:
        idx = _new_tensor(_xp(x).broadcast_to(_on_device(idx.data, x), tuple(bi)))
    return gather(x, axis, idx)


def _xp(x):
    from .. import backends
    return backends._by_array_type[type(x.data)].xp


def scatter_add(x, dim, index, src):
    """out = x.clone(); out.scatter_add_(dim, index, src) — differentiable in x and src."""
    from .elementwise import add
    axis = _wrap_dim(dim, x.data.ndim, "scatter_add")
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"scatter_add: index must be an integer tensor, got {idx.dtype}")
    if idx.ndim != x.data.ndim or any(i > s for i, s in zip(idx.shape, src.data.shape)):
        raise RuntimeError(f"scatter_add: index of shape {tuple(idx.shape)} does not fit input {tuple(x.shape)} "
                           f"and src {tuple(src.shape)}")
    if idx.size and type(idx) is np.ndarray:
        n = x.data.shape[axis]
        if int(idx.min()) < -n or int(idx.max()) >= n:
            raise RuntimeError(f"scatter_add: index out of range for dimension {axis} of size {n}")
    idx = _on_device(idx, x)
    s = src
    if tuple(s.data.shape) != tuple(idx.shape):
        key = tuple(slice(0, n) for n in idx.shape)
        s = getitem(s, key)
    return add(x, ScatterAdd.apply(s, index=idx, axis=axis, shape=x.data.shape))


def index_select(x, dim, index):
    if x.data.ndim == 0:  # a 0-d input: its element (0-d result), as PyTorch
        _wrap_dim(dim, 0, "index_select")
        return index_select(x.reshape(1), 0, index).reshape(())
    axis = _wrap_dim(dim, x.data.ndim, "index_select")
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    if idx.ndim > 1:
        raise IndexError(f"index_select: index must be 0-D or 1-D, got shape {tuple(idx.shape)}")
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"index_select: index must be an integer tensor, got {idx.dtype}")
    if idx.ndim == 0:
        idx = idx.reshape(1)
    if idx.size and type(idx) is np.ndarray:  # host indices only: no device sync
        n = x.data.shape[axis] if x.data.ndim else 1
        if int(idx.min()) < -n or int(idx.max()) >= n:
            raise IndexError(f"index_select: index {int(idx.max()) if int(idx.max()) >= n else int(idx.min())} "
                             f"is out of range for dimension {axis} of size {n} (input shape {tuple(x.shape)})")
    return getitem(x, (slice(None),) * axis + (idx,))


def masked_fill(x, mask, value):
    from .elementwise import where
    m = mask.data if isinstance(mask, Tensor) else mask
    if m.dtype != np.bool_:
        raise RuntimeError(f"masked_fill: mask must be a bool tensor, got {m.dtype}")
    try:
        if np.broadcast_shapes(tuple(m.shape), tuple(x.data.shape)) != tuple(x.data.shape):
            raise ValueError
    except ValueError:
        raise RuntimeError(f"masked_fill: mask of shape {tuple(m.shape)} cannot be broadcast to the input shape "
                           f"{tuple(x.shape)}") from None
    if isinstance(value, Tensor):
        return where(mask, value.to(x.dtype), x)
    from .. import backends
    xp = backends._by_array_type[type(x.data)].xp
    return where(mask, _new_tensor(xp.asarray(value, dtype=x.data.dtype)), x)


def pad_nonconstant(x, pad, mode):
    """reflect / replicate / circular padding of the last len(pad)//2 dims, via index arrays."""
    from .. import backends
    xp = backends._by_array_type[type(x.data)].xp
    nd = x.data.ndim
    out = x
    for i in range(len(pad) // 2):
        d = nd - 1 - i
        lo, hi = int(pad[2 * i]), int(pad[2 * i + 1])
        n = x.data.shape[d]
        pos = np.arange(-lo, n + hi)
        if mode == "reflect":
            if lo >= n or hi >= n:
                raise RuntimeError(f"pad: reflect padding ({lo}, {hi}) must be smaller than the dimension size {n}")
            period = 2 * (n - 1) if n > 1 else 1
            pos = np.abs(pos) % period
            pos = np.where(pos >= n, period - pos, pos)
        elif mode == "replicate":
            pos = np.clip(pos, 0, n - 1)
        elif mode == "circular":  # as PyTorch: negative padding crops first, then wraps the cropped signal
            c = np.arange(max(-lo, 0), n - max(-hi, 0))
            if lo > len(c) or hi > len(c):
                raise RuntimeError(f"pad: circular padding ({lo}, {hi}) must be at most the dimension size {n}")
            pos = c[np.arange(-max(lo, 0), len(c) + max(hi, 0)) % len(c)]
        else:
            raise ValueError(f"pad: unknown mode {mode!r} (constant, reflect, replicate, circular)")
        out = getitem(out, (slice(None),) * d + (xp.asarray(pos),))
    return out


def _tri(x, diagonal, lower, opname):
    if x.data.ndim < 2:
        raise RuntimeError(f"{opname}: input tensor must have at least 2 dimensions, got shape {tuple(x.shape)}")
    from .. import backends
    from .elementwise import where
    xp = backends._by_array_type[type(x.data)].xp
    n, m = x.data.shape[-2:]
    keep = (xp.tril if lower else xp.triu)(xp.ones((n, m), dtype=bool), k=diagonal)
    if x.data.dtype.kind not in "fc":
        return _new_tensor(xp.where(keep, x.data, xp.zeros((), dtype=x.data.dtype)))
    return where(_new_tensor(keep), x, 0.0)


def tril(x, diagonal=0):
    """Lower triangle of the last two dimensions (others zeroed), differentiable."""
    return _tri(x, diagonal, True, "tril")


def triu(x, diagonal=0):
    """Upper triangle of the last two dimensions (others zeroed), differentiable."""
    return _tri(x, diagonal, False, "triu")


# ----------------------------------------------------------------------------- more indexing (PyTorch names)
def _index_arg(index, opname):
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"{opname}: index must be an integer tensor, got {idx.dtype}")
    return idx


def scatter(x, dim, index, src=None, value=None, reduce=None):
    """out = x.clone(); out[... index ...] = src (or a scalar `value`) along `dim`, as torch.scatter.
    Gradient: x gets g except at the written positions, src gets g gathered at `index`.
    reduce='add' is scatter_add; 'multiply' is not supported."""
    if src is None and value is None:
        raise TypeError("scatter: give src or value")
    if reduce is not None:
        if reduce == "add":
            if not isinstance(src, Tensor):
                src = _full_like_index(x, index, src if src is not None else value)
            return scatter_add(x, dim, index, src)
        raise NotImplementedError(f"scatter: reduce={reduce!r} is not supported (only 'add')")
    axis = _wrap_dim(dim, x.data.ndim, "scatter")
    idx = _index_arg(index, "scatter")
    if idx.ndim != x.data.ndim:
        raise RuntimeError(f"scatter: index of shape {tuple(idx.shape)} must have as many dimensions as the input "
                           f"{tuple(x.shape)}")
    if idx.size and type(idx) is np.ndarray:
        n = x.data.shape[axis]
        if int(idx.min()) < -n or int(idx.max()) >= n:
            raise RuntimeError(f"scatter: index out of range for dimension {axis} of size {n}")
    idx = _on_device(idx, x)
    xp = _xp(x)
    if src is None or not isinstance(src, Tensor):
        v = _new_tensor(xp.full(idx.shape, src if src is not None else value, dtype=x.data.dtype))
    else:
        v = src
        if tuple(v.data.shape) != tuple(idx.shape):
            if any(i > s for i, s in zip(idx.shape, v.data.shape)):
                raise RuntimeError(f"scatter: index {tuple(idx.shape)} is larger than src {tuple(v.shape)}")
            v = getitem(v, tuple(slice(0, n) for n in idx.shape))
        if v.data.dtype != x.data.dtype:
            from .elementwise import cast
            v = cast(v, x.data.dtype)
    return SetItem.apply(x, v, key=_full_index(xp, idx, axis))


def _full_like_index(x, index, value):
    xp = _xp(x)
    shape = index.data.shape if isinstance(index, Tensor) else np.asarray(index).shape
    return _new_tensor(xp.full(shape, value, dtype=x.data.dtype))


def index_add(x, dim, index, source, alpha=1):
    """out = x.clone(); out.index_add_(dim, index, source * alpha) — repeated indices accumulate."""
    from .elementwise import add, mul
    axis = _wrap_dim(dim, x.data.ndim, "index_add")
    idx = _index_arg(index, "index_add")
    if idx.ndim > 1:
        raise IndexError(f"index_add: index must be 0-D or 1-D, got shape {tuple(idx.shape)}")
    idx = idx.reshape(-1)
    exp = tuple(x.data.shape[:axis]) + (idx.shape[0],) + tuple(x.data.shape[axis + 1:])
    if tuple(source.data.shape) != exp and not (source.data.ndim == 0 and x.data.ndim == 0):
        raise RuntimeError(f"index_add: source of shape {tuple(source.shape)} should have shape {exp} "
                           f"(input {tuple(x.shape)}, dim {axis}, {idx.shape[0]} indices)")
    if idx.size and type(idx) is np.ndarray:
        n = x.data.shape[axis]
        if int(idx.min()) < -n or int(idx.max()) >= n:
            raise IndexError(f"index_add: index out of range for dimension {axis} of size {n}")
    if alpha != 1:
        source = mul(source, alpha)
    if source.data.dtype != x.data.dtype:
        from .elementwise import cast
        source = cast(source, x.data.dtype)
    key = (slice(None),) * axis + (_on_device(idx, x),)
    return add(x, IndexPut.apply(source, key=key, shape=x.data.shape, accumulate=True))


def index_fill(x, dim, index, value):
    """out = x.clone(); out[..., index, ...] = value along `dim`."""
    axis = _wrap_dim(dim, x.data.ndim, "index_fill")
    idx = _index_arg(index, "index_fill").reshape(-1)
    v = value if isinstance(value, Tensor) else _new_tensor(_xp(x).asarray(value, dtype=x.data.dtype))
    if v.data.dtype != x.data.dtype:
        from .elementwise import cast
        v = cast(v, x.data.dtype)
    key, _ = _normalize_key(x, (slice(None),) * axis + (idx,))
    return SetItem.apply(x, v, key=key)


def index_copy(x, dim, index, source):
    """out = x.clone(); out[..., index, ...] = source along `dim`."""
    axis = _wrap_dim(dim, x.data.ndim, "index_copy")
    idx = _index_arg(index, "index_copy").reshape(-1)
    if source.data.dtype != x.data.dtype:
        from .elementwise import cast
        source = cast(source, x.data.dtype)
    key, _ = _normalize_key(x, (slice(None),) * axis + (idx,))
    return SetItem.apply(x, source, key=key)


def take(x, index):
    """x.flatten()[index] (the result has index's shape)."""
    return getitem(x.reshape(-1), index)


def masked_select(x, mask):
    """The elements of x where the (broadcast) bool mask is True, as a 1-D tensor."""
    m = mask if isinstance(mask, Tensor) else Tensor(np.asarray(mask))
    if m.data.dtype != np.bool_:
        raise RuntimeError(f"masked_select: mask must be a bool tensor, got {m.data.dtype}")
    try:
        shape = np.broadcast_shapes(tuple(x.data.shape), tuple(m.data.shape))
    except ValueError:
        raise RuntimeError(f"masked_select: mask of shape {tuple(m.shape)} does not broadcast with input "
                           f"{tuple(x.shape)}") from None
    from .reduction import broadcast_to
    if tuple(x.data.shape) != shape:
        x = broadcast_to(x, shape)
    md = _xp(x).broadcast_to(_on_device(m.data, x), shape)
    return getitem(x, md)


def diagonal(x, offset=0, dim1=0, dim2=1):
    """The diagonal of the (dim1, dim2) planes, appended as the last dimension (as torch.diagonal)."""
    from .shape import movedim
    nd = x.data.ndim
    d1, d2 = _wrap_dim(dim1, nd, "diagonal"), _wrap_dim(dim2, nd, "diagonal")
    if d1 == d2:
        raise RuntimeError(f"diagonal: dim1 and dim2 cannot be identical ({dim1}, {dim2})")
    y = movedim(x, (d1, d2), (-2, -1))
    n, m = y.data.shape[-2:]
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    k = max(min(n - r0, m - c0), 0)
    xp = _xp(x)
    r, c = xp.arange(r0, r0 + k), xp.arange(c0, c0 + k)
    return GetItem.apply(y, key=(Ellipsis, r, c), advanced=True)


def diag(x, diagonal=0):
    """1-D input: a square matrix with x on the `diagonal`-th diagonal; 2-D input: that diagonal."""
    if x.data.ndim == 2:
        return globals()["diagonal"](x, diagonal)
    if x.data.ndim != 1:
        raise RuntimeError(f"diag: expected a 1-D or 2-D tensor, got shape {tuple(x.shape)}")
    n = x.data.shape[0] + (diagonal if diagonal >= 0 else -diagonal)
    xp = _xp(x)
    r = xp.arange(x.data.shape[0]) + (0 if diagonal >= 0 else -diagonal)
    c = xp.arange(x.data.shape[0]) + (diagonal if diagonal >= 0 else 0)
    return IndexPut.apply(x, key=(r, c), shape=(n, n), accumulate=False)


def trace(x):
    """Sum of the main diagonal of a 2-D tensor (integers sum to int64)."""
    if x.data.ndim != 2:
        raise RuntimeError(f"trace: expected a 2-D tensor, got shape {tuple(x.shape)}")
    from .reduction import sum as _sum
    return _sum(diagonal(x))


def index_put(x, indices, values, accumulate=False):
    """out = x.clone(); out[indices] = values (or += with accumulate=True, repeated indices summing),
    as torch.index_put. `indices` is a tuple of index tensors."""
    from .elementwise import add, cast
    key, _ = _normalize_key(x, tuple(indices))
    v = values if isinstance(values, Tensor) else _new_tensor(_xp(x).asarray(values, dtype=x.data.dtype))
    if v.data.dtype != x.data.dtype:
        v = cast(v, x.data.dtype)
    if not accumulate:
        return SetItem.apply(x, v, key=key)
    shape = _xp(x).empty(x.data.shape, dtype=bool)[key].shape  # the indexed shape (a bool temporary)
    if tuple(v.data.shape) != tuple(shape):
        from .reduction import broadcast_to
        try:
            v = broadcast_to(v, shape)
        except RuntimeError:
            raise RuntimeError(f"index_put: values of shape {tuple(v.shape)} cannot be broadcast to the indexed "
                               f"shape {tuple(shape)} of the input {tuple(x.shape)}") from None
    return add(x, IndexPut.apply(v, key=key, shape=x.data.shape, accumulate=True))
