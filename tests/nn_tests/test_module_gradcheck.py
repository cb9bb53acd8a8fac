"""float64 gradcheck through every remaining layer's forward (inputs and parameters)."""
import numpy as np
import pytest

import autodiff
import nn
from autodiff import gradcheck

f64 = autodiff.float64

LAYERS = [
    (lambda: nn.Conv1d(2, 3, 2, stride=2, padding=1, dilation=1), (1, 2, 5)),
    (lambda: nn.ConvTranspose1d(2, 2, 3, stride=2), (1, 2, 3)),
    (lambda: nn.ConvTranspose2d(2, 2, 2, stride=2, groups=2), (1, 2, 2, 2)),
    (lambda: nn.MaxPool1d(2), (1, 2, 6)),
    (lambda: nn.AvgPool1d(3, 2, 1), (1, 2, 6)),
    (lambda: nn.AdaptiveAvgPool1d(4), (1, 2, 6)),
    (lambda: nn.AdaptiveMaxPool2d((2, 3)), (1, 1, 4, 5)),
    (lambda: nn.InstanceNorm2d(2, affine=True), (2, 2, 3, 2)),
    (lambda: nn.RMSNorm(3), (2, 3)),
    (lambda: nn.BatchNorm1d(3), (4, 3)),
    (lambda: nn.PReLU(), (3, 4)),
    (lambda: nn.GLU(), (2, 4)),
    (lambda: nn.SELU(), (3, 3)),
    (lambda: nn.CELU(), (3, 3)),
    (lambda: nn.Hardswish(), (3, 3)),
    (lambda: nn.Hardsigmoid(), (3, 3)),
    (lambda: nn.LogSigmoid(), (3, 3)),
    (lambda: nn.Softsign(), (3, 3)),
    (lambda: nn.GELU(), (3, 3)),
    (lambda: nn.Flatten(), (2, 2, 2)),
    (lambda: nn.Unflatten(1, (2, 2)), (2, 4)),
    (lambda: nn.Identity(), (2, 2)),
]


@pytest.mark.parametrize("i", range(len(LAYERS)))
def test_layer_gradcheck(i):
    make, shape = LAYERS[i]
    m = make().double()
    # values away from kinks and ties (max pooling, hard activations)
    x = autodiff.tensor(np.random.default_rng(i).permutation(int(np.prod(shape))).reshape(shape) / np.prod(shape) * 4 - 2
                        + 0.013, requires_grad=True)
    params = [p for p in m.parameters()]

    def fn(x, *ps):
        return m(x)

    assert gradcheck(fn, (x, *params), eps=1e-5)


def test_bilinear_and_cells_gradcheck():
    b = nn.Bilinear(2, 3, 2).double()
    x1 = autodiff.randn(2, 2, dtype=f64, requires_grad=True)
    x2 = autodiff.randn(2, 3, dtype=f64, requires_grad=True)
    assert gradcheck(lambda a, c, w: b(a, c), (x1, x2, b.weight))
    for cell in (nn.RNNCell(2, 3), nn.LSTMCell(2, 3), nn.GRUCell(2, 3)):
        cell = cell.double()
        out = cell(x1)
        h = out[0] if isinstance(out, tuple) else out
        assert h.shape == (2, 3)
        assert gradcheck(lambda a: cell(a)[0] if isinstance(cell, nn.LSTMCell) else cell(a), (x1,))


def test_embedding_module_from_pretrained():
    w = autodiff.randn(4, 2)
    e = nn.Embedding.from_pretrained(w)
    assert not e.weight.requires_grad
    np.testing.assert_array_equal(e(autodiff.tensor([1])).numpy(), w.numpy()[[1]])


def test_one_hot_pad_misc():
    import nn.functional as F
    oh = F.one_hot(autodiff.tensor([0, 2, 1]), 4)
    assert oh.dtype == np.int64
    np.testing.assert_array_equal(oh.numpy(), np.eye(4, dtype=np.int64)[[0, 2, 1]])
    assert F.one_hot(autodiff.tensor([[1], [3]])).shape == (2, 1, 4)
    with pytest.raises(RuntimeError, match="one_hot"):
        F.one_hot(autodiff.tensor([0.5]))
    with pytest.raises(RuntimeError, match=r"one_hot: class values must be in \[0, 2\)"):
        F.one_hot(autodiff.tensor([0, 2]), 2)
    x = autodiff.randn(1, 2, 3, 3, dtype=f64, requires_grad=True)
    assert F.pad(x, (1, 1, 2, 0)).shape == (1, 2, 5, 5)
    assert gradcheck(lambda x: F.interpolate(x, scale_factor=2), (x,))
    assert F.pixel_shuffle(autodiff.randn(1, 8, 2, 2), 2).shape == (1, 2, 4, 4)
    assert gradcheck(lambda x: F.normalize(x, dim=1), (x,))
