"""Elementwise primitives: arithmetic, unary math, activations, comparisons, where, cast.

Broadcasting in backward is undone by the engine (sum-to-shape), not here. Piecewise-linear ops
(relu, leaky_relu, abs, clamp, maximum, sign) pass the gradient through `MulConst`, a multiplication
by a constant array whose own derivative is itself: their second derivative is zero anyway.
Subgradients at kinks: relu'(0) = 0, abs'(0) = 0, clamp passes the gradient at the bounds,
maximum/minimum split the gradient evenly between equal inputs (as PyTorch).

Speed: the engine runs backward formulas under no-grad unless `create_graph=True`; the hot ops then
take a fast path on raw arrays (`if not _mode.enabled`) and wrap the result once, instead of going
through Tensor ops. Both paths compute the same formula. Tensor-op-Python-scalar arithmetic uses
dedicated primitives (`AddScalar`, `MulScalar`, ...) that keep the scalar as a parameter instead of
building a 0-d tensor for it.
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import Function, _mode, _new_tensor, _raw_tensor
from ..dtypes import result_type, scalar_result_dtype
from ..tensor import Tensor

_SCALARS = (int, float, bool, np.number, np.bool_)


# ----------------------------------------------------------------------------- operand handling
def _const_like(value, like, dtype=None):
    """A constant (non-grad) tensor holding `value` on `like`'s backend."""
    xp = like.backend.xp if hasattr(like, "backend") else None
    if xp is None:
        from .. import backends
        xp = backends._by_array_type[type(like.data)].xp
    return _new_tensor(xp.asarray(value, dtype=dtype or like.data.dtype))


def _binary_operands(a, b, opname):
    """Turn (Tensor|scalar, Tensor|scalar) into two tensors of the PyTorch result dtype."""
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if ta and tb:
        da, db = a.data.dtype, b.data.dtype
        if da != db:
            dt = result_type((da, a.data.ndim), (db, b.data.ndim))
            if da != dt:
                a = cast(a, dt)
            if db != dt:
                b = cast(b, dt)
        return a, b
    if ta:
        if not isinstance(b, _SCALARS):
            return _binary_operands(a, _coerce(b, a, opname), opname)
        dt = scalar_result_dtype(a.data.dtype, b)
        if dt != a.data.dtype:
            a = cast(a, dt)
        return a, _scalar_tensor(b, a)
    if tb:
        if not isinstance(a, _SCALARS):
            return _binary_operands(_coerce(a, b, opname), b, opname)
        dt = scalar_result_dtype(b.data.dtype, a)
        if dt != b.data.dtype:
            b = cast(b, dt)
        return _scalar_tensor(a, b), b
    raise TypeError(f"{opname}: expected at least one Tensor, got {type(a).__name__} and {type(b).__name__}")


def _scalar_tensor(s, like):
    from .. import backends
    xp = backends._by_array_type[type(like.data)].xp
    dt = like.data.dtype
    if dt.kind in "iu" and isinstance(s, int) and not isinstance(s, bool):
        info = np.iinfo(dt)
        if not info.min <= s <= info.max:  # wrap around in the tensor's integer type, as PyTorch
            return _new_tensor(xp.asarray(np.array(s & ((1 << (8 * dt.itemsize)) - 1), dtype=np.uint64).astype(dt)))
    return _new_tensor(xp.asarray(s, dtype=dt))


def _coerce(x, like, opname):
    if isinstance(x, Tensor):
        return x
    if hasattr(x, "__array__") or isinstance(x, (list, tuple)) or hasattr(x, "__cuda_array_interface__"):
        return Tensor(x, device=like.device)
    raise TypeError(f"{opname}: unsupported operand type {type(x).__name__}")


def _check_broadcast(opname, a, b):
    sa, sb = a.data.shape, b.data.shape
    if sa == sb:
        return
    for x, y in zip(reversed(sa), reversed(sb)):
        if x != y and x != 1 and y != 1:
            raise RuntimeError(f"{opname}: shapes {tuple(sa)} and {tuple(sb)} cannot be broadcast together "
                               f"({x} != {y})")


def _float_input(x, opname):
    """Unary float math on an integer tensor promotes to the default float dtype, as PyTorch."""
    if not isinstance(x, Tensor):
        if isinstance(x, _SCALARS):
            x = Tensor(x)
        else:
            raise TypeError(f"{opname}: expected a Tensor, got {type(x).__name__}")
    if x.data.dtype.kind not in "fc":
        from ..dtypes import default_float_dtype
        x = cast(x, default_float_dtype())
    return x


# ----------------------------------------------------------------------------- casting
class Cast(Function):
    @staticmethod
    def forward(ctx, a, dtype):
        ctx.in_dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        if ctx.in_dtype.kind not in "fc":
            return None
        if not _mode.enabled:
            return _raw_tensor(g.data.astype(ctx.in_dtype), g.data)
        return cast(g, ctx.in_dtype)


def cast(x, dtype):
    if x.data.dtype == dtype:
        return x
    if x.requires_grad and dtype.kind not in "fc":
        return Cast.apply(x.detach(), dtype=dtype)
    return Cast.apply(x, dtype=dtype)


# ----------------------------------------------------------------------------- arithmetic
class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        if ctx.edges[1] is None:
            return g, None
        return g, (_raw_tensor(-g.data, g.data) if not _mode.enabled else neg(g))


class Mul(Function):
    save_inputs = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        e = ctx.edges
        if not _mode.enabled:
            gd = g.data
            return (_raw_tensor(gd * b.data, gd) if e[0] is not None else None,
                    _raw_tensor(gd * a.data, gd) if e[1] is not None else None)
        return (mul(g, b) if e[0] is not None else None), (mul(g, a) if e[1] is not None else None)


class Div(Function):
    save_inputs = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        e = ctx.edges
        if not _mode.enabled:
            gd, bd = g.data, b.data
            ga = _raw_tensor(gd / bd, gd) if e[0] is not None else None
            gb = _raw_tensor(-(gd * a.data) / (bd * bd), gd) if e[1] is not None else None
            return ga, gb
        ga = div(g, b) if e[0] is not None else None
        gb = neg(div(mul(g, a), mul(b, b))) if e[1] is not None else None
        return ga, gb


class MulConst(Function):
    """a * c with c a raw constant array (masks, slopes): d/da = c, and no gradient for c."""

    @staticmethod
    def forward(ctx, a, c):
        ctx.c = c
        return a * c

    @staticmethod
    def backward(ctx, g):
        return mul_const(g, ctx.c)


def mul_const(a, c):
    if not _mode.enabled:
        return _raw_tensor(a.data * c, a.data)
    return MulConst.apply(a, c=c)


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return _raw_tensor(-g.data, g.data) if not _mode.enabled else neg(g)


def _same_dtype(r, a):
    return r if r.dtype == a.dtype else r.astype(a.dtype)


class AddScalar(Function):
    """a + s for a Python scalar s."""
    display_name = "Add"

    @staticmethod
    def forward(ctx, a, s):
        return _same_dtype(a + s, a)

    @staticmethod
    def backward(ctx, g):
        return g


class SubScalar(AddScalar):
    """a - s for a Python scalar s."""
    display_name = "Sub"

    @staticmethod
    def forward(ctx, a, s):
        return _same_dtype(a - s, a)


class RSubScalar(Function):
    """s - a for a Python scalar s."""
    display_name = "Rsub"

    @staticmethod
    def forward(ctx, a, s):
        return _same_dtype(s - a, a)

    @staticmethod
    def backward(ctx, g):
        return _raw_tensor(-g.data, g.data) if not _mode.enabled else neg(g)


class MulScalar(Function):
    """a * s for a Python scalar s."""
    display_name = "Mul"

    @staticmethod
    def forward(ctx, a, s):
        ctx.s = s
        return _same_dtype(a * s, a)

    @staticmethod
    def backward(ctx, g):
        if not _mode.enabled:
            return _raw_tensor(_same_dtype(g.data * ctx.s, g.data), g.data)
        return MulScalar.apply(g, s=ctx.s)


class DivScalar(Function):
    """a / s for a Python scalar s (floating a)."""
    display_name = "Div"

    @staticmethod
    def forward(ctx, a, s):
        ctx.s = s
        return _same_dtype(a / s, a)

    @staticmethod
    def backward(ctx, g):
        if not _mode.enabled:
            return _raw_tensor(_same_dtype(g.data / ctx.s, g.data), g.data)
        return DivScalar.apply(g, s=ctx.s)


class RDivScalar(Function):
    """s / a for a Python scalar s (floating a): d/da = -s / a**2."""
    display_name = "Div"
    save_inputs = (0,)

    @staticmethod
    def forward(ctx, a, s):
        ctx.s = s
        return _same_dtype(s / a, a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        if not _mode.enabled:
            ad_ = a.data
            return _raw_tensor(_same_dtype(g.data * (-ctx.s) / (ad_ * ad_), ad_), ad_)
        return mul(div(g, mul(a, a)), -ctx.s)


def _scalar_ok(t, s):
    """True when `t op s` (s a Python int/float, not bool) keeps t's dtype, so the scalar primitive applies."""
    k = t.data.dtype.kind
    if k in "fc":
        return True
    if k in "iu" and s.__class__ is int:
        if t.data.dtype.itemsize == 8 and k == "i":
            return -(1 << 63) <= s < (1 << 63)
        info = np.iinfo(t.data.dtype)  # out of range: wraps as PyTorch (via _scalar_tensor)
        return info.min <= s <= info.max
    return False


class PowScalar(Function):
    save_inputs = (0,)

    @staticmethod
    def forward(ctx, a, e):
        ctx.e = e
        if e == 2:
            return a * a
        return a ** e

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        e = ctx.e
        if e == 0:
            return mul_const(g, 0)
        if e == 1:
            return g
        if not _mode.enabled:
            gd, x = g.data, a.data
            r = gd * (x * 2) if e == 2 else gd * (x ** (e - 1) * e)
            return _raw_tensor(_same_dtype(r, x), x)
        if e == 2:
            return mul(g, mul(a, 2.0))
        return mul(g, mul(pow(a, e - 1), e))


class Pow(Function):
    save_inputs = (0, 1)
    save_output = True

    @staticmethod
    def forward(ctx, a, b):
        return a ** b

    @staticmethod
    def backward(ctx, g):
        # As PyTorch: d/da = b * a**(b-1), defined as 0 where b == 0; d/db = a**b * log(a), defined
        # as 0 where a == 0 and b >= 0. `where` (not a multiplication by a mask) keeps inf/nan of
        # the unselected branch out of the result and out of higher derivatives.
        a, b = ctx.saved_tensors
        e = ctx.edges
        xp = ctx.xp
        ga = gb = None
        if e[0] is not None:
            ga = where(_new_tensor(xp.asarray(b.data == 0)), 0.0, mul(g, mul(b, pow(a, sub(b, 1)))))
        if e[1] is not None:
            zero = _new_tensor(xp.asarray((a.data == 0) & (b.data >= 0)))
            safe = where(zero, 1.0, a)
            gb = where(zero, 0.0, mul(g, mul(ctx.output(), log(safe))))
        return ga, gb


class RPowScalar(Function):
    """scalar ** tensor."""
    save_output = True

    @staticmethod
    def forward(ctx, b, base):
        ctx.logbase = math.log(base) if base > 0 else float("nan")
        return base ** b

    @staticmethod
    def backward(ctx, g):
        return mul(g, mul(ctx.output(), ctx.logbase))


def add(a, b, alpha=1):
    if alpha != 1:
        b = mul(b, alpha)
    bc = b.__class__
    if bc is float or bc is int:
        if isinstance(a, Tensor) and _scalar_ok(a, b):
            return AddScalar.apply(a, s=b)
        a, b = _binary_operands(a, b, "add")
    elif a.__class__ is float or a.__class__ is int:
        if isinstance(b, Tensor) and _scalar_ok(b, a):
            return AddScalar.apply(b, s=a)
        a, b = _binary_operands(a, b, "add")
    elif not (isinstance(b, Tensor) and isinstance(a, Tensor) and a.data.dtype == b.data.dtype):
        a, b = _binary_operands(a, b, "add")
    return Add.apply(a, b) if a.data.shape == b.data.shape else _bcast_apply(Add, a, b, "add")


def _no_bool_sub(a, b):
    if (isinstance(a, Tensor) and a.data.dtype.kind == "b") or (isinstance(b, Tensor) and b.data.dtype.kind == "b") \
            or isinstance(a, (bool, np.bool_)) or isinstance(b, (bool, np.bool_)):
        raise RuntimeError("sub: subtraction, the `-` operator, with a bool tensor is not supported "
                           f"(dtypes {getattr(a, 'dtype', type(a).__name__)} and {getattr(b, 'dtype', type(b).__name__)});"
                           " use logical_xor() or ~ instead, as PyTorch")


def sub(a, b, alpha=1):
    if (a.__class__ is not Tensor or b.__class__ is not Tensor or a.data.dtype.kind == "b"
            or b.data.dtype.kind == "b"):
        _no_bool_sub(a, b)
    if alpha != 1:
        b = mul(b, alpha)
    bc = b.__class__
    if bc is float or bc is int:
        if isinstance(a, Tensor) and _scalar_ok(a, b):
            return SubScalar.apply(a, s=b)
        a, b = _binary_operands(a, b, "sub")
    elif a.__class__ is float or a.__class__ is int:
        if isinstance(b, Tensor) and _scalar_ok(b, a) and b.data.dtype.kind != "b":
            return RSubScalar.apply(b, s=a)
        a, b = _binary_operands(a, b, "sub")
    elif not (isinstance(b, Tensor) and isinstance(a, Tensor) and a.data.dtype == b.data.dtype):
        a, b = _binary_operands(a, b, "sub")
    return Sub.apply(a, b) if a.data.shape == b.data.shape else _bcast_apply(Sub, a, b, "sub")


def rsub(a, b):
    return sub(b, a)


def mul(a, b):
    bc = b.__class__
    if bc is float or bc is int:
        if isinstance(a, Tensor) and _scalar_ok(a, b):
            return MulScalar.apply(a, s=b)
        a, b = _binary_operands(a, b, "mul")
    elif a.__class__ is float or a.__class__ is int:
        if isinstance(b, Tensor) and _scalar_ok(b, a):
            return MulScalar.apply(b, s=a)
        a, b = _binary_operands(a, b, "mul")
    elif not (isinstance(b, Tensor) and isinstance(a, Tensor) and a.data.dtype == b.data.dtype):
        a, b = _binary_operands(a, b, "mul")
    return Mul.apply(a, b) if a.data.shape == b.data.shape else _bcast_apply(Mul, a, b, "mul")


def div(a, b, rounding_mode=None):
    """True division (integers give floats, as PyTorch); rounding_mode 'floor' or 'trunc'."""
    if rounding_mode is not None:
        if rounding_mode not in ("floor", "trunc"):
            raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}")
        a, b = _binary_operands(a, b, "div")
        _check_broadcast("div", a, b)
        if a.data.dtype.kind == "b":
            raise RuntimeError(f"div: rounding_mode={rounding_mode!r} is not supported for bool tensors")
        if a.data.dtype.kind in "iu":  # exact integer division; no gradient flows to integers
            xp = _xp_of(a)
            f = xp.floor_divide if rounding_mode == "floor" else (lambda x, y: _trunc_div(xp, x, y))
            return _new_tensor(xp.asarray(f(a.data, b.data)))
        fn = (lambda xp, x, y: xp.floor_divide(x, y)) if rounding_mode == "floor" else _trunc_div
        return _Rounding.apply(a, b, fn=fn)
    bc = b.__class__
    if bc is float or bc is int:
        if isinstance(a, Tensor):  # true division: an integer tensor becomes float, the scalar keeps its value
            return DivScalar.apply(a if a.data.dtype.kind in "fc" else _float_input(a, "div"), s=b)
    elif a.__class__ is float or a.__class__ is int:
        if isinstance(b, Tensor):
            return RDivScalar.apply(b if b.data.dtype.kind in "fc" else _float_input(b, "div"), s=a)
    a, b = _binary_operands(a, b, "div")
    if a.data.dtype.kind not in "fc":
        from ..dtypes import default_float_dtype
        a, b = cast(a, default_float_dtype()), cast(b, default_float_dtype())
    return Div.apply(a, b) if a.data.shape == b.data.shape else _bcast_apply(Div, a, b, "div")


def rdiv(a, b):
    return div(b, a)


def _bcast_apply(fn, a, b, opname):
    _check_broadcast(opname, a, b)
    return fn.apply(a, b)


class _BoolNegationError(RuntimeError, TypeError):
    """PyTorch raises RuntimeError here; earlier versions of this library raised TypeError."""


def neg(a):
    if a.data.dtype.kind == "b":
        raise _BoolNegationError("neg: negation of a bool tensor is not supported; use logical_not")
    return Neg.apply(a)


def pow(a, e):
    if isinstance(a, Tensor) and isinstance(e, _SCALARS) and not isinstance(e, bool):
        if a.data.dtype.kind in "biu" and isinstance(e, float):
            from ..dtypes import default_float_dtype
            a = cast(a, default_float_dtype())
        elif a.data.dtype.kind == "b":  # bool ** int is int64, as PyTorch
            a = cast(a, np.dtype(np.int64))
        if a.data.dtype.kind in "iu" and e < 0:
            raise RuntimeError("pow: integers to negative integer powers are not allowed")
        return PowScalar.apply(a, e=e)
    if not isinstance(a, Tensor) and isinstance(e, Tensor):
        if isinstance(a, (int, np.integer)) and e.data.dtype.kind in "biu":
            # int ** integer tensor stays integer (int64 for bool exponents), as PyTorch; not differentiable
            xp = _xp_of(e)
            ed = e.data.astype(np.int64) if e.data.dtype.kind == "b" else e.data
            return _new_tensor(xp.asarray(xp.power(xp.asarray(a, dtype=ed.dtype), ed)))
        e = _float_input(e, "pow")
        return RPowScalar.apply(e, base=float(a))
    a, e = _binary_operands(a, e, "pow")
    _check_broadcast("pow", a, e)
    return Pow.apply(a, e)


def rpow(a, b):
    return pow(b, a)


def _xp_of(t):
    from .. import backends
    return backends._by_array_type[type(t.data)].xp


# ----------------------------------------------------------------------------- unary math
def _unary(name, fwd, bwd, raw, save_inputs=(), save_output=False):
    """Make a unary primitive and its public function from forward(xp, a), backward(ctx, g) (Tensor
    ops, differentiable) and raw(ctx, g_array) (the same formula on arrays, used under no-grad)."""

    def backward(ctx, g):
        if not _mode.enabled:
            gd = g.data
            return _raw_tensor(raw(ctx, gd), gd)
        return bwd(ctx, g)

    cls = type(name, (Function,), {
        "save_inputs": save_inputs, "save_output": save_output,
        "forward": staticmethod(lambda ctx, a: fwd(ctx.backend.xp, a)),
        "backward": staticmethod(backward),
    })

    def op(x):
        return cls.apply(_float_input(x, name.lower()))
    op.__name__ = name.lower()
    op.__qualname__ = op.__name__
    return cls, op


def _x(ctx):
    return ctx.saved_tensors[0]


def _xd(ctx):
    return ctx.saved_tensors[0].data


Exp, exp = _unary("Exp", lambda xp, a: xp.exp(a), lambda ctx, g: mul(g, ctx.output()),
                  lambda ctx, g: g * ctx.output_data(), save_output=True)
Log, log = _unary("Log", lambda xp, a: xp.log(a), lambda ctx, g: div(g, _x(ctx)),
                  lambda ctx, g: g / _xd(ctx), save_inputs=(0,))
Log1p, log1p = _unary("Log1p", lambda xp, a: xp.log1p(a), lambda ctx, g: div(g, add(_x(ctx), 1.0)),
                      lambda ctx, g: g / (_xd(ctx) + 1.0), save_inputs=(0,))
Expm1, expm1 = _unary("Expm1", lambda xp, a: xp.expm1(a), lambda ctx, g: mul(g, add(ctx.output(), 1.0)),
                      lambda ctx, g: g * (ctx.output_data() + 1.0), save_output=True)
Sqrt, sqrt = _unary("Sqrt", lambda xp, a: xp.sqrt(a), lambda ctx, g: div(mul(g, 0.5), ctx.output()),
                    lambda ctx, g: (g * 0.5) / ctx.output_data(), save_output=True)
Rsqrt, rsqrt = _unary("Rsqrt", lambda xp, a: 1 / xp.sqrt(a),
                      lambda ctx, g: mul(g, mul(pow(ctx.output(), 3), -0.5)),
                      lambda ctx, g: g * (ctx.output_data() ** 3 * -0.5), save_output=True)
Reciprocal, reciprocal = _unary("Reciprocal", lambda xp, a: 1 / a,
                                lambda ctx, g: neg(mul(g, mul(ctx.output(), ctx.output()))),
                                lambda ctx, g: -(g * (ctx.output_data() * ctx.output_data())), save_output=True)
Sin, sin = _unary("Sin", lambda xp, a: xp.sin(a), lambda ctx, g: mul(g, cos(_x(ctx))),
                  lambda ctx, g: g * ctx.backend.xp.cos(_xd(ctx)), save_inputs=(0,))
Cos, cos = _unary("Cos", lambda xp, a: xp.cos(a), lambda ctx, g: neg(mul(g, sin(_x(ctx)))),
                  lambda ctx, g: -(g * ctx.backend.xp.sin(_xd(ctx))), save_inputs=(0,))


def _tanh_raw(ctx, g):
    o = ctx.output_data()
    return g * (1 - o * o)


Tanh, tanh = _unary("Tanh", lambda xp, a: xp.tanh(a),
                    lambda ctx, g: mul(g, rsub(mul(ctx.output(), ctx.output()), 1.0)), _tanh_raw, save_output=True)


_EXP_LIMIT = {"f": 88.0, "d": 708.0}  # exp(x) stays finite below these (float32/64)


def _sigmoid_fwd(xp, a):
    """1 / (1 + exp(-a)), with -a clipped so that exp never overflows (no warnings, no inf): exact to
    rounding except below -88 (float32) / -708 (float64), where it returns a tiny positive number
    instead of an even tinier one. No `where` (NumPy's is slow on random masks); in place on one
    temporary. float16 is computed in float32 (as PyTorch does on the CPU)."""
    if a.dtype.char == "e":
        return _sigmoid_fwd(xp, a.astype(xp.float32)).astype(a.dtype)
    if a.ndim == 0:
        return (1 / (1 + xp.exp(-xp.maximum(a, -_EXP_LIMIT.get(a.dtype.char, 80.0))))).astype(a.dtype)
    t = xp.maximum(a, a.dtype.type(-_EXP_LIMIT.get(a.dtype.char, 80.0)))
    xp.negative(t, out=t)
    xp.exp(t, out=t)
    t += 1
    xp.reciprocal(t, out=t)
    return t


def _sigmoid_raw(ctx, g):
    o = ctx.output_data()
    return g * (o * (1 - o))


Sigmoid, sigmoid = _unary("Sigmoid", _sigmoid_fwd,
                          lambda ctx, g: mul(g, mul(ctx.output(), rsub(ctx.output(), 1.0))), _sigmoid_raw,
                          save_output=True)


def square(x):
    return pow(x, 2)


class Abs(Function):
    @staticmethod
    def forward(ctx, a):
        xp = ctx.backend.xp
        s = xp.asarray(xp.sign(a))
        if a.dtype.kind == "f":
            s = xp.nan_to_num(s, copy=False)  # sgn(nan) = 0: no gradient at NaN, as PyTorch
        ctx.sign = s
        return xp.abs(a)

    @staticmethod
    def backward(ctx, g):
        return mul_const(g, ctx.sign)


def abs(x):
    return Abs.apply(x)


class Sign(Function):
    differentiable = True

    @staticmethod
    def forward(ctx, a):
        xp = ctx.backend.xp
        r = xp.sign(a)
        if a.dtype.kind == "f":  # sign(nan) = 0, as PyTorch
            r = xp.where(a != a, xp.asarray(0, dtype=a.dtype), r)
        return r

    @staticmethod
    def backward(ctx, g):
        return mul_const(g, 0)


def sign(x):
    if x.data.dtype.kind == "b":  # bool: a copy, as PyTorch
        return _new_tensor(x.data.copy())
    return Sign.apply(x)


class Relu(Function):
    """max(x, 0); the gradient mask (x > 0, i.e. out > 0) is computed in backward from the saved
    output, so inference and no-grad forwards make one pass."""
    save_output = True

    @staticmethod
    def forward(ctx, a):
        return ctx.backend.xp.maximum(a, 0)

    @staticmethod
    def backward(ctx, g):
        return mul_const(g, ctx.output_data() != 0)  # out is >= 0 or NaN: one pass; NaN passes, as PyTorch


def relu(x):
    return Relu.apply(x)


class LeakyRelu(Function):
    @staticmethod
    def forward(ctx, a, slope):
        f = (a > 0).astype(a.dtype)  # factor: 1 where a > 0, else slope (arithmetic, not a slow where)
        f *= 1 - slope
        f += slope
        ctx.factor = f
        return a * f

    @staticmethod
    def backward(ctx, g):
        return mul_const(g, ctx.factor)


def leaky_relu(x, negative_slope=0.01):
    return LeakyRelu.apply(x, slope=negative_slope)


class Elu(Function):
    save_output = True

    @staticmethod
    def forward(ctx, a, alpha):
        xp = ctx.backend.xp
        ctx.alpha = alpha
        ctx.pos = a > 0
        # max(a, 0) + alpha * expm1(min(a, 0)): a where a > 0, else alpha * (exp(a) - 1)
        return (xp.maximum(a, 0) + alpha * xp.expm1(xp.minimum(a, 0))).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        # x > 0: 1; else alpha * exp(x) = out + alpha
        neg_part = mul_const(mul(g, add(ctx.output(), ctx.alpha)), ~ctx.pos)
        return add(mul_const(g, ctx.pos), neg_part)


def elu(x, alpha=1.0):
    return Elu.apply(x, alpha=alpha)


class Erf(Function):
    save_inputs = (0,)

    @staticmethod
    def forward(ctx, a):
        return ctx.backend.erf(a)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return mul(g, mul(exp(neg(mul(x, x))), 2.0 / math.sqrt(math.pi)))


def erf(x):
    return Erf.apply(_float_input(x, "erf"))


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Gelu(Function):
    """GELU as one primitive (one forward pass); its backward is composed of differentiable ops."""
    save_inputs = (0,)

    @staticmethod
    def forward(ctx, a, approximate):
        ctx.approximate = approximate
        return ctx.backend.gelu(a, approximate)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if ctx.approximate == "tanh":
            inner = mul(add(x, mul(pow(x, 3), 0.044715)), _SQRT_2_OVER_PI)
            t = tanh(inner)
            dinner = mul(add(mul(mul(x, x), 3 * 0.044715), 1.0), _SQRT_2_OVER_PI)
            d = add(mul(add(t, 1.0), 0.5), mul(mul(mul(x, 0.5), rsub(mul(t, t), 1.0)), dinner))
            return mul(g, d)
        cdf = mul(add(erf(mul(x, _INV_SQRT_2)), 1.0), 0.5)
        pdf = mul(exp(mul(mul(x, x), -0.5)), _INV_SQRT_2PI)
        return mul(g, add(cdf, mul(x, pdf)))


def gelu(x, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return Gelu.apply(_float_input(x, "gelu"), approximate=approximate)


class Silu(Function):
    save_inputs = (0,)

    @staticmethod
    def forward(ctx, a):
        return ctx.backend.silu(a)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        s = sigmoid(x)
        return mul(g, mul(s, add(mul(x, rsub(s, 1.0)), 1.0)))


def silu(x):
    return Silu.apply(_float_input(x, "silu"))


class Softplus(Function):
    """log(1 + exp(beta x)) / beta, linear where beta * x > threshold (as PyTorch)."""
    save_inputs = (0,)

    @staticmethod
    def forward(ctx, a, beta, threshold):
        xp = ctx.backend.xp
        ctx.beta, ctx.threshold = beta, threshold
        z = a * beta
        ctx.linear = z > threshold
        soft = (xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))) / beta
        return xp.where(ctx.linear, a, soft).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        s = sigmoid(mul(x, ctx.beta))
        return add(mul_const(g, ctx.linear), mul_const(mul(g, s), ~ctx.linear))


def softplus(x, beta=1.0, threshold=20.0):
    return Softplus.apply(_float_input(x, "softplus"), beta=beta, threshold=threshold)


class Clamp(Function):
    @staticmethod
    def forward(ctx, a, lo, hi):
        xp = ctx.backend.xp
        mask = xp.ones(a.shape, dtype=bool)
        out = a
        if lo is not None:
            mask &= a >= lo
            out = xp.maximum(out, xp.asarray(lo, a.dtype))
        if hi is not None:
            mask &= a <= hi
            out = xp.minimum(out, xp.asarray(hi, a.dtype))
        ctx.mask = mask
        return out if out is not a else a.copy()

    @staticmethod
    def backward(ctx, g):
        return mul_const(g, ctx.mask)


class ClampT(Function):
    """clamp with tensor bounds, gradients exactly as PyTorch's: x gets g where min <= x <= max;
    min where x < min (and min < max); max where x > max (or max < min). Ties are not split."""

    @staticmethod
    def forward(ctx, a, *bounds, has_lo, has_hi):
        xp = ctx.backend.xp
        lo = bounds[0] if has_lo else None
        hi = bounds[-1] if has_hi else None
        out = a
        mx = xp.ones(a.shape, dtype=bool)
        masks = []
        if lo is not None:
            out = xp.maximum(out, lo)
            mx = mx & (a >= lo)
            masks.append((a < lo) & (lo < hi) if hi is not None else (a < lo))
        if hi is not None:
            out = xp.minimum(out, hi)
            mx = mx & (a <= hi)
            masks.append((a > hi) | (hi < lo) if lo is not None else (a > hi))
        ctx.masks = [mx] + masks
        return xp.asarray(out)

    @staticmethod
    def backward(ctx, g):
        return tuple(mul_const(g, m) if e is not None else None for m, e in zip(ctx.masks, ctx.edges))


def clamp(x, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        ts = [x] + [b if isinstance(b, Tensor) else _const_like(b, x) for b in (min, max) if b is not None]
        dt = ts[0].data.dtype
        for t in ts[1:]:
            dt = result_type((dt, 1), (t.data.dtype, t.data.ndim))
        ts = [cast(t, dt) for t in ts]
        for t in ts[1:]:
            _check_broadcast("clamp", ts[0], t)
        return ClampT.apply(*ts, has_lo=min is not None, has_hi=max is not None)
    if x.data.dtype.kind in "iu" and any(isinstance(v, float) for v in (min, max)):
        from ..dtypes import default_float_dtype
        x = cast(x, default_float_dtype())
    return Clamp.apply(x, lo=min, hi=max)


clip = clamp


class _MinMax(Function):
    is_max = True

    @staticmethod
    def backward(ctx, g):
        return mul_const(g, ctx.wa), mul_const(g, ctx.wb)


class Maximum(_MinMax):
    @staticmethod
    def forward(ctx, a, b):
        xp = ctx.backend.xp
        ctx.wa, ctx.wb = _tie_weights(xp, a > b, a < b, a == b, a.dtype)
        return xp.maximum(a, b)


class Minimum(_MinMax):
    @staticmethod
    def forward(ctx, a, b):
        xp = ctx.backend.xp
        ctx.wa, ctx.wb = _tie_weights(xp, a < b, a > b, a == b, a.dtype)
        return xp.minimum(a, b)


def _tie_weights(xp, win, lose, tie, dtype):
    """PyTorch's weights: a gets g unless it lost, b unless it won, halved at ties; with a NaN
    (neither won nor tied) both get g."""
    half = (1 - tie.astype(dtype) * 0.5).astype(dtype, copy=False)
    return half * ~lose, half * ~win


def maximum(a, b):
    a, b = _binary_operands(a, b, "maximum")
    _check_broadcast("maximum", a, b)
    return Maximum.apply(a, b)


def minimum(a, b):
    a, b = _binary_operands(a, b, "minimum")
    _check_broadcast("minimum", a, b)
    return Minimum.apply(a, b)


class Where(Function):
    @staticmethod
    def forward(ctx, a, b, cond):
        ctx.cond = cond
        return ctx.backend.xp.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        c = ctx.cond
        return mul_const(g, c), mul_const(g, ~c)


def where(condition, input=None, other=None):
    """`where(cond, a, b)`; a and b may be tensors or scalars. `where(cond)` gives the nonzero indices."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    cond = condition.data if isinstance(condition, Tensor) else condition
    if getattr(cond, "dtype", None) is None or cond.dtype != np.bool_:
        cond = cond.astype(bool) if hasattr(cond, "astype") else np.asarray(cond, dtype=bool)
    like = input if isinstance(input, Tensor) else other
    if not isinstance(like, Tensor):
        like = condition if isinstance(condition, Tensor) else Tensor(cond)
        input = _coerce_scalar(input, like)
        other = _coerce_scalar(other, like)
    a, b = _binary_operands(input, other, "where")
    if type(cond) is not type(a.data):
        if getattr(cond, "ndim", 1) == 0 or isinstance(cond, np.ndarray):
            from .. import backends
            cond = backends._by_array_type[type(a.data)].asarray(cond)
    _check_broadcast("where", a, b)
    sa = np.broadcast_shapes(a.data.shape, b.data.shape)
    try:
        np.broadcast_shapes(sa, cond.shape)
    except ValueError:
        raise RuntimeError(f"where: condition of shape {tuple(cond.shape)} does not broadcast with "
                           f"{tuple(a.data.shape)} and {tuple(b.data.shape)}") from None
    return Where.apply(a, b, cond=cond)


def _coerce_scalar(v, like):
    if isinstance(v, Tensor):
        return v
    from ..dtypes import default_float_dtype
    dt = default_float_dtype() if isinstance(v, float) else np.dtype(np.int64)
    return _const_like(v, like, dtype=dt)


def nonzero(x, as_tuple=False):
    xp = _xp_of(x)
    if x.data.ndim == 0:  # as PyTorch: (1, 0) / (0, 0) indices, or one index array as a tuple
        k = int(bool(x.data))
        if as_tuple:
            return (_new_tensor(xp.zeros((k,), dtype=np.int64)),)
        return _new_tensor(xp.zeros((k, 0), dtype=np.int64))
    idx = xp.nonzero(x.data)
    if as_tuple:
        return tuple(_new_tensor(i.astype(np.int64)) for i in idx)
    return _new_tensor(xp.stack(idx, axis=1).astype(np.int64) if len(idx) else xp.zeros((0, 0), np.int64))


# ----------------------------------------------------------------------------- non-differentiable
def _nodiff(name, fn):
    def op(a, b=None):
        if b is None:
            xp = _xp_of(a)
            return _new_tensor(xp.asarray(fn(xp, a.data)))
        a, b = _binary_operands(a, b, name)
        _check_broadcast(name, a, b)
        xp = _xp_of(a)
        return _new_tensor(xp.asarray(fn(xp, a.data, b.data)))
    op.__name__ = name
    return op


eq = _nodiff("eq", lambda xp, a, b: a == b)
ne = _nodiff("ne", lambda xp, a, b: a != b)
lt = _nodiff("lt", lambda xp, a, b: a < b)
le = _nodiff("le", lambda xp, a, b: a <= b)
gt = _nodiff("gt", lambda xp, a, b: a > b)
ge = _nodiff("ge", lambda xp, a, b: a >= b)
logical_and = _nodiff("logical_and", lambda xp, a, b: xp.logical_and(a, b))
logical_or = _nodiff("logical_or", lambda xp, a, b: xp.logical_or(a, b))
logical_xor = _nodiff("logical_xor", lambda xp, a, b: xp.logical_xor(a, b))
logical_not = _nodiff("logical_not", lambda xp, a: xp.logical_not(a))
isnan = _nodiff("isnan", lambda xp, a: xp.isnan(a))
isinf = _nodiff("isinf", lambda xp, a: xp.isinf(a))
isfinite = _nodiff("isfinite", lambda xp, a: xp.isfinite(a))


class _Rounding(Function):
    """A piecewise-constant op (floor, ceil, round, trunc, division with a rounding mode): the output
    takes part in autograd like PyTorch's (requires_grad follows the inputs) and the gradient is zero."""

    @staticmethod
    def forward(ctx, *arrays, fn):
        ctx.n = len(arrays)
        return ctx.backend.xp.asarray(fn(ctx.backend.xp, *arrays))

    @staticmethod
    def backward(ctx, g):
        z = mul_const(g, 0)
        return (z,) * ctx.n if ctx.n > 1 else z


def _rounding(name, fn):
    def op(x):
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: expected a Tensor, got {type(x).__name__}")
        if x.data.dtype.kind not in "fc":  # integers and bools are already whole: a copy, as PyTorch
            return _new_tensor(x.data.copy())
        return _Rounding.apply(x, fn=fn)
    op.__name__ = name
    return op


floor = _rounding("floor", lambda xp, a: xp.floor(a))
ceil = _rounding("ceil", lambda xp, a: xp.ceil(a))
trunc = _rounding("trunc", lambda xp, a: xp.trunc(a))
_round0 = _rounding("round", lambda xp, a: xp.round(a))


def round(x, decimals=0):
    """Round half to even (as torch.round); `decimals` rounds to that many decimal places."""
    if decimals == 0:
        return _round0(x)
    if not isinstance(x, Tensor):
        raise TypeError(f"round: expected a Tensor, got {type(x).__name__}")
    if x.data.dtype.kind not in "fc":
        return _new_tensor(x.data.copy())
    return _Rounding.apply(x, fn=lambda xp, a: xp.round(a, decimals))


def bitwise_not(x):
    xp = _xp_of(x)
    return _new_tensor(xp.asarray(xp.logical_not(x.data) if x.data.dtype == np.bool_ else xp.invert(x.data)))


def remainder(a, b):
    """Python-style modulo (sign of the divisor), as torch.remainder. Integer operands are computed
    exactly in integers; for floats the gradient is (1, -floor(a / b)) as PyTorch's."""
    a, b = _binary_operands(a, b, "remainder")
    _check_broadcast("remainder", a, b)
    xp = _xp_of(a)
    if a.data.dtype.kind not in "fc":
        return _new_tensor(xp.asarray(xp.remainder(a.data, b.data)))
    return sub(a, mul(_new_tensor(xp.asarray(xp.floor_divide(a.data, b.data))), b))


def _trunc_div(xp, a, b):
    if a.dtype.kind in "fc":
        return xp.trunc(a / b)
    q = xp.floor_divide(a, b)  # integers: floor, then one up where the signs differ and it was inexact
    return q + ((xp.remainder(a, b) != 0) & ((a < 0) != (b < 0))).astype(q.dtype)


def floor_divide(a, b):
    """Floor division, as torch.floor_divide / `//` (Python semantics for floats and integers)."""
    return div(a, b, rounding_mode="floor")


def allclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False):
    xp = _xp_of(a)
    return bool(xp.allclose(a.data, b.data if isinstance(b, Tensor) else b, rtol=rtol, atol=atol,
                            equal_nan=equal_nan))


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Elementwise |a - b| <= atol + rtol * |b| (bool tensor), as torch.isclose."""
    a, b = _binary_operands(a, b, "isclose")
    _check_broadcast("isclose", a, b)
    xp = _xp_of(a)
    return _new_tensor(xp.asarray(xp.isclose(a.data, b.data, rtol=rtol, atol=atol, equal_nan=equal_nan)))


def equal(a, b):
    return tuple(a.shape) == tuple(b.shape) and bool((a.data == b.data).all())


# ----------------------------------------------------------------------------- more math (PyTorch names)
Tan, tan = _unary("Tan", lambda xp, a: xp.tan(a),
                  lambda ctx, g: mul(g, add(mul(ctx.output(), ctx.output()), 1.0)),
                  lambda ctx, g: g * (ctx.output_data() * ctx.output_data() + 1.0), save_output=True)
Asin, asin = _unary("Asin", lambda xp, a: xp.arcsin(a),
                    lambda ctx, g: mul(g, rsqrt(rsub(mul(_x(ctx), _x(ctx)), 1.0))),
                    lambda ctx, g: g / ctx.backend.xp.sqrt(1.0 - _xd(ctx) * _xd(ctx)), save_inputs=(0,))
Acos, acos = _unary("Acos", lambda xp, a: xp.arccos(a),
                    lambda ctx, g: neg(mul(g, rsqrt(rsub(mul(_x(ctx), _x(ctx)), 1.0)))),
                    lambda ctx, g: -g / ctx.backend.xp.sqrt(1.0 - _xd(ctx) * _xd(ctx)), save_inputs=(0,))
Atan, atan = _unary("Atan", lambda xp, a: xp.arctan(a),
                    lambda ctx, g: div(g, add(mul(_x(ctx), _x(ctx)), 1.0)),
                    lambda ctx, g: g / (_xd(ctx) * _xd(ctx) + 1.0), save_inputs=(0,))
Sinh, sinh = _unary("Sinh", lambda xp, a: xp.sinh(a), lambda ctx, g: mul(g, cosh(_x(ctx))),
                    lambda ctx, g: g * ctx.backend.xp.cosh(_xd(ctx)), save_inputs=(0,))
Cosh, cosh = _unary("Cosh", lambda xp, a: xp.cosh(a), lambda ctx, g: mul(g, sinh(_x(ctx))),
                    lambda ctx, g: g * ctx.backend.xp.sinh(_xd(ctx)), save_inputs=(0,))
Log2, log2 = _unary("Log2", lambda xp, a: xp.log2(a), lambda ctx, g: div(g, mul(_x(ctx), math.log(2.0))),
                    lambda ctx, g: g / (_xd(ctx) * math.log(2.0)), save_inputs=(0,))
Log10, log10 = _unary("Log10", lambda xp, a: xp.log10(a), lambda ctx, g: div(g, mul(_x(ctx), math.log(10.0))),
                      lambda ctx, g: g / (_xd(ctx) * math.log(10.0)), save_inputs=(0,))
Exp2, exp2 = _unary("Exp2", lambda xp, a: xp.exp2(a), lambda ctx, g: mul(g, mul(ctx.output(), math.log(2.0))),
                    lambda ctx, g: g * (ctx.output_data() * math.log(2.0)), save_output=True)

absolute = abs
negative = neg
subtract = sub
multiply = mul
divide = div
true_divide = div
greater = gt
greater_equal = ge
less = lt
less_equal = le
not_equal = ne


class Atan2(Function):
    save_inputs = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        return ctx.backend.xp.arctan2(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        r = add(mul(a, a), mul(b, b))
        zero = _xp_of(r).asarray(r.data == 0)
        r = add(r, _new_tensor(zero.astype(r.data.dtype)))  # 0 gradient at the origin, as PyTorch
        return mul_const(mul(g, div(b, r)), ~zero), mul_const(neg(mul(g, div(a, r))), ~zero)


def atan2(a, b):
    """atan2(a, b) = angle of (b, a); integer inputs give the default float dtype, as PyTorch."""
    a, b = _binary_operands(a, b, "atan2")
    if a.data.dtype.kind not in "fc":
        a, b = _float_input(a, "atan2"), _float_input(b, "atan2")
    _check_broadcast("atan2", a, b)
    return Atan2.apply(a, b)


arctan2 = atan2


def fmod(a, b):
    """C-style remainder (sign of the dividend), as torch.fmod; gradient (1, -trunc(a / b))."""
    a, b = _binary_operands(a, b, "fmod")
    _check_broadcast("fmod", a, b)
    xp = _xp_of(a)
    if a.data.dtype.kind not in "fc":
        return _new_tensor(xp.asarray(xp.fmod(a.data, b.data)))
    return sub(a, mul(_new_tensor(xp.asarray(xp.trunc(a.data / b.data))), b))


def frac(x):
    """x - trunc(x) (gradient 1)."""
    return sub(x, trunc(x))


def lerp(start, end, weight):
    """start + weight * (end - start)."""
    return add(start, mul(weight, sub(end, start)))


def addcmul(input, tensor1, tensor2, value=1):
    return add(input, mul(mul(tensor1, tensor2), value))


def addcdiv(input, tensor1, tensor2, value=1):
    return add(input, mul(div(tensor1, tensor2), value))


def clamp_min(x, min):
    return clamp(x, min=min)


def clamp_max(x, max):
    return clamp(x, max=max)


def hypot(a, b):
    return sqrt(add(mul(a, a), mul(b, b)))


def erfc(x):
    return rsub(erf(x), 1.0)


def xlogy(x, y):
    """x * log(y), 0 where x == 0 (as torch.xlogy)."""
    if not isinstance(x, Tensor):
        x = _const_like(x, y, dtype=_float_input(y, "xlogy").data.dtype)
    if not isinstance(y, Tensor):
        y = _const_like(y, x, dtype=_float_input(x, "xlogy").data.dtype)
    x, y = _float_input(x, "xlogy"), _float_input(y, "xlogy")
    xp = _xp_of(x)
    zero = _new_tensor(xp.asarray(x.data == 0))
    safe_y = where(zero, 1.0, y)
    return where(zero, 0.0, mul(x, log(safe_y)))


def float_power(a, b):
    """pow in float64, as torch.float_power."""
    f64 = np.dtype(np.float64)
    a = cast(a, f64) if isinstance(a, Tensor) else float(a)
    b = cast(b, f64) if isinstance(b, Tensor) else float(b)
    return pow(a, b)


def logaddexp(a, b):
    """log(exp(a) + exp(b)) without overflow."""
    a, b = _binary_operands(a, b, "logaddexp")
    a, b = _float_input(a, "logaddexp"), _float_input(b, "logaddexp")
    _check_broadcast("logaddexp", a, b)
    xp = _xp_of(a)
    m = xp.maximum(a.data, b.data)
    m = _new_tensor(xp.asarray(xp.where(xp.isfinite(m), m, 0)).astype(a.data.dtype))
    return add(log(add(exp(sub(a, m)), exp(sub(b, m)))), m)


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    """Replace nan / +inf / -inf (defaults: 0, the dtype's max, its min); the gradient flows where x
    is finite, as PyTorch."""
    xp = _xp_of(x)
    if x.data.dtype.kind not in "fc":
        return _new_tensor(x.data.copy())
    fixed = xp.nan_to_num(x.data, nan=nan, posinf=posinf, neginf=neginf)
    return where(_new_tensor(xp.asarray(xp.isfinite(x.data))), x, _new_tensor(xp.asarray(fixed)))


signbit = _nodiff("signbit", lambda xp, a: xp.signbit(a))
isposinf = _nodiff("isposinf", lambda xp, a: xp.isposinf(a) if a.dtype.kind == "f" else xp.zeros(a.shape, bool))
isneginf = _nodiff("isneginf", lambda xp, a: xp.isneginf(a) if a.dtype.kind == "f" else xp.zeros(a.shape, bool))


def heaviside(x, values):
    """0 where x < 0, `values` where x == 0, 1 where x > 0 (not differentiable, as PyTorch)."""
    xp = _xp_of(x)
    v = values.data if isinstance(values, Tensor) else values
    return _new_tensor(xp.asarray(xp.heaviside(x.data, v)).astype(x.data.dtype))


sgn = sign


def deg2rad(x):
    return mul(_float_input(x, "deg2rad"), math.pi / 180.0)


def rad2deg(x):
    return mul(_float_input(x, "rad2deg"), 180.0 / math.pi)


arccos = acos
arcsin = asin
arctan = atan


def logit(x, eps=None):
    """log(x / (1 - x)), with x clamped to [eps, 1 - eps] when eps is given."""
    x = _float_input(x, "logit")
    if eps is not None:
        x = clamp(x, eps, 1.0 - eps)
    return log(div(x, rsub(x, 1.0)))


def sinc(x):
    """sin(pi x) / (pi x), 1 at 0."""
    x = _float_input(x, "sinc")
    xp = _xp_of(x)
    zero = _new_tensor(xp.asarray(x.data == 0))
    px = mul(where(zero, 1.0, x), math.pi)
    return where(zero, 1.0, div(sin(px), px))


# ----------------------------------------------------------------------------- bitwise (integer and bool tensors)
def _bitwise(name, fn):
    def op(a, b):
        a, b = _binary_operands(a, b, name)
        if a.data.dtype.kind not in "biu":
            raise RuntimeError(f"{name}: not implemented for {a.data.dtype} tensors (integer or bool only), as PyTorch")
        _check_broadcast(name, a, b)
        xp = _xp_of(a)
        return _new_tensor(xp.asarray(fn(xp, a.data, b.data)))
    op.__name__ = name
    return op


bitwise_and = _bitwise("bitwise_and", lambda xp, a, b: xp.bitwise_and(a, b))
bitwise_or = _bitwise("bitwise_or", lambda xp, a, b: xp.bitwise_or(a, b))
bitwise_xor = _bitwise("bitwise_xor", lambda xp, a, b: xp.bitwise_xor(a, b))
bitwise_left_shift = _bitwise("bitwise_left_shift", lambda xp, a, b: xp.left_shift(a, b))
bitwise_right_shift = _bitwise("bitwise_right_shift", lambda xp, a, b: xp.right_shift(a, b))
