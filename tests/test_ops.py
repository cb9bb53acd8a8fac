"""Every entry of tests/opinfo.py, on every backend: forward vs NumPy, float64 gradcheck,
gradgradcheck, non-contiguous inputs and dtype preservation. Plus the op behaviours a table
cannot express (tie-splitting, kinks, repeated-index accumulation, return types)."""
import numpy as np
import pytest

import autodiff as ad
from autodiff.gradcheck import gradcheck, gradgradcheck
from conftest import to_numpy
from opinfo import F32, F64, OPS, Sample

OP_PARAMS = [pytest.param(o, id=o.name) for o in OPS]
GRAD_PARAMS = [pytest.param(o, id=o.name) for o in OPS if o.grad]
GRADGRAD_PARAMS = [pytest.param(o, id=o.name) for o in OPS if o.gradgrad]


def _samples(op, dtype, seed=0):
    return list(op.samples(np.random.default_rng(seed), dtype))


def _tensors(sample, device, requires_grad=False, noncontig=False):
    """Sample args as tensors on `device`; float arrays require grad when asked (or those in diff)."""
    out = []
    for i, a in enumerate(sample.args):
        if isinstance(a, np.ndarray):
            if noncontig and a.size > 1:
                big = ad.tensor(np.stack([a, np.zeros_like(a)], axis=-1), device=device)
                t = ad.as_tensor(big.data[..., 0])  # a strided view on the same device (tensor() copies)
                assert not t.data.flags.c_contiguous
            else:
                t = ad.tensor(a, device=device)
            want = sample.diff is None or i in sample.diff
            if requires_grad and a.dtype.kind == "f" and want:
                t.requires_grad_()
            out.append(t)
        else:
            out.append(a)
    return out


def _flat(x):
    if isinstance(x, (tuple, list)):
        r = []
        for e in x:
            r += _flat(e)
        return r
    return [x]


def _check_close(out, ref, dtype, op, desc):
    outs, refs = _flat(out), _flat(ref)
    assert len(outs) == len(refs), f"{op.name}[{desc}]: {len(outs)} outputs vs {len(refs)} reference outputs"
    for o, r in zip(outs, refs):
        assert isinstance(o, ad.Tensor), f"{op.name}[{desc}]: returned {type(o).__name__}"
        r = np.asarray(r)
        got = to_numpy(o)
        assert got.shape == r.shape, f"{op.name}[{desc}]: shape {got.shape} vs reference {r.shape}"
        assert got.dtype == r.dtype, f"{op.name}[{desc}]: dtype {got.dtype} vs reference {r.dtype}"
        if r.dtype.kind == "f":
            rtol, atol = (op.rtol32, op.atol32) if dtype == F32 else (1e-7, 1e-10)
            np.testing.assert_allclose(got, r, rtol=rtol, atol=atol, err_msg=f"{op.name}[{desc}]")
        else:
            np.testing.assert_array_equal(got, r, err_msg=f"{op.name}[{desc}]")


def _call(op, sample, ts):
    return op.op(*ts, **sample.kwargs)


@pytest.mark.parametrize("op", OP_PARAMS)
def test_forward_matches_numpy(op, device):
    for dtype in op.dtypes:
        for s in _samples(op, dtype):
            out = _call(op, s, _tensors(s, device))
            _check_close(out, op.ref(*s.args, **s.kwargs), dtype, op, s.desc)


def _has_grad_input(s):
    return any(isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size and (s.diff is None or i in s.diff)
               for i, a in enumerate(s.args))


@pytest.mark.parametrize("op", GRAD_PARAMS)
def test_gradcheck(op, device):
    for s in _samples(op, F64):
        if not _has_grad_input(s):
            continue
        ts = _tensors(s, device, requires_grad=True)
        assert gradcheck(lambda *xs: _call(op, s, xs), ts, name=f"{op.name}[{s.desc}]")


@pytest.mark.parametrize("op", GRADGRAD_PARAMS)
def test_gradgradcheck(op, device):
    for s in _samples(op, F64)[:4]:
        if not _has_grad_input(s):
            continue
        ts = _tensors(s, device, requires_grad=True)
        assert gradgradcheck(lambda *xs: _call(op, s, xs), ts, name=f"{op.name}[{s.desc}]")


def _grads(op, s, ts, seed=3):
    """Backward of sum(v * out) over float outputs; returns the inputs' .grad as NumPy (None kept)."""
    outs = [o for o in _flat(_call(op, s, ts)) if o.dtype.kind == "f" and o.requires_grad]
    if not outs:
        return [None for _ in ts]
    rng = np.random.default_rng(seed)
    loss = None
    for o in outs:
        v = ad.tensor(rng.standard_normal(o.shape).astype(o.dtype), device=o.device)
        term = (o * v).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    return [to_numpy(t.grad) if isinstance(t, ad.Tensor) and t.grad is not None else None for t in ts]


@pytest.mark.parametrize("op", OP_PARAMS)
def test_noncontiguous_inputs(op, device):
    for s in _samples(op, F64):
        ts = _tensors(s, device, requires_grad=op.grad, noncontig=True)
        _check_close(_call(op, s, ts), op.ref(*s.args, **s.kwargs), F64, op, s.desc + " (non-contiguous)")
        if op.grad:
            g_nc = _grads(op, s, ts)
            g_c = _grads(op, s, _tensors(s, device, requires_grad=True))
            for a, b in zip(g_nc, g_c):
                assert (a is None) == (b is None)
                if a is not None:
                    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"{op.name}[{s.desc}]")


@pytest.mark.parametrize("op", GRAD_PARAMS)
def test_float32_preserved_through_backward(op, device):
    for s in _samples(op, F32):
        ts = _tensors(s, device, requires_grad=True)
        out = _call(op, s, ts)
        for o in _flat(out):
            if o.dtype.kind == "f":
                assert o.dtype == F32, f"{op.name}[{s.desc}]: float32 input gave {o.dtype}"
        _grads(op, s, ts)
        for t in ts:
            if isinstance(t, ad.Tensor) and t.requires_grad and t.grad is not None:
                assert t.grad.dtype == F32 and t.grad.shape == t.shape, f"{op.name}[{s.desc}]"


def test_every_issue_op_is_in_the_table():
    names = {o.name for o in OPS}
    required = """add sub mul div pow neg matmul abs exp log log1p expm1 sqrt rsqrt square reciprocal sin cos tanh
    sigmoid relu leaky_relu elu gelu gelu_tanh silu softplus sign clamp maximum minimum where eq ne lt le gt ge
    logical_and logical_or logical_not sum mean max_dim min_dim max_all min_all amax amin prod var std logsumexp
    norm argmax argmin all any reshape view flatten squeeze unsqueeze transpose permute expand broadcast_to repeat
    contiguous cat stack split chunk getitem pad flip einsum outer dot""".split()
    assert not set(required) - names


# ----------------------------------------------------------------------------- behaviours beyond the table
def _leaf(a, device, dtype=np.float64):
    return ad.tensor(np.asarray(a, dtype=dtype), device=device, requires_grad=True)


def test_max_min_named_tuple_and_types(device):
    x = ad.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]], device=device)
    r = ad.max(x, dim=1)
    assert type(r).__name__ in ("MinMax", "max") or hasattr(r, "_fields")
    assert r._fields == ("values", "indices")
    values, indices = r
    np.testing.assert_array_equal(to_numpy(values), [5.0, 7.0])
    np.testing.assert_array_equal(to_numpy(indices), [1, 0])
    assert indices.dtype == ad.int64 and not indices.requires_grad
    assert x.max().shape == () and float(x.max()) == 7.0
    r = x.min(0, keepdim=True)
    assert r.values.shape == (1, 3) and r.indices.shape == (1, 3)
    # torch.max(a, b) is the elementwise maximum
    np.testing.assert_array_equal(to_numpy(ad.max(x, ad.zeros_like(x) + 3)), np.maximum(to_numpy(x), 3))


def test_max_ties_split_gradient_evenly(device):
    x = _leaf([1.0, 3.0, 3.0, 2.0, 3.0], device)
    x.max().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [0, 1 / 3, 1 / 3, 0, 1 / 3])
    y = _leaf([[2.0, 2.0], [1.0, 4.0]], device)
    ad.amin(y, dim=1).sum().backward()
    np.testing.assert_allclose(to_numpy(y.grad), [[0.5, 0.5], [1.0, 0.0]])
    z = _leaf([1.0, 1.0], device)
    ad.amax(z).backward()
    np.testing.assert_allclose(to_numpy(z.grad), [0.5, 0.5])


def test_max_dim_gradient_goes_to_returned_index(device):
    x = _leaf([[3.0, 3.0, 1.0]], device)
    v, i = x.max(dim=1)
    v.sum().backward()
    g = to_numpy(x.grad)
    assert g.sum() == 1.0 and g[0, int(to_numpy(i)[0])] == 1.0


def test_maximum_ties_split(device):
    a, b = _leaf([1.0, 2.0, 3.0], device), _leaf([1.0, 0.0, 5.0], device)
    ad.maximum(a, b).sum().backward()
    np.testing.assert_allclose(to_numpy(a.grad), [0.5, 1.0, 0.0])
    np.testing.assert_allclose(to_numpy(b.grad), [0.5, 0.0, 1.0])


def test_subgradients_at_kinks(device):
    x = _leaf([0.0, 0.0, 0.0], device)
    (ad.relu(x) + ad.abs(x)).sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), [0.0, 0.0, 0.0])
    y = _leaf([-1.0, 1.0, 0.5], device)
    y.clamp(-1.0, 1.0).sum().backward()  # gradient passes at the bounds, as PyTorch
    np.testing.assert_array_equal(to_numpy(y.grad), [1.0, 1.0, 1.0])


def test_pow_gradient_at_zero(device):
    x = _leaf([0.0, 2.0], device)
    (x ** 2).sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), [0.0, 4.0])
    x = _leaf([0.0, 1.0], device)
    (x ** 0.5).sum().backward()
    assert np.isinf(to_numpy(x.grad)[0])  # as PyTorch
    base, e = _leaf([0.0, 0.0, 2.0], device), _leaf([2.0, 0.0, 3.0], device)
    (base ** e).sum().backward()
    gb, ge = to_numpy(base.grad), to_numpy(e.grad)
    np.testing.assert_allclose(gb, [0.0, 0.0, 12.0])
    np.testing.assert_allclose(ge, [0.0, 0.0, 8 * np.log(2.0)])  # d/de 0**e := 0, as PyTorch
    x = _leaf([0.0, 3.0], device)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), [0.0, 0.0])


def test_getitem_repeated_indices_accumulate(device):
    x = _leaf([1.0, 2.0, 3.0], device)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), [3.0, 0.0, 1.0])
    y = _leaf(np.zeros((2, 3)), device)
    y[ad.tensor([1, 1]), ad.tensor([2, 2])].sum().backward()
    np.testing.assert_array_equal(to_numpy(y.grad), [[0, 0, 0], [0, 0, 2]])


def test_getitem_bool_mask(device):
    x = ad.tensor(np.arange(6.0).reshape(2, 3), device=device, requires_grad=True)
    m = x > 2
    y = x[m]
    np.testing.assert_array_equal(to_numpy(y), [3.0, 4.0, 5.0])
    (y * 2).sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), [[0, 0, 0], [2, 2, 2]])


def test_sum_of_empty_and_int_dtypes(device):
    e = ad.zeros(0, 3, device=device)
    assert e.sum().shape == () and float(e.sum()) == 0.0
    assert e.sum(0).shape == (3,) and e.sum(1).shape == (0,)
    assert ad.tensor([1, 2], device=device).sum().dtype == ad.int64
    assert ad.tensor([True, True], device=device).sum().dtype == ad.int64
    assert ad.tensor([1, 2], dtype=ad.int32, device=device).sum().dtype == ad.int64
    assert ad.tensor([1.0, 2.0], device=device).sum(dtype=ad.float64).dtype == ad.float64
    assert ad.tensor([[1, 2], [3, 4]], device=device).prod(1).dtype == ad.int64
    assert float(ad.zeros(0, device=device).mean().isnan().float()) == 1.0


def test_where_coercions(device):
    c = ad.tensor([True, False], device=device)
    x = ad.tensor([1.0, 2.0], device=device)
    assert ad.where(c, x, 0.0).dtype == ad.float32
    assert ad.where(c, 1.0, x).dtype == ad.float32
    assert ad.where(c, 1, 0).dtype == ad.int64
    assert ad.where(c, 1.0, 0.0).dtype == ad.float32
    xi = ad.tensor([1, 2], device=device)
    assert ad.where(c, xi, 0.5).dtype == ad.float32
    np.testing.assert_array_equal(to_numpy(ad.where(c, xi, 0.5)), [1.0, 0.5])
    assert ad.where(c, x.double(), x).dtype == ad.float64
    # a non-bool condition is taken as != 0, as PyTorch's where requires bool (we accept and convert)
    np.testing.assert_array_equal(to_numpy(ad.where(ad.tensor([1, 0], device=device), x, -x)), [1.0, -2.0])


def test_split_chunk_return_tuples(device):
    x = ad.arange(10, device=device).float()
    parts = x.split(3)
    assert isinstance(parts, tuple) and [p.shape for p in parts] == [(3,), (3,), (3,), (1,)]
    assert [c.shape for c in x.chunk(3)] == [(4,), (4,), (2,)]
    assert [c.shape for c in ad.chunk(ad.zeros(6, 4, device=device), 2, dim=1)] == [(6, 2), (6, 2)]


def test_views_share_memory_and_version(device):
    x = ad.zeros(2, 3, device=device)
    v = x.view(3, 2)
    v.data[0, 0] = 5.0
    assert float(x[0, 0]) == 5.0
    assert v._version == x._version
    x.add_(1.0)
    assert v._version == x._version
    s = x[0]
    assert s._version == x._version


def test_matmul_shapes(device):
    a = ad.randn(2, 1, 3, 4, device=device)
    b = ad.randn(5, 4, 2, device=device)
    assert (a @ b).shape == (2, 5, 3, 2)
    assert (ad.randn(4, device=device) @ ad.randn(4, device=device)).shape == ()
    assert ad.mm(ad.randn(2, 3, device=device), ad.randn(3, 4, device=device)).shape == (2, 4)
    assert ad.bmm(ad.randn(2, 2, 3, device=device), ad.randn(2, 3, 4, device=device)).shape == (2, 2, 4)
    assert ad.mv(ad.randn(2, 3, device=device), ad.randn(3, device=device)).shape == (2,)


def test_int_tensor_ops_keep_int(device):
    a = ad.tensor([1, 2, 3], device=device)
    assert (a + 1).dtype == ad.int64 and (a * a).dtype == ad.int64
    assert (a / 2).dtype == ad.float32
    assert (a ** 2).dtype == ad.int64
    assert ad.exp(a).dtype == ad.float32
    assert (a // 2).dtype == ad.int64 and (a % 2).dtype == ad.int64
    np.testing.assert_array_equal(to_numpy(a // 2), [0, 1, 1])
    np.testing.assert_array_equal(to_numpy(ad.tensor([-3, 3], device=device) % 2), [1, 1])
    assert (a.float() + a).dtype == ad.float32


def test_sample_dataclass_defaults():
    assert Sample((1,)).kwargs == {} and Sample((1,)).diff is None


def test_getitem_int_with_index_array_follows_pytorch(device):
    x = ad.zeros(3, 4, 5, device=device)
    assert x[0, :, [1, 2]].shape == (4, 2)             # NumPy would give (2, 4)
    assert x[None, 1, None, [0, 2], None].shape == (1, 1, 2, 1, 5)
    assert x[[0, 2], 1, :3].shape == (2, 3)
    assert x[[0, 2], :, [1, 1]].shape == (2, 4)        # two separated arrays: moved first, as NumPy
    assert x[1, [2, 2, 0]].shape == (3, 5)


def test_sigmoid_family_extreme_inputs_finite_without_warnings(device):
    import warnings
    x = ad.tensor([-1000.0, -50.0, -5.0, 0.0, 50.0, 1000.0], device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings
        for dt in (ad.float16, ad.float32, ad.float64):
            xs = x.to(dt)
            s = to_numpy(xs.sigmoid()).astype(np.float64)
            assert np.all(np.isfinite(s)) and np.all((s >= 0) & (s <= 1))
            np.testing.assert_allclose(s[2:], 1 / (1 + np.exp(-to_numpy(xs)[2:].astype(np.float64))),
                                       rtol=1e-3 if dt == ad.float16 else 1e-6)
            assert np.all(np.isfinite(to_numpy(ad.silu(xs)))) and np.all(np.isfinite(to_numpy(ad.elu(xs))))
