"""Each numba kernel slot against its NumPy reference (base.Backend) on random inputs: several shapes,
non-contiguous inputs, float32 and float64, and both the serial and the parallel kernel (forced by
moving the size threshold). Plus end-to-end checks that ops reach the kernels through
`set_backend("numba")`, and the errors the kernels raise."""
import numpy as np
import pytest

import autodiff
from autodiff import backends

nk = pytest.importorskip("autodiff.backends.numba_kernels")

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}


@pytest.fixture(scope="module")
def nb():
    return backends.get_backend("numba")


@pytest.fixture(scope="module")
def ref():
    return backends.get_backend("numpy")


@pytest.fixture(params=["serial", "parallel"])
def mode(request, monkeypatch):
    """Run the test with the serial kernels (threshold huge) or the parallel ones (threshold 0). The
    parallel twins are checked in float32 only: they share their loop bodies with the serial ones, and
    each extra parallel signature costs ~1 s of cold compilation in `make test`."""
    if request.param == "parallel" and getattr(request.node, "callspec", None) is not None \
            and request.node.callspec.params.get("dtype") is np.float64:
        pytest.skip("parallel kernels are checked in float32 only (compile time)")
    monkeypatch.setattr(nk, "PARALLEL_MIN", 0 if request.param == "parallel" else 1 << 60)
    return request.param


def _rand(rng, shape, dtype, noncontig=False):
    if noncontig:  # a transposed/strided view with the requested shape
        big = rng.standard_normal(tuple(shape[::-1]) + (2,)).astype(dtype)[..., 0]
        a = big.T
        assert a.shape == tuple(shape)
        return a
    return rng.standard_normal(shape).astype(dtype)


def _close(a, b, dtype):
    assert a.dtype == b.dtype == np.dtype(dtype)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, **TOL[dtype])


def test_backend_identity(nb):
    assert nb.name == "numba" and nb.device_type == "cpu" and nb.xp is np
    assert isinstance(nb, backends.get_backend("numpy").__class__)


# ----------------------------------------------------------------------------- erf
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,noncontig", [((7,), False), ((3, 5, 4), True), ((0, 3), False), ((), False)])
def test_erf(nb, ref, mode, dtype, shape, noncontig):
    x = _rand(np.random.default_rng(1), shape, dtype, noncontig and len(shape) > 1) * 2
    _close(nb.erf(x), ref.erf(x), dtype)


# ----------------------------------------------------------------------------- index_add / embedding_backward
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,idx_shape", [((10, 5), (12,)), ((6, 3, 2), (4, 5)), ((4,), (9,)), ((3, 4), (0,))])
def test_index_add_rows(nb, ref, mode, dtype, shape, idx_shape):
    rng = np.random.default_rng(2)
    idx = rng.integers(-shape[0], shape[0], idx_shape)  # negative indices wrap, repeats accumulate
    vals = _rand(rng, idx_shape + shape[1:], dtype, noncontig=len(idx_shape + shape[1:]) > 1)
    _close(nb.index_add(shape, dtype, idx, vals), ref.index_add(shape, dtype, idx, vals), dtype)
    _close(nb.index_add(shape, dtype, (idx.astype(np.int32),), vals), ref.index_add(shape, dtype, (idx,), vals),
           dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_index_add_generic_tuple_falls_back(nb, ref, dtype):
    rng = np.random.default_rng(3)
    i0, i1 = rng.integers(0, 4, 6), rng.integers(0, 5, 6)
    vals = rng.standard_normal(6).astype(dtype)
    _close(nb.index_add((4, 5), dtype, (i0, i1), vals), ref.index_add((4, 5), dtype, (i0, i1), vals), dtype)
    key = (slice(None), np.array([0, 2, 2]))
    vals2 = rng.standard_normal((4, 3)).astype(dtype)
    _close(nb.index_add((4, 5), dtype, key, vals2), ref.index_add((4, 5), dtype, key, vals2), dtype)


def test_index_add_out_of_range(nb):
    with pytest.raises(IndexError, match="index_add.*size 4"):
        nb.index_add((4, 2), np.float32, np.array([0, 4]), np.ones((2, 2), np.float32))
    with pytest.raises(IndexError, match="index_add"):
        nb.index_add((4, 2), np.float32, np.array([-5]), np.ones((1, 2), np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("idx_shape,d", [((8, 6), 4), ((50,), 16)])
def test_embedding_backward(nb, ref, mode, dtype, idx_shape, d):
    rng = np.random.default_rng(4)
    idx = rng.integers(0, 11, idx_shape)
    g = _rand(rng, idx_shape + (d,), dtype, noncontig=True)
    _close(nb.embedding_backward(g, idx, 11), ref.embedding_backward(g, idx, 11), dtype)


# ----------------------------------------------------------------------------- im2col / col2im
CONV_CASES = [
    # x shape, kh, kw, stride, padding, dilation
    ((2, 3, 7, 6), 3, 3, (1, 1), (1, 1), (1, 1)),
    ((1, 2, 9, 8), 3, 2, (2, 1), (0, 2), (1, 2)),
    ((3, 1, 5, 5), 1, 1, (1, 1), (0, 0), (1, 1)),
    ((2, 2, 6, 7), 2, 3, (2, 3), (3, 1), (2, 1)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_im2col_col2im(nb, ref, dtype, case):
    shape, kh, kw, st, pad, dil = case
    rng = np.random.default_rng(5)
    x = _rand(rng, shape, dtype, noncontig=True)
    cols = nb.im2col(x, kh, kw, st, pad, dil)
    _close(cols, ref.im2col(x, kh, kw, st, pad, dil), dtype)
    c2 = _rand(rng, cols.shape, dtype, noncontig=True)
    _close(nb.col2im(c2, shape, kh, kw, st, pad, dil), ref.col2im(c2, shape, kh, kw, st, pad, dil), dtype)


# ----------------------------------------------------------------------------- fused softmax cross-entropy
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,c", [(5, 7), (16, 3), (1, 1), (0, 4)])
def test_softmax_cross_entropy(nb, ref, mode, dtype, n, c):
    rng = np.random.default_rng(6)
    logits = _rand(rng, (n, c), dtype, noncontig=True) * 3
    target = rng.integers(0, c, n)
    l1, p1 = nb.softmax_cross_entropy(logits, target)
    l0, p0 = ref.softmax_cross_entropy(logits, target)
    _close(l1, l0, dtype)
    _close(p1, p0, dtype)
    grad_rows = _rand(rng, (n,), dtype)
    _close(nb.softmax_cross_entropy_backward(p0, target, grad_rows),
           ref.softmax_cross_entropy_backward(p0, target, grad_rows), dtype)
    # a broadcast (stride-0) upstream gradient, as produced by mean reduction
    gb = np.broadcast_to(np.asarray(0.5, dtype), (n,))
    _close(nb.softmax_cross_entropy_backward(p0, target, gb), ref.softmax_cross_entropy_backward(p0, target, gb),
           dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_extreme_logits(nb, mode, dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=dtype)
    loss, probs = nb.softmax_cross_entropy(logits, np.array([1, 2]))
    assert np.isfinite(loss).all() and np.isfinite(probs).all()
    np.testing.assert_allclose(loss, [2e4, np.log(3)], rtol=1e-6)


def test_softmax_cross_entropy_bad_target(nb):
    with pytest.raises(IndexError, match="softmax_cross_entropy.*3 classes"):
        nb.softmax_cross_entropy(np.zeros((2, 3), np.float32), np.array([0, 3]))


# ----------------------------------------------------------------------------- optimizer updates
SGD_CASES = [
    dict(lr=0.1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, maximize=False),
    dict(lr=0.05, momentum=0.9, dampening=0.1, nesterov=False, weight_decay=0.01, maximize=True),
    dict(lr=0.05, momentum=0.8, dampening=0.0, nesterov=True, weight_decay=0.0, maximize=False),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", SGD_CASES)
@pytest.mark.parametrize("shape", [(33,), (4, 5, 3)])
def test_sgd_step(nb, ref, mode, dtype, kw, shape):
    rng = np.random.default_rng(7)
    p0 = _rand(rng, shape, dtype)
    p1, p2 = p0.copy(), p0.copy()
    b1, b2 = np.zeros_like(p0), np.zeros_like(p0)
    for step in range(4):
        g = _rand(rng, shape, dtype, noncontig=len(shape) > 1)
        nb.sgd_step_(p1, g, b1, first=step == 0, **kw)
        ref.sgd_step_(p2, g, b2, first=step == 0, **kw)
    _close(p1, p2, dtype)
    _close(b1, b2, dtype)


ADAM_CASES = [
    dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False, decoupled=False),
    dict(lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.1, amsgrad=True, maximize=False, decoupled=False),
    dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.05, amsgrad=True, maximize=True, decoupled=True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", ADAM_CASES)
@pytest.mark.parametrize("shape", [(41,), (3, 7)])
def test_adam_step(nb, ref, mode, dtype, kw, shape):
    rng = np.random.default_rng(8)
    p0 = _rand(rng, shape, dtype)
    s1 = [p0.copy()] + [np.zeros_like(p0) for _ in range(3)]
    s2 = [p0.copy()] + [np.zeros_like(p0) for _ in range(3)]
    for step in range(1, 5):
        g = _rand(rng, shape, dtype, noncontig=len(shape) > 1)
        nb.adam_step_(s1[0], g, s1[1], s1[2], s1[3], step, **kw)
        ref.adam_step_(s2[0], g, s2[1], s2[2], s2[3], step, **kw)
    for a, b in zip(s1, s2):
        _close(a, b, dtype)


def test_optimizer_noncontiguous_param_falls_back(nb, ref):
    """An in-place update of a non-contiguous parameter cannot go through a flat view: the NumPy
    reference handles it and the writes still land in the caller's array."""
    rng = np.random.default_rng(9)
    base1 = rng.standard_normal((6, 4))
    base2 = base1.copy()
    p1, p2 = base1.T, base2.T
    g = rng.standard_normal((4, 6))
    m1, v1, m2, v2 = (np.zeros((4, 6)) for _ in range(4))
    nb.adam_step_(p1, g, m1, v1, None, 1, 1e-2, 0.9, 0.999, 1e-8, 0.0, False, False, False)
    ref.adam_step_(p2, g, m2, v2, None, 1, 1e-2, 0.9, 0.999, 1e-8, 0.0, False, False, False)
    np.testing.assert_array_equal(base1, base2)
    nb.sgd_step_(p1, g, None, 0.1, 0.0, 0.0, False, 0.0, False, True)
    ref.sgd_step_(p2, g, None, 0.1, 0.0, 0.0, False, 0.0, False, True)
    np.testing.assert_array_equal(base1, base2)


# ----------------------------------------------------------------------------- through the ops
def test_ops_use_numba_kernels(monkeypatch):
    """With set_backend('numba') the ops reach the numba slots (counted) and agree with NumPy."""
    nb = backends.get_backend("numba")
    calls = []
    orig = type(nb).index_add

    def counting(self, *a, **k):
        calls.append(1)
        return orig(self, *a, **k)

    monkeypatch.setattr(type(nb), "index_add", counting)
    results = {}
    prev = backends.get_cpu_backend().name
    try:
        for name in ("numpy", "numba"):
            autodiff.set_backend(name)
            x = autodiff.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
            idx = autodiff.tensor(np.array([0, 3, 3, 1, 0]))
            y = x[idx]
            (y * y).sum().backward()
            z = autodiff.tensor(np.linspace(-2, 2, 9), requires_grad=True)
            autodiff.erf(z).sum().backward()
            results[name] = (x.grad.data.copy(), z.grad.data.copy(), autodiff.erf(z).data.copy())
    finally:
        autodiff.set_backend(prev)
    assert calls, "index_add of the numba backend was not used"
    for a, b in zip(results["numpy"], results["numba"]):
        np.testing.assert_allclose(a, b, rtol=1e-12)


# ----------------------------------------------------------------------------- conv and pooling slots
def _has(slot):
    from autodiff.backends.base import Backend
    return hasattr(Backend, slot)


@pytest.mark.skipif(not _has("conv2d_weight_grad"), reason="conv slots not in base.Backend yet")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_slots(nb, ref, dtype, case):
    shape, kh, kw, st, pad, dil = case
    rng = np.random.default_rng(10)
    x = _rand(rng, shape, dtype, noncontig=True)
    w = _rand(rng, (4, shape[1], kh, kw), dtype)
    b = _rand(rng, (4,), dtype)
    y1, cols1 = nb.conv2d(x, w, b, st, pad, dil, 1)
    y0, cols0 = ref.conv2d(x, w, b, st, pad, dil, 1)
    _close(y1, y0, dtype)
    g = _rand(rng, y0.shape, dtype, noncontig=True)
    _close(nb.conv2d_input_grad(g, w, shape, st, pad, dil, 1), ref.conv2d_input_grad(g, w, shape, st, pad, dil, 1),
           dtype)
    for c in (cols1, None):
        _close(nb.conv2d_weight_grad(x, g, w.shape, st, pad, dil, 1, cols=c),
               ref.conv2d_weight_grad(x, g, w.shape, st, pad, dil, 1, cols=cols0), dtype)


# im2col with unit width stride takes the padded-buffer kernel (im2col_w1); the conv slots run over
# chunks of the batch (forced small here so that several chunks and a ragged last one are exercised)
CONV_W1_CASES = [
    # x shape, kh, kw, stride, padding, dilation
    ((3, 2, 8, 7), 3, 3, (1, 1), (0, 0), (1, 1)),
    ((2, 3, 9, 8), 3, 2, (2, 1), (2, 2), (1, 1)),
    ((2, 2, 10, 9), 3, 3, (1, 1), (1, 2), (2, 2)),
    ((1, 1, 5, 17), 2, 5, (3, 1), (1, 0), (1, 2)),
    ((2, 2, 4, 4), 1, 1, (1, 1), (2, 1), (1, 1)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_W1_CASES)
def test_im2col_w1(nb, ref, dtype, case):
    shape, kh, kw, st, pad, dil = case
    x = _rand(np.random.default_rng(15), shape, dtype, noncontig=True)
    cols = nb.im2col(x, kh, kw, st, pad, dil)
    np.testing.assert_array_equal(cols, ref.im2col(x, kh, kw, st, pad, dil))  # a copy: bit-identical
    for nt in (1, 3):  # the task split over planes, as with several threads
        out = np.full_like(cols, np.nan)
        nk.im2col_w1(np.ascontiguousarray(x), kh, kw, st[0], pad[0], pad[1], dil[0], dil[1], out, nt)
        np.testing.assert_array_equal(out, cols)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [c for c in CONV_CASES + CONV_W1_CASES if c[3] == (1, 1)])
def test_col2im_s1(nb, ref, dtype, case):
    """col2im with unit strides takes the shifted-plane kernel (col2im_s1): same sums as the reference,
    in another order; also with its work split over several tasks."""
    shape, kh, kw, st, pad, dil = case
    rng = np.random.default_rng(18)
    oh = shape[2] + 2 * pad[0] - dil[0] * (kh - 1)
    ow = shape[3] + 2 * pad[1] - dil[1] * (kw - 1)
    cols = _rand(rng, shape[:2] + (kh, kw, oh, ow), dtype, noncontig=True)
    want = ref.col2im(cols, shape, kh, kw, st, pad, dil)
    _close(nb.col2im(cols, shape, kh, kw, st, pad, dil), want, dtype)
    for nt in (1, 4):
        out = np.full(shape, np.nan, dtype=dtype)
        nk.col2im_s1(np.ascontiguousarray(cols), kh, kw, pad[0], pad[1], dil[0], dil[1], out, nt)
        _close(out, want, dtype)
    # cols of another geometry than the kernel assumes (the average-pooling backward passes such
    # shapes) go to the row-by-row kernel
    short = np.ascontiguousarray(cols[:, :, :, :, :-1])
    _close(nb.col2im(short, shape, kh, kw, st, pad, dil), ref.col2im(short, shape, kh, kw, st, pad, dil), dtype)


CONV_GROUP_CASES = [
    # x shape, out channels, kh, kw, stride, padding, dilation, groups, bias
    ((5, 4, 7, 6), 6, 3, 3, (1, 1), (1, 1), (1, 1), 2, True),
    ((3, 6, 8, 8), 6, 3, 2, (2, 1), (0, 2), (2, 1), 3, False),
    ((4, 2, 6, 9), 4, 3, 3, (1, 2), (2, 1), (1, 2), 1, True),
    ((7, 3, 5, 5), 2, 1, 1, (1, 1), (0, 0), (1, 1), 1, True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_GROUP_CASES)
@pytest.mark.parametrize("chunk_bytes", [1, 1 << 19])
def test_conv2d_slots_groups_chunks(nb, ref, monkeypatch, dtype, case, chunk_bytes):
    shape, o, kh, kw, st, pad, dil, groups, bias = case
    monkeypatch.setattr(type(nb), "_CONV_CHUNK_BYTES", chunk_bytes)  # 1: one sample per chunk
    rng = np.random.default_rng(16)
    x = _rand(rng, shape, dtype, noncontig=True)
    w = _rand(rng, (o, shape[1] // groups, kh, kw), dtype, noncontig=True)
    b = _rand(rng, (o,), dtype) if bias else None
    p = (st, pad, dil, groups)
    y1, cols1 = nb.conv2d(x, w, b, *p)
    y0, cols0 = ref.conv2d(x, w, b, *p)
    _close(y1, y0, dtype)
    assert y1.base is None and y1.flags.c_contiguous
    g = np.broadcast_to(_rand(rng, y0.shape[1:], dtype), y0.shape)  # a broadcast gradient, as from sum()
    gx = nb.conv2d_input_grad(g, w, shape, *p)
    _close(gx, ref.conv2d_input_grad(g, w, shape, *p), dtype)
    gw = nb.conv2d_weight_grad(x, g, w.shape, *p, cols=cols1)
    _close(gw, ref.conv2d_weight_grad(x, g, w.shape, *p, cols=cols0), dtype)
    assert gx.base is None and gw.base is None
    # the work buffers are reused: a second call with other data must not see the first one's
    y2, _ = nb.conv2d(x * 2, w, b, *p)
    _close(y2, ref.conv2d(x * 2, w, b, *p)[0], dtype)


def test_conv2d_scratch_is_per_thread(nb, ref):
    """Convolutions running in several threads at once (the kernels release the GIL) each get their
    own work buffers."""
    import threading
    rng = np.random.default_rng(17)
    xs = [rng.standard_normal((6, 3, 9, 9)).astype(np.float32) for _ in range(4)]
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    out = [None] * 4

    def run(i):
        for _ in range(20):
            out[i] = nb.conv2d(xs[i], w, None, (1, 1), (1, 1), (1, 1), 1)[0]

    ts = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for i in range(4):
        _close(out[i], ref.conv2d(xs[i], w, None, (1, 1), (1, 1), (1, 1), 1)[0], np.float32)


POOL_CASES = [
    # kernel, stride, padding, dilation, ceil_mode
    ((2, 2), (2, 2), (0, 0), (1, 1), False),
    ((3, 3), (2, 2), (1, 1), (1, 1), True),
    ((2, 3), (1, 2), (1, 0), (2, 1), False),
]


@pytest.mark.skipif(not _has("max_pool2d_backward"), reason="pooling slots not in base.Backend yet")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool2d_slots(nb, ref, dtype, case):
    k, s, p, d, ceil = case
    rng = np.random.default_rng(11)
    x = _rand(rng, (2, 3, 8, 7), dtype, noncontig=True)
    x[0, 0, 1, 1] = x[0, 0, 1, 2] = 5.0  # a tie: the first maximum wins
    o1, i1 = nb.max_pool2d(x, k, s, p, d, ceil)
    o0, i0 = ref.max_pool2d(x, k, s, p, d, ceil)
    _close(o1, o0, dtype)
    np.testing.assert_array_equal(i1, i0)
    g = _rand(rng, o0.shape, dtype, noncontig=True)
    overlapping = tuple(k) != tuple(s)
    _close(nb.max_pool2d_backward(g, i0, x.shape, overlapping), ref.max_pool2d_backward(g, i0, x.shape, overlapping),
           dtype)


@pytest.mark.skipif(not _has("max_pool2d"), reason="pooling slots not in base.Backend yet")
def test_max_pool2d_nan_propagates(nb):
    x = np.zeros((1, 1, 2, 2), np.float32)
    x[0, 0, 1, 0] = np.nan
    out, idx = nb.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    assert np.isnan(out[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 2


def test_results_own_their_memory(nb):
    """Slot results are not views (the engine would copy a view before storing it as .grad)."""
    rng = np.random.default_rng(12)
    g = rng.standard_normal((4, 5, 3)).astype(np.float32)
    idx = rng.integers(0, 7, (4, 5))
    assert nb.embedding_backward(g, idx, 7).base is None
    assert nb.index_add((7, 3), np.float32, idx.reshape(-1), g.reshape(-1, 3)).base is None
    assert nb.erf(g).base is None
    if _has("max_pool2d_backward"):
        x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
        o, i = nb.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
        assert nb.max_pool2d_backward(o, i, x.shape, False).base is None
    if _has("conv2d_weight_grad"):
        x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
        w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
        y, cols = nb.conv2d(x, w, None, (1, 1), (1, 1), (1, 1), 1)
        assert nb.conv2d_weight_grad(x, y, w.shape, (1, 1), (1, 1), (1, 1), 1, cols=cols).base is None


AVG_CASES = [
    # kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    ((2, 2), (2, 2), (0, 0), False, True, None),
    ((3, 3), (2, 2), (1, 1), True, True, None),
    ((3, 2), (2, 1), (1, 1), True, False, None),
    ((2, 3), (1, 2), (0, 1), False, True, 5),
]


@pytest.mark.skipif(not _has("avg_pool2d_backward"), reason="pooling slots not in base.Backend yet")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", AVG_CASES)
def test_avg_pool2d_slots(nb, ref, dtype, case):
    rng = np.random.default_rng(13)
    x = _rand(rng, (2, 3, 7, 8), dtype, noncontig=True)
    o1 = nb.avg_pool2d(x, *case)
    o0 = ref.avg_pool2d(x, *case)
    _close(o1, o0, dtype)
    g = _rand(rng, o0.shape, dtype, noncontig=True)
    _close(nb.avg_pool2d_backward(g, x.shape, *case), ref.avg_pool2d_backward(g, x.shape, *case), dtype)


def test_bad_shapes_never_reach_kernels(nb, ref):
    """Inconsistent shapes go to the NumPy reference (which raises or handles them), never into a
    kernel that would read or write out of bounds."""
    rng = np.random.default_rng(14)
    p = np.zeros(6, np.float32)
    with pytest.raises(ValueError):
        nb.sgd_step_(p, np.ones(4, np.float32), None, 0.1, 0.0, 0.0, False, 0.0, False, True)
    with pytest.raises(ValueError):
        nb.adam_step_(p, np.ones(4, np.float32), np.zeros(6, np.float32), np.zeros(6, np.float32), None, 1,
                      1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, False)
    with pytest.raises((ValueError, IndexError)):
        nb.softmax_cross_entropy(rng.standard_normal((3, 4)).astype(np.float32), np.array([0, 1]))
    cols = rng.standard_normal((1, 2, 3, 3, 4, 4)).astype(np.float32)  # batch 1 vs 2: the base broadcasts
    np.testing.assert_array_equal(nb.col2im(cols, (2, 2, 4, 4), 3, 3, (1, 1), (1, 1), (1, 1)),
                                  ref.col2im(cols, (2, 2, 4, 4), 3, 3, (1, 1), (1, 1), (1, 1)))


@pytest.mark.skipif(not _has("max_pool2d_backward"), reason="pooling slots not in base.Backend yet")
def test_max_pool2d_backward_bad_indices(nb):
    """Indices from the user (max_unpool2d) outside the plane raise instead of writing out of bounds."""
    g = np.ones((1, 1, 2, 2), np.float32)
    with pytest.raises(IndexError, match="max_pool2d_backward.*outside"):
        nb.max_pool2d_backward(g, np.array([[[[0, 1], [2, 16]]]]), (1, 1, 4, 4), True)
    with pytest.raises(IndexError, match="max_pool2d_backward"):
        nb.max_pool2d_backward(g, np.array([[[[0, -1], [2, 3]]]]), (1, 1, 4, 4), True)


@pytest.mark.skipif(not _has("log_softmax"), reason="softmax slots not in base.Backend yet")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((5, 7), -1), ((2, 3, 9), 2), ((4, 6), 0), ((3, 1), 1)])
def test_softmax_log_softmax(nb, ref, mode, dtype, shape, axis):
    rng = np.random.default_rng(15)
    x = _rand(rng, shape, dtype, noncontig=True) * 4
    x.flat[0] = 80.0  # large logits stay finite (max-shifted)
    _close(nb.softmax(x, axis), ref.softmax(x, axis), dtype)
    _close(nb.log_softmax(x, axis), ref.log_softmax(x, axis), dtype)
