"""hypothesis property tests: broadcasting binary ops and reductions against NumPy, and their
gradients (sum-to-shape of broadcast operands, reduction adjoints)."""
import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import autodiff as ad

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)
FLOATS = st.floats(-3, 3, allow_nan=False, width=64)

BINARY = {
    "add": (lambda a, b: a + b, np.add, lambda a, b, g: (g, g)),
    "sub": (lambda a, b: a - b, np.subtract, lambda a, b, g: (g, -g)),
    "mul": (lambda a, b: a * b, np.multiply, lambda a, b, g: (g * b, g * a)),
    "div": (lambda a, b: a / b, np.divide, lambda a, b, g: (g / b, -g * a / (b * b))),
}


def _unbroadcast(g, shape):
    while g.ndim > len(shape):
        g = g.sum(0)
    for i, s in enumerate(shape):
        if s == 1 and g.shape[i] != 1:
            g = g.sum(i, keepdims=True)
    return g


@st.composite
def broadcastable_pair(draw):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
    a = draw(hnp.arrays(np.float64, shapes.input_shapes[0], elements=FLOATS))
    b = draw(hnp.arrays(np.float64, shapes.input_shapes[1], elements=FLOATS))
    return a, b


@SETTINGS
@given(pair=broadcastable_pair(), op=st.sampled_from(sorted(BINARY)))
def test_broadcasting_binary_ops(pair, op):
    a, b = pair
    if op == "div":
        b = np.where(np.abs(b) < 0.1, 0.5, b)
    fn, ref, dref = BINARY[op]
    ta = ad.tensor(a, requires_grad=True)
    tb = ad.tensor(b, requires_grad=True)
    out = fn(ta, tb)
    expected = ref(a, b)
    assert out.shape == expected.shape and out.dtype == ad.float64
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(0).standard_normal(expected.shape)
    out.backward(ad.tensor(g))
    ga, gb = dref(np.broadcast_to(a, expected.shape), np.broadcast_to(b, expected.shape), g)
    assert ta.grad.shape == a.shape and tb.grad.shape == b.shape
    np.testing.assert_allclose(ta.grad.numpy(), _unbroadcast(ga, a.shape), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tb.grad.numpy(), _unbroadcast(gb, b.shape), rtol=1e-10, atol=1e-12)


@SETTINGS
@given(pair=broadcastable_pair(), cmp=st.sampled_from(["lt", "le", "gt", "ge", "eq", "ne"]))
def test_broadcasting_comparisons(pair, cmp):
    a, b = pair
    out = getattr(ad, cmp)(ad.tensor(a), ad.tensor(b))
    assert out.dtype == ad.bool
    np.testing.assert_array_equal(out.numpy(), getattr(np, {"lt": "less", "le": "less_equal", "gt": "greater",
                                                            "ge": "greater_equal", "eq": "equal",
                                                            "ne": "not_equal"}[cmp])(a, b))


@st.composite
def array_and_dims(draw):
    x = draw(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
                        elements=FLOATS))
    nd = x.ndim
    dims = draw(st.lists(st.integers(-nd, nd - 1), min_size=1, max_size=nd, unique_by=lambda d: d % nd))
    keep = draw(st.booleans())
    return x, tuple(dims), keep


@SETTINGS
@given(case=array_and_dims(), op=st.sampled_from(["sum", "mean", "amax", "amin", "logsumexp", "var"]))
def test_reductions_match_numpy(case, op):
    x, dims, keep = case
    axes = tuple(sorted(d % x.ndim for d in dims))
    t = ad.tensor(x, requires_grad=True)
    if op == "var":
        if all(x.shape[a] == 1 for a in axes):
            return
        out = t.var(dim=dims, keepdim=keep)
        ref = np.var(x, axis=axes, ddof=1, keepdims=keep)
    elif op == "logsumexp":
        out = ad.logsumexp(t, dims, keepdim=keep)
        m = x.max(axis=axes, keepdims=True)
        ref = np.log(np.exp(x - m).sum(axis=axes, keepdims=True)) + m
        ref = ref if keep else np.squeeze(ref, axis=axes)
    else:
        out = getattr(t, op)(dim=dims, keepdim=keep)
        ref = getattr(np, {"amax": "max", "amin": "min"}.get(op, op))(x, axis=axes, keepdims=keep)
    assert out.shape == np.shape(ref)
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-10, atol=1e-12)
    # Gradient of the sum of the reduction: sums to the reduced count for sum, 1 per slice for
    # mean/amax/amin/logsumexp (amax/amin split ties evenly), 0 for var.
    out.sum().backward()
    g = t.grad.numpy()
    assert g.shape == x.shape
    n_out = int(np.prod(np.shape(ref)))
    expected_total = {"sum": x.size, "var": 0.0}.get(op, n_out)
    np.testing.assert_allclose(g.sum(), expected_total, rtol=1e-9, atol=1e-9)


@SETTINGS
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), elements=FLOATS))
def test_full_reductions(x):
    t = ad.tensor(x)
    np.testing.assert_allclose(t.sum().numpy(), x.sum(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t.prod().numpy(), x.prod(), rtol=1e-10, atol=1e-12)
    if x.size:
        assert float(t.max()) == x.max() and float(t.min()) == x.min()
        assert int(t.argmax()) == int(np.argmax(x)) and int(t.argmin()) == int(np.argmin(x))
    assert bool(t.any()) == bool(x.any()) and bool(t.all()) == bool(x.all())
