"""PyTorch-style custom autograd Functions (forward on Tensors, ctx.save_for_backward, apply)."""
import numpy as np
import pytest

import autodiff as ad
from autodiff.autograd import Function
from autodiff.custom_function import once_differentiable
from conftest import to_numpy


def leaf(values, device="cpu", dtype=ad.float64):
    return ad.tensor(values, dtype=dtype, device=device, requires_grad=True)


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class ScaledMul(Function):
    """x * y * k with a non-tensor argument k (its gradient slot is None)."""

    @staticmethod
    def forward(ctx, x, y, k):
        ctx.save_for_backward(x, y)
        ctx.k = k
        assert ctx.needs_input_grad == (True, False, False)
        return x * y * k

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return g * y * ctx.k, None, None


class SplitSum(Function):
    """Two outputs: (x + 1, 2 * x); the backward sees both gradients."""

    @staticmethod
    def forward(ctx, x):
        return x + 1, x * 2

    @staticmethod
    def backward(ctx, g1, g2):
        return g1 + 2 * g2


def test_forward_gets_tensors_and_gradients_flow(device):
    x = leaf([0.5, -1.0, 2.0], device)
    y = Exp.apply(x)
    assert isinstance(y, ad.Tensor) and y.requires_grad and y.grad_fn is not None
    y.sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), np.exp([0.5, -1.0, 2.0]))


def test_gradcheck_and_double_backward():
    x = leaf([0.3, -0.7])
    assert ad.gradcheck(Exp.apply, (x,))
    assert ad.gradgradcheck(Exp.apply, (x,))


def test_non_tensor_arguments_and_inputs_without_grad():
    x, y = leaf([1.0, 2.0]), ad.tensor([3.0, 4.0], dtype=ad.float64)
    ScaledMul.apply(x, y, 0.5).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [1.5, 2.0])
    assert y.grad is None


def test_multiple_outputs_one_backward_with_zero_materialised():
    x = leaf([1.0, 2.0])
    a, b = SplitSum.apply(x)
    (a.sum() * 3 + b.sum()).backward()
    np.testing.assert_allclose(to_numpy(x.grad), [5.0, 5.0])
    x.grad = None
    a, b = SplitSum.apply(x)
    a.sum().backward()  # b got no gradient: materialised as zeros
    np.testing.assert_allclose(to_numpy(x.grad), [1.0, 1.0])


def test_no_graph_under_no_grad_and_once_differentiable():
    class Twice(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        @once_differentiable
        def backward(ctx, g):
            assert not ad.is_grad_enabled()
            return g * 2

    x = leaf([1.0])
    with ad.no_grad():
        assert Twice.apply(x).grad_fn is None
    Twice.apply(x).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [2.0])


def test_wrong_number_of_gradients_is_a_clear_error():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g

    x, y = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match=r"Bad.backward: returned 1 gradients but forward took 2"):
        Bad.apply(x, y).sum().backward()


def test_saved_tensor_modified_in_place_raises():
    x = leaf([1.0, 2.0])
    h = x * 1
    y = ScaledMul.apply(h, ad.tensor([1.0, 1.0], dtype=ad.float64), 1.0)
    with ad.no_grad():
        h += 1
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


def test_same_as_torch_custom_function():
    torch = pytest.importorskip("torch")

    class TExp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y

    v = np.array([0.1, -0.4, 1.3])
    tx = torch.tensor(v, requires_grad=True)
    (TExp.apply(tx) * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
    x = leaf(v)
    (Exp.apply(x) * ad.tensor([1.0, 2.0, 3.0], dtype=ad.float64)).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), tx.grad.numpy(), rtol=1e-12)
