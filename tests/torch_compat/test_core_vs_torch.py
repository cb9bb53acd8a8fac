"""autodiff's core op library against PyTorch on the same inputs.

Each case is a function `f(lib, *tensors)` run once with `lib=autodiff` and once with `lib=torch`:
forward values, dtypes, shapes, return types (named tuples, tuples) and, for floating outputs, the
gradients of `sum(out * cotangent)` with a random cotangent are compared.
"""
import math

import numpy as np
import pytest

import autodiff as ad

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True, params=["numpy", "numba"])
def _cpu_backend(request):
    """Every comparison runs once per CPU backend (the kernels differ: numba overrides some slots)."""
    from autodiff import backends
    prev = backends.get_cpu_backend().name
    try:
        ad.set_backend(request.param)
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"{request.param} backend unavailable: {e}")
    try:
        yield request.param
    finally:
        ad.set_backend(prev)

TOL = {np.float16: dict(rtol=1e-3, atol=1e-3), np.float32: dict(rtol=1.3e-5, atol=1e-5),
       np.float64: dict(rtol=1e-7, atol=1e-7)}


def _tol(dtype):
    return TOL.get(np.dtype(dtype).type, dict(rtol=0, atol=0))


def _to_np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().numpy(force=True)  # force: torch gives some zero gradients as ZeroTensors
    return np.asarray(x.detach().numpy())


def _same(a, b, path="out"):
    """Structural and numerical equality of an autodiff result `a` and a torch result `b`."""
    if isinstance(b, torch.Tensor):
        assert isinstance(a, ad.Tensor), f"{path}: expected a Tensor, got {type(a).__name__}"
        assert tuple(a.shape) == tuple(b.shape), f"{path}: shape {tuple(a.shape)} != torch {tuple(b.shape)}"
        an, bn = _to_np(a), _to_np(b)
        assert an.dtype == bn.dtype, f"{path}: dtype {an.dtype} != torch {bn.dtype}"
        if an.dtype.kind == "f":
            np.testing.assert_allclose(an, bn, equal_nan=True, err_msg=path, **_tol(an.dtype))
        else:
            np.testing.assert_array_equal(an, bn, err_msg=path)
    elif isinstance(b, tuple):
        assert isinstance(a, tuple), f"{path}: expected a tuple, got {type(a).__name__}"
        assert len(a) == len(b), f"{path}: {len(a)} items != torch {len(b)}"
        if hasattr(b, "_fields") or type(b).__module__.startswith("torch.return_types"):
            for name in ("values", "indices", "mean", "var", "std"):
                if hasattr(b, name):
                    assert hasattr(a, name), f"{path}: missing named field {name!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(b, list):
        assert isinstance(a, list), f"{path}: expected a list, got {type(a).__name__}"
        assert len(a) == len(b)
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    else:
        assert type(a) is type(b), f"{path}: type {type(a).__name__} != torch {type(b).__name__}"
        if isinstance(b, float) and math.isnan(b):
            assert math.isnan(a)
        else:
            assert a == pytest.approx(b) if isinstance(b, float) else a == b, f"{path}: {a} != {b}"


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [out]


def check(f, *arrays, grad=True, tf=None, seed=0):
    """Run f on autodiff and torch with the same inputs (numpy arrays or python values); compare
    outputs and input gradients."""
    def mk(lib, a):
        if isinstance(a, np.ndarray):
            rg = grad and a.dtype.kind == "f"
            return lib.tensor(a.copy(), requires_grad=rg) if lib is torch else ad.tensor(a.copy(),
                                                                                       requires_grad=rg)
        return a
    xa = [mk(ad, a) for a in arrays]
    xt = [mk(torch, a) for a in arrays]
    oa = f(ad, *xa)
    ot = (tf or f)(torch, *xt)
    _same(oa, ot)
    if not grad:
        return oa, ot
    fa = [o for o in _flat(oa) if isinstance(o, ad.Tensor) and o.requires_grad]
    ft = [o for o in _flat(ot) if isinstance(o, torch.Tensor) and o.requires_grad]
    assert len(fa) == len(ft), "differentiable outputs differ"
    if not ft:
        return oa, ot
    rng = np.random.default_rng(seed)
    la, lt = 0, 0
    for a, t in zip(fa, ft):
        c = rng.standard_normal(tuple(t.shape)).astype(_to_np(t).dtype)
        la = (a * ad.tensor(c)).sum() + la
        lt = (t * torch.tensor(c)).sum() + lt
    la.backward()
    lt.backward()
    for i, (a, t) in enumerate(zip(xa, xt)):
        if isinstance(t, torch.Tensor) and t.requires_grad:
            if t.grad is None:
                assert a.grad is None or not np.any(_to_np(a.grad)), f"grad[{i}]: torch has none"
            else:
                assert a.grad is not None, f"grad[{i}]: missing"
                _same(a.grad, t.grad, f"grad[{i}]")
    return oa, ot


def R(*shape, dtype=np.float64, seed=0, lo=None):
    a = np.random.default_rng(seed + len(shape)).standard_normal(shape).astype(dtype)
    if lo is not None:
        a = np.abs(a) + lo
    return a


F_DT = [np.float32, np.float64]

TF = None


def _F():
    return torch.nn.functional


# ----------------------------------------------------------------------------- unary math
UNARY = {
    "neg": lambda m, x: -x, "abs": lambda m, x: m.abs(x), "exp": lambda m, x: m.exp(x),
    "log": lambda m, x: m.log(x.abs() + 0.5), "log1p": lambda m, x: m.log1p(x.abs()),
    "expm1": lambda m, x: m.expm1(x), "sqrt": lambda m, x: m.sqrt(x.abs() + 0.1),
    "rsqrt": lambda m, x: m.rsqrt(x.abs() + 0.1), "square": lambda m, x: m.square(x),
    "reciprocal": lambda m, x: m.reciprocal(x), "sin": lambda m, x: m.sin(x), "cos": lambda m, x: m.cos(x),
    "tanh": lambda m, x: m.tanh(x), "sigmoid": lambda m, x: m.sigmoid(x), "relu": lambda m, x: m.relu(x),
    "sign": lambda m, x: m.sign(x), "erf": lambda m, x: m.erf(x), "floor": lambda m, x: m.floor(x * 3),
    "ceil": lambda m, x: m.ceil(x * 3), "round": lambda m, x: m.round(x * 3), "trunc": lambda m, x: m.trunc(x * 3),
    "pow2": lambda m, x: x ** 2, "pow_half": lambda m, x: (x.abs() + 0.1) ** 0.5, "pow3": lambda m, x: m.pow(x, 3),
    "rpow": lambda m, x: 2.0 ** x, "silu": lambda m, x: m.nn.functional.silu(x) if m is torch else m.silu(x),
    "softplus": lambda m, x: (m.nn.functional if m is torch else m).softplus(x),
    "softplus_bt": lambda m, x: (m.nn.functional if m is torch else m).softplus(x * 10, beta=2, threshold=5),
    "elu": lambda m, x: (m.nn.functional if m is torch else m).elu(x, alpha=0.7),
    "leaky_relu": lambda m, x: (m.nn.functional if m is torch else m).leaky_relu(x, 0.2),
    "gelu": lambda m, x: (m.nn.functional if m is torch else m).gelu(x),
    "gelu_tanh": lambda m, x: (m.nn.functional if m is torch else m).gelu(x, approximate="tanh"),
    "clamp": lambda m, x: m.clamp(x, -0.5, 0.5), "clamp_min": lambda m, x: x.clamp(min=0.1),
    "clamp_max": lambda m, x: x.clamp(max=0.1), "clip": lambda m, x: m.clip(x, -0.3, 0.2),
    "softmax": lambda m, x: x.softmax(-1), "log_softmax": lambda m, x: x.log_softmax(0),
}


@pytest.mark.parametrize("dt", F_DT)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary(name, dt):
    x = R(3, 4, dtype=dt)
    x[0, 0] = 0.0
    check(UNARY[name], x)


def test_relu_kinks_and_ties():
    x = np.array([-1.0, 0.0, 2.0, 0.0, 1.0])
    check(lambda m, x: m.relu(x), x)
    check(lambda m, x: m.clamp(x, 0.0, 1.0), x)
    check(lambda m, x: m.abs(x), x)
    check(lambda m, x: (m.nn.functional if m is torch else m).leaky_relu(x), x)
    check(lambda m, x: (m.nn.functional if m is torch else m).elu(x), x)


@pytest.mark.parametrize("dt", [np.int64, np.int32, np.bool_])
def test_unary_int(dt):
    x = np.array([[-3, 0, 2], [5, -1, 7]]).astype(dt)
    check(lambda m, x: m.abs(x) if dt is not np.bool_ else x.logical_not(), x)
    if dt is not np.bool_:
        check(lambda m, x: -x, x)
        check(lambda m, x: m.sign(x), x)
        check(lambda m, x: x ** 2, x)
        check(lambda m, x: m.exp(x), x)
        check(lambda m, x: m.sqrt(m.abs(x)), x)
        check(lambda m, x: m.sigmoid(x), x)
        check(lambda m, x: m.clamp(x, -1, 3), x)
        check(lambda m, x: m.clamp(x, -1.5, 3), x)


# ----------------------------------------------------------------------------- binary & promotion
BIN = {
    "add": lambda m, a, b: a + b, "sub": lambda m, a, b: a - b, "mul": lambda m, a, b: a * b,
    "div": lambda m, a, b: a / b, "add_alpha": lambda m, a, b: m.add(a, b, alpha=2),
    "sub_alpha": lambda m, a, b: m.sub(a, b, alpha=3), "pow": lambda m, a, b: m.abs(a) ** b,
    "maximum": lambda m, a, b: m.maximum(a, b), "minimum": lambda m, a, b: m.minimum(a, b),
    "where": lambda m, a, b: m.where(a > b, a, b), "floordiv": lambda m, a, b: a // b,
    "remainder": lambda m, a, b: a % b, "div_floor": lambda m, a, b: m.div(a, b, rounding_mode="floor"),
    "div_trunc": lambda m, a, b: m.div(a, b, rounding_mode="trunc"),
}


@pytest.mark.parametrize("dt", F_DT)
@pytest.mark.parametrize("name", list(BIN))
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 1), (4,)), ((2, 3, 4), ()), ((), (2, 3))])
def test_binary(name, dt, shapes):
    a, b = R(*shapes[0], dtype=dt, seed=1), R(*shapes[1], dtype=dt, seed=2)
    if name in ("div", "floordiv", "remainder", "div_floor", "div_trunc"):
        b = np.where(np.abs(b) < 0.2, 0.5, b).astype(dt)
    # torch's floor_divide has no derivative (backward raises); ours is zero
    check(BIN[name], a, b, grad=name != "floordiv")


def test_max_min_ties():
    a = np.array([1.0, 2.0, 3.0, -1.0])
    b = np.array([1.0, 0.0, 3.0, -1.0])
    for name in ("maximum", "minimum"):
        check(BIN[name], a, b)
    check(lambda m, a: m.clamp(a, 1.0, 3.0), a)


DTS = [np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64]


@pytest.mark.parametrize("da", DTS)
@pytest.mark.parametrize("db", DTS)
def test_promotion_tensor_tensor(da, db):
    a = np.array([[1, 0, 3], [2, 1, 5]]).astype(da)
    b = np.array([1, 2, 1]).astype(db)
    for op in ("+", "*", "/", "<", "=="):
        if op in "+*" and da is np.bool_ and db is np.bool_:
            pass
        check(lambda m, a, b: eval(f"a {op} b"), a, b, grad=False)
    check(lambda m, a, b: m.maximum(a, b), a, b, grad=False)
    check(lambda m, a, b: m.where(a > 0, a, b), a, b, grad=False)
    if not (da is np.bool_ and db is np.bool_):
        check(lambda m, a, b: a - b if np.bool_ not in (da, db) else a * b, a, b, grad=False)


@pytest.mark.parametrize("dt", DTS)
@pytest.mark.parametrize("s", [2, 2.5, True, -3])
@pytest.mark.filterwarnings("ignore")
def test_promotion_tensor_scalar(dt, s):
    a = np.array([[1, 0, 3], [2, 1, 5]]).astype(dt)
    check(lambda m, a: a + s, a, grad=False)
    check(lambda m, a: s * a, a, grad=False)
    check(lambda m, a: a / s, a, grad=False)
    check(lambda m, a: s / (a + 1), a, grad=False)
    check(lambda m, a: a > s, a, grad=False)
    check(lambda m, a: a ** 2, a, grad=False)
    if dt is not np.bool_ and not isinstance(s, bool):
        check(lambda m, a: a - s, a, grad=False)
        check(lambda m, a: s - a, a, grad=False)
        check(lambda m, a: a ** 2, a, grad=False)
        check(lambda m, a: a // s, a, grad=False)
        check(lambda m, a: a % s, a, grad=False)


@pytest.mark.parametrize("dz", DTS)
@pytest.mark.parametrize("dd", DTS)
def test_promotion_zero_dim(dz, dd):
    z = np.array(2).astype(dz)
    d = np.array([1, 3]).astype(dd)
    check(lambda m, z, d: z * d, z, d, grad=False)
    check(lambda m, z, d: d + z, z, d, grad=False)


def test_int_division():
    a = np.array([7, -7, 6, -1])
    b = np.array([2, 2, -4, 3])
    check(lambda m, a, b: a / b, a, b)
    check(lambda m, a, b: a // b, a, b)
    check(lambda m, a, b: a % b, a, b)
    check(lambda m, a, b: a // 2.5, a, b)
    check(lambda m, a, b: m.div(a, 2.5, rounding_mode="trunc"), a, b)
    check(lambda m, a, b: m.div(a, b, rounding_mode="trunc"), a, b)
    check(lambda m, a, b: m.div(a, b, rounding_mode="floor"), a, b)
    check(lambda m, a, b: m.floor_divide(a, b), a, b)
    check(lambda m, a, b: m.remainder(a, b), a, b)
    check(lambda m, a, b: a % 3.5, a, b)
    check(lambda m, a, b: 7 // b, a, b)
    x = np.array([5.5, -5.5, 3.0])
    check(lambda m, x: m.remainder(x, -2.0), x)
    check(lambda m, x: x // -2.0, x, grad=False)
    check(lambda m, x: m.div(x, -2.0, rounding_mode="trunc"), x)
    big = np.array([2 ** 62 + 1, -(2 ** 62) - 3])
    check(lambda m, a: a // 3, big)
    check(lambda m, a: a % 7, big)
    check(lambda m, a: m.div(a, 3, rounding_mode="trunc"), big)


def test_bool_arithmetic():
    a = np.array([True, False, True])
    b = np.array([True, True, False])
    check(lambda m, a, b: a + b, a, b)
    check(lambda m, a, b: a * b, a, b)
    check(lambda m, a, b: a & b, a, b)
    check(lambda m, a, b: a | b, a, b)
    check(lambda m, a, b: a ^ b, a, b)
    check(lambda m, a, b: ~a, a, b)
    check(lambda m, a, b: a.sum(), a, b)
    check(lambda m, a, b: a + 1, a, b)
    check(lambda m, a, b: a * 1.5, a, b)
    with pytest.raises(Exception):
        ad.tensor(a) - ad.tensor(b)


@pytest.mark.parametrize("dt", [np.float32, np.int64, np.bool_])
def test_comparisons(dt):
    a = np.array([[1, 0, 3], [2, 1, 5]]).astype(dt)
    b = np.array([1, 2, 1]).astype(dt)
    for op in ("<", "<=", ">", ">=", "==", "!="):
        check(lambda m, a, b: eval(f"a {op} b"), a, b, grad=False)
    for fn in ("eq", "ne", "lt", "le", "gt", "ge"):
        check(lambda m, a, b: getattr(m, fn)(a, b), a, b, grad=False)
        check(lambda m, a, b: getattr(a, fn)(1), a, b, grad=False)
    check(lambda m, a, b: m.logical_and(a, b), a, b, grad=False)
    check(lambda m, a, b: m.logical_or(a, b), a, b, grad=False)
    check(lambda m, a, b: m.logical_xor(a, b), a, b, grad=False)
    check(lambda m, a, b: m.logical_not(a), a, b, grad=False)
    check(lambda m, a, b: m.equal(a, a), a, b, grad=False)
    check(lambda m, a, b: m.isclose(a, a), a, b, grad=False)
    check(lambda m, a, b: m.allclose(a, a), a, b, grad=False)


def test_nan_inf_predicates():
    x = np.array([1.0, np.nan, np.inf, -np.inf, 0.0])
    for fn in ("isnan", "isinf", "isfinite"):
        check(lambda m, x: getattr(m, fn)(x), x, grad=False)
    check(lambda m, x: m.nonzero(x), x, grad=False)
    check(lambda m, x: m.nonzero(x, as_tuple=True), x, grad=False)
    x2 = np.array([[0, 1], [2, 0]])
    check(lambda m, x: m.nonzero(x), x2, grad=False)
    check(lambda m, x: m.nonzero(x, as_tuple=True), x2, grad=False)


@pytest.mark.parametrize("lo,hi", [("t", "t"), ("t", None), (None, "t"), (-0.5, "t"), ("t", 0.5)])
def test_clamp_tensor_bounds(lo, hi):
    x = R(3, 4, seed=3)
    lo_a = R(4, seed=4) - 0.5 if lo == "t" else lo
    hi_a = R(3, 1, seed=5) + 0.5 if hi == "t" else hi
    args = [a for a in (lo_a, hi_a) if isinstance(a, np.ndarray)]

    def f(m, x, *ts):
        it = iter(ts)
        lo_ = next(it) if lo == "t" else lo
        hi_ = next(it) if hi == "t" else hi
        if m is torch and (lo_ is None or hi_ is None) is False:  # torch takes no mixed number/tensor bounds
            lo_, hi_ = [torch.tensor(v, dtype=x.dtype) if not isinstance(v, torch.Tensor) else v for v in (lo_, hi_)]
        return m.clamp(x, lo_, hi_)
    check(f, x, *args)


def test_clamp_tensor_bound_ties():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    lo = np.array([0.0, 0.5, 2.0, 4.0])
    hi = np.array([1.0, 1.0, 2.0, 5.0])
    check(lambda m, x, lo, hi: m.clamp(x, lo, hi), x, lo, hi)
    check(lambda m, x, lo, hi: x.clamp(min=lo), x, lo, hi)
    check(lambda m, x, lo, hi: x.clamp(max=hi), x, lo, hi)
    check(lambda m, x, lo, hi: m.clamp(x, hi, hi), x, lo, hi)  # min == max
    check(lambda m, x, lo, hi: m.clamp(x, hi, lo), x, lo, hi)  # min > max


def test_grad_edge_cases():
    x = np.array([0.0, 1.0, -2.0, 1.0, 3.0, 3.0])
    y = np.array([0.0, 2.0, 0.5, 1.0, 0.0, -1.0])
    check(lambda m, x, y: m.std(m.ones(3, dtype=x.dtype) * x[1]), x, y)  # constant input: zero grad, not nan
    check(lambda m, x, y: m.atan2(x, y), x, y)  # the origin: zero grad
    check(lambda m, x, y: m.median(x), x, y)  # ties share the gradient
    check(lambda m, x, y: m.kthvalue(x, 2), x, y)
    check(lambda m, x, y: x.reshape(2, 3).kthvalue(3, 1, keepdim=True), x, y)
    check(lambda m, x, y: m.dist(x, y), x, y)
    check(lambda m, x, y: m.dist(x, y, 1), x, y)
    check(lambda m, x, y: m.sqrt(x.abs()), x, y)
    check(lambda m, x, y: m.abs(x) ** y, x, y)
    check(lambda m, x, y: x ** 0, x, y)
    check(lambda m, x, y: m.log_softmax(m.where(x > 2, x, m.full_like(x, float("-inf"))), 0), x, y)
    check(lambda m, x, y: (m.nn.functional if m is torch else m).softplus(x, beta=2, threshold=3), x, y)


MORE_UNARY = {
    "tan": lambda m, x: m.tan(x), "asin": lambda m, x: m.asin(x.tanh() * 0.9),
    "acos": lambda m, x: m.acos(x.tanh() * 0.9), "atan": lambda m, x: m.atan(x), "sinh": lambda m, x: m.sinh(x),
    "cosh": lambda m, x: m.cosh(x), "log2": lambda m, x: m.log2(x.abs() + 0.1),
    "log10": lambda m, x: x.abs().add(0.1).log10(), "exp2": lambda m, x: m.exp2(x),
    "frac": lambda m, x: m.frac(x * 3), "erfc": lambda m, x: m.erfc(x),
    "nan_to_num": lambda m, x: m.nan_to_num(m.log(x)), "nan_to_num_args": lambda m, x: m.log(x).nan_to_num(1.0, 2.0, -2.0),
    "clamp_min": lambda m, x: m.clamp_min(x, 0.1), "clamp_max": lambda m, x: x.clamp_max(0.1),
    "negative": lambda m, x: m.negative(x), "absolute": lambda m, x: m.absolute(x),
    "signbit": lambda m, x: m.signbit(x), "isposinf": lambda m, x: m.isposinf(1 / x),
    "heaviside": lambda m, x: m.heaviside(x, m.tensor(0.5, dtype=x.dtype)),
}


@pytest.mark.parametrize("name", list(MORE_UNARY))
def test_more_unary(name):
    x = R(3, 4, seed=31)
    x[0, 0] = 0.0
    check(MORE_UNARY[name], x, grad=name != "heaviside")  # torch: heaviside has no derivative


MORE_BIN = {
    "atan2": lambda m, a, b: m.atan2(a, b), "fmod": lambda m, a, b: m.fmod(a, b),
    "fmod_s": lambda m, a, b: a.fmod(1.5), "lerp": lambda m, a, b: m.lerp(a, b, 0.3),
    "lerp_t": lambda m, a, b: a.lerp(b, b.sigmoid()), "addcmul": lambda m, a, b: m.addcmul(a, a, b, value=0.5),
    "addcdiv": lambda m, a, b: a.addcdiv(a, b, value=2), "hypot": lambda m, a, b: m.hypot(a, b),
    "xlogy": lambda m, a, b: m.xlogy(a.relu(), b.abs()), "logaddexp": lambda m, a, b: m.logaddexp(a, b),
    "float_power": lambda m, a, b: m.float_power(a.abs(), b), "subtract": lambda m, a, b: m.subtract(a, b, alpha=2),
    "multiply": lambda m, a, b: m.multiply(a, b), "divide": lambda m, a, b: m.divide(a, b),
    "true_divide": lambda m, a, b: a.true_divide(b), "greater": lambda m, a, b: m.greater(a, b),
    "less_equal": lambda m, a, b: m.less_equal(a, b),
}


@pytest.mark.parametrize("dt", F_DT)
@pytest.mark.parametrize("name", list(MORE_BIN))
def test_more_binary(name, dt):
    a, b = R(3, 4, dtype=dt, seed=32), R(4, dtype=dt, seed=33)
    b = np.where(np.abs(b) < 0.2, 0.5, b).astype(dt)
    check(MORE_BIN[name], a, b)


def test_int_fmod():
    check(lambda m, a: m.fmod(a, 3), np.array([-7, 7, 5, -1]))
    check(lambda m, a: m.fmod(a, -3), np.array([-7, 7, 5, -1]))


def test_where_variants():
    c = np.array([[True, False, True], [False, False, True]])
    x = R(2, 3, seed=1)
    y = R(3, seed=2)
    check(lambda m, c, x, y: m.where(c, x, y), c, x, y)
    check(lambda m, c, x, y: m.where(c, x, 0.0), c, x, y)
    check(lambda m, c, x, y: m.where(c, 1.0, y), c, x, y)
    check(lambda m, c, x, y: m.where(c), c, x, y)
    xi = np.array([1, 2, 3])
    check(lambda m, c, x: m.where(c, x, 0.5), c, xi)
    check(lambda m, c, x, y: m.where(c, x.float(), y), c, x, y)


# ----------------------------------------------------------------------------- reductions
DIMS = [None, 0, -1, (0, 2), (-1, 0), 1]


@pytest.mark.parametrize("dt", F_DT)
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("name", ["sum", "mean", "prod", "amax", "amin", "logsumexp", "var", "std", "norm"])
def test_reduce(name, dim, keepdim, dt):
    x = R(2, 3, 4, dtype=dt, seed=7)
    if name in ("amax", "amin"):
        x[0, 1, :2] = 5.0 if name == "amax" else -5.0  # ties
        x[1, 2, 1:3] = 5.0 if name == "amax" else -5.0
    if name == "prod":
        x[0, 0, 0] = 0.0
    if dim is None:
        if name in ("logsumexp",):
            pytest.skip("torch.logsumexp needs dim")
        if keepdim and name in ("sum", "mean", "prod", "var", "std"):
            f = {"sum": lambda m, x: x.sum(dim=(0, 1, 2), keepdim=True)}.get(name)
            if f is None:
                pytest.skip("no keepdim without dim")
            check(f, x)
            return
        if name in ("amax", "amin", "norm"):
            check(lambda m, x: getattr(x, name)(dim=dim, keepdim=keepdim) if name != "norm"
                  else x.norm(dim=dim, keepdim=keepdim), x)
        else:
            check(lambda m, x: getattr(x, name)(), x)
        return
    if name == "prod" and isinstance(dim, tuple):
        pytest.skip("torch.prod takes one dim")
    if name == "norm":
        check(lambda m, x: m.norm(x, dim=dim, keepdim=keepdim), x)
    else:
        check(lambda m, x: getattr(m, name)(x, dim, keepdim=keepdim), x)


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_dim(name, dim, keepdim):
    x = np.array([[1.0, 3.0, 3.0], [2.0, -1.0, 2.0], [0.5, 0.5, 0.5]])
    check(lambda m, x: getattr(m, name)(x, dim, keepdim=keepdim), x)
    check(lambda m, x: getattr(x, name)(dim=dim, keepdim=keepdim), x)
    check(lambda m, x: getattr(m, "arg" + name)(x, dim, keepdim=keepdim), x)
    check(lambda m, x: getattr(m, "arg" + name)(x), x)
    check(lambda m, x: getattr(m, name)(x), x)  # full reduction: ties split evenly


def test_max_binary_form():
    a, b = R(3, 4, seed=1), R(4, seed=2)
    check(lambda m, a, b: m.max(a, b), a, b)
    check(lambda m, a, b: m.min(a, b), a, b)


@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("dim", [None, 1, (0, 1)])
def test_var_std(correction, dim):
    x = R(3, 5, seed=4)
    check(lambda m, x: m.var(x, dim=dim, correction=correction), x)
    check(lambda m, x: m.std(x, dim=dim, correction=correction), x)
    check(lambda m, x: m.var_mean(x, dim=dim, correction=correction), x)
    check(lambda m, x: m.std_mean(x, dim=dim, correction=correction, keepdim=True), x)
    check(lambda m, x: x.var(dim, unbiased=False) if dim is not None else x.var(unbiased=False), x)
    check(lambda m, x: x.std(unbiased=True), x)


def test_logsumexp_inf_rows():
    x = np.array([[-np.inf, -np.inf, -np.inf], [1.0, -np.inf, 2.0], [np.inf, 1.0, 0.0]])
    check(lambda m, x: m.logsumexp(x[:2], 1), x)
    check(lambda m, x: m.logsumexp(x, dim=1), x, grad=False)
    check(lambda m, x: m.logsumexp(x, dim=0, keepdim=True), x, grad=False)


@pytest.mark.parametrize("p", [2, 1, 3, float("inf"), -float("inf"), 0, "fro", 0.5])
@pytest.mark.parametrize("dim", [None, 1, (0, 1)])
def test_norm(p, dim):
    x = R(3, 4, seed=9)
    x[1] = 0.0
    if p == "fro" and dim == 1:
        pytest.skip("fro on one dim")
    if p not in (2, "fro") and p != 0 and dim is None:
        check(lambda m, x: m.norm(x, p), x)
    check(lambda m, x: m.norm(x, p=p, dim=dim), x)
    check(lambda m, x: x.norm(p=p, dim=dim, keepdim=True), x)


def test_norm_zero_vector_grad():
    check(lambda m, x: x.norm(), np.zeros(4))
    check(lambda m, x: x.norm(dim=1), np.zeros((2, 3)))


@pytest.mark.parametrize("dt", [np.int64, np.int32, np.uint8, np.bool_])
def test_int_reductions(dt):
    x = np.array([[1, 0, 3], [2, 1, 5]]).astype(dt)
    check(lambda m, x: x.sum(), x)
    check(lambda m, x: x.sum(0), x)
    check(lambda m, x: m.sum(x, dim=1, keepdim=True), x)
    check(lambda m, x: x.prod(), x)
    check(lambda m, x: x.prod(1), x)
    check(lambda m, x: x.cumsum(1), x)
    check(lambda m, x: x.amax(0), x)
    check(lambda m, x: x.max(), x)
    check(lambda m, x: x.max(1), x)
    if dt is not np.bool_:  # torch: argmax(): does not support bool input
        check(lambda m, x: x.argmax(), x)
        check(lambda m, x: x.argmax(0), x)
    check(lambda m, x: x.all(), x)
    check(lambda m, x: x.any(1), x)
    check(lambda m, x: m.all(x, dim=0), x)
    check(lambda m, x: x.sum(dtype=m.float64), x)
    check(lambda m, x: x.mean(dtype=m.float32), x)
    if dt is not np.bool_:
        with pytest.raises(Exception):
            ad.tensor(x).mean()


def test_prod_zeros_grad():
    x = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 4.0], [1.0, 2.0, 3.0]])
    check(lambda m, x: x.prod(1), x)
    check(lambda m, x: x.prod(), x)
    check(lambda m, x: x.prod(0, keepdim=True), x)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumsum(dim):
    check(lambda m, x: m.cumsum(x, dim), R(3, 4, seed=2))
    check(lambda m, x: x.cumsum(dim=dim), R(3, 4, seed=2))
    check(lambda m, x: x.cumsum(dim, dtype=m.float64), R(3, 4, seed=2, dtype=np.float32))


def test_argmax_ties_first():
    x = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 1.0, 2.0]])
    for f in ("argmax", "argmin"):
        check(lambda m, x: getattr(x, f)(), x)
        check(lambda m, x: getattr(x, f)(1), x)
        check(lambda m, x: getattr(x, f)(dim=0, keepdim=True), x)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dim", [0, -1])
def test_sort_topk(descending, dim):
    x = R(4, 5, seed=11)
    check(lambda m, x: m.sort(x, dim=dim, descending=descending), x)
    check(lambda m, x: x.sort(dim, descending), x)
    check(lambda m, x: m.argsort(x, dim=dim, descending=descending), x)
    check(lambda m, x: m.topk(x, 3, dim=dim, largest=not descending), x)
    check(lambda m, x: x.topk(2), x)
    check(lambda m, x: x.topk(2, sorted=True), x)


def test_sort_stable_ties():
    x = np.array([3, 1, 2, 1, 3, 1])
    check(lambda m, x: m.sort(x, stable=True), x)
    check(lambda m, x: m.sort(x, stable=True, descending=True), x)
    check(lambda m, x: m.argsort(x, stable=True), x)


def test_reduction_errors():
    x = ad.tensor(R(2, 3))
    for fn in (lambda: x.sum(2), lambda: x.mean(-3), lambda: x.max(5), lambda: x.argmax(2),
               lambda: ad.cumsum(x, 3)):
        with pytest.raises((IndexError, RuntimeError, ValueError)):
            fn()


# ----------------------------------------------------------------------------- shape ops
SHAPE = {
    "reshape": lambda m, x: x.reshape(4, -1), "reshape_t": lambda m, x: m.reshape(x, (-1,)),
    "view": lambda m, x: x.view(2, 12), "view_t": lambda m, x: x.view((3, -1, 2)),
    "flatten": lambda m, x: m.flatten(x), "flatten1": lambda m, x: x.flatten(1),
    "flatten_mid": lambda m, x: x.flatten(0, 1), "unflatten": lambda m, x: x.unflatten(2, (2, 2)),
    "squeeze": lambda m, x: x.reshape(2, 1, 3, 1, 4).squeeze(),
    "squeeze_d": lambda m, x: x.reshape(2, 1, 3, 1, 4).squeeze(1),
    "squeeze_neg": lambda m, x: x.reshape(2, 1, 3, 1, 4).squeeze(-2),
    "squeeze_noop": lambda m, x: x.squeeze(0), "squeeze_tuple": lambda m, x: x.reshape(2, 1, 3, 1, 4).squeeze((1, 3)),
    "unsqueeze": lambda m, x: x.unsqueeze(0), "unsqueeze_neg": lambda m, x: m.unsqueeze(x, -1),
    "unsqueeze_mid": lambda m, x: x.unsqueeze(-2),
    "transpose": lambda m, x: x.transpose(0, 2), "transpose_neg": lambda m, x: m.transpose(x, -1, -2),
    "permute": lambda m, x: x.permute(2, 0, 1), "permute_t": lambda m, x: x.permute((1, 2, 0)),
    "permute_f": lambda m, x: m.permute(x, (-1, 0, 1)),
    "T2": lambda m, x: x[0].T, "mT": lambda m, x: x.mT, "t": lambda m, x: x[1].t(),
    "expand": lambda m, x: x[:, :1].expand(2, 5, 4), "expand_neg": lambda m, x: x[:1].expand(-1, 3, 4),
    "expand_new": lambda m, x: x.expand(2, 2, 3, 4), "expand_as": lambda m, x: x[0].expand_as(x),
    "broadcast_to": lambda m, x: m.broadcast_to(x[:, :, :1], (2, 3, 5)),
    "repeat": lambda m, x: x.repeat(2, 1, 3), "repeat_more": lambda m, x: x.repeat(2, 1, 1, 2),
    "tile": lambda m, x: m.tile(x, (2,)), "tile_more": lambda m, x: x.tile((2, 1, 1, 2)),
    "flip": lambda m, x: m.flip(x, (0, 2)), "flip_neg": lambda m, x: x.flip(-1), "flip_list": lambda m, x: x.flip([1]),
    "movedim": lambda m, x: m.movedim(x, 0, -1), "movedim_t": lambda m, x: x.movedim((0, 1), (2, 0)),
    "swapaxes": lambda m, x: x.swapaxes(0, 1), "narrow": lambda m, x: m.narrow(x, 2, 1, 2),
    "narrow_neg": lambda m, x: x.narrow(-1, -3, 2), "contiguous": lambda m, x: x.transpose(0, 1).contiguous(),
    "clone": lambda m, x: x.clone(), "view_as": lambda m, x: x.view_as(x.reshape(6, 4)),
    "reshape_as": lambda m, x: x.reshape_as(x.reshape(4, 6)),
    "split_int": lambda m, x: x.split(2, dim=2), "split_list": lambda m, x: m.split(x, [1, 3], dim=-1),
    "split_uneven": lambda m, x: x.split(2, 1), "chunk": lambda m, x: x.chunk(3, 1),
    "chunk_uneven": lambda m, x: m.chunk(x, 3, dim=-1), "chunk_more": lambda m, x: x.chunk(5, 0),
    "unbind": lambda m, x: x.unbind(1), "unbind_f": lambda m, x: m.unbind(x),
    "tril": lambda m, x: m.tril(x), "triu": lambda m, x: x.triu(1), "tril_neg": lambda m, x: x.tril(-1),
}


@pytest.mark.parametrize("name", list(SHAPE))
def test_shape_ops(name):
    check(SHAPE[name], R(2, 3, 4, seed=5))


def test_shape_ops_f32_int():
    check(SHAPE["permute"], R(2, 3, 4, dtype=np.float32))
    check(SHAPE["split_list"], np.arange(24).reshape(2, 3, 4))
    check(SHAPE["repeat"], np.arange(24).reshape(2, 3, 4) > 5)


@pytest.mark.parametrize("dim", [0, 1, -1, -2])
def test_cat_stack(dim):
    a, b, c = R(2, 3, seed=1), R(2, 3, seed=2), R(2, 3, seed=3)
    check(lambda m, a, b, c: m.cat([a, b, c], dim), a, b, c)
    check(lambda m, a, b, c: m.cat((a, b), dim=dim), a, b, c)
    check(lambda m, a, b, c: m.stack([a, b, c], dim), a, b, c)
    check(lambda m, a, b, c: m.stack((a, b), dim=dim - 1 if dim < 0 else dim + 1), a, b, c)
    check(lambda m, a, b, c: m.concat([a, b], dim=dim), a, b, c)
    check(lambda m, a, b, c: m.concatenate([a, b], dim), a, b, c)


def test_cat_mixed_dtypes_and_sizes():
    a = R(2, 3, seed=1)
    b = np.arange(4).reshape(2, 2)
    c = R(2, 1, dtype=np.float32, seed=2)
    check(lambda m, a, b, c: m.cat([a, b, c], 1), a, b, c)
    check(lambda m, a, b, c: m.cat([b, c], 1), a, b, c)
    check(lambda m, a, b, c: m.cat([b, b > 1], 0), a, b, c)
    check(lambda m, a, b, c: m.stack([a[:, 0], a[:, 1]]), a, b, c)


def test_cat_stack_errors():
    a, b = ad.tensor(R(2, 3)), ad.tensor(R(3, 3))
    with pytest.raises(RuntimeError, match=r"(?s)cat.*(\(2, 3\).*\(3, 3\)|\(3, 3\).*\(2, 3\))"):
        ad.cat([a, b], 1)
    with pytest.raises(RuntimeError, match="stack"):
        ad.stack([a, b])
    with pytest.raises(RuntimeError, match="reshape|view"):
        a.reshape(4, 2)
    with pytest.raises((RuntimeError, ValueError)):
        a.expand(3, 3)
    with pytest.raises((IndexError, RuntimeError)):
        a.transpose(0, 2)
    with pytest.raises((IndexError, RuntimeError, ValueError)):
        ad.cat([], 0)


PADS = [(1, 2), (2, 0, 1, 1), (-1, 1), (1, -1, 0, 2), (1, 1, 1, 1, 1, 1)]


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pad", PADS)
def test_pad(mode, pad):
    x = R(2, 3, 4, 5, seed=2)
    if mode != "constant" and len(pad) == 6:
        x = R(1, 2, 3, 4, 5, seed=2)
    if mode != "constant" and len(pad) == 2:
        x = R(3, 4, 5, seed=2)
        with pytest.raises(NotImplementedError, match="pad"):
            ad.pad(ad.tensor(R(2, 3, 4, 5)), pad, mode=mode)
    if mode == "constant":
        check(lambda m, x: (m.nn.functional if m is torch else m).pad(x, pad, value=0.5), x)
        check(lambda m, x: (m.nn.functional if m is torch else m).pad(x, pad), x)
    else:
        check(lambda m, x: (m.nn.functional if m is torch else m).pad(x, pad, mode=mode), x)


def test_meshgrid():
    a, b = np.arange(3.0), np.arange(4.0) * 2
    check(lambda m, a, b: m.meshgrid(a, b, indexing="ij"), a, b)
    check(lambda m, a, b: m.meshgrid([a, b], indexing="xy"), a, b)
    check(lambda m, a, b: m.meshgrid(a, b, indexing="ij")[0] * m.meshgrid(a, b, indexing="ij")[1], a, b)


# ----------------------------------------------------------------------------- indexing
def _idx(m, v):
    return m.tensor(v) if isinstance(v, (list, np.ndarray)) else v


KEYS = {
    "int": lambda m: 1, "neg_int": lambda m: -1, "slice": lambda m: slice(1, None),
    "slice_step": lambda m: (slice(None), slice(None, None, 2)), "slice_neg": lambda m: slice(-2, None),
    "slice_step3": lambda m: (Ellipsis, slice(3, 0, -1) if False else slice(0, 5, 3)),
    "none": lambda m: (None, 0), "none_mid": lambda m: (slice(None), None, 1),
    "ellipsis": lambda m: (Ellipsis, 1), "ellipsis_mid": lambda m: (0, Ellipsis, 2),
    "int_int": lambda m: (1, -2), "int_int_int": lambda m: (0, 1, 2),
    "arr": lambda m: m.tensor([2, 0, 2, 2]), "arr_list": lambda m: [0, 2, 0],
    "arr_neg": lambda m: m.tensor([-1, 0, -1]), "arr2d": lambda m: m.tensor([[0, 2], [2, 2]]),
    "arr_arr": lambda m: (m.tensor([0, 2, 2]), m.tensor([1, 1, 3])),
    "arr_bcast": lambda m: (m.tensor([[0], [2]]), m.tensor([1, 3, 3])),
    "slice_arr": lambda m: (slice(None), m.tensor([3, 0, 3])),
    "arr_slice_arr": lambda m: (m.tensor([0, 1]), slice(None), m.tensor([2, 2])),
    "int_slice_arr": lambda m: (1, slice(None), m.tensor([2, 0, 2])),
    "arr_int": lambda m: (m.tensor([0, 2, 0]), 1), "int_arr": lambda m: (slice(1, 3), 1, m.tensor([0, 0])),
    "none_arr": lambda m: (None, m.tensor([1, 0])), "ell_arr": lambda m: (Ellipsis, m.tensor([4, 0, 4])),
    "mask": lambda m: m.tensor(np.arange(60).reshape(3, 4, 5) % 3 == 0),
    "mask_row": lambda m: m.tensor([True, False, True]),
    "mask_2d": lambda m: m.tensor(np.array([[True, False, True, True], [False] * 4, [True] * 4])),
    "slice_mask": lambda m: (slice(None), m.tensor([False, True, True, False])),
    "mask_arr": lambda m: (m.tensor([True, False, True]), slice(None), m.tensor([1, 4])),
    "bool_scalar": lambda m: (True,), "empty_list": lambda m: m.tensor([], dtype=m.int64),
    "int_tensor0d": lambda m: m.tensor(1),
}


@pytest.mark.parametrize("key", list(KEYS))
def test_getitem(key):
    x = R(3, 4, 5, seed=12)
    check(lambda m, x: x[KEYS[key](m)], x)


@pytest.mark.parametrize("key", [k for k in KEYS if k not in ("bool_scalar",)])
def test_setitem(key):
    x = R(3, 4, 5, seed=12)

    def f(m, x):
        y = x * 1.0
        k = KEYS[key](m)
        y[k] = 0.5
        z = x * 2.0
        v = y[k] * 0 + 3.0 if True else None
        z[k] = v.detach() if m is torch else v.detach()
        return y + z
    check(f, x)


def test_setitem_tensor_value_grad():
    x, v = R(3, 4, seed=1), R(4, seed=2)

    def f(m, x, v):
        y = x.clone()
        y[1] = v
        y[:, 0] = v[:3] * 2
        return y
    check(f, x, v)

    def g(m, x, v):
        y = x * 1.0
        y[m.tensor([0, 2])] = v  # broadcast over the selected rows
        return y
    check(g, x, v)

    def h(m, x, v):
        y = x * 1.0
        y[y > 0] = 0.0
        return y
    check(h, x, v)


def test_repeated_index_grad_accumulates():
    x = R(4, 3, seed=3)
    check(lambda m, x: x[m.tensor([0, 0, 3, 0])], x)
    check(lambda m, x: x[[1, 1], [2, 2]], x)
    check(lambda m, x: x[:, [0, 0, 0]], x)


INDEX_OPS = {
    "gather": lambda m, x: m.gather(x, 1, m.tensor([[0, 0, 2], [1, 2, 2], [2, 1, 0]])),
    "gather0": lambda m, x: x.gather(0, m.tensor([[0, 1, 1, 0]])),
    "gather_neg": lambda m, x: x.gather(-1, m.tensor([[3], [0], [3]])),
    "take_along_dim": lambda m, x: m.take_along_dim(x, m.tensor([[0], [3], [1]]), dim=1),
    "take_along_dim_none": lambda m, x: m.take_along_dim(x, m.tensor([0, 11, 11])),
    "scatter_add": lambda m, x: m.zeros(3, 5, dtype=x.dtype).scatter_add(1, m.tensor([[0, 1, 1, 4]] * 3), x),
    "scatter_add_f": lambda m, x: m.scatter_add(x, 0, m.tensor([[0, 1, 1, 2]]), x[:1] * 2),
    "index_select": lambda m, x: m.index_select(x, 0, m.tensor([2, 0, 2])),
    "index_select1": lambda m, x: x.index_select(-1, m.tensor([3, 3])),
    "masked_fill": lambda m, x: x.masked_fill(x > 0, 0.5),
    "masked_fill_bcast": lambda m, x: m.masked_fill(x, m.tensor([True, False, True, False]), -1.0),
    "masked_fill_t": lambda m, x: x.masked_fill(x < 0, m.tensor(2.0, dtype=x.dtype)),
}


@pytest.mark.parametrize("name", list(INDEX_OPS))
def test_index_ops(name):
    check(INDEX_OPS[name], R(3, 4, seed=13))


def test_scatter_add_src_grad():
    x, s = R(3, 5, seed=1), R(3, 4, seed=2)
    idx = np.array([[0, 1, 1, 4]] * 3)
    check(lambda m, x, s, i: m.scatter_add(x, 1, i, s), x, s, idx)


def test_index_errors():
    x = ad.tensor(R(3, 4))
    with pytest.raises(IndexError):
        x[3]
    with pytest.raises(IndexError):
        x[ad.tensor([0, 5])]
    with pytest.raises(IndexError):
        x[0, 0, 0]
    with pytest.raises((IndexError, RuntimeError)):
        x[ad.tensor([True, False])]
    with pytest.raises((RuntimeError, IndexError), match="gather"):
        x.gather(1, ad.tensor([[5]]))
    with pytest.raises((RuntimeError, IndexError), match="index_select"):
        x.index_select(0, ad.tensor([3]))


# ----------------------------------------------------------------------------- linalg
MM_SHAPES = [((4,), (4,)), ((4,), (4, 3)), ((2, 4), (4,)), ((2, 4), (4, 3)), ((5, 2, 4), (4, 3)),
             ((2, 4), (5, 4, 3)), ((5, 2, 4), (5, 4, 3)), ((2, 1, 2, 4), (3, 4, 2)), ((4,), (5, 4, 3)),
             ((5, 2, 4), (4,)), ((1, 2, 4), (3, 4, 1))]


@pytest.mark.parametrize("dt", F_DT)
@pytest.mark.parametrize("shapes", MM_SHAPES)
def test_matmul(shapes, dt):
    a, b = R(*shapes[0], dtype=dt, seed=1), R(*shapes[1], dtype=dt, seed=2)
    check(lambda m, a, b: a @ b, a, b)
    check(lambda m, a, b: m.matmul(a, b), a, b)


def test_matmul_int_and_errors():
    a, b = np.arange(6).reshape(2, 3), np.arange(12).reshape(3, 4)
    check(lambda m, a, b: a @ b, a, b)
    with pytest.raises(RuntimeError, match=r"(?s)matmul.*\(2, 3\).*\(2, 3\)"):
        ad.tensor(R(2, 3)) @ ad.tensor(R(2, 3))
    with pytest.raises(RuntimeError):
        ad.matmul(ad.tensor(1.0), ad.tensor(R(3)))


LIN = {
    "mm": (lambda m, a, b: m.mm(a, b), [(2, 3), (3, 4)]),
    "bmm": (lambda m, a, b: m.bmm(a, b), [(2, 2, 3), (2, 3, 4)]),
    "mv": (lambda m, a, b: m.mv(a, b), [(2, 3), (3,)]),
    "dot": (lambda m, a, b: m.dot(a, b), [(3,), (3,)]),
    "inner": (lambda m, a, b: m.inner(a, b), [(2, 3), (4, 3)]),
    "outer": (lambda m, a, b: m.outer(a, b), [(3,), (4,)]),
    "t_mm": (lambda m, a, b: a.mm(b), [(2, 3), (3, 4)]),
    "t_dot": (lambda m, a, b: a.dot(b), [(3,), (3,)]),
    "t_outer": (lambda m, a, b: a.outer(b), [(3,), (2,)]),
    "rmatmul": (lambda m, a, b: a.T @ b, [(3, 2), (3, 4)]),
}


@pytest.mark.parametrize("name", list(LIN))
def test_linalg_ops(name):
    f, shapes = LIN[name]
    check(f, *[R(*s, seed=i) for i, s in enumerate(shapes)])


def test_linalg_errors():
    a = ad.tensor(R(2, 3))
    with pytest.raises(RuntimeError, match="mm"):
        ad.mm(a, a)
    with pytest.raises(RuntimeError, match="bmm"):
        ad.bmm(a, a)
    with pytest.raises(RuntimeError, match="dot"):
        ad.dot(ad.tensor(R(3)), ad.tensor(R(4)))
    with pytest.raises(RuntimeError, match="mv"):
        ad.mv(a, ad.tensor(R(2)))


EINSUM = [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ij,jk", [(2, 3), (3, 4)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),
    ("ii->", [(3, 3)]), ("ii->i", [(3, 3)]), ("ij->ji", [(2, 3)]), ("ij->", [(2, 3)]), ("i,i->", [(3,), (3,)]),
    ("i,j->ij", [(3,), (2,)]), ("...ij,...jk->...ik", [(2, 2, 3), (3, 4)]), ("b...,b->...", [(2, 3, 4), (2,)]),
    ("ij,ij->ij", [(2, 3), (2, 3)]), ("bhqd,bhkd->bhqk", [(1, 2, 3, 4), (1, 2, 5, 4)]), ("ba", [(2, 3)]),
    ("i...->...", [(2, 3, 4)]), ("iij->j", [(3, 3, 2)]),
]


@pytest.mark.parametrize("eq,shapes", EINSUM, ids=[e for e, _ in EINSUM])
def test_einsum(eq, shapes):
    arrs = [R(*s, seed=i) for i, s in enumerate(shapes)]
    check(lambda m, *xs: m.einsum(eq, *xs), *arrs)
    check(lambda m, *xs: m.einsum(eq, list(xs)), *arrs)


def test_einsum_errors():
    with pytest.raises((RuntimeError, ValueError), match="einsum"):
        ad.einsum("ij,jk->ik", ad.tensor(R(2, 3)), ad.tensor(R(4, 4)))
    with pytest.raises((RuntimeError, ValueError), match="einsum"):
        ad.einsum("ij,jk->ik", ad.tensor(R(2, 3)))


# ----------------------------------------------------------------------------- factories & conversion
FACT = {
    "arange_int": lambda m: m.arange(5), "arange_float": lambda m: m.arange(0.0, 1.0, 0.25),
    "arange_mixed": lambda m: m.arange(1, 4.5), "arange_neg": lambda m: m.arange(5, -3, -2),
    "arange_negf": lambda m: m.arange(1.0, -1.0, -0.3), "arange_dtype": lambda m: m.arange(4, dtype=m.float64),
    "arange_step_f": lambda m: m.arange(0, 10, 2.5), "arange_empty": lambda m: m.arange(3, 3),
    "linspace": lambda m: m.linspace(0, 1, 5), "linspace1": lambda m: m.linspace(-2, 2, 1),
    "linspace_int": lambda m: m.linspace(0, 10, 4, dtype=m.int64), "logspace": lambda m: m.logspace(0, 2, 3),
    "eye": lambda m: m.eye(3), "eye_rect": lambda m: m.eye(2, 4, dtype=m.int64),
    "zeros": lambda m: m.zeros(2, 3), "zeros_tuple": lambda m: m.zeros((2, 3), dtype=m.int32),
    "ones": lambda m: m.ones([3]), "ones_bool": lambda m: m.ones(2, dtype=m.bool),
    "full_int": lambda m: m.full((2,), 3), "full_float": lambda m: m.full((2, 2), 1.5),
    "full_bool": lambda m: m.full((2,), True), "full_dtype": lambda m: m.full((2,), 7, dtype=m.float64),
    "zeros_like": lambda m: m.zeros_like(m.ones(2, 3, dtype=m.int32)),
    "ones_like": lambda m: m.ones_like(m.zeros(2, dtype=m.float64), dtype=m.float32),
    "full_like": lambda m: m.full_like(m.zeros(2, 2), 2), "full_like_int": lambda m: m.full_like(m.arange(3), 2.7),
    "empty_shape": lambda m: m.empty(2, 3).shape, "zeros_0d": lambda m: m.zeros(()),
    "tensor_int": lambda m: m.tensor([1, 2, 3]), "tensor_float": lambda m: m.tensor([1, 2.0]),
    "tensor_bool": lambda m: m.tensor([True, False]), "tensor_mixed_bool": lambda m: m.tensor([True, 2]),
    "tensor_nested": lambda m: m.tensor([[1, 2], [3, 4]]), "tensor_scalar": lambda m: m.tensor(3.5),
    "tensor_int_scalar": lambda m: m.tensor(7), "tensor_np_f64": lambda m: m.tensor(np.ones(2)),
    "tensor_np_i32": lambda m: m.tensor(np.arange(3, dtype=np.int32)),
    "tensor_np_scalar": lambda m: m.tensor(np.float32(2.5)), "tensor_empty": lambda m: m.tensor([]),
    "tensor_dtype": lambda m: m.tensor([1, 2], dtype=m.float32),
    "tensor_np_f64_list": lambda m: m.tensor([np.float64(1.0), 2]), "tensor_np_f16_list": lambda m: m.tensor([1, np.float16(2)]),
    "tensor_np_mixed": lambda m: m.tensor([[np.float64(1)], [2.5]]), "tensor_np_f16_py": lambda m: m.tensor([1.5, np.float16(2)]),
    "as_tensor": lambda m: m.as_tensor([1.0, 2.0]), "from_numpy": lambda m: m.from_numpy(np.arange(3.0)),
    "randn_shape": lambda m: m.randn(2, 3).shape, "rand_dtype": lambda m: m.rand(2, dtype=m.float64).dtype == m.float64,
    "randint": lambda m: (m.randint(0, 5, (3,)).shape, m.randint(5, (2, 2)).shape),
    "randperm": lambda m: m.randperm(5).sort().values,
    "size": lambda m: (m.zeros(2, 3).size(), m.zeros(2, 3).size(1), m.zeros(2, 3).size(-1)),
    "numel": lambda m: (m.zeros(2, 3).numel(), m.zeros(2, 3).dim(), m.zeros(2, 3).ndim),
}


@pytest.mark.parametrize("name", list(FACT))
def test_factories(name):
    a, t = FACT[name](ad), FACT[name](torch)
    if isinstance(t, torch.Size) or (isinstance(t, tuple) and t and isinstance(t[0], torch.Size)):
        t = tuple(tuple(x) if isinstance(x, torch.Size) else x for x in t) if not isinstance(t, torch.Size) \
            else tuple(t)
        a = tuple(tuple(x) if isinstance(x, tuple) else x for x in a)
        assert a == t
        return
    _same(a, t)


def test_default_dtype_switch():
    prev = ad.get_default_dtype()
    try:
        ad.set_default_dtype(ad.float64)
        torch.set_default_dtype(torch.float64)
        for f in (lambda m: m.tensor([1.0]), lambda m: m.arange(0.0, 1.0, 0.5), lambda m: m.zeros(2),
                  lambda m: m.tensor([1, 2]) / 2, lambda m: m.full((1,), 1.5), lambda m: m.linspace(0, 1, 3)):
            _same(f(ad), f(torch))
    finally:
        ad.set_default_dtype(prev)
        torch.set_default_dtype(torch.float32)


CONV = {
    "float": lambda m, x: x.float(), "double": lambda m, x: x.double(), "long": lambda m, x: x.long(),
    "int": lambda m, x: x.int(), "bool": lambda m, x: x.bool(), "half": lambda m, x: x.half().float(),
    "to_dtype": lambda m, x: x.to(m.float32), "to_kw": lambda m, x: x.to(dtype=m.int64),
    "to_cpu": lambda m, x: x.to("cpu"), "to_dev_dtype": lambda m, x: x.to("cpu", m.float32),
    "to_other": lambda m, x: x.to(m.ones(2, dtype=m.int32)),
    "type_as": lambda m, x: x.type_as(m.ones(1, dtype=m.float32)), "type": lambda m, x: x.type(m.int64),
    "cpu": lambda m, x: x.cpu(), "detach": lambda m, x: x.detach(), "new_zeros": lambda m, x: x.new_zeros(2, 3),
    "new_ones": lambda m, x: x.new_ones((2,)), "new_full": lambda m, x: x.new_full((2,), 3),
    "new_tensor": lambda m, x: x.new_tensor([1, 2]), "is_fp": lambda m, x: x.is_floating_point(),
    "is_contig": lambda m, x: x.is_contiguous(), "tolist": lambda m, x: x.tolist(),
    "item": lambda m, x: x[0, 1].item(), "item_int": lambda m, x: x.long()[1, 2].item(),
    "len": lambda m, x: len(x), "iter": lambda m, x: list(x), "float_": lambda m, x: float(x[0, 0]),
    "int_": lambda m, x: int(x[1, 1]), "bool_": lambda m, x: bool(x[0, 0] > 0),
    "numpy": lambda m, x: m.tensor(x.detach().numpy() * 2), "T_contig": lambda m, x: x.T.is_contiguous(),
    "requires_grad": lambda m, x: (x.requires_grad, (x * 2).requires_grad, x.detach().requires_grad,
                                   x.is_leaf, (x * 2).is_leaf, x.long().requires_grad),
    "element_size": lambda m, x: (x.element_size(), x.float().element_size(), x.long().element_size()),
}


@pytest.mark.parametrize("name", list(CONV))
def test_conversions(name):
    x = R(2, 3, seed=21)
    check(CONV[name], x)


def test_type_strings():
    a, t = ad.tensor(R(2)), torch.tensor(R(2))
    assert a.type() == t.type().replace("torch.", "autodiff.") or a.type() == t.type()
    assert str(a.dtype).replace("autodiff.", "").replace("torch.", "") in ("float64",)
    assert ad.tensor([1]).dtype == ad.int64 and ad.tensor([1.0]).dtype == ad.float32


@pytest.mark.parametrize("data", ["[1.0, 2.0]", "[[0.8605, 0.0918], [-0.4145, 0.1350]]", "[1, 2, 3]", "[True, False]",
                                  "3.5", "7", "[1e-5, 1.0]", "[1e6, 2.0]", "[float('nan'), float('inf'), 1.0]", "[]",
                                  "np.arange(30.0) / 7", "np.arange(2000.0).reshape(20, 100) / 7",
                                  "np.arange(24).reshape(2, 3, 4)", "np.zeros((2, 0))", "np.arange(5000)"])
def test_repr_layout_matches_torch(data):
    """Same element formatting, alignment, wrapping and summarization as PyTorch (dtype names
    differ only by the 'torch.' prefix)."""
    v = eval(data)
    assert repr(ad.tensor(v)) == repr(torch.tensor(v)).replace("torch.", "")
    if "True" not in data and "[]" not in data and "zeros" not in data:
        a = ad.tensor(v, dtype=ad.float64, requires_grad=True) * 2
        t = torch.tensor(v, dtype=torch.float64, requires_grad=True) * 2
        assert repr(a) == repr(t).replace("torch.", "")


def test_format_and_reflected_ops():
    for lib in (ad, torch):
        assert f"{lib.tensor(3.14159):.2f}" == "3.14"
        assert f"{lib.tensor([1.5])}" == repr(lib.tensor([1.5])).replace("torch.", "")
    check(lambda m, x: 5 % (x.abs() + 1), R(3, seed=81), grad=False)  # torch: no derivative for the divisor
    check(lambda m, x: 7 // (x.abs() + 1), R(3, seed=81), grad=False)


def test_repr_basics():
    r = repr(ad.tensor([1.0, 2.0]))
    assert r.startswith("tensor(") and "1." in r and "2." in r
    assert "requires_grad=True" in repr(ad.tensor([1.0], requires_grad=True))
    assert "grad_fn" in repr(ad.tensor([1.0], requires_grad=True) * 2)
    assert "dtype" in repr(ad.tensor([1.0], dtype=ad.float64))
    assert "dtype" not in repr(ad.tensor([1, 2])) and "dtype" not in repr(ad.tensor([True]))
    assert "dtype=autodiff.int32" in repr(ad.tensor([1], dtype=ad.int32)) or "int32" in repr(ad.tensor([1], dtype=ad.int32))


# ----------------------------------------------------------------------------- in-place
INPLACE = {
    "iadd": lambda m, x: x.__iadd__(1.5), "isub_t": lambda m, x: x.__isub__(x.detach() * 0.5),
    "imul": lambda m, x: x.__imul__(2), "idiv": lambda m, x: x.__itruediv__(4),
    "add_": lambda m, x: x.add_(x.detach(), alpha=2) if m is torch else x.add_(x.detach() * 2),
    "mul_": lambda m, x: x.mul_(3.0), "zero_": lambda m, x: x.zero_(), "fill_": lambda m, x: x.fill_(2.5),
    "clamp_": lambda m, x: x.clamp_(-0.2, 0.3), "copy_": lambda m, x: x.copy_(m.ones(3)),
    "masked_fill_": lambda m, x: x.masked_fill_(x > 0, 0.0), "setitem": lambda m, x: x.__setitem__(0, 1.0) or x,
    "pow_": lambda m, x: x.pow_(2),
}


@pytest.mark.parametrize("name", list(INPLACE))
def test_inplace(name):
    def f(m, x):
        y = x * 1.0
        v = y._version
        r = INPLACE[name](m, y)
        assert r is y
        assert y._version > v
        return y
    check(f, R(2, 3, seed=22))


def test_inplace_int_float_error():
    for lib in (ad, torch):
        x = lib.tensor([1, 2, 3])
        with pytest.raises(RuntimeError):
            x += 1.5
        with pytest.raises(RuntimeError):
            x /= 2
        x += 2
        assert x.tolist() == [3, 4, 5]
        x *= True
        b = lib.tensor([True, False])
        with pytest.raises(RuntimeError):
            b += 1
        y = lib.tensor([1.0, 2.0])
        y += lib.tensor([1, 2])
        assert y.dtype == lib.float32
        with pytest.raises(RuntimeError):
            y += lib.ones(3)


def test_inplace_leaf_error():
    for lib in (ad, torch):
        x = lib.ones(2, requires_grad=True)
        with pytest.raises(RuntimeError):
            x += 1
        with lib.no_grad():
            x += 1
        assert x.tolist() == [2.0, 2.0]


def test_inplace_saved_tensor_modified_error():
    for lib in (ad, torch):
        x = lib.ones(3, requires_grad=True)
        y = x * 2
        z = y * y
        y.add_(1)
        with pytest.raises(RuntimeError):
            z.sum().backward()


def test_inplace_view_propagates():
    def f(m, x):
        y = x * 1.0
        y[0].mul_(3.0)
        y[:, 1] = 0.0
        y[1] += x[0]
        y[:, ::2] *= 2
        z = y[1]
        z.sub_(1.0)
        z2 = z * 1  # (z itself would be stale below: see test_view_grad_fn_not_refreshed)
        y[0][1] += 5.0  # a view of a view, ending in a 0-d element
        y[1][:2].mul_(x[0][:2])
        y[1][2].mul_(2)
        return y, z2
    check(f, R(2, 3, seed=23))

    def h(m, x):  # without autograd: element views share memory too
        with m.no_grad():
            w = m.zeros(3, dtype=x.dtype)
            w[1].add_(4)
            w[2].fill_(1)
        return w
    check(h, R(2, 3, seed=23), grad=False)

    def g(m, x):  # a view of an integer index into an int tensor: float result refused
        y = m.tensor([[1, 2], [3, 4]])
        y[0] += 1
        with pytest.raises(RuntimeError):
            y[1] += 0.5
        return y
    check(g, R(2, 3, seed=23), grad=False)

    for lib in (ad, torch):  # a view of a leaf that requires grad
        x = lib.ones(2, 3, requires_grad=True)
        with pytest.raises(RuntimeError):
            x[0].mul_(2)


@pytest.mark.xfail(reason="a view's grad_fn is not re-derived when its base is later modified in place through "
                   "another view (PyTorch regenerates it from the base's version); values are right, gradients "
                   "through the stale view are not", strict=True)
def test_view_grad_fn_not_refreshed():
    def f(m, x):
        y = x * 1.0
        z = y[1]
        y[1][:2].mul_(x[0][:2])
        return y, z
    check(f, R(2, 3, seed=25))


@pytest.mark.xfail(reason="in-place ops on views made by reshape/transpose/permute/expand of a tensor that "
                   "requires grad are refused (only basic-indexing views write through their base)",
                   raises=RuntimeError, strict=True)
def test_inplace_on_transpose_view():
    def f(m, x):
        y = x * 1.0
        y.t().mul_(2.0)
        return y
    check(f, R(2, 3, seed=24))


# ----------------------------------------------------------------------------- more of the namespace
EXTRA = {
    "cumprod": lambda m, x: m.cumprod(x, 1), "cumprod0": lambda m, x: x.cumprod(dim=0),
    "cumprod_zero": lambda m, x: (x * (x > -0.3)).cumprod(-1),
    "median": lambda m, x: x.median(), "median_dim": lambda m, x: m.median(x, 1),
    "median_keep": lambda m, x: x.median(0, keepdim=True),
    "count_nonzero": lambda m, x: m.count_nonzero(x.relu()), "count_nonzero_d": lambda m, x: x.relu().count_nonzero(1),
    "nansum": lambda m, x: m.nansum(m.log(x)), "nanmean": lambda m, x: m.log(x).nanmean(1),
    "trace": lambda m, x: m.trace(x), "diag2": lambda m, x: m.diag(x), "diag2k": lambda m, x: x.diag(1),
    "diag1": lambda m, x: m.diag(x[0], -1), "diagonal": lambda m, x: m.diagonal(x, 1),
    "diagonal3": lambda m, x: x.reshape(2, 3, 2).diagonal(0, 0, 2),
    "roll": lambda m, x: m.roll(x, 1, 0), "roll2": lambda m, x: x.roll((1, -2), (0, 1)), "roll_flat": lambda m, x: x.roll(5),
    "rot90": lambda m, x: m.rot90(x), "rot90k": lambda m, x: x.rot90(3, [1, 0]), "rot90_2": lambda m, x: m.rot90(x, 2),
    "select": lambda m, x: x.select(1, -1), "select_f": lambda m, x: m.select(x, 0, 2),
    "repeat_interleave": lambda m, x: x.repeat_interleave(2), "ri_dim": lambda m, x: m.repeat_interleave(x, 2, dim=0),
    "ri_tensor": lambda m, x: x.repeat_interleave(m.tensor([1, 0, 2, 1]), dim=1),
    "masked_select": lambda m, x: m.masked_select(x, x > 0), "masked_select_b": lambda m, x: x.masked_select(m.tensor([True, False, True, True])),
    "scatter": lambda m, x: m.scatter(x, 1, m.tensor([[0, 1], [2, 3], [1, 1]]), x[:, :2] * 2),
    "scatter_val": lambda m, x: x.scatter(0, m.tensor([[0, 1, 2, 0]]), 1.5),
    "index_add": lambda m, x: m.index_add(x, 0, m.tensor([0, 0, 2]), x * 2, alpha=3),
    "index_fill": lambda m, x: x.index_fill(1, m.tensor([0, 2]), -1.0),
    "index_copy": lambda m, x: x.index_copy(0, m.tensor([2, 0, 1]), x.flip(0) * 2),
    "take": lambda m, x: m.take(x, m.tensor([[0, 11], [5, 5]])),
    "index_put": lambda m, x: x.index_put((m.tensor([0, 2, 0]),), x[:3] * 2),
    "index_put_acc": lambda m, x: m.index_put(x, (m.tensor([0, 2, 0]), m.tensor([1, 1, 1])), x[0, :3], accumulate=True),
    "index_put_acc_b": lambda m, x: x.index_put((m.tensor([1, 1]),), m.tensor(2.0, dtype=x.dtype), accumulate=True),
    "index_put_": lambda m, x: (x * 1).index_put_((m.tensor([2, 0]),), x[0] * 3, accumulate=True),
    "hstack": lambda m, x: m.hstack([x, x[:, :1]]), "vstack": lambda m, x: m.vstack([x, x[0]]),
    "dstack": lambda m, x: m.dstack([x, x]), "column_stack": lambda m, x: m.column_stack([x[:, 0], x]),
    "tensor_split": lambda m, x: m.tensor_split(x, 3, dim=1), "tensor_split_idx": lambda m, x: x.tensor_split([1, 3], 1),
    "hsplit": lambda m, x: m.hsplit(x, 2), "vsplit": lambda m, x: x.vsplit([1]),
    "broadcast_tensors": lambda m, x: m.broadcast_tensors(x, x[:1], x[:, :1]),
    "diff": lambda m, x: m.diff(x), "diff2": lambda m, x: x.diff(n=2, dim=0, prepend=x[:1]),
    "tensordot": lambda m, x: m.tensordot(x, x, dims=([1], [1])), "tensordot2": lambda m, x: m.tensordot(x, x.T, 1),
    "kron": lambda m, x: m.kron(x[:2, :2], x[1:, 2:]), "moveaxis": lambda m, x: m.moveaxis(x, 0, 1),
    "swapdims": lambda m, x: x.swapdims(0, 1), "fliplr": lambda m, x: m.fliplr(x), "flipud": lambda m, x: x.flipud(),
    "softmax_f": lambda m, x: m.softmax(x, 1), "log_softmax_f": lambda m, x: m.log_softmax(x, dim=0),
    "where_m": lambda m, x: x.where(x > 0, 0.0), "atleast": lambda m, x: m.atleast_2d(x[0, 0]),
    "stride": lambda m, x: (x.stride(), x.t().stride(), x.stride(1)), "nelement": lambda m, x: x.nelement(),
    "cummax": lambda m, x: m.cummax(x, 1), "cummin": lambda m, x: x.cummin(0), "msort": lambda m, x: m.msort(x),
    "unfold": lambda m, x: x.unfold(1, 2, 1), "unfold0": lambda m, x: x.unfold(0, 2, 2), "ravel": lambda m, x: m.ravel(x.t()),
    "addmm": lambda m, x: m.addmm(x[:, :3], x, x.t()[:, :3], beta=0.5, alpha=2), "addmm_m": lambda m, x: x[:3, :3].addmm(x, x.t()[:, :3]),
    "baddbmm": lambda m, x: m.baddbmm(x[:, :3].unsqueeze(0), x.unsqueeze(0), x.t()[:, :3].unsqueeze(0), alpha=3),
    "logit": lambda m, x: m.logit(x.sigmoid()), "logit_eps": lambda m, x: x.sigmoid().logit(0.3), "sinc": lambda m, x: m.sinc(x * (x > 0)),
    "arccos": lambda m, x: m.arccos(x.tanh() * 0.5), "argwhere": lambda m, x: m.argwhere(x > 0), "inverse": lambda m, x: x[:, :3].inverse(),
    "sum_to_size": lambda m, x: x.sum_to_size(1, 4), "sum_to_size2": lambda m, x: x.sum_to_size((3, 1)),
    "tril_": lambda m, x: (x * 1).tril_(), "isneginf": lambda m, x: (1 / (x * 0 - x.relu())).isneginf(),
}


@pytest.mark.parametrize("name", list(EXTRA))
def test_extra_ops(name):
    x = R(3, 4, seed=41)
    check(EXTRA[name], x)


INPLACE_METHODS = ["abs_", "neg_", "exp_", "sigmoid_", "tanh_", "relu_", "square_", "floor_", "sin_",
                   "reciprocal_", "clamp_min_", "lerp_", "addcmul_", "scatter_", "index_add_", "index_fill_"]


@pytest.mark.parametrize("name", INPLACE_METHODS)
def test_inplace_methods(name):
    args = {"clamp_min_": (0.1,), "lerp_": ("t", 0.5), "addcmul_": ("t", "t"),
            "scatter_": (1, "i", 2.0), "index_add_": (0, "j", "t"), "index_fill_": (1, "j", 0.0)}.get(name, ())

    def f(m, x, w):
        y = x * 1.0
        a = [w if v == "t" else m.tensor([[0], [1], [0]]) if v == "i" else m.tensor([0, 2, 2]) if v == "j"
             else v for v in args]
        if name == "index_add_":
            a[1] = m.tensor([0, 2, 0])
            a[2] = w
        r = getattr(y, name)(*a)
        assert r is y
        return y
    check(f, R(3, 3, seed=42), R(3, 3, seed=43))


def test_uniform_normal_():
    x = ad.zeros(200, dtype=ad.float64)
    x.uniform_(-2, 3)
    assert x.dtype == ad.float64 and -2 <= float(x.min()) and float(x.max()) <= 3
    x.normal_(5.0, 0.1)
    assert 4.0 < float(x.mean()) < 6.0


def test_int_aliases():
    assert ad.int == ad.int32
    assert ad.tensor([1.5]).int().dtype == ad.int32
    assert ad.numel(ad.zeros(2, 3)) == 6 and ad.is_floating_point(ad.zeros(1))


def test_misc_semantics():
    i, b, f2 = np.array([1, 2, 3]), np.array([True, False, True]), R(2, 3, seed=51)
    check(lambda m, i: 2 ** i, i)
    check(lambda m, b: 2 ** b, b)
    check(lambda m, b: m.sign(b), b)
    check(lambda m, f: f.sum(()), f2)
    check(lambda m, f: f.mean([]), f2)
    check(lambda m, f: f.amax(()), f2)
    check(lambda m, f: m.narrow(f, 1, -2, 2), f2)
    check(lambda m, i: m.arange(m.tensor(3)), i)
    check(lambda m, i: m.unique(m.tensor([3, 1, 3, 2, 1])), i)
    check(lambda m, i: m.unique(m.tensor([3, 1, 3, 2, 1]), return_inverse=True, return_counts=True), i)
    check(lambda m, i: m.tensor([[1, 2], [1, 2], [0, 5]]).unique(dim=0, return_inverse=True), i)
    for lib in (ad, torch):
        tb = lib.tensor(b)
        for fn in (lambda: tb - 1, lambda: 1 - tb, lambda: tb - tb, lambda: lib.tensor(f2) - tb, lambda: -tb):
            with pytest.raises(RuntimeError):
                fn()
        with pytest.raises(RuntimeError):
            lib.tensor(f2).T.view(-1)
        assert lib.tensor(f2).T.view(3, 2).shape == (3, 2)
        with pytest.raises(RuntimeError):
            lib.dot(lib.tensor(f2[0]), lib.tensor(i))
        with pytest.raises(RuntimeError):
            lib.norm(lib.tensor(i))
        with pytest.raises((IndexError, RuntimeError)):
            lib.narrow(lib.tensor(f2), 1, 2, 2)


def test_new_ops_gradcheck():
    rng = np.random.default_rng(0)
    x = ad.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    y = ad.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    for f in (lambda x, y: ad.cumprod(x, 1), lambda x, y: ad.atan2(x, y), lambda x, y: ad.fmod(x, y.abs() + 1),
              lambda x, y: ad.lerp(x, y, 0.3), lambda x, y: ad.logaddexp(x, y), lambda x, y: ad.hypot(x, y),
              lambda x, y: ad.tan(x * 0.3), lambda x, y: ad.asin(x.tanh() * 0.9), lambda x, y: ad.cosh(x),
              lambda x, y: ad.log2(x.abs() + 0.5), lambda x, y: ad.median(x, 1).values,
              lambda x, y: ad.diagonal(x, 1), lambda x, y: ad.trace(x[:, :3]), lambda x, y: ad.roll(x, 1, 1),
              lambda x, y: ad.scatter(x, 1, ad.tensor([[0], [1], [3]]), y), lambda x, y: ad.index_add(x, 0, ad.tensor([0, 0, 1]), y),
              lambda x, y: ad.masked_select(x, y > 0), lambda x, y: ad.tensordot(x, y, ([1], [1])),
              lambda x, y: ad.repeat_interleave(x, 2, 1), lambda x, y: ad.einsum("ii->i", x[:, :3]),
              lambda x, y: ad.norm(x, 3, 1), lambda x, y: ad.norm(x * (x > 0), 0.5), lambda x, y: ad.clamp(x, y, y + 1),
              lambda x, y: ad.nan_to_num(x), lambda x, y: ad.xlogy(x, y.abs() + 0.1)):
        assert ad.gradcheck(f, (x, y))


def test_inplace_shape_methods():
    def f(m, x):
        y = x * 2
        y.t_()
        y.unsqueeze_(0)
        y.squeeze_(0)
        y.transpose_(0, 1)
        return y
    check(f, R(2, 3, seed=61))
    a = ad.zeros(3)
    assert a.data_ptr() == a[0:].data_ptr() and a.clone().data_ptr() != a.data_ptr()


ERRORS = {  # name: (call, words our message must contain)
    "add": (lambda m, a, b: a + b, ["add", "(2, 3)", "(4, 5)"]),
    "mul": (lambda m, a, b: a * b, ["mul", "(2, 3)", "(4, 5)"]),
    "where": (lambda m, a, b: m.where(a > 0, a, b), ["where", "(2, 3)", "(4, 5)"]),
    "matmul": (lambda m, a, b: a @ b, ["matmul", "(2, 3)", "(4, 5)"]),
    "mm": (lambda m, a, b: m.mm(a, b), ["mm", "(2, 3)", "(4, 5)"]),
    "cat": (lambda m, a, b: m.cat([a, b]), ["cat", "(2, 3)", "(4, 5)"]),
    "stack": (lambda m, a, b: m.stack([a, b]), ["stack", "(2, 3)", "(4, 5)"]),
    "reshape": (lambda m, a, b: a.reshape(4, 2), ["reshape", "(4, 2)", "(2, 3)"]),
    "view": (lambda m, a, b: a.view(5), ["view", "(2, 3)"]),
    "expand": (lambda m, a, b: a.expand(4, 3), ["(2, 3)", "(4, 3)"]),
    "masked_fill": (lambda m, a, b: a.masked_fill(m.ones(4, dtype=m.bool), 0.0), ["masked_fill", "(4,)", "(2, 3)"]),
    "setitem": (lambda m, a, b: a.__setitem__(0, m.ones(4)), ["setitem", "(4,)", "(2, 3)"]),
    "unflatten": (lambda m, a, b: a.unflatten(1, (2, 2)), ["unflatten", "(2, 3)"]),
    "meshgrid": (lambda m, a, b: m.meshgrid(a, a), ["meshgrid", "(2, 3)"]),
    "transpose": (lambda m, a, b: a.transpose(0, 3), ["transpose", "3"]),
    "sum": (lambda m, a, b: a.sum(3), ["sum", "3"]),
    "sort": (lambda m, a, b: a.sort(4), ["sort", "4"]),
    "split": (lambda m, a, b: a.split([1, 1], 1), ["split", "[1, 1]"]),
    "narrow": (lambda m, a, b: a.narrow(1, 2, 5), ["narrow", "(2, 3)"]),
    "index": (lambda m, a, b: a[5], ["index", "5"]),
    "index_arr": (lambda m, a, b: a[:, m.tensor([7])], ["index", "7"]),
    "gather": (lambda m, a, b: a.gather(1, m.tensor([[5]])), ["gather"]),
    "index_select": (lambda m, a, b: a.index_select(0, m.tensor([3])), ["index_select", "3"]),
    "einsum": (lambda m, a, b: m.einsum("ij,jk", a, b), ["einsum"]),
    "topk": (lambda m, a, b: a.topk(5), ["topk", "(2, 3)"]),
    "copy_": (lambda m, a, b: a.copy_(b), ["copy_", "(4, 5)", "(2, 3)"]),
    "iadd": (lambda m, a, b: a.__iadd__(b), ["add", "(2, 3)", "(4, 5)"]),
    "dot": (lambda m, a, b: m.dot(a, b), ["dot"]),
    "clamp": (lambda m, a, b: m.clamp(a, m.ones(4), m.ones(5)), ["clamp"]),
    "pad": (lambda m, a, b: (m.nn.functional if m is torch else m).pad(a, (1, 1, 1, 1, 1, 1)), ["pad"]),
    "take_along_dim": (lambda m, a, b: m.take_along_dim(a, m.ones(1, 5, 2, dtype=m.int64), 1),
                       ["take_along_dim", "(2, 3)"]),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_match_torch(name):
    f, words = ERRORS[name]
    with pytest.raises(Exception):
        f(torch, torch.ones(2, 3), torch.ones(4, 5))
    with pytest.raises((RuntimeError, IndexError, ValueError)) as ei:
        f(ad, ad.ones(2, 3), ad.ones(4, 5))
    msg = str(ei.value)
    for w in words:
        assert w in msg, f"{name}: {w!r} not in {msg!r}"


NAN_CASES = {
    "sort": lambda m, n: n.sort(), "sort_desc": lambda m, n: n.sort(descending=True),
    "argsort_desc": lambda m, n: n.argsort(descending=True), "topk": lambda m, n: n.topk(2),
    "topk_small": lambda m, n: n.topk(2, largest=False), "max": lambda m, n: n.max(), "argmax": lambda m, n: n.argmax(),
    "median": lambda m, n: n.median(), "median_dim": lambda m, n: n.reshape(1, 5).median(1),
    "sign": lambda m, n: n.sign(), "unique": lambda m, n: n.unique(), "maximum": lambda m, n: m.maximum(n, n.flip(0)),
    "clamp": lambda m, n: m.clamp(n, 0, 1), "nanmean": lambda m, n: m.nanmean(n), "nansum": lambda m, n: n.nansum(),
    "sort2d_desc": lambda m, n: m.stack([n, n.flip(0)]).sort(1, descending=True),
}


@pytest.mark.parametrize("name", list(NAN_CASES))
def test_nan_semantics(name):
    check(NAN_CASES[name], np.array([1.0, np.nan, -1.0, 3.0, np.nan]), grad=name not in ("median", "sort", "sort_desc",
                                                                                        "topk", "max", "maximum",
                                                                                        "median_dim", "sort2d_desc", "unique"))


def test_empty_reductions():
    e = np.zeros((0, 3))
    for f in (lambda m, e: e.sum(0), lambda m, e: e.mean(0), lambda m, e: e.prod(0), lambda m, e: e.median(),
              lambda m, e: e.norm(dim=1), lambda m, e: e.logsumexp(1), lambda m, e: e.cumsum(0), lambda m, e: e.sort(1)):
        check(f, e, grad=False)


MISC = {
    "cdist": lambda m, x, y: m.cdist(x, y), "cdist1": lambda m, x, y: m.cdist(x, y, p=1.0),
    "cdist_batched": lambda m, x, y: m.cdist(x.unsqueeze(0), y.unsqueeze(0)),
    "aminmax": lambda m, x, y: m.aminmax(x), "aminmax_dim": lambda m, x, y: m.aminmax(x, dim=1, keepdim=True),
    "sgn": lambda m, x, y: m.sgn(x), "deg2rad": lambda m, x, y: m.deg2rad(x), "rad2deg": lambda m, x, y: x.rad2deg(),
    "tril_indices": lambda m, x, y: m.tril_indices(3, 4, 1), "triu_indices": lambda m, x, y: m.triu_indices(4, 3, -1),
    "bucketize": lambda m, x, y: m.bucketize(x, m.tensor([-1.0, 0.0, 1.0], dtype=x.dtype)),
    "bucketize_r": lambda m, x, y: m.bucketize(x, m.tensor([-1.0, 0.0, 1.0], dtype=x.dtype), right=True),
    "searchsorted": lambda m, x, y: m.searchsorted(m.sort(x, 1).values, y[:4, :2].contiguous()),
    "bincount": lambda m, x, y: m.bincount(m.tensor([0, 3, 3, 1])), "bincount_w": lambda m, x, y: m.bincount(m.tensor([0, 2, 2]), x[0]),
    "histc": lambda m, x, y: m.histc(x, bins=5, min=-2, max=2), "histc_auto": lambda m, x, y: x.histc(4),
    "promote": lambda m, x, y: str(m.promote_types(m.uint8, m.int8)).replace("torch.", ""),
    "result_type": lambda m, x, y: str(m.result_type(m.tensor([1], dtype=m.int32), 2.5)).replace("torch.", ""),
    "can_cast": lambda m, x, y: (m.can_cast(m.float64, m.int32), m.can_cast(m.int32, m.float16)),
    "is_nonzero": lambda m, x, y: m.is_nonzero(m.tensor([1.5])),
}


@pytest.mark.parametrize("name", list(MISC))
def test_misc_ops(name):
    check(MISC[name], R(4, 3, seed=71), R(5, 3, seed=72), grad=not name.startswith(("bucketize", "searchsorted",
                                                                                     "bincount", "histc")))


TORCH_LINALG = {
    "inv": lambda m, a, b: m.linalg.inv(a), "det": lambda m, a, b: m.linalg.det(a),
    "solve": lambda m, a, b: m.linalg.solve(a, b[:, :2]), "solve_vec": lambda m, a, b: m.linalg.solve(a[0], b[:, 0]),
    "vector_norm": lambda m, a, b: m.linalg.vector_norm(b, 3, 1), "matrix_norm": lambda m, a, b: m.linalg.matrix_norm(b),
    "matrix_norm1": lambda m, a, b: m.linalg.matrix_norm(b, 1), "matrix_norm_m1": lambda m, a, b: m.linalg.matrix_norm(b, -1),
    "matrix_norm_inf": lambda m, a, b: m.linalg.matrix_norm(a, float("inf"), keepdim=True),
    "norm": lambda m, a, b: m.linalg.norm(b), "norm_fro": lambda m, a, b: m.linalg.norm(b, "fro"),
    "norm_1": lambda m, a, b: m.linalg.norm(b, 1), "norm_vec1": lambda m, a, b: m.linalg.norm(b[0], 1),
    "norm_3d": lambda m, a, b: m.linalg.norm(a), "norm_dim": lambda m, a, b: m.linalg.norm(b, dim=0),
    "vecdot": lambda m, a, b: m.linalg.vecdot(b, b),
    "svdvals": lambda m, a, b: m.linalg.svdvals(b), "matrix_norm_nuc": lambda m, a, b: m.linalg.matrix_norm(a, "nuc"),
    "matrix_norm_2": lambda m, a, b: m.linalg.matrix_norm(b, 2, keepdim=True), "matrix_norm_m2": lambda m, a, b: m.linalg.matrix_norm(a, -2),
    "norm_nuc": lambda m, a, b: m.norm(b, p="nuc"), "norm_nuc_dim": lambda m, a, b: m.norm(a, p="nuc", dim=(0, 2), keepdim=True),
}


@pytest.mark.parametrize("name", list(TORCH_LINALG))
def test_torch_linalg(name):
    rng = np.random.default_rng(3)
    check(TORCH_LINALG[name], rng.standard_normal((2, 3, 3)) + 2 * np.eye(3), rng.standard_normal((3, 4)))


def test_inv_det_gradcheck():
    a = ad.tensor(np.random.default_rng(4).standard_normal((2, 3, 3)) + 3 * np.eye(3), requires_grad=True)
    assert ad.gradcheck(lambda a: ad.linalg.inv(a), (a,))
    assert ad.gradcheck(lambda a: ad.linalg.det(a), (a,))
    assert ad.gradgradcheck(lambda a: ad.linalg.inv(a), (a,))


NAN_GRADS = {
    "max": lambda m, n: n.max(), "min": lambda m, n: n.min(), "amax": lambda m, n: n.amax(0),
    "amax_rows": lambda m, n: n.reshape(1, 5).amax(1), "maximum": lambda m, n: m.maximum(n, n.flip(0)),
    "minimum": lambda m, n: m.minimum(n, n.flip(0)), "relu": lambda m, n: n.relu(), "abs": lambda m, n: n.abs(),
    "norm_inf": lambda m, n: n.norm(p=float("inf")), "cummax": lambda m, n: n.cummax(0),
    "cummin": lambda m, n: m.cummin(n, 0), "nan_to_num": lambda m, n: m.nan_to_num(n),
}


@pytest.mark.parametrize("name", list(NAN_GRADS))
def test_nan_gradients(name):
    check(NAN_GRADS[name], np.array([1.0, np.nan, -1.0, 3.0, np.nan]))


BITWISE = {
    "and": lambda m, a, b: a & b, "or": lambda m, a, b: a | b, "xor": lambda m, a, b: a ^ b, "not": lambda m, a, b: ~a,
    "and_s": lambda m, a, b: a & 1, "rand_s": lambda m, a, b: 6 & a, "lshift": lambda m, a, b: a << 1,
    "rshift": lambda m, a, b: a >> b.abs(), "rlshift": lambda m, a, b: 2 << b.abs(), "fn": lambda m, a, b: m.bitwise_xor(a, b),
    "bool_and": lambda m, a, b: (a > 0) & (b > 2), "bool_or_s": lambda m, a, b: (a > 0) | True,
    "iand": lambda m, a, b: a.clone().__iand__(b),
}


@pytest.mark.parametrize("name", list(BITWISE))
def test_bitwise(name):
    check(BITWISE[name], np.array([5, 3, -2]), np.array([3, 6, 1]))
    check(BITWISE[name], np.array([5, 3, 2], dtype=np.uint8), np.array([3, 6, 1], dtype=np.uint8))


def test_bitwise_float_error():
    for lib in (ad, torch):
        with pytest.raises((RuntimeError, NotImplementedError, TypeError)):
            lib.tensor([1.5]) & lib.tensor([1.0])


def test_tensor_copies_as_tensor_shares():
    for lib in (ad, torch):
        x = np.arange(3.0)
        t, a, c = lib.from_numpy(x), lib.as_tensor(x), lib.tensor(x)
        x[0] = 5.0
        assert t.tolist()[0] == 5.0 and a.tolist()[0] == 5.0 and c.tolist()[0] == 0.0
        s = lib.ones(2)
        d = lib.tensor(s) if lib is ad else s.clone()
        d[0] = 3.0
        assert s.tolist() == [1.0, 1.0]


ZERO_D = ["x.flatten()", "x.unsqueeze(0)", "x.squeeze(0)", "x.expand(3)", "x.sum(0)", "x.mean(-1)", "x.max(0)",
          "x.argmax(0)", "x.argmin(-1)", "x.cumsum(0)", "x.cumprod(0)", "x.softmax(0)", "x.norm()", "x.t()",
          "m.stack([x, x])", "x[None]", "x[...]", "x.flip(0)", "x.topk(1)", "x.sort()", "x.argsort()", "x.prod(0)",
          "x.logsumexp(0)", "x.nonzero()", "x.nonzero(as_tuple=True)", "x.gather(0, m.tensor(0))",
          "x.index_select(0, m.tensor([0]))", "x.kthvalue(1)", "x.median()", "x.var(0)", "x.expand_as(m.ones(2))"]


@pytest.mark.parametrize("expr", ZERO_D)
def test_zero_dim(expr):
    check(lambda m, x: eval(expr), np.array(2.5))
