"""The op database (PyTorch's OpInfo idea, kept small): one entry per op drives tests/test_ops.py.

An entry gives the op as called by users (`op(*tensors, **kwargs)`), a NumPy reference with the
same signature on arrays, and a sample generator `samples(rng, dtype)` yielding `Sample`s whose
`args` are NumPy arrays (turned into tensors on the device under test) or other values (passed
through). Samples cover broadcasting, keepdim, negative dims, size-1 and empty dims where the op
makes sense. Values are kept away from kinks (0 for abs/relu, ties for max) so that central
differences are valid; ties and kinks have their own tests in test_ops.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import autodiff as ad

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


@dataclass
class Sample:
    args: tuple
    kwargs: dict = field(default_factory=dict)
    diff: tuple | None = None  # indices of args that get requires_grad (default: every float array)
    desc: str = ""


@dataclass
class OpInfo:
    name: str
    op: Callable
    ref: Callable
    samples: Callable
    dtypes: tuple = (F32, F64)
    grad: bool = True          # differentiable (gradcheck)
    gradgrad: bool = True      # double backward supported (gradgradcheck)
    float_out: bool = True     # output dtype equals the (float) input dtype
    rtol32: float = 2e-5
    atol32: float = 2e-6


# ----------------------------------------------------------------------------- value generators
def _away(rng, shape, dtype, lo=0.2, hi=1.5):
    """Values of either sign with |v| in [lo, hi] (away from 0 kinks)."""
    mag = rng.uniform(lo, hi, size=shape)
    sgn = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return np.asarray(mag * sgn).astype(dtype)


def _pos(rng, shape, dtype, lo=0.5, hi=2.0):
    return np.asarray(rng.uniform(lo, hi, size=shape)).astype(dtype)


def _distinct(rng, shape, dtype):
    """Values with distinct entries well apart (no near-ties): a shuffled grid plus small noise."""
    n = int(np.prod(shape))
    v = rng.permutation(n) * 0.37 - n * 0.18
    return np.asarray(v.reshape(shape)).astype(dtype)


def _distinct_b(rng, shape, dtype):
    """Like _distinct but offset by 0.1 so that it never ties with a _distinct array."""
    return np.asarray(_distinct(rng, shape, np.float64) + 0.1).astype(dtype)


def _unif(rng, shape, dtype, lo=-1.5, hi=1.5):
    return np.asarray(rng.uniform(lo, hi, size=shape)).astype(dtype)


# ----------------------------------------------------------------------------- sample sets
BINARY_SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((3,), (2, 1, 3)), ((), (2, 2)),
                 ((0, 3), (3,)), ((1,), ())]


def binary_samples(gen_a=_away, gen_b=_away, scalars=(2.5, -3)):
    def samples(rng, dtype):
        for sa, sb in BINARY_SHAPES:
            yield Sample((gen_a(rng, sa, dtype), gen_b(rng, sb, dtype)), desc=f"{sa}x{sb}")
        for s in scalars:
            yield Sample((gen_a(rng, (2, 3), dtype), s), desc=f"tensor-op-scalar {s}")
            yield Sample((s, gen_b(rng, (3,), dtype)), desc=f"scalar-op-tensor {s}")
    return samples


UNARY_SHAPES = [(2, 3), (4,), (), (1, 3), (0, 2)]


def unary_samples(gen=_unif, **kwargs):
    def samples(rng, dtype):
        for s in UNARY_SHAPES:
            yield Sample((gen(rng, s, dtype),), dict(kwargs), desc=str(s))
    return samples


REDUCE_CASES = [((2, 3, 4), None, False), ((2, 3, 4), 1, False), ((2, 3, 4), -1, True), ((2, 3, 4), (0, 2), False),
                ((2, 3, 4), (-1, 0), True), ((3,), 0, False), ((), None, False), ((1, 4), 0, True),
                ((2, 0, 3), 1, False), ((2, 0, 3), 2, True)]


def reduce_samples(gen=_unif, dim_kw="dim", empty=True, single_dim=False, extra=None):
    def samples(rng, dtype):
        for shape, dim, keep in REDUCE_CASES:
            if not empty and 0 in shape:
                continue
            if single_dim and isinstance(dim, tuple):
                continue
            kw = {"keepdim": keep}
            if dim is not None:
                kw[dim_kw] = dim
            if extra:
                kw.update(extra)
            yield Sample((gen(rng, shape, dtype),), kw, desc=f"{shape} dim={dim} keepdim={keep}")
    return samples


# ----------------------------------------------------------------------------- NumPy references
def _np_erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype) if x.size else x.copy()


def _np_sigmoid(x):
    return (1 / (1 + np.exp(-x.astype(np.float64)))).astype(x.dtype)


def _axes(dim):
    return dim if dim is None or isinstance(dim, int) else tuple(dim)


def _np_var(x, dim=None, keepdim=False, correction=1, unbiased=None):
    if unbiased is not None:
        correction = 1 if unbiased else 0
    return np.var(x, axis=_axes(dim), ddof=correction, keepdims=keepdim).astype(x.dtype)


def _np_norm(x, p=2, dim=None, keepdim=False):
    a = np.abs(x.astype(np.float64))
    ax = _axes(dim)
    if p in (2, "fro"):
        r = np.sqrt((a * a).sum(axis=ax, keepdims=keepdim))
    elif p == math.inf:
        r = a.max(axis=ax, keepdims=keepdim)
    elif p == -math.inf:
        r = a.min(axis=ax, keepdims=keepdim)
    elif p == 0:
        r = (a != 0).sum(axis=ax, keepdims=keepdim)
    else:
        r = (a ** p).sum(axis=ax, keepdims=keepdim) ** (1 / p)
    return np.asarray(r).astype(x.dtype)


def _np_logsumexp(x, dim, keepdim=False):
    x64 = x.astype(np.float64)
    m = x64.max(axis=_axes(dim), keepdims=True) if x.size else np.zeros(())
    r = np.log(np.exp(x64 - m).sum(axis=_axes(dim), keepdims=True)) + m
    if not keepdim:
        r = np.squeeze(r, axis=_axes(dim))
    return r.astype(x.dtype)


def _np_minmax(fn, argfn):
    def ref(x, dim=None, keepdim=False):
        if dim is None:
            return fn(x)
        return fn(x, axis=dim, keepdims=keepdim), argfn(x, axis=dim, keepdims=keepdim).astype(np.int64)
    return ref


def _np_pad(x, pad, mode="constant", value=0.0):
    nd = x.ndim
    w = [(0, 0)] * nd
    for i in range(len(pad) // 2):
        w[nd - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode == "constant":
        crop = tuple(slice(-lo if lo < 0 else 0, s + hi if hi < 0 else s) for (lo, hi), s in zip(w, x.shape))
        x = x[crop]
        w = [(max(lo, 0), max(hi, 0)) for lo, hi in w]
        return np.pad(x, w, mode="constant", constant_values=value)
    return np.pad(x, w, mode={"replicate": "edge", "circular": "wrap", "reflect": "reflect"}[mode])


def _np_gelu(x, approximate="none"):
    x64 = x.astype(np.float64)
    if approximate == "tanh":
        r = 0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64 ** 3)))
    else:
        r = 0.5 * x64 * (1 + _np_erf(x64 / math.sqrt(2)))
    return r.astype(x.dtype)


def _np_softplus(x, beta=1.0, threshold=20.0):
    x64 = x.astype(np.float64)
    r = np.where(x64 * beta > threshold, x64, np.log1p(np.exp(x64 * beta)) / beta)
    return r.astype(x.dtype)


def _np_elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype)


def _np_where(c, a, b):
    r = np.where(c, a, b)
    dt = a.dtype if isinstance(a, np.ndarray) else b.dtype
    return r.astype(dt)


def _np_split(x, size, dim=0):
    n = x.shape[dim]
    if isinstance(size, int):
        cuts = list(range(size, n, size))
    else:
        cuts = list(np.cumsum(size)[:-1])
    return tuple(np.split(x, cuts, axis=dim))


def _np_chunk(x, chunks, dim=0):
    n = x.shape[dim]
    size = -(-n // chunks)
    return _np_split(x, size, dim)


def _np_repeat(x, *reps):
    return np.tile(x, reps)


def _np_matmul(a, b):
    return np.matmul(a, b)


def _np_squeeze(x, dim=None):
    if dim is None:
        return np.squeeze(x)
    dims = (dim,) if isinstance(dim, int) else dim
    dims = tuple(d for d in dims if x.shape[d] == 1)
    return np.squeeze(x, axis=dims) if dims else x


def _cast_like_scalar(fn):
    """Reference for tensor-op-scalar: NumPy 2 already keeps the array dtype with Python scalars
    (NEP 50), matching PyTorch; cast anyway for 0-d edge cases."""
    def ref(a, b):
        r = fn(a, b)
        arrs = [x for x in (a, b) if isinstance(x, np.ndarray)]
        dt = np.result_type(*arrs) if len(arrs) == 2 else arrs[0].dtype
        return np.asarray(r).astype(dt)
    return ref


# ----------------------------------------------------------------------------- samples for specific ops
def pow_samples(rng, dtype):
    for sa, sb in [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1), (1, 3))]:
        yield Sample((_pos(rng, sa, dtype), _unif(rng, sb, dtype)), desc=f"{sa}**{sb}")
    for e in (2, 3, 0.5, -1.5, 1, 0):
        yield Sample((_pos(rng, (2, 3), dtype), e), desc=f"tensor**{e}")
    yield Sample((_away(rng, (2, 3), dtype), 3), desc="negative base ** 3")
    yield Sample((2.0, _unif(rng, (3,), dtype)), desc="2**tensor")


def where_samples(rng, dtype):
    c = rng.random((2, 3)) < 0.5
    yield Sample((c, _unif(rng, (2, 3), dtype), _unif(rng, (2, 3), dtype)), desc="same shape")
    yield Sample((c, _unif(rng, (3,), dtype), _unif(rng, (2, 1), dtype)), desc="broadcast values")
    yield Sample((rng.random((3,)) < 0.5, _unif(rng, (2, 3), dtype), _unif(rng, (2, 3), dtype)), desc="broadcast cond")
    yield Sample((c, _unif(rng, (2, 3), dtype), 0.0), desc="scalar other")
    yield Sample((c, -1.0, _unif(rng, (2, 3), dtype)), desc="scalar input")


def clamp_samples(rng, dtype):
    x = rng.uniform(-2, 2, (3, 4)).astype(dtype)
    x[np.abs(np.abs(x) - 0.5) < 0.05] = 0.8  # away from the bounds
    yield Sample((x,), {"min": -0.5, "max": 0.5}, desc="both")
    yield Sample((x,), {"min": -0.5}, desc="min")
    yield Sample((x,), {"max": 0.5}, desc="max")
    yield Sample((x[:0],), {"min": 0.0}, desc="empty")


def _np_getitem_torch(x, key):
    """NumPy indexing with PyTorch's rule for integers mixed with index arrays (see
    autodiff.ops.indexing.getitem): the integers select first."""
    key = key if isinstance(key, tuple) else (key,)
    has_array = any(isinstance(k, (np.ndarray, list)) for k in key)
    if not has_array or not any(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in key):
        return np.asarray(x[key])
    basic, rest = [], []
    for k in key:
        if isinstance(k, (int, np.integer)):
            basic.append(k)
        elif k is None or isinstance(k, slice):
            basic.append(k)
            rest.append(slice(None))
        elif k is Ellipsis:
            basic.append(k)
            rest.append(k)
        else:
            k = np.asarray(k)
            basic.extend([slice(None)] * (k.ndim if k.dtype == np.bool_ else 1))
            rest.append(k)
    return np.asarray(x[tuple(basic)][tuple(rest)])


def getitem_samples(rng, dtype):
    x = _unif(rng, (4, 3, 5), dtype)
    keys = [
        1, -1, slice(1, 3), (slice(None), 2), (slice(None, None, 2), slice(None), slice(1, None, 3)),
        (None, 1), (Ellipsis, 2), (1, Ellipsis, None), (Ellipsis,), (slice(None), None, Ellipsis, 0),
        (np.array([0, 2, 0, 3]),), (np.array([[0, 1], [1, 1]]), slice(None), 2),
        (slice(None), np.array([2, 0, 2])),
        (np.array([0, 3]), np.array([1, 1])), (np.array([0, 3]), slice(None), np.array([4, 4])),
        (np.array([True, False, True, True]),), (slice(None), np.array([False, True, True])),
        (x[..., 0] > 0,), (x > 0,), (1, np.array([2, 2, 0])), (Ellipsis, np.array([1, 1])),
        (0, slice(None), np.array([1, 1, 4])), (None, 1, None, np.array([0, 2]), None),
        (np.array([0, 2]), 1, slice(None, 3)),
        (slice(5, 10),), (np.array([], dtype=np.int64),), (None, Ellipsis, None),
        (np.array(2),), (np.int64(1), slice(None)),
    ]
    for k in keys:
        yield Sample((x,), {"key": k}, desc=repr(k)[:60])
    yield Sample((_unif(rng, (), dtype),), {"key": None}, desc="0-d [None]")
    yield Sample((_unif(rng, (), dtype),), {"key": Ellipsis}, desc="0-d [...]")


def einsum_samples(rng, dtype):
    cases = [("ij,jk->ik", [(2, 3), (3, 4)]), ("ij->ji", [(2, 3)]), ("ij->", [(2, 3)]), ("i,i->", [(4,), (4,)]),
             ("i,j->ij", [(2,), (3,)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]), ("...ij,...jk", [(2, 2, 3), (3, 2)]),
             ("ij,ij->i", [(2, 3), (2, 3)]), ("ijk->kj", [(2, 3, 2)]), ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]),
             ("ij,j", [(2, 3), (3,)]), ("ij,kj->ik", [(2, 1), (3, 4)])]
    for eq, shapes in cases:
        yield Sample(tuple(_unif(rng, s, dtype) for s in shapes), {"eq": eq}, desc=eq)


def matmul_samples(rng, dtype):
    for sa, sb in [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((2, 2, 3), (3, 4)),
                   ((3,), (2, 3, 4)), ((2, 1, 2, 3), (3, 3, 2)), ((2, 2, 3), (3, 2)), ((0, 3), (3, 2)),
                   ((2, 0), (0, 3))]:
        yield Sample((_unif(rng, sa, dtype), _unif(rng, sb, dtype)), desc=f"{sa}@{sb}")


def cat_samples(rng, dtype):
    yield Sample((_unif(rng, (2, 3), dtype), _unif(rng, (1, 3), dtype)), {"dim": 0}, desc="dim0")
    yield Sample((_unif(rng, (2, 3), dtype), _unif(rng, (2, 1), dtype), _unif(rng, (2, 2), dtype)), {"dim": -1},
                 desc="dim-1 three")
    yield Sample((_unif(rng, (2, 3), dtype), _unif(rng, (0, 3), dtype)), {"dim": 0}, desc="empty part")
    yield Sample((_unif(rng, (3,), dtype),), {"dim": 0}, desc="single")


def stack_samples(rng, dtype):
    yield Sample((_unif(rng, (2, 3), dtype), _unif(rng, (2, 3), dtype)), {"dim": 0}, desc="dim0")
    yield Sample((_unif(rng, (2, 3), dtype), _unif(rng, (2, 3), dtype), _unif(rng, (2, 3), dtype)), {"dim": -1},
                 desc="dim-1")
    yield Sample((_unif(rng, (), dtype), _unif(rng, (), dtype)), {"dim": 0}, desc="0-d")
    yield Sample((_unif(rng, (2, 3), dtype), _unif(rng, (2, 3), dtype)), {"dim": 1}, desc="dim1")


def pad_samples(rng, dtype):
    x = _unif(rng, (2, 3, 4), dtype)
    yield Sample((x,), {"pad": (1, 2)}, desc="last dim")
    yield Sample((x,), {"pad": (1, 0, 0, 2)}, desc="two dims")
    yield Sample((x,), {"pad": (1, 1, 1, 1, 1, 1), "value": 2.5}, desc="all dims value")
    yield Sample((x,), {"pad": (-1, 1)}, desc="negative crops")
    yield Sample((x,), {"pad": (2, 1), "mode": "reflect"}, desc="reflect")
    yield Sample((x,), {"pad": (2, 1, 1, 1), "mode": "replicate"}, desc="replicate")
    yield Sample((x,), {"pad": (2, 3), "mode": "circular"}, desc="circular")


def _shape_samples(cases):
    def samples(rng, dtype):
        for shape, kw in cases:
            yield Sample((_unif(rng, shape, dtype),), dict(kw), desc=f"{shape} {kw}")
    return samples


def maxmin_dim_samples(rng, dtype):
    for shape, dim, keep in [((3, 4), 1, False), ((3, 4), 0, True), ((2, 3, 4), -1, False), ((5,), 0, False),
                             ((2, 3, 4), -2, True), ((), 0, False)]:
        yield Sample((_distinct(rng, shape, dtype),), {"dim": dim, "keepdim": keep}, desc=f"{shape} dim={dim}")


def maxmin_all_samples(rng, dtype):
    for shape in [(3, 4), (5,), (), (2, 1, 3)]:
        yield Sample((_distinct(rng, shape, dtype),), desc=str(shape))


def _distinct_reduce(rng, shape, dtype):
    return _distinct(rng, shape, dtype) if int(np.prod(shape)) else np.zeros(shape, dtype)


def compare_samples(rng, dtype):
    a = np.round(_unif(rng, (2, 3), dtype), 1)
    yield Sample((a, a.copy()), desc="equal")
    yield Sample((a, np.round(_unif(rng, (3,), dtype), 1)), desc="broadcast")
    yield Sample((a, 0.0), desc="scalar")
    yield Sample((a, a[0].copy()), desc="row")


def logical_samples(rng, dtype):
    yield Sample((rng.random((2, 3)) < 0.5, rng.random((2, 3)) < 0.5), desc="bool")
    yield Sample((_unif(rng, (2, 3), dtype), (rng.random((3,)) < 0.5)), desc="float/bool bcast")
    yield Sample((np.where(rng.random((2, 3)) < 0.5, 0.0, 1.5).astype(dtype), np.zeros((2, 3), dtype)), desc="zeros")


def _np_sort(x, dim, descending):
    idx = np.argsort(-x if descending else x, axis=dim, kind="stable")
    return np.take_along_axis(x, idx, dim), idx.astype(np.int64)


def _np_topk(x, k, dim, largest):
    v, i = _np_sort(x, dim, largest)
    sl = [slice(None)] * x.ndim
    sl[dim] = slice(0, k)
    return v[tuple(sl)], i[tuple(sl)]


def _np_scatter_add(x, idx, src, dim):
    out = x.copy()
    grids = list(np.meshgrid(*[np.arange(s) for s in idx.shape], indexing="ij"))
    grids[dim] = idx
    np.add.at(out, tuple(grids), src[tuple(slice(0, s) for s in idx.shape)])
    return out


def _np_unflatten(x, dim, sizes):
    d = dim % x.ndim
    return x.reshape(x.shape[:d] + tuple(sizes) + x.shape[d + 1:])


def _remainder_samples(rng, dtype):
    for sa, sb in (((2, 3), (2, 3)), ((2, 3), (3,))):  # sa is the broadcast shape
        b = _away(rng, sb, dtype, 0.5, 1.5)
        q = rng.integers(-3, 3, size=sa) + rng.uniform(0.2, 0.8, sa)
        a = np.asarray(q * b).astype(dtype)  # a / b stays away from integers: no floor jumps
        yield Sample((a, b), desc=f"{sa}%{sb}")


def _index_samples(rng, dtype):
    x = _unif(rng, (3, 4), dtype)
    yield Sample((x, np.array([[0, 2, 1, 0], [2, 2, 0, 1]])), {"dim": 0}, desc="dim0 repeats")
    yield Sample((x, np.array([[3, 0], [1, 1], [2, 3]])), {"dim": 1}, desc="dim1 narrower")


def _bool_ref(fn):
    return lambda *a: np.asarray(fn(*a))


# ----------------------------------------------------------------------------- the table
def _O(name, op, ref, samples, **kw):
    return OpInfo(name, op, ref, samples, **kw)


E = ad  # the public functional API
OPS: list[OpInfo] = [
    # arithmetic
    _O("add", lambda a, b: a + b if isinstance(a, ad.Tensor) else b.__radd__(a), _cast_like_scalar(np.add),
       binary_samples()),
    _O("add_alpha", lambda a, b: ad.add(a, b, alpha=2), lambda a, b: (a + 2 * b).astype(a.dtype),
       lambda rng, dt: (Sample((_unif(rng, s1, dt), _unif(rng, s2, dt))) for s1, s2 in BINARY_SHAPES[:4])),
    _O("sub", lambda a, b: a - b, _cast_like_scalar(np.subtract), binary_samples()),
    _O("mul", lambda a, b: a * b, _cast_like_scalar(np.multiply), binary_samples()),
    _O("div", lambda a, b: a / b, _cast_like_scalar(np.divide), binary_samples(gen_b=_away)),
    _O("pow", lambda a, b: a ** b, lambda a, b: np.asarray(np.power(a, b)).astype(
        a.dtype if isinstance(a, np.ndarray) else b.dtype), pow_samples),
    _O("neg", lambda a: -a, np.negative, unary_samples()),
    _O("matmul", lambda a, b: a @ b, _np_matmul, matmul_samples, rtol32=1e-4, atol32=1e-5),
    # unary math
    _O("abs", ad.abs, np.abs, unary_samples(_away)),
    _O("exp", ad.exp, np.exp, unary_samples()),
    _O("log", ad.log, np.log, unary_samples(_pos)),
    _O("log1p", ad.log1p, np.log1p, unary_samples(lambda r, s, d: _unif(r, s, d, -0.5, 2.0))),
    _O("expm1", ad.expm1, np.expm1, unary_samples()),
    _O("sqrt", ad.sqrt, np.sqrt, unary_samples(_pos)),
    _O("rsqrt", ad.rsqrt, lambda x: (1 / np.sqrt(x)).astype(x.dtype), unary_samples(_pos)),
    _O("square", ad.square, np.square, unary_samples()),
    _O("reciprocal", ad.reciprocal, lambda x: (1 / x).astype(x.dtype), unary_samples(_away)),
    _O("sin", ad.sin, np.sin, unary_samples()),
    _O("cos", ad.cos, np.cos, unary_samples()),
    _O("tanh", ad.tanh, np.tanh, unary_samples()),
    _O("sigmoid", ad.sigmoid, _np_sigmoid, unary_samples(lambda r, s, d: _unif(r, s, d, -4, 4))),
    _O("relu", ad.relu, lambda x: np.maximum(x, 0), unary_samples(_away)),
    _O("leaky_relu", lambda x: ad.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x).astype(x.dtype),
       unary_samples(_away)),
    _O("elu", lambda x: ad.elu(x, alpha=0.7), lambda x: _np_elu(x, 0.7), unary_samples(_away)),
    _O("gelu", ad.gelu, _np_gelu, unary_samples(lambda r, s, d: _unif(r, s, d, -3, 3))),
    _O("gelu_tanh", lambda x: ad.gelu(x, approximate="tanh"), lambda x: _np_gelu(x, "tanh"),
       unary_samples(lambda r, s, d: _unif(r, s, d, -3, 3))),
    _O("silu", ad.silu, lambda x: (x * _np_sigmoid(x)).astype(x.dtype), unary_samples()),
    _O("softplus", ad.softplus, _np_softplus, unary_samples(lambda r, s, d: _unif(r, s, d, -3, 3))),
    _O("softplus_beta", lambda x: ad.softplus(x, beta=2.0, threshold=3.0), lambda x: _np_softplus(x, 2.0, 3.0),
       unary_samples(lambda r, s, d: _away(r, s, d, 0.1, 2.5))),
    _O("sign", ad.sign, np.sign, unary_samples(_away), gradgrad=True),
    _O("erf", ad.erf, _np_erf, unary_samples()),
    _O("clamp", lambda x, **kw: ad.clamp(x, **kw), lambda x, min=None, max=None: np.clip(x, min, max),
       clamp_samples),
    _O("clip_method", lambda x, **kw: x.clip(**kw), lambda x, min=None, max=None: np.clip(x, min, max),
       clamp_samples),
    _O("maximum", ad.maximum, lambda a, b: np.maximum(a, b), binary_samples(_distinct, _distinct_b, scalars=())),
    _O("minimum", ad.minimum, lambda a, b: np.minimum(a, b), binary_samples(_distinct, _distinct_b, scalars=())),
    _O("where", lambda c, a, b: ad.where(ad.tensor(c), a, b), _np_where, where_samples),
    # comparisons / logical (no grad, bool output)
    *[_O(n, getattr(ad, n), _bool_ref(f), compare_samples, grad=False, gradgrad=False, float_out=False)
      for n, f in [("eq", np.equal), ("ne", np.not_equal), ("lt", np.less), ("le", np.less_equal),
                   ("gt", np.greater), ("ge", np.greater_equal)]],
    _O("eq_operator", lambda a, b: a == b, _bool_ref(np.equal), compare_samples, grad=False, gradgrad=False,
       float_out=False),
    _O("lt_operator", lambda a, b: a < b, _bool_ref(np.less), compare_samples, grad=False, gradgrad=False,
       float_out=False),
    _O("logical_and", ad.logical_and, _bool_ref(np.logical_and), logical_samples, grad=False, gradgrad=False,
       float_out=False),
    _O("logical_or", ad.logical_or, _bool_ref(np.logical_or), logical_samples, grad=False, gradgrad=False,
       float_out=False),
    _O("logical_not", ad.logical_not, _bool_ref(np.logical_not), unary_samples(), grad=False, gradgrad=False,
       float_out=False),
    # reductions
    _O("sum", lambda x, **kw: ad.sum(x, **kw), lambda x, dim=None, keepdim=False: np.asarray(
        np.sum(x, axis=_axes(dim), keepdims=keepdim)).astype(x.dtype), reduce_samples()),
    _O("mean", lambda x, **kw: x.mean(**kw), lambda x, dim=None, keepdim=False: np.asarray(
        np.mean(x, axis=_axes(dim), keepdims=keepdim)).astype(x.dtype), reduce_samples(empty=False)),
    _O("prod", lambda x, **kw: ad.prod(x, **kw), lambda x, dim=None, keepdim=False: np.asarray(
        np.prod(x, axis=dim, keepdims=keepdim)).astype(x.dtype), reduce_samples(_away, single_dim=True),
       gradgrad=False),
    _O("amax", lambda x, **kw: ad.amax(x, **kw), lambda x, dim=None, keepdim=False: np.asarray(
        np.max(x, axis=_axes(dim), keepdims=keepdim)), reduce_samples(_distinct_reduce, empty=False)),
    _O("amin", lambda x, **kw: ad.amin(x, **kw), lambda x, dim=None, keepdim=False: np.asarray(
        np.min(x, axis=_axes(dim), keepdims=keepdim)), reduce_samples(_distinct_reduce, empty=False)),
    _O("max_dim", lambda x, **kw: ad.max(x, **kw), _np_minmax(np.max, np.argmax), maxmin_dim_samples),
    _O("min_dim", lambda x, **kw: x.min(**kw), _np_minmax(np.min, np.argmin), maxmin_dim_samples),
    _O("max_all", lambda x: x.max(), lambda x: np.asarray(np.max(x)), maxmin_all_samples),
    _O("min_all", ad.min, lambda x: np.asarray(np.min(x)), maxmin_all_samples),
    _O("var", lambda x, **kw: ad.var(x, **kw), _np_var, reduce_samples(empty=False)),
    _O("var_correction0", lambda x, **kw: x.var(**kw), lambda x, **kw: _np_var(x, **kw),
       reduce_samples(empty=False, extra={"correction": 0})),
    _O("var_unbiased_false", lambda x, **kw: x.var(**kw), lambda x, **kw: _np_var(x, **kw),
       reduce_samples(empty=False, extra={"unbiased": False})),
    _O("std", lambda x, **kw: ad.std(x, **kw), lambda x, **kw: np.sqrt(_np_var(x, **kw)),
       reduce_samples(empty=False)),
    _O("std_correction2", lambda x, **kw: x.std(**kw), lambda x, **kw: np.sqrt(_np_var(x, **kw)),
       _shape_samples([((3, 4), {"dim": 1, "correction": 2}), ((5,), {"correction": 2, "keepdim": True})])),
    _O("logsumexp", lambda x, **kw: ad.logsumexp(x, **kw), _np_logsumexp,
       lambda rng, dt: (s for s in reduce_samples()(rng, dt) if "dim" in s.kwargs)),
    _O("norm", lambda x, **kw: ad.norm(x, **kw), lambda x, **kw: _np_norm(x, **kw), reduce_samples(_away)),
    _O("norm_p", lambda x, **kw: x.norm(**kw), lambda x, **kw: _np_norm(x, **kw),
       _shape_samples([((3, 4), {"p": 1}), ((3, 4), {"p": 1, "dim": 1}), ((3, 4), {"p": 3, "dim": 0}),
                       ((2, 3), {"p": math.inf}), ((2, 3), {"p": -math.inf, "dim": -1}),
                       ((2, 3), {"p": 0, "dim": 1, "keepdim": True})])),
    _O("argmax", lambda x, **kw: ad.argmax(x, **kw), lambda x, dim=None, keepdim=False: np.asarray(
        np.argmax(x, axis=dim, keepdims=keepdim)), reduce_samples(_distinct_reduce, empty=False, single_dim=True),
       grad=False, gradgrad=False, float_out=False),
    _O("argmin", lambda x, **kw: x.argmin(**kw), lambda x, dim=None, keepdim=False: np.asarray(
        np.argmin(x, axis=dim, keepdims=keepdim)), reduce_samples(_distinct_reduce, empty=False, single_dim=True),
       grad=False, gradgrad=False, float_out=False),
    _O("all", lambda x, **kw: ad.all(x, **kw), lambda x, dim=None, keepdim=False: np.asarray(
        np.all(x, axis=_axes(dim), keepdims=keepdim)),
       reduce_samples(lambda r, s, d: np.where(r.random(s) < 0.8, 1.0, 0.0).astype(d)),
       grad=False, gradgrad=False, float_out=False),
    _O("any", lambda x, **kw: x.any(**kw), lambda x, dim=None, keepdim=False: np.asarray(
        np.any(x, axis=_axes(dim), keepdims=keepdim)),
       reduce_samples(lambda r, s, d: np.where(r.random(s) < 0.2, 1.0, 0.0).astype(d)),
       grad=False, gradgrad=False, float_out=False),
    # shape
    _O("reshape", lambda x, **kw: x.reshape(kw["shape"]), lambda x, shape: x.reshape(shape),
       _shape_samples([((2, 3), {"shape": (3, 2)}), ((2, 3), {"shape": (-1,)}), ((2, 3, 4), {"shape": (4, -1)}),
                       ((), {"shape": (1, 1)}), ((0, 3), {"shape": (3, 0)}), ((6,), {"shape": (2, 3)})])),
    _O("view", lambda x, **kw: x.view(*kw["shape"]), lambda x, shape: x.reshape(shape),
       _shape_samples([((2, 3), {"shape": (3, 2)}), ((2, 3), {"shape": (-1,)}), ((4,), {"shape": (2, 1, 2)})])),
    _O("flatten", lambda x, **kw: ad.flatten(x, **kw),
       lambda x, start_dim=0, end_dim=-1: x.reshape(
           x.shape[:start_dim % max(x.ndim, 1)] + (-1,) + x.shape[end_dim % max(x.ndim, 1) + 1:]) if x.ndim
       else x.reshape(1),
       _shape_samples([((2, 3, 4), {}), ((2, 3, 4), {"start_dim": 1}), ((2, 3, 4), {"end_dim": -2}),
                       ((), {}), ((2, 0, 3), {"start_dim": 1})])),
    _O("squeeze", lambda x, **kw: x.squeeze(**kw), _np_squeeze,
       _shape_samples([((1, 3, 1), {}), ((1, 3, 1), {"dim": 0}), ((1, 3, 1), {"dim": -1}), ((2, 3), {"dim": 1}),
                       ((1, 3, 1), {"dim": (0, 2)}), ((), {})])),
    _O("unsqueeze", lambda x, **kw: x.unsqueeze(kw["dim"]), lambda x, dim: np.expand_dims(x, dim),
       _shape_samples([((2, 3), {"dim": 0}), ((2, 3), {"dim": 2}), ((2, 3), {"dim": -1}), ((), {"dim": 0})])),
    _O("transpose", lambda x, **kw: ad.transpose(x, *kw["dims"]), lambda x, dims: np.swapaxes(x, *dims),
       _shape_samples([((2, 3), {"dims": (0, 1)}), ((2, 3, 4), {"dims": (-1, 0)}), ((2, 3, 4), {"dims": (1, 1)})])),
    _O("T", lambda x: x.T, lambda x: x.T, unary_samples()),
    _O("permute", lambda x, **kw: x.permute(*kw["dims"]), lambda x, dims: np.transpose(x, dims),
       _shape_samples([((2, 3, 4), {"dims": (2, 0, 1)}), ((2, 3, 4), {"dims": (-1, -2, -3)}), ((3,), {"dims": (0,)})])),
    _O("expand", lambda x, **kw: x.expand(*kw["shape"]),
       lambda x, shape: np.broadcast_to(x, tuple(s if s != -1 else x.shape[i - (len(shape) - x.ndim)]
                                                 for i, s in enumerate(shape))).copy(),
       _shape_samples([((1, 3), {"shape": (2, 3)}), ((3,), {"shape": (2, 2, 3)}), ((2, 1), {"shape": (-1, 4)}),
                       ((), {"shape": (3,)})])),
    _O("broadcast_to", lambda x, **kw: ad.broadcast_to(x, kw["shape"]),
       lambda x, shape: np.broadcast_to(x, shape).copy(),
       _shape_samples([((1, 3), {"shape": (2, 3)}), ((3, 1), {"shape": (2, 3, 4)})])),
    _O("repeat", lambda x, **kw: x.repeat(*kw["reps"]), lambda x, reps: _np_repeat(x, *reps),
       _shape_samples([((2, 3), {"reps": (2, 1)}), ((2, 3), {"reps": (1, 2, 2)}), ((3,), {"reps": (2,)}),
                       ((2, 1), {"reps": (1, 3)})])),
    _O("contiguous", lambda x: x.T.contiguous(), lambda x: np.array(x.T, order="C"), unary_samples()),
    _O("clone", ad.clone, np.copy, unary_samples()),
    _O("cat", lambda *ts, dim: ad.cat(ts, dim=dim), lambda *xs, dim: np.concatenate(xs, axis=dim), cat_samples),
    _O("stack", lambda *ts, dim: ad.stack(ts, dim=dim), lambda *xs, dim: np.stack(xs, axis=dim), stack_samples),
    _O("split", lambda x, **kw: ad.split(x, kw["size"], kw.get("dim", 0)),
       lambda x, size, dim=0: _np_split(x, size, dim),
       _shape_samples([((5, 2), {"size": 2}), ((2, 6), {"size": [1, 3, 2], "dim": -1}), ((4,), {"size": 4})])),
    _O("chunk", lambda x, **kw: x.chunk(kw["chunks"], kw.get("dim", 0)),
       lambda x, chunks, dim=0: _np_chunk(x, chunks, dim),
       _shape_samples([((5, 2), {"chunks": 2}), ((2, 6), {"chunks": 3, "dim": 1}), ((3,), {"chunks": 5})])),
    _O("getitem", lambda x, key: x[key], _np_getitem_torch, getitem_samples),
    _O("getitem_tensor_index", lambda x, key: x[ad.tensor(key)], lambda x, key: x[key],
       lambda rng, dt: (Sample((_unif(rng, (4, 3), dt),), {"key": k}) for k in
                        (np.array([3, 0, 3, 3]), np.array([[1, 2], [0, 0]]), np.array([True, False, True, False])))),
    _O("pad", lambda x, **kw: ad.pad(x, **kw), _np_pad, pad_samples),
    _O("flip", lambda x, **kw: ad.flip(x, kw["dims"]), lambda x, dims: np.flip(x, dims).copy(),
       _shape_samples([((2, 3), {"dims": (0,)}), ((2, 3, 4), {"dims": (-1, 0)}), ((3,), {"dims": 0})])),
    _O("tril", lambda x, **kw: ad.tril(x, **kw), lambda x, diagonal=0: np.tril(x, diagonal),
       _shape_samples([((3, 4), {}), ((2, 3, 3), {"diagonal": 1}), ((4, 3), {"diagonal": -1})])),
    _O("triu", lambda x, **kw: x.triu(**kw), lambda x, diagonal=0: np.triu(x, diagonal),
       _shape_samples([((3, 4), {}), ((2, 3, 3), {"diagonal": -1})])),
    _O("sort", lambda x, **kw: ad.sort(x, **kw), lambda x, dim=-1, descending=False: _np_sort(x, dim, descending),
       lambda rng, dt: (Sample((_distinct(rng, s, dt),), kw) for s, kw in
                        (((3, 4), {}), ((3, 4), {"dim": 0, "descending": True}), ((5,), {"descending": True})))),
    _O("topk", lambda x, **kw: x.topk(**kw), lambda x, k, dim=-1, largest=True: _np_topk(x, k, dim, largest),
       lambda rng, dt: (Sample((_distinct(rng, s, dt),), kw) for s, kw in
                        (((3, 4), {"k": 2}), ((3, 4), {"k": 1, "dim": 0, "largest": False}), ((5,), {"k": 5})))),
    _O("cumsum", lambda x, **kw: x.cumsum(**kw), lambda x, dim: np.cumsum(x, axis=dim).astype(x.dtype),
       _shape_samples([((3, 4), {"dim": 1}), ((3, 4), {"dim": 0}), ((5,), {"dim": -1})])),
    _O("remainder", lambda a, b: a % b, lambda a, b: np.remainder(a, b), _remainder_samples),
    _O("gather", lambda x, idx, dim: x.gather(dim, idx),
       lambda x, idx, dim: np.take_along_axis(x[tuple(slice(0, s) if d != dim else slice(None)
                                                      for d, s in enumerate(idx.shape))], idx, dim),
       _index_samples),
    _O("take_along_dim", lambda x, idx, dim: ad.take_along_dim(x, idx, dim),
       lambda x, idx, dim: np.take_along_axis(x[tuple(slice(0, s) if d != dim else slice(None)
                                                      for d, s in enumerate(idx.shape))], idx, dim),
       lambda rng, dt: (s for s in _index_samples(rng, dt) if s.desc == "dim0 repeats")),
    _O("scatter_add", lambda x, idx, src, dim: ad.scatter_add(x, dim, idx, src), _np_scatter_add,
       lambda rng, dt: (Sample((_unif(rng, (3, 4), dt), np.array([[0, 2, 1, 0], [2, 2, 0, 1]]),
                                _unif(rng, (2, 4), dt)), {"dim": 0}),
                        Sample((_unif(rng, (3, 4), dt), np.array([[3, 3], [0, 1], [2, 2]]),
                                _unif(rng, (3, 3), dt)), {"dim": 1}))),
    _O("index_select", lambda x, idx, dim: ad.index_select(x, dim, idx),
       lambda x, idx, dim: np.take(x, idx, axis=dim),
       lambda rng, dt: (Sample((_unif(rng, (3, 4), dt), np.array([2, 0, 2])), {"dim": 0}),
                        Sample((_unif(rng, (3, 4), dt), np.array([1, 3])), {"dim": -1}))),
    _O("masked_fill", lambda x, m, value: x.masked_fill(m, value),
       lambda x, m, value: np.where(m, np.asarray(value, x.dtype), x),
       lambda rng, dt: (Sample((_unif(rng, (3, 4), dt), rng.random((3, 4)) < 0.5), {"value": -2.0}),
                        Sample((_unif(rng, (3, 4), dt), rng.random((4,)) < 0.5), {"value": 0.5}))),
    _O("narrow", lambda x, **kw: x.narrow(**kw),
       lambda x, dim, start, length: np.take(x, np.arange(start, start + length), axis=dim),
       _shape_samples([((4, 3), {"dim": 0, "start": 1, "length": 2}), ((2, 5), {"dim": -1, "start": 0, "length": 5})])),
    _O("unbind", lambda x, **kw: x.unbind(**kw), lambda x, dim=0: tuple(np.moveaxis(x, dim, 0)),
       _shape_samples([((3, 2), {}), ((2, 3, 2), {"dim": 1})])),
    _O("movedim", lambda x, **kw: x.movedim(**kw), lambda x, source, destination: np.moveaxis(x, source, destination),
       _shape_samples([((2, 3, 4), {"source": 0, "destination": -1}), ((2, 3, 4), {"source": (0, 1), "destination": (2, 0)})])),
    _O("tile", lambda x, **kw: x.tile(kw["dims"]), lambda x, dims: np.tile(x, dims),
       _shape_samples([((2, 3), {"dims": (2,)}), ((3,), {"dims": (2, 2)})])),
    _O("unflatten", lambda x, **kw: x.unflatten(kw["dim"], kw["sizes"]), lambda x, dim, sizes: _np_unflatten(x, dim, sizes),
       _shape_samples([((6, 2), {"dim": 0, "sizes": (2, 3)}), ((2, 4), {"dim": -1, "sizes": (2, -1)})])),
    _O("var_mean", lambda x, **kw: ad.var_mean(x, **kw),
       lambda x, dim=None, keepdim=False: (_np_var(x, dim, keepdim), np.asarray(np.mean(x, axis=dim, keepdims=keepdim)).astype(x.dtype)),
       _shape_samples([((3, 4), {"dim": 1}), ((3, 4), {"keepdim": True, "dim": 0})])),
    _O("std_mean", lambda x, **kw: ad.std_mean(x, **kw),
       lambda x, dim=None, keepdim=False: (np.sqrt(_np_var(x, dim, keepdim)), np.asarray(np.mean(x, axis=dim, keepdims=keepdim)).astype(x.dtype)),
       _shape_samples([((3, 4), {"dim": 1}), ((5,), {})])),
    _O("mm", ad.mm, np.matmul, lambda rng, dt: iter([Sample((_unif(rng, (2, 3), dt), _unif(rng, (3, 4), dt)))]),
       rtol32=1e-4, atol32=1e-5),
    _O("bmm", ad.bmm, np.matmul, lambda rng, dt: iter([Sample((_unif(rng, (2, 2, 3), dt), _unif(rng, (2, 3, 2), dt)))]),
       rtol32=1e-4, atol32=1e-5),
    _O("mv", ad.mv, np.matmul, lambda rng, dt: iter([Sample((_unif(rng, (2, 3), dt), _unif(rng, (3,), dt)))]),
       rtol32=1e-4, atol32=1e-5),
    # linear algebra
    _O("einsum", lambda *ts, eq: ad.einsum(eq, *ts), lambda *xs, eq: np.einsum(eq, *xs), einsum_samples,
       rtol32=1e-4, atol32=1e-5),
    _O("outer", ad.outer, np.outer,
       lambda rng, dt: (Sample((_unif(rng, (a,), dt), _unif(rng, (b,), dt))) for a, b in ((3, 2), (1, 4), (0, 2)))),
    _O("dot", ad.dot, lambda a, b: np.asarray(np.dot(a, b)),
       lambda rng, dt: (Sample((_unif(rng, (n,), dt), _unif(rng, (n,), dt))) for n in (4, 1, 0)),
       rtol32=1e-4, atol32=1e-5),
]

OPS_BY_NAME = {o.name: o for o in OPS}
assert len(OPS_BY_NAME) == len(OPS), "duplicate op names in the table"
