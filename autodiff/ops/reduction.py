"""Reductions: sum, mean, prod, max/min/amax/amin, var/std, logsumexp, norm, argmax/argmin, all/any.

`dim` is an int, a tuple of ints (negative allowed) or None (all dims); `keepdim` as PyTorch.
`max(dim=...)`/`min(dim=...)` return a `(values, indices)` named tuple and send the gradient to the
returned index; `max()`, `amax` and `amin` split the gradient evenly among tied maxima (as PyTorch).
"""
from __future__ import annotations

import collections
import math

import numpy as np

from ..autograd import Function, _mode, _new_tensor, _raw_tensor
from ..dtypes import normalize_dtype
from ..tensor import Tensor
from .elementwise import _float_input, _xp_of, add, cast, div, exp, log, mul, mul_const, pow, sub, abs

MinMax = collections.namedtuple("MinMax", ["values", "indices"])


def normalize_dims(dim, ndim, opname):
    """dim (None | int | sequence) -> sorted tuple of non-negative axes, with a clear range error."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    if not dims:  # dim=() or [] reduces over all dimensions, as PyTorch
        return tuple(range(ndim))
    n = ndim if ndim > 1 else 1
    out = []
    for d in dims:
        if not -n <= d < n:
            raise IndexError(f"{opname}: dimension {d} out of range for a tensor of {ndim} dimensions "
                             f"(expected in [{-n}, {n - 1}])")
        out.append(d % n if ndim else 0)
    if len(set(out)) != len(out):
        raise RuntimeError(f"{opname}: dimension listed more than once in {dim}")
    return tuple(sorted(out)) if ndim else ()


def _keepdim_shape(shape, axes):
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


class Expand(Function):
    """Broadcast to a larger shape (a read-only view); backward sums back."""
    is_view = True

    @staticmethod
    def forward(ctx, a, shape):
        return ctx.backend.xp.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, g):
        return g  # the engine sums to the input shape


class SumToShape(Function):
    """Sum a broadcast result back to `shape` (the engine's un-broadcasting step)."""

    @staticmethod
    def forward(ctx, a, shape):
        ctx.in_shape = a.shape
        lead = a.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and a.shape[lead + i] != 1)
        out = a.sum(axis=axes, keepdims=True) if axes else a
        if lead:
            out = out.reshape(shape)
        return out

    @staticmethod
    def backward(ctx, g):
        return Expand.apply(g, shape=ctx.in_shape)


def sum_to_shape(t, shape):
    if tuple(t.data.shape) == tuple(shape):
        return t
    return SumToShape.apply(t, shape=tuple(shape))


def broadcast_to(t, shape):
    shape = tuple(int(s) for s in shape)
    src = t.data.shape
    lead = len(shape) - len(src)
    if lead < 0:
        raise RuntimeError(f"broadcast_to: cannot broadcast shape {tuple(src)} to fewer dimensions {shape}")
    full = []
    for i, s in enumerate(shape):
        if s == -1:
            if i < lead:
                raise RuntimeError(f"broadcast_to: -1 not allowed in new leading dimension of {shape}")
            s = src[i - lead]
        full.append(s)
        if i >= lead and src[i - lead] not in (1, s):
            raise RuntimeError(f"broadcast_to: shape {tuple(src)} cannot be expanded to {shape} "
                               f"(dimension {i}: {src[i - lead]} != {s})")
    full = tuple(full)
    if full == tuple(src):
        return t
    return Expand.apply(t, shape=full)


class Sum(Function):
    @staticmethod
    def forward(ctx, a, axes, keepdim, dtype):
        ctx.in_shape = a.shape
        ctx.axes, ctx.keepdim = axes, keepdim
        return a.sum(axis=axes, keepdims=keepdim, dtype=dtype)

    @staticmethod
    def backward(ctx, g):
        if not _mode.enabled:
            gd = g.data
            if not ctx.keepdim and ctx.axes:
                gd = gd.reshape(_keepdim_shape(ctx.in_shape, ctx.axes))
            return _raw_tensor(ctx.backend.xp.broadcast_to(gd, ctx.in_shape), g.data)
        if not ctx.keepdim and ctx.axes:
            g = g.reshape(_keepdim_shape(ctx.in_shape, ctx.axes))
        return Expand.apply(g, shape=ctx.in_shape)


def sum(x, dim=None, keepdim=False, dtype=None):
    """Sum over `dim`. Integer and bool tensors sum to int64, as PyTorch."""
    if not isinstance(x, Tensor):
        import builtins
        return builtins.sum(x)
    if dim is None:
        axes = tuple(range(x.data.ndim))
    else:
        axes = normalize_dims(dim, x.data.ndim, "sum")
    if dtype is None:
        if x.data.dtype.kind in "fc":
            return Sum.apply(x, axes=axes, keepdim=keepdim, dtype=None)
    else:
        dtype = normalize_dtype(dtype)
    if dtype is None and x.data.dtype.kind in "biu":
        dtype = np.dtype(np.int64)
    if dtype is not None and dtype != x.data.dtype and dtype.kind in "fc":
        x, dtype = cast(x, dtype), None
    return Sum.apply(x, axes=axes, keepdim=keepdim, dtype=dtype)


def _count(x, axes):
    n = 1
    for a in axes:
        n *= x.data.shape[a]
    return n


class Mean(Function):
    """Mean over `axes` as one node (sum / n); backward spreads g / n over the reduced axes."""

    @staticmethod
    def forward(ctx, a, axes, keepdim, n):
        ctx.in_shape, ctx.axes, ctx.keepdim, ctx.n = a.shape, axes, keepdim, n
        r = a.sum(axis=axes, keepdims=keepdim)
        return r / n if n else r * ctx.backend.xp.nan

    @staticmethod
    def backward(ctx, g):
        n = ctx.n
        if not _mode.enabled:
            gd = g.data
            if not ctx.keepdim and ctx.axes:
                gd = gd.reshape(_keepdim_shape(ctx.in_shape, ctx.axes))
            return _raw_tensor(ctx.backend.xp.broadcast_to(gd / n, ctx.in_shape), g.data)
        if not ctx.keepdim and ctx.axes:
            g = g.reshape(_keepdim_shape(ctx.in_shape, ctx.axes))
        return Expand.apply(div(g, float(n)), shape=ctx.in_shape)


def mean(x, dim=None, keepdim=False, dtype=None):
    """Mean over `dim` (floating tensors only, as PyTorch; pass dtype= for integers). The mean of
    an empty selection is nan."""
    if dtype is not None:
        x = cast(x, normalize_dtype(dtype))
    if x.data.dtype.kind not in "fc":
        raise RuntimeError(f"mean: input dtype should be floating point, got {x.data.dtype} "
                           "(use .float() first, or pass dtype=)")
    axes = tuple(range(x.data.ndim)) if dim is None else normalize_dims(dim, x.data.ndim, "mean")
    return Mean.apply(x, axes=axes, keepdim=keepdim, n=_count(x, axes))


def var(x, dim=None, unbiased=None, keepdim=False, correction=None):
    """Variance with `correction` (default 1, Bessel); `unbiased=False` means correction 0."""
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    x = _float_input(x, "var")
    axes = normalize_dims(dim, x.data.ndim, "var")
    n = _count(x, axes)
    m = mean(x, axes, keepdim=True)
    d = sub(x, m)
    ss = sum(mul(d, d), axes, keepdim)
    return div(ss, float(n - correction if n > correction else 0))


class _StdSqrt(Function):
    """sqrt of a variance whose gradient is 0 where the result is 0 (a constant input has std 0 and
    gradient 0, not nan), as PyTorch's std backward."""
    save_output = True
    display_name = "Std"

    @staticmethod
    def forward(ctx, v):
        return ctx.backend.xp.sqrt(v)

    @staticmethod
    def backward(ctx, g):
        out = ctx.output()
        zero = _xp_of(out).asarray(out.data == 0)
        safe = add(out, _new_tensor(zero.astype(out.data.dtype)))
        return mul_const(div(mul(g, 0.5), safe), ~zero)


def std(x, dim=None, unbiased=None, keepdim=False, correction=None):
    return _StdSqrt.apply(var(x, dim, unbiased=unbiased, keepdim=keepdim, correction=correction))


def dist(x, y, p=2):
    """norm(x - y, p) over all elements."""
    return norm(sub(x, y), p)


def var_mean(x, dim=None, unbiased=None, keepdim=False, correction=None):
    return var(x, dim, unbiased, keepdim, correction), mean(x, dim, keepdim)


def std_mean(x, dim=None, unbiased=None, keepdim=False, correction=None):
    return std(x, dim, unbiased, keepdim, correction), mean(x, dim, keepdim)


class Prod(Function):
    """Product; the gradient is the product of the other elements (exact with zeros). The backward
    treats that product as a constant, so double backward is not supported. The products of the
    others are computed in backward (a forward without grad is one reduction)."""
    save_inputs = (0,)

    @staticmethod
    def forward(ctx, a, axis, keepdim):
        ctx.in_shape, ctx.axis, ctx.keepdim = a.shape, axis, keepdim
        if axis is None:
            out = a.reshape(-1).prod()
            return out.reshape((1,) * a.ndim) if keepdim else out
        return a.prod(axis=axis, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        xp = ctx.backend.xp
        a = ctx.saved_tensors[0].data
        if ctx.axis is None:
            others = _exclusive_prod(xp, a.reshape(-1), 0).reshape(a.shape)
            g = g.reshape((1,) * len(ctx.in_shape))
        else:
            others = _exclusive_prod(xp, a, ctx.axis)
            if not ctx.keepdim:
                g = g.reshape(_keepdim_shape(ctx.in_shape, (ctx.axis,)))
        if not _mode.enabled:
            return _raw_tensor(xp.broadcast_to(g.data, ctx.in_shape) * others, g.data)
        return mul_const(Expand.apply(g, shape=ctx.in_shape), others)


def _exclusive_prod(xp, a, axis):
    """Product of all elements along `axis` except the one at each position (no division)."""
    a = xp.moveaxis(a, axis, -1)
    ones = xp.ones(a.shape[:-1] + (1,), dtype=a.dtype)
    left = xp.cumprod(xp.concatenate([ones, a[..., :-1]], axis=-1), axis=-1)
    right = xp.flip(xp.cumprod(xp.flip(xp.concatenate([a[..., 1:], ones], axis=-1), -1), axis=-1), -1)
    return xp.moveaxis(left * right, -1, axis)


def prod(x, dim=None, keepdim=False, dtype=None):
    """Product over one `dim` (or all); integer and bool tensors multiply in int64, as PyTorch."""
    if dtype is not None:
        x = cast(x, normalize_dtype(dtype))
    elif x.data.dtype.kind in "biu" and x.data.dtype != np.int64:
        x = cast(x, np.dtype(np.int64))
    axes = None if dim is None else normalize_dims(dim, x.data.ndim, "prod")
    axis = axes[0] if axes else None  # (a 0-d tensor: its single element)
    return Prod.apply(x, axis=axis, keepdim=keepdim)


class AMax(Function):
    """amax/amin over `axes`; ties share the gradient evenly (the weights 1/count of the tied
    elements are computed in backward, so a forward without grad is one reduction)."""
    save_inputs = (0,)
    save_output = True

    @staticmethod
    def forward(ctx, a, axes, keepdim, is_max, nan_aware=False):
        ctx.in_shape, ctx.axes, ctx.keepdim, ctx.nan_aware = a.shape, axes, keepdim, nan_aware
        return a.max(axis=axes, keepdims=keepdim) if is_max else a.min(axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        x = ctx.saved_tensors[0].data
        kshape = _keepdim_shape(ctx.in_shape, ctx.axes)
        out = ctx.output_data().reshape(kshape)
        mask = x == out
        if ctx.nan_aware and x.dtype.kind == "f":  # max()/min()/inf-norm: a NaN result sends the
            mask |= (x != x) & (out != out)           # gradient to the NaNs (amax/amin give NaN), as PyTorch
        w = (mask / mask.sum(axis=ctx.axes, keepdims=True)).astype(x.dtype, copy=False)
        if not _mode.enabled:
            return _raw_tensor(g.data.reshape(kshape) * w, g.data)
        return mul_const(Expand.apply(g.reshape(kshape), shape=ctx.in_shape), w)


def _check_nonempty(x, axes, opname):
    for a in axes:
        if x.data.shape[a] == 0:
            raise IndexError(f"{opname}: cannot reduce over dimension {a} of size 0 (shape {tuple(x.shape)})")
    if not axes and x.data.size == 0:
        raise RuntimeError(f"{opname}: cannot reduce an empty tensor (shape {tuple(x.shape)})")


def amax(x, dim=None, keepdim=False, _nan_aware=False):
    axes = normalize_dims(dim if dim != () else None, x.data.ndim, "amax")
    _check_nonempty(x, axes, "amax")
    return AMax.apply(x, axes=axes, keepdim=keepdim, is_max=True, nan_aware=_nan_aware)


def amin(x, dim=None, keepdim=False, _nan_aware=False):
    axes = normalize_dims(dim if dim != () else None, x.data.ndim, "amin")
    _check_nonempty(x, axes, "amin")
    return AMax.apply(x, axes=axes, keepdim=keepdim, is_max=False, nan_aware=_nan_aware)


def _minmax(x, dim, keepdim, is_max, opname, other=None):
    if isinstance(dim, Tensor):  # torch.max(a, b) is the elementwise maximum
        from .elementwise import maximum, minimum
        return maximum(x, dim) if is_max else minimum(x, dim)
    if dim is None:
        return amax(x, _nan_aware=True) if is_max else amin(x, _nan_aware=True)
    xp = _xp_of(x)
    if x.data.ndim == 0:  # as PyTorch: dim 0 or -1 of a 0-d tensor gives (x, 0)
        normalize_dims(dim, 0, opname)
        from .shape import clone
        return MinMax(clone(x), _new_tensor(xp.zeros((), dtype=np.int64)))
    (axis,) = normalize_dims(dim, x.data.ndim, opname)
    _check_nonempty(x, (axis,), opname)
    idx_k = xp.asarray((xp.argmax if is_max else xp.argmin)(x.data, axis=axis, keepdims=True)).astype(np.int64)
    from .indexing import gather
    vals = gather(x, axis, _new_tensor(idx_k))
    if keepdim:
        return MinMax(vals, _new_tensor(idx_k))
    return MinMax(vals.squeeze(axis), _new_tensor(idx_k.squeeze(axis)))


def max(x, dim=None, keepdim=False):
    """`max(x)` -> 0-d tensor; `max(x, dim)` -> (values, indices); `max(x, other_tensor)` -> maximum."""
    return _minmax(x, dim, keepdim, True, "max")


def min(x, dim=None, keepdim=False):
    return _minmax(x, dim, keepdim, False, "min")


def argmax(x, dim=None, keepdim=False):
    xp = _xp_of(x)
    if dim is None:
        out = xp.argmax(x.data.reshape(-1))
        return _new_tensor(xp.asarray(out, dtype=np.int64).reshape((1,) * x.data.ndim if keepdim else ()))
    if x.data.ndim == 0:  # dim 0 / -1 of a 0-d tensor: index 0, as PyTorch
        normalize_dims(dim, 0, "argmax")
        return _new_tensor(xp.zeros((), dtype=np.int64))
    (axis,) = normalize_dims(dim, x.data.ndim, "argmax")
    return _new_tensor(xp.asarray(xp.argmax(x.data, axis=axis, keepdims=keepdim)).astype(np.int64))


def argmin(x, dim=None, keepdim=False):
    xp = _xp_of(x)
    if dim is None:
        out = xp.argmin(x.data.reshape(-1))
        return _new_tensor(xp.asarray(out, dtype=np.int64).reshape((1,) * x.data.ndim if keepdim else ()))
    if x.data.ndim == 0:  # dim 0 / -1 of a 0-d tensor: index 0, as PyTorch
        normalize_dims(dim, 0, "argmin")
        return _new_tensor(xp.zeros((), dtype=np.int64))
    (axis,) = normalize_dims(dim, x.data.ndim, "argmin")
    return _new_tensor(xp.asarray(xp.argmin(x.data, axis=axis, keepdims=keepdim)).astype(np.int64))


def all(x, dim=None, keepdim=False):
    axes = normalize_dims(dim, x.data.ndim, "all")
    r = _xp_of(x).asarray(x.data.astype(bool).all(axis=axes, keepdims=keepdim))
    return _new_tensor(r.astype(np.uint8) if x.data.dtype == np.uint8 else r)  # uint8 stays uint8, as PyTorch


def any(x, dim=None, keepdim=False):
    axes = normalize_dims(dim, x.data.ndim, "any")
    r = _xp_of(x).asarray(x.data.astype(bool).any(axis=axes, keepdims=keepdim))
    return _new_tensor(r.astype(np.uint8) if x.data.dtype == np.uint8 else r)  # uint8 stays uint8, as PyTorch


def logsumexp(x, dim, keepdim=False):
    """log(sum(exp(x))) computed stably by shifting with the (detached) max."""
    x = _float_input(x, "logsumexp")
    axes = normalize_dims(dim, x.data.ndim, "logsumexp")
    xp = _xp_of(x)
    if x.data.size == 0:
        m = xp.zeros(_keepdim_shape(x.data.shape, axes), dtype=x.data.dtype)
    else:
        m = x.data.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    mt = _new_tensor(m)
    out = add(log(sum(exp(sub(x, mt)), axes, keepdim=True)), mt)
    if not keepdim:
        out = out.reshape(tuple(s for i, s in enumerate(x.data.shape) if i not in axes))
    return out


class Norm2(Function):
    """Euclidean norm; gradient x / norm, defined as 0 where the norm is 0 (as PyTorch)."""
    save_inputs = (0,)
    save_output = True

    @staticmethod
    def forward(ctx, a, axes, keepdim):
        xp = ctx.backend.xp
        ctx.in_shape, ctx.axes, ctx.keepdim = a.shape, axes, keepdim
        return xp.sqrt((a * a).sum(axis=axes, keepdims=keepdim))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        out = ctx.output()
        if not ctx.keepdim:
            shape = _keepdim_shape(ctx.in_shape, ctx.axes)
            g, out = g.reshape(shape), out.reshape(shape)
        zero = ctx.xp.asarray(out.data == 0)
        safe = add(out, _new_tensor(zero.astype(out.data.dtype)))
        return mul(x, mul_const(div(g, safe), ~zero))


def norm(x, p="fro", dim=None, keepdim=False, dtype=None):
    """Vector norm over `dim` (all elements by default): p = 2/'fro', 1, inf, -inf, 0 or any real."""
    if dtype is not None:
        x = cast(x, normalize_dtype(dtype))
    if x.data.dtype.kind not in "fc":
        raise RuntimeError(f"norm: expected a floating point tensor as input, got {x.data.dtype} (as PyTorch; "
                           "pass dtype= or call .float() first)")
    axes = normalize_dims(dim, x.data.ndim, "norm")
    if p in ("fro", 2, 2.0, None):
        return Norm2.apply(x, axes=axes, keepdim=keepdim)
    if p == 1:
        return sum(abs(x), axes, keepdim)
    if p == math.inf or p == "inf":
        return amax(abs(x), axes, keepdim, _nan_aware=True)
    if p == -math.inf:
        return amin(abs(x), axes, keepdim, _nan_aware=True)
    if p == 0:  # the count of non-zeros; it takes part in autograd with a zero gradient, as PyTorch
        from .elementwise import _Rounding
        return sum(_Rounding.apply(x, fn=lambda xp, a: (a != 0).astype(a.dtype)), axes, keepdim)
    if p == "nuc":  # nuclear norm of the matrices over the two dims (all of a 2-D tensor), as torch.norm
        from .linalg import matrix_norm
        if len(axes) != 2:
            raise RuntimeError(f"norm: p='nuc' needs a 2-D input or two dims, got shape {tuple(x.shape)} and dim {dim}")
        return matrix_norm(x, "nuc", axes, keepdim)
    if isinstance(p, str):
        raise ValueError(f"norm: unsupported p={p!r}")
    return NormP.apply(x, p=float(p), axes=axes, keepdim=keepdim)


class NormP(Function):
    """(sum |x|^p)^(1/p) for a general real p. Backward as PyTorch's: the gradient is 0 where the
    norm is 0 (no nan for an all-zero vector) and, for p < 1, 0 at zero elements. Written with
    Tensor ops, so it differentiates again."""
    save_inputs = (0,)
    save_output = True

    @staticmethod
    def forward(ctx, a, p, axes, keepdim):
        xp = ctx.backend.xp
        ctx.in_shape, ctx.axes, ctx.keepdim, ctx.p = a.shape, axes, keepdim, p
        return xp.asarray((xp.abs(a) ** p).sum(axis=axes, keepdims=keepdim) ** (1.0 / p))

    @staticmethod
    def backward(ctx, g):
        from .elementwise import sign
        (x,) = ctx.saved_tensors
        out, p, xp = ctx.output(), ctx.p, ctx.backend.xp
        if not ctx.keepdim:
            shape = _keepdim_shape(ctx.in_shape, ctx.axes)
            g, out = g.reshape(shape), out.reshape(shape)
        if p < 1.0:
            nz = xp.asarray(x.data != 0)
            ax = add(abs(x), _new_tensor((~nz).astype(x.data.dtype)))  # |x| with 1 at the zeros
            scaled = mul_const(mul(sign(x), pow(ax, p - 1.0)), nz)
            return mul(scaled, Expand.apply(mul(g, pow(out, 1.0 - p)), shape=ctx.in_shape))
        scaled = mul(sign(x), pow(abs(x), p - 1.0)) if p < 2.0 else mul(x, pow(abs(x), p - 2.0))
        zero = xp.asarray(out.data == 0)
        safe = add(out, _new_tensor(zero.astype(out.data.dtype)))
        scale = mul_const(div(g, pow(safe, p - 1.0)), ~zero)
        return mul(scaled, Expand.apply(scale, shape=ctx.in_shape))


def cumsum(x, dim, dtype=None):
    """Cumulative sum along `dim`; integer and bool tensors accumulate in int64 (as PyTorch) unless
    `dtype` is given."""
    axes = normalize_dims(dim, x.data.ndim, "cumsum")
    axis = axes[0] if axes else 0
    if dtype is not None:
        x = cast(x, normalize_dtype(dtype))
    elif x.data.dtype.kind in "biu" and x.data.dtype != np.int64:
        x = cast(x, np.dtype(np.int64))
    if x.data.ndim == 0:
        return CumSum.apply(x.reshape(1), axis=0).reshape(())
    return CumSum.apply(x, axis=axis)


class CumSum(Function):
    @staticmethod
    def forward(ctx, a, axis):
        ctx.axis = axis
        return ctx.backend.xp.cumsum(a, axis=axis)

    @staticmethod
    def backward(ctx, g):
        from .shape import flip
        return flip(cumsum(flip(g, (ctx.axis,)), ctx.axis), (ctx.axis,))


SortResult = collections.namedtuple("sort", ["values", "indices"])
TopKResult = collections.namedtuple("topk", ["values", "indices"])


def argsort(x, dim=-1, descending=False, stable=False):
    """Indices that sort `x` along `dim` (int64). Ties keep their order (a stable sort)."""
    xp = _xp_of(x)
    if x.data.ndim == 0:
        normalize_dims(dim, 0, "argsort")
        return _new_tensor(xp.zeros((), dtype=np.int64))
    (axis,) = normalize_dims(dim, x.data.ndim, "argsort")
    d = x.data
    key = -(d.astype(np.int64) if d.dtype.kind in "bu" else d) if descending else d  # ties keep order
    idx = _stable_argsort(xp, key, axis)
    if descending and d.dtype.kind == "f":  # NaN counts as the largest value: first, as PyTorch
        nan_last = xp.take_along_axis(~xp.isnan(d), idx, axis=axis)
        idx = xp.take_along_axis(idx, _stable_argsort(xp, nan_last, axis), axis=axis)
    return _new_tensor(xp.asarray(idx).astype(np.int64))


def _stable_argsort(xp, key, axis):
    try:
        return xp.argsort(key, axis=axis, kind="stable")
    except (TypeError, NotImplementedError):  # an array module whose sort is stable without `kind`
        return xp.argsort(key, axis=axis)


def sort(x, dim=-1, descending=False, stable=False):
    """(values, indices) sorted along `dim`; values are differentiable (gradient scattered back)."""
    normalize_dims(dim, x.data.ndim, "sort")
    idx = argsort(x, dim, descending)
    if x.data.ndim == 0:
        from .shape import clone
        return SortResult(clone(x), idx)
    (axis,) = normalize_dims(dim, x.data.ndim, "sort")
    from .indexing import gather
    return SortResult(gather(x, axis, idx), idx)


def topk(x, k, dim=-1, largest=True, sorted=True):
    """The k largest (or smallest) elements along `dim` as (values, indices); values differentiable."""
    axes = normalize_dims(dim, x.data.ndim, "topk")
    axis = axes[0] if axes else 0
    n = x.data.shape[axis] if x.data.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"topk: k ({k}) out of range for dimension {axis} of size {n} (shape {tuple(x.shape)})")
    idx = argsort(x, axis, descending=largest)
    if x.data.ndim == 0:
        from .shape import clone
        return TopKResult(clone(x), idx)
    from .indexing import gather
    from .shape import narrow
    idx = narrow(idx, axis, 0, k)
    return TopKResult(gather(x, axis, idx), idx)


# ----------------------------------------------------------------------------- more reductions
MedianResult = collections.namedtuple("median", ["values", "indices"])


def median(x, dim=None, keepdim=False):
    """The lower median (as PyTorch: no averaging of the two middle values). Without `dim` a 0-d
    tensor; with `dim` a (values, indices) named tuple. The gradient goes to the selected element."""
    from .indexing import gather
    if dim is None:  # the gradient is split evenly among the elements equal to the median, as PyTorch
        xp = _xp_of(x)
        if x.data.size == 0:  # nan, as PyTorch
            return _new_tensor(xp.asarray(xp.nan, dtype=x.data.dtype))
        flat = x.data.reshape(-1)
        v = xp.sort(flat)[(flat.shape[0] - 1) // 2]  # NaN sorts last; any NaN makes the median NaN
        if flat.dtype.kind == "f":
            v = xp.where(xp.isnan(flat).any(), xp.asarray(xp.nan, dtype=flat.dtype), v)
        mask = (flat == v) | (xp.isnan(flat) & xp.isnan(v)) if flat.dtype.kind == "f" else flat == v
        w = (mask / mask.sum()).astype(flat.dtype).reshape(x.data.shape)
        vt = _new_tensor(xp.asarray(v))
        return add(vt, sum(mul_const(sub(x, vt), w)))  # exactly v forward (x - v is 0 where w != 0)
    if x.data.ndim == 0:
        normalize_dims(dim, 0, "median")
        from .shape import clone
        return MedianResult(clone(x), _new_tensor(_xp_of(x).zeros((), dtype=np.int64)))
    (axis,) = normalize_dims(dim, x.data.ndim, "median")
    _check_nonempty(x, (axis,), "median")
    k = (x.data.shape[axis] - 1) // 2
    idx = argsort(x, axis, stable=True).narrow(axis, k, 1)
    if x.data.dtype.kind == "f":  # a NaN in the row makes its median NaN (the first NaN), as PyTorch
        xp = _xp_of(x)
        isn = xp.isnan(x.data)
        first_nan = xp.argmax(isn, axis=axis, keepdims=True).astype(np.int64)
        idx = _new_tensor(xp.where(isn.any(axis=axis, keepdims=True), first_nan, idx.data))
    vals = gather(x, axis, idx)
    if not keepdim:
        vals, idx = vals.squeeze(axis), idx.squeeze(axis)
    return MedianResult(vals, idx)


KthValueResult = collections.namedtuple("kthvalue", ["values", "indices"])


def kthvalue(x, k, dim=-1, keepdim=False):
    """The k-th smallest element along `dim` (1-based) and its index, as torch.kthvalue."""
    from .indexing import gather
    if x.data.ndim == 0:
        normalize_dims(dim, 0, "kthvalue")
        if k != 1:
            raise RuntimeError(f"kthvalue: k ({k}) out of range for a 0-d tensor")
        from .shape import clone
        return KthValueResult(clone(x), _new_tensor(_xp_of(x).zeros((), dtype=np.int64)))
    (axis,) = normalize_dims(dim, x.data.ndim, "kthvalue")
    n = x.data.shape[axis]
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue: k ({k}) out of range for dimension {axis} of size {n} (shape {tuple(x.shape)})")
    idx = argsort(x, axis, stable=True).narrow(axis, k - 1, 1)
    vals = gather(x, axis, idx)
    if not keepdim:
        vals, idx = vals.squeeze(axis), idx.squeeze(axis)
    return KthValueResult(vals, idx)


def count_nonzero(x, dim=None):
    """Number of non-zero elements over `dim` (int64)."""
    axes = normalize_dims(dim, x.data.ndim, "count_nonzero")
    return _new_tensor(_xp_of(x).asarray((x.data != 0).sum(axis=axes)).astype(np.int64))


def nansum(x, dim=None, keepdim=False, dtype=None):
    """sum treating nan as zero (no gradient to the nan positions)."""
    from .elementwise import where
    xp = _xp_of(x)
    if x.data.dtype.kind in "fc":
        x = where(_new_tensor(xp.asarray(xp.isnan(x.data))), 0.0, x)
    return sum(x, dim, keepdim, dtype)


def nanmean(x, dim=None, keepdim=False, dtype=None):
    """mean over the non-nan elements."""
    if dtype is not None:
        x = cast(x, normalize_dtype(dtype))
    if x.data.dtype.kind not in "fc":
        raise RuntimeError(f"nanmean: input dtype should be floating point, got {x.data.dtype}")
    xp = _xp_of(x)
    axes = normalize_dims(dim, x.data.ndim, "nanmean")
    n = xp.asarray((~xp.isnan(x.data)).sum(axis=axes, keepdims=keepdim)).astype(x.data.dtype)
    return div(nansum(x, axes, keepdim), _new_tensor(n))


class CumProd(Function):
    """Cumulative product. The gradient is exact with zeros in the input (it never divides): for
    each position i it sums g_j * prod_{k <= j, k != i} x_k over j >= i through an (n, n) weight
    matrix per row, applied to g with Tensor ops (so create_graph keeps a graph in g; the weights
    are constants, so second derivatives in x are not supported)."""
    save_inputs = (0,)

    @staticmethod
    def forward(ctx, a, axis):
        ctx.axis = axis
        return ctx.backend.xp.cumprod(a, axis=axis)

    @staticmethod
    def backward(ctx, g):
        xp = ctx.backend.xp
        a = xp.moveaxis(ctx.saved_tensors[0].data, ctx.axis, -1)
        n = a.shape[-1]
        ones = xp.ones(a.shape[:-1] + (1,), dtype=a.dtype)
        left = xp.cumprod(xp.concatenate([ones, a[..., :-1]], axis=-1), axis=-1)  # prod_{k<i} x_k
        upper = xp.arange(n)[None, :] > xp.arange(n)[:, None]                   # k > i
        t = xp.where(upper, a[..., None, :], xp.asarray(1, dtype=a.dtype))       # [.., i, k]
        m = xp.cumprod(t, axis=-1)                                               # prod_{i<k<=j} x_k
        w = xp.where(~upper & (xp.arange(n)[None, :] != xp.arange(n)[:, None]), 0, m) * left[..., :, None]
        from .linalg import matmul
        from .shape import movedim
        gm = movedim(g, ctx.axis, -1).unsqueeze(-1)
        return movedim(matmul(_new_tensor(w), gm).squeeze(-1), -1, ctx.axis)


def cumprod(x, dim, dtype=None):
    """Cumulative product along `dim`; integer and bool tensors multiply in int64 (as PyTorch)."""
    axes = normalize_dims(dim, x.data.ndim, "cumprod")
    axis = axes[0] if axes else 0
    if dtype is not None:
        x = cast(x, normalize_dtype(dtype))
    elif x.data.dtype.kind in "biu" and x.data.dtype != np.int64:
        x = cast(x, np.dtype(np.int64))
    if x.data.ndim == 0:
        return CumProd.apply(x.reshape(1), axis=0).reshape(())
    return CumProd.apply(x, axis=axis)


def unique(x, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct values of x (sorted), optionally with the inverse indices (x's shape, or the
    length of `dim`) and the counts, as torch.unique. Not differentiable. The output size depends
    on the data, so this reads the result size on the host (a sync on CUDA), as PyTorch does."""
    xp = _xp_of(x)
    if dim is None:
        try:  # NaNs stay distinct, as PyTorch
            vals, inv, cnt = xp.unique(x.data.reshape(-1), return_inverse=True, return_counts=True, equal_nan=False)
        except TypeError:
            vals, inv, cnt = xp.unique(x.data.reshape(-1), return_inverse=True, return_counts=True)
        inv = inv.reshape(x.data.shape)
    else:
        (axis,) = normalize_dims(dim, x.data.ndim, "unique")
        vals, inv, cnt = xp.unique(x.data, return_inverse=True, return_counts=True, axis=axis)
        inv = inv.reshape(-1)
    out = [_new_tensor(xp.asarray(vals))]
    if return_inverse:
        out.append(_new_tensor(xp.asarray(inv).astype(np.int64)))
    if return_counts:
        out.append(_new_tensor(xp.asarray(cnt).astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


AMinMaxResult = collections.namedtuple("aminmax", ["min", "max"])


def aminmax(x, *, dim=None, keepdim=False):
    """(min, max) over `dim` (all elements by default), as torch.aminmax."""
    return AMinMaxResult(amin(x, dim, keepdim), amax(x, dim, keepdim))


def searchsorted(sorted_sequence, values, *, out_int32=False, right=False, side=None, sorter=None):
    """Insertion indices of `values` into the innermost dimension of `sorted_sequence`."""
    xp = _xp_of(sorted_sequence)
    s = sorted_sequence.data
    v = values.data if isinstance(values, Tensor) else xp.asarray(values)
    side = side or ("right" if right else "left")
    if sorter is not None:
        s = xp.take_along_axis(s, sorter.data if isinstance(sorter, Tensor) else sorter, axis=-1)
    if s.ndim == 1:
        r = xp.searchsorted(s, v, side=side)
    else:
        if s.shape[:-1] != v.shape[:-1]:
            raise RuntimeError(f"searchsorted: boundaries {tuple(s.shape)} and input {tuple(v.shape)} must have "
                               "the same leading dimensions")
        s2, v2 = s.reshape(-1, s.shape[-1]), v.reshape(-1, v.shape[-1])
        r = xp.stack([xp.searchsorted(s2[i], v2[i], side=side) for i in range(s2.shape[0])]).reshape(v.shape)
    return _new_tensor(xp.asarray(r).astype(np.int32 if out_int32 else np.int64))


def bucketize(input, boundaries, *, out_int32=False, right=False):
    """Bucket index of each element of `input` for the 1-D `boundaries`, as torch.bucketize
    (right=False: boundaries[i-1] < x <= boundaries[i])."""
    return searchsorted(boundaries, input, out_int32=out_int32, side="right" if right else "left")


def bincount(x, weights=None, minlength=0):
    """Counts of each non-negative integer in the 1-D `x` (weighted sums with `weights`)."""
    if x.data.ndim != 1 or x.data.dtype.kind not in "iu":
        raise RuntimeError(f"bincount: expected a 1-D integer tensor, got {x.data.dtype} of shape {tuple(x.shape)}")
    xp = _xp_of(x)
    w = weights.data if isinstance(weights, Tensor) else weights
    r = xp.bincount(x.data, weights=w, minlength=minlength)
    if w is None:
        return _new_tensor(xp.asarray(r).astype(np.int64))
    return _new_tensor(xp.asarray(r).astype(w.dtype if w.dtype.kind == "f" else np.float64))


def histc(x, bins=100, min=0, max=0):
    """Histogram with `bins` equal bins over [min, max] (the data's range when both are 0)."""
    xp = _xp_of(x)
    d = x.data
    lo, hi = float(min), float(max)
    if lo == hi and d.size:
        lo, hi = float(d.min()), float(d.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    h, _ = xp.histogram(d, bins=bins, range=(lo, hi))
    return _new_tensor(xp.asarray(h).astype(d.dtype if d.dtype.kind == "f" else np.float32))


CumMaxResult = collections.namedtuple("cummax", ["values", "indices"])
CumMinResult = collections.namedtuple("cummin", ["values", "indices"])


def _cum_extreme(x, dim, is_max):
    from .indexing import gather
    xp = _xp_of(x)
    (axis,) = normalize_dims(dim, x.data.ndim, "cummax" if is_max else "cummin")
    if x.data.ndim == 0:
        from .shape import clone
        return clone(x), _new_tensor(xp.zeros((), dtype=np.int64))
    a = xp.moveaxis(x.data, axis, -1)
    n = a.shape[-1]
    # index of the running extreme: the last position where the running extreme is attained (as PyTorch)
    run = _accumulate(xp, "maximum" if is_max else "minimum", a)
    pos = xp.broadcast_to(xp.arange(n), a.shape)
    hit = xp.where((a == run) | (a != a), pos, -1)  # a NaN propagates with its own index
    idx = _accumulate(xp, "maximum", hit).astype(np.int64)
    idx = xp.moveaxis(idx, -1, axis)
    return gather(x, axis, _new_tensor(xp.ascontiguousarray(idx))), _new_tensor(xp.ascontiguousarray(idx))


def _accumulate(xp, name, a):
    """ufunc.accumulate along the last axis (a loop where the array module has no accumulate)."""
    try:
        return getattr(xp, name).accumulate(a, axis=-1)
    except (AttributeError, NotImplementedError, TypeError):
        f = getattr(xp, name)
        out = a.copy()
        for i in range(1, a.shape[-1]):
            out[..., i] = f(out[..., i - 1], a[..., i])
        return out


def cummax(x, dim):
    """Running maximum along `dim` and the index where it was attained, as torch.cummax."""
    return CumMaxResult(*_cum_extreme(x, dim, True))


def cummin(x, dim):
    return CumMinResult(*_cum_extreme(x, dim, False))


def msort(x):
    """Sorted along the first dimension (values only)."""
    return sort(x, 0).values
