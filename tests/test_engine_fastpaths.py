"""The engine's fast paths (autodiff/autograd.py) give the same results as the general paths.

`loss.backward()` on one scalar root skips `_as_grad_list`; each node's (edge, gradient, input meta)
are walked with zip_longest (backward may return fewer or more gradients than inputs); sum-to-shape
returns early for bias-like broadcasts; repeated backward into a 0-d leaf keeps an array .grad.
"""
import numpy as np
import pytest

import autodiff as ad
import nn
from autodiff.autograd import Function
from conftest import to_numpy


def leaf(values, device="cpu", dtype=ad.float64):
    return ad.tensor(values, dtype=dtype, device=device, requires_grad=True)


class _FewerGrads(Function):
    """2 * a, with b an input whose gradient backward leaves out (a 1-tuple for 2 inputs)."""
    pytorch_style = False  # an array-level primitive like the library's (PyTorch-style ones must match)

    @staticmethod
    def forward(ctx, a, b):
        return a * 2

    @staticmethod
    def backward(ctx, g):
        return (g * 2,)


def test_backward_may_return_fewer_grads_than_inputs(device):
    a, b = leaf([1.0, 2.0], device), leaf([3.0, 4.0], device)
    _FewerGrads.apply(a, b).sum().backward()
    np.testing.assert_allclose(to_numpy(a.grad), [2.0, 2.0])
    assert b.grad is None


def test_linear_without_bias_returns_more_grads_than_edges(device):
    lin = nn.Linear(3, 2, bias=False, device=device, dtype=ad.float64)
    x = leaf(np.arange(12.0).reshape(4, 3), device)
    lin(x).sum().backward()
    w = to_numpy(lin.weight)
    np.testing.assert_allclose(to_numpy(x.grad), np.tile(w.sum(0), (4, 1)))
    np.testing.assert_allclose(to_numpy(lin.weight.grad), np.tile(np.arange(12.0).reshape(4, 3).sum(0), (2, 1)))


def test_scalar_fast_path_matches_explicit_gradient(device):
    x1, x2 = leaf([1.0, -2.0, 3.0], device), leaf([1.0, -2.0, 3.0], device)
    (x1 * x1 + 1.0).sum().backward()
    (x2 * x2 + 1.0).sum().backward(ad.tensor(1.0, dtype=ad.float64, device=device))
    np.testing.assert_allclose(to_numpy(x1.grad), to_numpy(x2.grad))
    np.testing.assert_allclose(to_numpy(x1.grad), [2.0, -4.0, 6.0])


def test_scalar_fast_path_frees_unless_retained_and_supports_create_graph(device):
    x = leaf(3.0, device)
    y = x * x
    y.backward(retain_graph=True)
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()
    x.grad = None
    (x ** 3).backward(create_graph=True)
    g = x.grad
    x.grad = None
    g.backward()
    np.testing.assert_allclose(to_numpy(x.grad), 18.0)  # d/dx 3x^2 at 3


def test_repeated_backward_into_0d_leaf_keeps_an_array(device):
    x = leaf(3.0, device)
    y = x * x
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.shape == () and type(x.grad.data) is type(x.data)  # not a NumPy scalar
    np.testing.assert_allclose(to_numpy(x.grad), 12.0)
    assert "12" in repr(x.grad)


def test_bias_broadcast_and_dtype_restore(device):
    b = leaf(np.ones(3), device, ad.float32)
    m = leaf(np.ones((2, 1)), device, ad.float32)
    q = ad.tensor(np.ones((2, 3)), dtype=ad.float64, device=device)
    ((q + b) * m).sum().backward()  # b: (3,) broadcast over rows, promoted to float64
    assert b.grad.dtype == ad.float32 and tuple(b.grad.shape) == (3,)
    np.testing.assert_allclose(to_numpy(b.grad), [2.0, 2.0, 2.0])
    assert m.grad.dtype == ad.float32 and tuple(m.grad.shape) == (2, 1)
    np.testing.assert_allclose(to_numpy(m.grad), [[6.0], [6.0]])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_fused_cross_entropy_matches_reference_and_empty_batch(device, reduction):
    rng = np.random.default_rng(0)
    zn = rng.standard_normal((5, 4))
    tn = np.array([0, 3, 1, 1, 2])
    z = leaf(zn, device)
    loss = nn.functional.cross_entropy(z, ad.tensor(tn, device=device), reduction=reduction)
    loss.backward()
    p = np.exp(zn - zn.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    rows = -np.log(p[np.arange(5), tn])
    onehot = np.eye(4)[tn]
    scale = 1 / 5 if reduction == "mean" else 1.0
    np.testing.assert_allclose(to_numpy(loss), rows.mean() if reduction == "mean" else rows.sum(), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(z.grad), (p - onehot) * scale, rtol=1e-10, atol=1e-12)
    # an empty batch: nan mean / zero sum (as PyTorch), an empty gradient, and no exception or warning
    z0 = leaf(np.zeros((0, 4)), device)
    loss0 = nn.functional.cross_entropy(z0, ad.tensor(np.zeros(0, np.int64), device=device), reduction=reduction)
    loss0.backward()
    assert np.isnan(to_numpy(loss0)) if reduction == "mean" else to_numpy(loss0) == 0
    assert tuple(z0.grad.shape) == (0, 4)
