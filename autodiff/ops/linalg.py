"""Linear algebra: matmul (1-D, 2-D and batched broadcasting, as PyTorch/NumPy), einsum, outer, dot."""
from __future__ import annotations

import string

from .. import amp as _amp
from ..autograd import Function, _mode, _raw_tensor
from ..tensor import Tensor


class MatMul(Function):
    save_inputs = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        e = ctx.edges
        a_nd, b_nd = a.data.ndim, b.data.ndim
        if a_nd >= 2 and b_nd >= 2 and not _mode.enabled:  # raw fast path (no graph of the backward)
            # For 2-D operands stored transposed (x @ W.T: b is W's transpose, F-ordered), the
            # gradient is computed in the operand's own memory order, (g.T @ a).T, so that the
            # transpose back in Permute's backward lands C-ordered, like the parameter.
            gd = g.data
            ga = gb = None
            if e[0] is not None:
                bd = b.data
                if b_nd == 2:
                    ad_ = a.data
                    ga = (bd @ gd.T).T if (a_nd == 2 and ad_.flags.f_contiguous and not ad_.flags.c_contiguous) \
                        else gd @ bd.T
                else:
                    ga = gd @ bd.swapaxes(-1, -2)
                ga = _raw_tensor(ga, gd)
            if e[1] is not None:
                ad_ = a.data
                if a_nd == 2 and b_nd == 2:
                    bd = b.data
                    gb = (gd.T @ ad_).T if (bd.flags.f_contiguous and not bd.flags.c_contiguous) else ad_.T @ gd
                else:
                    gb = (ad_.T if a_nd == 2 else ad_.swapaxes(-1, -2)) @ gd
                gb = _raw_tensor(gb, gd)
            return ga, gb
        if a_nd == 1 and b_nd == 1:  # dot product: g is 0-d
            from .elementwise import mul
            return (mul(g, b) if e[0] is not None else None), (mul(g, a) if e[1] is not None else None)
        # Promote 1-D operands (and the matching output axis) to 2-D, differentiate, then undo.
        a2 = a.reshape((1, a.data.shape[0])) if a_nd == 1 else a
        b2 = b.reshape((b.data.shape[0], 1)) if b_nd == 1 else b
        g2 = g
        if a_nd == 1:
            g2 = g2.unsqueeze(-2)
        if b_nd == 1:
            g2 = g2.unsqueeze(-1)
        ga = gb = None
        if e[0] is not None:
            ga = matmul(g2, b2.mT)
            if a_nd == 1:
                ga = ga.squeeze(-2)
        if e[1] is not None:
            gb = matmul(a2.mT, g2)
            if b_nd == 1:
                gb = gb.squeeze(-1)
        return ga, gb


def matmul(a, b):
    """a @ b with NumPy/PyTorch broadcasting of batch dimensions. Differs from PyTorch in one point:
    operands of different dtypes are promoted (PyTorch raises; mm/bmm/mv/dot raise here too)."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"matmul: expected Tensors, got {type(a).__name__} and {type(b).__name__}")
    sa, sb = a.data.shape, b.data.shape
    if not sa or not sb:
        raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got shapes {tuple(sa)} and {tuple(sb)}")
    ka = sa[-1]
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if ka != kb:
        raise RuntimeError(f"matmul: shapes {tuple(sa)} and {tuple(sb)} do not align ({ka} != {kb})")
    if len(sa) > 2 or len(sb) > 2:
        ba, bb = sa[:-2] if len(sa) > 1 else (), sb[:-2] if len(sb) > 1 else ()
        for x, y in zip(reversed(ba), reversed(bb)):
            if x != y and x != 1 and y != 1:
                raise RuntimeError(f"matmul: batch dimensions of {tuple(sa)} and {tuple(sb)} cannot be broadcast")
    if _amp._active:  # autocast: low-precision operands (autodiff/amp.py)
        a, b = _amp.autocast_operands(a, b)
    if a.data.dtype != b.data.dtype:
        from .elementwise import _binary_operands
        a, b = _binary_operands(a, b, "matmul")
    if a.data.dtype.kind == "b":
        raise RuntimeError("matmul: not implemented for bool tensors")
    return MatMul.apply(a, b)


def _same_dtype(opname, *ts):
    if any(t.data.dtype != ts[0].data.dtype for t in ts):
        raise RuntimeError(f"{opname}: expected both operands to have the same dtype, got "
                           f"{' and '.join(str(t.data.dtype) for t in ts)} (shapes "
                           f"{' and '.join(str(tuple(t.shape)) for t in ts)}), as PyTorch")


def mm(a, b):
    _same_dtype("mm", a, b)
    if a.data.ndim != 2 or b.data.ndim != 2:
        raise RuntimeError(f"mm: expected 2-D tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if a.data.shape[1] != b.data.shape[0]:
        raise RuntimeError(f"mm: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
                           f"({a.data.shape[1]} != {b.data.shape[0]})")
    return matmul(a, b)


def bmm(a, b):
    _same_dtype("bmm", a, b)
    if a.data.ndim != 3 or b.data.ndim != 3 or a.data.shape[0] != b.data.shape[0]:
        raise RuntimeError(f"bmm: expected 3-D tensors with equal batch, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.data.shape[2] != b.data.shape[1]:
        raise RuntimeError(f"bmm: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
                           f"({a.data.shape[2]} != {b.data.shape[1]})")
    return matmul(a, b)


def mv(a, v):
    _same_dtype("mv", a, v)
    if a.data.ndim != 2 or v.data.ndim != 1:
        raise RuntimeError(f"mv: expected a matrix and a vector, got {tuple(a.shape)} and {tuple(v.shape)}")
    if a.data.shape[1] != v.data.shape[0]:
        raise RuntimeError(f"mv: shapes {tuple(a.shape)} and {tuple(v.shape)} cannot be multiplied "
                           f"({a.data.shape[1]} != {v.data.shape[0]})")
    return matmul(a, v)


def dot(a, b):
    _same_dtype("dot", a, b)
    if a.data.ndim != 1 or b.data.ndim != 1:
        raise RuntimeError(f"dot: 1-D tensors expected, but got {a.data.ndim}-D and {b.data.ndim}-D")
    if a.data.shape[0] != b.data.shape[0]:
        raise RuntimeError(f"dot: inconsistent tensor size, expected {a.data.shape[0]} == {b.data.shape[0]}")
    return matmul(a, b)


def inner(a, b):
    """torch.inner: sum over the last dimension of both; shape a.shape[:-1] + b.shape[:-1] (a 0-d
    operand multiplies)."""
    if a.data.ndim == 0 or b.data.ndim == 0:
        from .elementwise import mul
        return mul(a, b)
    if a.data.shape[-1] != b.data.shape[-1]:
        raise RuntimeError(f"inner: last dimensions of {tuple(a.shape)} and {tuple(b.shape)} differ "
                           f"({a.data.shape[-1]} != {b.data.shape[-1]})")
    if a.data.ndim == 1 and b.data.ndim == 1:
        return matmul(a, b)
    k = a.data.shape[-1]
    out = matmul(a.reshape(-1, k), b.reshape(-1, k).t())
    return out.reshape(tuple(a.data.shape[:-1]) + tuple(b.data.shape[:-1]))


def outer(a, b):
    if a.data.ndim != 1 or b.data.ndim != 1:
        raise RuntimeError(f"outer: 1-D tensors expected, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    from .elementwise import mul
    return mul(a.unsqueeze(1), b.unsqueeze(0))


ger = outer


class Einsum(Function):
    """einsum over explicit subscripts; backward is an einsum per operand. `einsum()` takes the
    diagonals of operands whose subscripts repeat a letter first, so operands here have distinct
    letters."""
    save_inputs = True  # all operands

    @staticmethod
    def forward(ctx, *arrays, ins, out):
        ctx.ins, ctx.out = ins, out
        ctx.shapes = [a.shape for a in arrays]
        return ctx.backend.xp.einsum(",".join(ins) + "->" + out, *arrays)

    @staticmethod
    def backward(ctx, g):
        grads = []
        sizes = {}
        for sub, shp in zip(ctx.ins, ctx.shapes):
            for c, n in zip(sub, shp):
                sizes[c] = n
        ops = ctx.saved_tensors
        for i, sub in enumerate(ctx.ins):
            if ctx.edges[i] is None:
                grads.append(None)
                continue
            if len(set(sub)) != len(sub):
                raise RuntimeError(f"einsum: backward through repeated subscripts {sub!r} is not supported")
            others = [ctx.ins[j] for j in range(len(ctx.ins)) if j != i]
            avail = set(ctx.out).union(*others) if others else set(ctx.out)
            target = "".join(c for c in sub if c in avail)
            gi = einsum_explicit([ctx.out] + others, target, [g] + [ops[j] for j in range(len(ops)) if j != i])
            if target != sub:  # letters only in this operand: broadcast the gradient over them
                shape = tuple(sizes[c] if c in target else 1 for c in sub)
                perm_src = [c for c in sub if c in target]
                gi = einsum_explicit([target], "".join(perm_src), [gi]).reshape(shape)
                from .reduction import broadcast_to
                gi = broadcast_to(gi, tuple(sizes[c] for c in sub))
            grads.append(gi)
        return tuple(grads)


def einsum_explicit(ins, out, tensors):
    return Einsum.apply(*tensors, ins=tuple(ins), out=out)


def einsum(equation, *operands):
    """torch.einsum(equation, *operands); supports '...' and implicit output."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, out = eq.split("->")
    else:
        lhs, out = eq, None
    ins = lhs.split(",")
    if len(ins) != len(operands):
        raise RuntimeError(f"einsum: equation {equation!r} names {len(ins)} operands but {len(operands)} were given")
    used = set(c for c in eq if c.isalpha())
    free = [c for c in string.ascii_letters if c not in used]
    ell_nd = 0
    for sub, t in zip(ins, operands):
        if "..." in sub:
            ell_nd = max(ell_nd, t.data.ndim - (len(sub) - 3))
    ell = "".join(free[:ell_nd])
    new_ins = []
    for sub, t in zip(ins, operands):
        if "..." in sub:
            k = t.data.ndim - (len(sub) - 3)
            sub = sub.replace("...", ell[ell_nd - k:] if k else "")
        if len(sub) != t.data.ndim:
            raise RuntimeError(f"einsum: subscripts {sub!r} do not match operand of shape {tuple(t.shape)}")
        new_ins.append(sub)
    if out is None:
        counts = {}
        for sub in new_ins:
            for c in sub:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    sizes = {}
    for sub, t in zip(new_ins, operands):
        for c, n in zip(sub, t.data.shape):
            if c in sizes and sizes[c] != n and 1 not in (sizes[c], n):
                raise RuntimeError(f"einsum: subscript {c!r} has size {n} in one operand and {sizes[c]} in another")
            sizes[c] = max(sizes.get(c, n), n)
    operands = list(operands)
    for i, (sub, t) in enumerate(zip(new_ins, operands)):
        if len(set(sub)) != len(sub):  # repeated subscripts (trace, diagonal): take the diagonal first
            operands[i], new_ins[i] = _diagonal(t, sub)
    if any(sizes[c] != n for sub, t in zip(new_ins, operands) for c, n in zip(sub, t.data.shape)):
        # broadcasting of size-1 dims: expand explicitly so the backward sums them back
        from .reduction import broadcast_to
        operands = [broadcast_to(t, tuple(sizes[c] for c in sub)) for sub, t in zip(new_ins, operands)]
    return einsum_explicit(new_ins, out, list(operands))


def _diagonal(t, sub):
    """The generalized diagonal of `t` over repeated letters of `sub` ('iij' -> 'ij'), as a
    differentiable advanced-indexing read (its backward scatters into the diagonal)."""
    from .. import backends
    from .indexing import GetItem
    xp = backends._by_array_type[type(t.data)].xp
    uniq = "".join(dict.fromkeys(sub))
    size = {}
    for c, n in zip(sub, t.data.shape):
        if size.setdefault(c, n) != n:
            raise RuntimeError(f"einsum: subscript {c!r} repeated in {sub!r} with sizes {size[c]} and {n} "
                               f"(operand shape {tuple(t.shape)})")
    ar = {c: xp.arange(size[c]).reshape(tuple(-1 if j == i else 1 for j in range(len(uniq))))
          for i, c in enumerate(uniq)}
    return GetItem.apply(t, key=tuple(ar[c] for c in sub), advanced=True), uniq


def cdist(x1, x2, p=2.0):
    """Pairwise p-norm distances between the rows of x1 (..., P, M) and x2 (..., R, M) -> (..., P, R)."""
    from .reduction import norm
    from .elementwise import sub
    if x1.data.ndim < 2 or x2.data.ndim < 2 or x1.data.shape[-1] != x2.data.shape[-1]:
        raise RuntimeError(f"cdist: expected (..., P, M) and (..., R, M) tensors, got {tuple(x1.shape)} and "
                           f"{tuple(x2.shape)}")
    return norm(sub(x1.unsqueeze(-2), x2.unsqueeze(-3)), p, -1)


# ----------------------------------------------------------------------------- torch.linalg names
def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """torch.linalg.vector_norm: the `ord`-norm of the flattened `dim` slice (all elements by default)."""
    from .reduction import norm
    return norm(x, ord, dim, keepdim, dtype=dtype)


def matrix_norm(x, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """torch.linalg.matrix_norm: ord 'fro', 'nuc', 2, -2 (singular values), 1, -1, inf, -inf (max/min
    absolute column / row sum)."""
    import math
    from .elementwise import abs as _abs, cast
    from .reduction import amax, amin, norm, sum as _sum
    from ..tensor import _wrap_dim
    if dtype is not None:
        from ..dtypes import normalize_dtype
        x = cast(x, normalize_dtype(dtype))
    if x.data.ndim < 2:
        raise RuntimeError(f"linalg.matrix_norm: expected a tensor with 2 or more dimensions, got shape {tuple(x.shape)}")
    d0, d1 = (_wrap_dim(d, x.data.ndim, "linalg.matrix_norm") for d in dim)
    if ord == "fro":
        return norm(x, 2, (d0, d1), keepdim)
    if ord in (1, -1, math.inf, -math.inf):
        summed, other = (d0, d1) if ord in (1, -1) else (d1, d0)  # 1: column sums (over rows), inf: row sums
        s = _sum(_abs(x), summed, keepdim=True)
        r = (amax if ord > 0 else amin)(s, other, keepdim=True)
        return r if keepdim else r.squeeze(max(d0, d1)).squeeze(min(d0, d1))
    if ord in ("nuc", 2, -2):
        return _svd_matrix_norm(x, ord, d0, d1, keepdim)
    raise ValueError(f"linalg.matrix_norm: unsupported ord={ord!r} (fro, nuc, 1, -1, 2, -2, inf, -inf)")


def linalg_norm(x, ord=None, dim=None, keepdim=False, *, dtype=None):
    """torch.linalg.norm: a vector norm for 1-D input or an int dim, a matrix norm for 2-D input or a
    2-tuple dim; ord=None is the 2-norm / Frobenius norm of everything."""
    if ord is None:
        return vector_norm(x, 2, dim, keepdim, dtype=dtype)
    if dim is None:
        dim = tuple(range(x.data.ndim)) if x.data.ndim <= 2 else None
        if dim is None:
            raise RuntimeError("linalg.norm: input must be 1-D or 2-D when ord is given and dim is None")
    if isinstance(dim, int) or len(dim) == 1:
        return vector_norm(x, ord, dim, keepdim, dtype=dtype)
    return matrix_norm(x, ord, dim, keepdim, dtype=dtype)


class Inv(Function):
    """Matrix inverse (batched); gradient -A^-T g A^-T."""
    save_output = True

    @staticmethod
    def forward(ctx, a):
        return ctx.backend.xp.linalg.inv(a)

    @staticmethod
    def backward(ctx, g):
        inv_t = ctx.output().mT
        return matmul(matmul(inv_t, g), inv_t).__neg__()


def inv(a):
    if a.data.ndim < 2 or a.data.shape[-1] != a.data.shape[-2]:
        raise RuntimeError(f"linalg.inv: expected square matrices, got shape {tuple(a.shape)}")
    if a.data.dtype.kind != "f":
        raise RuntimeError(f"linalg.inv: expected a floating point tensor, got {a.data.dtype}")
    return Inv.apply(a)


class Det(Function):
    """Determinant (batched); gradient g * det(A) * A^-T (A invertible)."""
    save_inputs = (0,)
    save_output = True

    @staticmethod
    def forward(ctx, a):
        return ctx.backend.xp.asarray(ctx.backend.xp.linalg.det(a))

    @staticmethod
    def backward(ctx, g):
        from .elementwise import mul
        (a,) = ctx.saved_tensors
        scale = mul(g, ctx.output()).unsqueeze(-1).unsqueeze(-1)
        return mul(scale, inv(a).mT)


def det(a):
    if a.data.ndim < 2 or a.data.shape[-1] != a.data.shape[-2]:
        raise RuntimeError(f"linalg.det: expected square matrices, got shape {tuple(a.shape)}")
    if a.data.dtype.kind != "f":
        raise RuntimeError(f"linalg.det: expected a floating point tensor, got {a.data.dtype}")
    return Det.apply(a)


def solve(a, b):
    """x with a @ x = b (b a vector or a matrix of right-hand sides, batched); as inv(a) @ b."""
    if b.data.ndim == 1 or (b.data.ndim == a.data.ndim - 1 and b.data.shape == a.data.shape[:-1]):
        return matmul(inv(a), b.unsqueeze(-1)).squeeze(-1)
    return matmul(inv(a), b)


class SvdVals(Function):
    """Singular values (batched, descending); gradient U diag(g) V^T (exact for distinct singular
    values; U and V are constants of the backward, so no double backward in the input)."""

    @staticmethod
    def forward(ctx, a):
        u, s, vh = ctx.backend.xp.linalg.svd(a, full_matrices=False)
        ctx.u, ctx.vh = u, vh
        return s

    @staticmethod
    def backward(ctx, g):
        from ..autograd import _new_tensor
        from .elementwise import mul
        return matmul(mul(_new_tensor(ctx.u), g.unsqueeze(-2)), _new_tensor(ctx.vh))


def svdvals(a):
    if a.data.ndim < 2 or a.data.dtype.kind != "f":
        raise RuntimeError(f"linalg.svdvals: expected a floating tensor with 2 or more dimensions, got {a.data.dtype} "
                           f"of shape {tuple(a.shape)}")
    return SvdVals.apply(a)


def _svd_matrix_norm(x, ord, d0, d1, keepdim):
    from .reduction import amax, amin, sum as _sum
    from .shape import movedim
    s = svdvals(movedim(x, (d0, d1), (-2, -1)))
    r = _sum(s, -1) if ord == "nuc" else (amax(s, -1) if ord == 2 else amin(s, -1))
    if keepdim:
        r = r.unsqueeze(-1).unsqueeze(-1)
        r = movedim(r, (-2, -1), (d0, d1))
    return r


class _LinalgNamespace:
    """`autodiff.linalg`: the torch.linalg functions this library has."""
    vector_norm = staticmethod(vector_norm)
    matrix_norm = staticmethod(matrix_norm)
    norm = staticmethod(linalg_norm)
    inv = staticmethod(inv)
    det = staticmethod(det)
    solve = staticmethod(solve)
    svdvals = staticmethod(svdvals)
    matmul = staticmethod(matmul)
    vecdot = staticmethod(lambda x, y, dim=-1: _vecdot(x, y, dim))


def _vecdot(x, y, dim=-1):
    from .elementwise import mul
    from .reduction import sum as _sum
    return _sum(mul(x, y), dim)


linalg = _LinalgNamespace()


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2), as torch.addmm (beta=0 ignores input's values)."""
    from .elementwise import add, mul
    p = mm(mat1, mat2)
    if alpha != 1:
        p = mul(p, alpha)
    if beta == 0:
        return add(p, mul(input.detach(), 0)) if tuple(input.shape) != tuple(p.shape) else p
    return add(mul(input, beta) if beta != 1 else input, p)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * (batch1 @ batch2) for 3-D batches, as torch.baddbmm."""
    from .elementwise import add, mul
    p = bmm(batch1, batch2)
    if alpha != 1:
        p = mul(p, alpha)
    if beta == 0:
        return add(p, mul(input.detach(), 0)) if tuple(input.shape) != tuple(p.shape) else p
    return add(mul(input, beta) if beta != 1 else input, p)
