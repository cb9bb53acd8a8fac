"""Each fused CUDA kernel (autodiff/backends/cuda_kernels.py, reached through the CuPy backend's slots)
against its NumPy reference (the `base.Backend` slot run by the NumPy backend, or the `reference_*`
function) on random inputs of several shapes, contiguous and not, float32 and float64.

Every test here needs a GPU: the module is marked `cuda` and skipped with the reason when CuPy or a GPU is
missing. `make gpu-check` runs it for real.
"""
import numpy as np
import pytest

from autodiff import backends

pytestmark = pytest.mark.cuda

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-12)}


@pytest.fixture(scope="module")
def cb():
    try:
        return backends.get_backend("cupy")
    except backends.BackendUnavailable as e:
        pytest.skip(f"needs a CUDA GPU with CuPy (run `make gpu-check` on one): {e}")


@pytest.fixture(scope="module")
def ref():
    return backends.get_backend("numpy")


@pytest.fixture(scope="module")
def k(cb):
    from autodiff.backends import cuda_kernels
    return cuda_kernels


def _rand(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _dev(cb, a, noncontig=False):
    """NumPy array -> CuPy array with the same values, transposed-view layout when noncontig."""
    cp = cb.xp
    if noncontig and a.ndim >= 2:
        return cp.asarray(np.ascontiguousarray(a.T)).T
    return cp.asarray(a)


def _close(got, want, dtype, **kw):
    tol = dict(TOL[np.dtype(dtype).type])
    tol.update(kw)
    np.testing.assert_allclose(got.get() if hasattr(got, "get") else got, want, **tol)


# ----------------------------------------------------------------------------- softmax + cross-entropy
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (4, 10), (7, 1000), (3, 3000), (129, 33)])
@pytest.mark.parametrize("noncontig", [False, True])
def test_softmax_cross_entropy(cb, ref, dtype, shape, noncontig):
    rng = np.random.default_rng(0)
    x = _rand(rng, shape, dtype, scale=3.0)
    t = rng.integers(0, shape[1], size=shape[0]).astype(np.int64)
    loss_r, probs_r = ref.softmax_cross_entropy(x, t)
    loss, probs = cb.softmax_cross_entropy(_dev(cb, x, noncontig), cb.xp.asarray(t))
    assert loss.dtype == dtype and probs.dtype == dtype and probs.shape == shape
    _close(loss, loss_r, dtype)
    _close(probs, probs_r, dtype)
    g = rng.standard_normal(shape[0]).astype(dtype)
    gx_r = ref.softmax_cross_entropy_backward(probs_r, t, g)
    gx = cb.softmax_cross_entropy_backward(probs, cb.xp.asarray(t), cb.xp.asarray(g))
    _close(gx, gx_r, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_extreme_logits_and_bad_target(cb, ref, dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [3.0, 1.0, 2.0]], dtype=dtype)
    t = np.array([1, 0, 5], dtype=np.int64)  # row 2: out of range -> NaN, no host check
    loss, probs = cb.softmax_cross_entropy(cb.xp.asarray(x), cb.xp.asarray(t))
    loss = loss.get()
    assert np.isfinite(loss[:2]).all() and np.isnan(loss[2])
    loss_r, probs_r = ref.softmax_cross_entropy(x[:2], t[:2])
    _close(loss[:2], loss_r, dtype)
    _close(probs[:2], probs_r, dtype)


def test_softmax_cross_entropy_float16_falls_back(cb, ref):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 7)).astype(np.float16)
    t = rng.integers(0, 7, size=5)
    loss, probs = cb.softmax_cross_entropy(cb.xp.asarray(x), cb.xp.asarray(t))
    loss_r, probs_r = ref.softmax_cross_entropy(x.astype(np.float32), t)
    assert loss.dtype == np.float16
    np.testing.assert_allclose(loss.get().astype(np.float32), loss_r, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, axis", [((3, 7), -1), ((2, 3, 300), 2), ((1, 1), -1), ((4, 5), 0), ((2, 1100), 1)])
@pytest.mark.parametrize("noncontig", [False, True])
def test_softmax_log_softmax_rows(cb, ref, dtype, shape, axis, noncontig):
    rng = np.random.default_rng(9)
    x = _rand(rng, shape, dtype, scale=4.0)
    xd = _dev(cb, x, noncontig)
    y = cb.softmax(xd, axis)
    assert y.shape == shape and y.dtype == dtype
    _close(y, ref.softmax(x, axis), dtype)
    _close(cb.log_softmax(xd, axis), ref.log_softmax(x, axis), dtype)


# ----------------------------------------------------------------------------- im2col / col2im
CONV_CASES = [  # (x shape, kh, kw, stride, padding, dilation)
    ((2, 3, 8, 8), 3, 3, (1, 1), (1, 1), (1, 1)),
    ((1, 2, 11, 9), 5, 5, (2, 2), (2, 2), (1, 1)),
    ((3, 1, 7, 10), 3, 2, (2, 1), (0, 1), (2, 1)),
    ((2, 4, 5, 5), 1, 1, (1, 1), (0, 0), (1, 1)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("noncontig", [False, True])
def test_im2col_col2im(cb, ref, dtype, case, noncontig):
    shape, kh, kw, s, p, d = case
    rng = np.random.default_rng(2)
    x = _rand(rng, shape, dtype)
    cols_r = ref.im2col(x, kh, kw, s, p, d)
    xd = _dev(cb, x, noncontig)
    cols = cb.im2col(xd, kh, kw, s, p, d)
    assert cols.shape == cols_r.shape and cols.dtype == dtype
    _close(cols, cols_r, dtype)
    g = rng.standard_normal(cols_r.shape).astype(dtype)
    img_r = ref.col2im(g, shape, kh, kw, s, p, d)
    gd = _dev(cb, g, noncontig)
    img = cb.col2im(gd, shape, kh, kw, s, p, d)
    assert img.shape == shape
    _close(img, img_r, dtype)


# ----------------------------------------------------------------------------- max pooling
POOL_CASES = [  # (x shape, kernel, stride, padding, dilation, ceil_mode)
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((1, 2, 9, 7), (3, 3), (2, 2), (1, 1), (1, 1), False),
    ((2, 2, 6, 6), (3, 3), (1, 1), (0, 0), (1, 1), False),   # overlapping windows
    ((1, 3, 7, 7), (2, 2), (2, 2), (0, 0), (1, 1), True),     # ceil_mode
    ((1, 1, 9, 9), (2, 3), (1, 2), (1, 1), (2, 2), False),    # dilation
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("noncontig", [False, True])
def test_max_pool2d(cb, ref, dtype, case, noncontig):
    shape, kern, s, p, d, ceil = case
    rng = np.random.default_rng(3)
    x = _rand(rng, shape, dtype)
    out_r, idx_r = ref.max_pool2d(x, kern, s, p, d, ceil)
    out, idx = cb.max_pool2d(_dev(cb, x, noncontig), kern, s, p, d, ceil)
    assert out.shape == out_r.shape and idx.dtype == np.int64
    _close(out, out_r, dtype)
    np.testing.assert_array_equal(idx.get(), idx_r)
    g = rng.standard_normal(out_r.shape).astype(dtype)
    gx_r = ref.max_pool2d_backward(g, idx_r, shape)
    gx = cb.max_pool2d_backward(cb.xp.asarray(g), idx, shape)
    _close(gx, gx_r, dtype)


def test_max_pool2d_ties_pick_first(cb, ref):
    x = np.ones((1, 1, 4, 4), dtype=np.float32)
    out, idx = cb.max_pool2d(cb.xp.asarray(x), (2, 2), (2, 2), (0, 0), (1, 1), False)
    _, idx_r = ref.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    np.testing.assert_array_equal(idx.get(), idx_r)


# ----------------------------------------------------------------------------- optimizer updates
SGD_CASES = [dict(momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, maximize=False),
             dict(momentum=0.9, dampening=0.0, nesterov=False, weight_decay=1e-2, maximize=False),
             dict(momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.0, maximize=True),
             dict(momentum=0.5, dampening=0.3, nesterov=False, weight_decay=0.1, maximize=False)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hp", SGD_CASES)
@pytest.mark.parametrize("first", [True, False])
@pytest.mark.parametrize("noncontig", [False, True])
def test_sgd_step(cb, ref, dtype, hp, first, noncontig):
    rng = np.random.default_rng(4)
    shape = (6, 5)
    p, g, buf = (_rand(rng, shape, dtype) for _ in range(3))
    pd, gd, bd = (_dev(cb, a, noncontig) for a in (p, g, buf))
    pr, br = p.copy(), buf.copy()
    ref.sgd_step_(pr, g, br if hp["momentum"] else None, 0.1, first=first, **hp)
    cb.sgd_step_(pd, gd, bd if hp["momentum"] else None, 0.1, first=first, **hp)
    _close(pd, pr, dtype, rtol=1e-5 if dtype == np.float32 else 1e-12)
    if hp["momentum"]:
        _close(bd, br, dtype, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("step", [1, 7])
def test_adam_step(cb, ref, dtype, amsgrad, decoupled, maximize, step):
    rng = np.random.default_rng(5)
    shape = (3, 4, 5)
    p, g = _rand(rng, shape, dtype), _rand(rng, shape, dtype)
    m = _rand(rng, shape, dtype) * 0.1
    v = np.abs(_rand(rng, shape, dtype)) * 0.1
    vmax = v * 1.5
    arrays_r = [a.copy() for a in (p, m, v, vmax)]
    arrays_d = [cb.xp.asarray(a) for a in (p, m, v, vmax)]
    kw = dict(step=step, lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.05, amsgrad=amsgrad,
              maximize=maximize, decoupled=decoupled)
    ref.adam_step_(arrays_r[0], g, *arrays_r[1:], **kw)
    cb.adam_step_(arrays_d[0], cb.xp.asarray(g), *arrays_d[1:], **kw)
    for got, want in zip(arrays_d, arrays_r):
        _close(got, want, dtype, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6 if dtype == np.float32
               else 1e-13)


# ----------------------------------------------------------------------------- activations, erf, index_add
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("noncontig", [False, True])
def test_gelu_silu(cb, k, dtype, approximate, noncontig):
    rng = np.random.default_rng(6)
    x = _rand(rng, (17, 9), dtype, scale=3.0)
    xd = _dev(cb, x, noncontig)
    _close(cb.gelu(xd, approximate), k.reference_gelu(x, approximate), dtype, rtol=1e-5)
    _close(cb.silu(xd), k.reference_silu(x), dtype, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["relu", "gelu", "silu", "none"])
def test_bias_act(cb, k, dtype, act):
    rng = np.random.default_rng(7)
    x, b = _rand(rng, (8, 5), dtype), _rand(rng, (5,), dtype)
    v = x + b
    want = {"relu": np.maximum(v, 0), "gelu": k.reference_gelu(v), "silu": k.reference_silu(v), "none": v}[act]
    _close(k.bias_act(cb.xp.asarray(x), cb.xp.asarray(b), act), want, dtype, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_erf(cb, ref, dtype):
    x = np.linspace(-4, 4, 101).astype(dtype)
    _close(cb.erf(cb.xp.asarray(x)), ref.erf(x), dtype, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_index_add_repeated(cb, ref, dtype):
    rng = np.random.default_rng(8)
    idx = np.array([0, 2, 2, 5, 0, 0], dtype=np.int64)
    vals = rng.standard_normal((6, 3)).astype(dtype)
    want = ref.index_add((7, 3), dtype, idx, vals)
    _close(cb.index_add((7, 3), dtype, cb.xp.asarray(idx), cb.xp.asarray(vals)), want, dtype)
    want = ref.embedding_backward(vals.reshape(2, 3, 3), idx.reshape(2, 3), 7)
    got = cb.embedding_backward(cb.xp.asarray(vals.reshape(2, 3, 3)), cb.xp.asarray(idx.reshape(2, 3)), 7)
    _close(got, want, dtype)


# ----------------------------------------------------------------------------- random numbers
def test_random_seeded_and_shaped(cb):
    cb.manual_seed(3)
    a = cb.random("normal", (4, 5), np.dtype(np.float32))
    u = cb.random("uniform", (1000,), np.dtype(np.float64))
    i = cb.random("integers", (50,), np.dtype(np.int64), low=2, high=5)
    perm = cb.random("permutation", (10,), np.dtype(np.int64))
    cb.manual_seed(3)
    b = cb.random("normal", (4, 5), np.dtype(np.float32))
    np.testing.assert_array_equal(a.get(), b.get())
    assert a.dtype == np.float32 and u.dtype == np.float64
    u = u.get()
    assert (u >= 0).all() and (u < 1).all()
    i = i.get()
    assert i.min() >= 2 and i.max() < 5
    assert sorted(perm.get().tolist()) == list(range(10))
