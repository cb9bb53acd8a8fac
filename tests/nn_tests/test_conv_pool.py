"""Convolution and pooling primitives: forward vs naive NumPy references on every backend, float64
gradcheck (stride / padding / dilation / groups), double backward, bad input."""
import numpy as np
import pytest

import autodiff
import nn
import nn.functional as F
from autodiff import gradcheck, gradgradcheck
from tests.conftest import to_numpy


def conv_ref(x, w, b, stride, pad, dil, groups):
    sh, sw = stride
    ph, pw = pad
    dh, dw = dil
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for oc in range(o):
        g = oc // og
        for i in range(oh):
            for j in range(ow):
                patch = xp[:, g * cg:(g + 1) * cg, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
                out[:, oc, i, j] = (patch * w[oc]).sum(axis=(1, 2, 3))
    if b is not None:
        out += b[None, :, None, None]
    return out


def conv_t_ref(x, w, b, stride, pad, outpad, dil, groups):
    """Transposed convolution by scattering each input pixel times the kernel."""
    sh, sw = stride
    ph, pw = pad
    dh, dw = dil
    n, cin, h, wd = x.shape
    _, cog, kh, kw = w.shape
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + outpad[0] + 1
    ow = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + outpad[1] + 1
    full = np.zeros((n, cog * groups, oh + 2 * ph + sh, ow + 2 * pw + sw))
    cg = cin // groups
    for ci in range(cin):
        g = ci // cg
        for i in range(h):
            for j in range(wd):
                for a in range(kh):
                    for bb in range(kw):
                        full[:, g * cog:(g + 1) * cog, i * sh + a * dh, j * sw + bb * dw] += x[:, ci, i, j, None] * w[ci, :, a, bb]
    out = full[:, :, ph:ph + oh, pw:pw + ow]
    if b is not None:
        out = out + b[None, :, None, None]
    return out


CONV_CASES = [
    # (N, C, H, W, O, k, stride, pad, dil, groups)
    (2, 3, 7, 6, 4, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    (1, 2, 8, 7, 4, (3, 2), (2, 1), (0, 1), (1, 1), 1),
    (2, 4, 7, 7, 6, (3, 3), (2, 2), (2, 1), (2, 1), 2),
    (1, 4, 5, 5, 4, (1, 1), (1, 1), (0, 0), (1, 1), 4),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_forward_matches_reference(backend, device, case):
    n, c, h, w, o, k, s, p, d, g = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((o, c // g) + k).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    out = F.conv2d(autodiff.tensor(x, device=device), autodiff.tensor(wt, device=device),
                   autodiff.tensor(b, device=device), s, p, d, g)
    np.testing.assert_allclose(to_numpy(out), conv_ref(x, wt, b, s, p, d, g), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", CONV_CASES[:3])
def test_conv2d_backward_matches_across_backends(backend, device, case):
    n, c, h, w, o, k, s, p, d, g = case
    rng = np.random.default_rng(1)
    x = autodiff.tensor(rng.standard_normal((n, c, h, w)), device=device, requires_grad=True)
    wt = autodiff.tensor(rng.standard_normal((o, c // g) + k), device=device, requires_grad=True)
    b = autodiff.tensor(rng.standard_normal(o), device=device, requires_grad=True)
    out = F.conv2d(x, wt, b, s, p, d, g)
    gy = rng.standard_normal(out.shape)
    (out * autodiff.tensor(gy, device=device)).sum().backward()
    # reference gradients from the NumPy-reference conv by linearity (finite differences are too slow here)
    xr, wr = to_numpy(x), to_numpy(wt)
    gx = np.zeros_like(xr)
    for idx in np.ndindex(xr.shape):
        e = np.zeros_like(xr)
        e[idx] = 1
        gx[idx] = (conv_ref(e, wr, None, s, p, d, g) * gy).sum()
    np.testing.assert_allclose(to_numpy(x.grad), gx, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(to_numpy(b.grad), gy.sum(axis=(0, 2, 3)), rtol=1e-10)


@pytest.mark.parametrize("case", [
    ((1, 2, 5, 4), 4, (3, 3), 1, 1, 1, 1),
    ((2, 2, 6, 5), 2, (2, 3), 2, (1, 0), 1, 1),
    ((1, 4, 6, 6), 4, (3, 3), 1, 2, 2, 2),
    ((1, 4, 5, 5), 2, (3, 3), 2, 1, 1, 2),
])
def test_conv2d_gradcheck(case):
    shape, o, k, s, p, d, g = case
    x = autodiff.randn(*shape, dtype=autodiff.float64, requires_grad=True)
    w = autodiff.randn(o, shape[1] // g, *k, dtype=autodiff.float64, requires_grad=True)
    b = autodiff.randn(o, dtype=autodiff.float64, requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, s, p, d, g), (x, w, b))


def test_conv2d_gradgradcheck():
    x = autodiff.randn(1, 2, 4, 4, dtype=autodiff.float64, requires_grad=True)
    w = autodiff.randn(2, 1, 2, 2, dtype=autodiff.float64, requires_grad=True)
    assert gradgradcheck(lambda x, w: F.conv2d(x, w, None, 2, 1, 1, 2), (x, w))


def test_conv2d_same_padding_and_conv1d():
    x = autodiff.randn(2, 3, 6, 5, dtype=autodiff.float64, requires_grad=True)
    w = autodiff.randn(4, 3, 2, 3, dtype=autodiff.float64, requires_grad=True)
    y = F.conv2d(x, w, padding="same")
    assert y.shape == (2, 4, 6, 5)
    xp = np.pad(x.detach().numpy(), ((0, 0), (0, 0), (0, 1), (1, 1)))  # total 1 -> (0, 1); total 2 -> (1, 1)
    np.testing.assert_allclose(y.detach().numpy(), conv_ref(xp, w.detach().numpy(), None, (1, 1), (0, 0), (1, 1), 1),
                               rtol=1e-10)
    assert gradcheck(lambda x, w: F.conv2d(x, w, padding="same"), (x, w))
    x1 = autodiff.randn(2, 3, 9, dtype=autodiff.float64, requires_grad=True)
    w1 = autodiff.randn(2, 3, 3, dtype=autodiff.float64, requires_grad=True)
    y1 = F.conv1d(x1, w1, stride=2, padding=1)
    ref = conv_ref(x1.detach().numpy()[:, :, None], w1.detach().numpy()[:, :, None], None, (1, 2), (0, 1), (1, 1), 1)
    np.testing.assert_allclose(y1.detach().numpy(), ref[:, :, 0], rtol=1e-10)
    assert gradcheck(lambda x, w: F.conv1d(x, w, stride=2, padding=1, dilation=2), (x1, w1))


@pytest.mark.parametrize("case", [
    ((1, 2, 3, 3), 3, (3, 3), (2, 2), (1, 1), (1, 1), (1, 1), 1),
    ((2, 4, 3, 2), 2, (2, 3), (2, 1), (0, 1), (1, 0), (1, 2), 2),
])
def test_conv_transpose2d_matches_reference_and_gradcheck(case):
    shape, cout, k, s, p, op, d, g = case
    rng = np.random.default_rng(2)
    x = autodiff.tensor(rng.standard_normal(shape), requires_grad=True)
    w = autodiff.tensor(rng.standard_normal((shape[1], cout // g) + k), requires_grad=True)
    b = autodiff.tensor(rng.standard_normal(cout), requires_grad=True)
    y = F.conv_transpose2d(x, w, b, s, p, op, g, d)
    ref = conv_t_ref(x.detach().numpy(), w.detach().numpy(), b.detach().numpy(), s, p, op, d, g)
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, s, p, op, g, d), (x, w, b))


def test_conv_transpose2d_gradgradcheck():
    x = autodiff.randn(1, 2, 2, 3, dtype=autodiff.float64, requires_grad=True)
    w = autodiff.randn(2, 1, 2, 2, dtype=autodiff.float64, requires_grad=True)
    assert gradgradcheck(lambda x, w: F.conv_transpose2d(x, w, stride=2), (x, w))


def test_conv_layers_shapes_and_repr():
    c = nn.Conv2d(1, 8, 3, padding=1)
    assert repr(c) == "Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    assert c.weight.shape == (8, 1, 3, 3) and c.bias.shape == (8,)
    assert c(autodiff.randn(2, 1, 28, 28)).shape == (2, 8, 28, 28)
    c2 = nn.Conv2d(4, 6, (3, 2), stride=2, dilation=2, groups=2, bias=False)
    assert repr(c2) == "Conv2d(4, 6, kernel_size=(3, 2), stride=(2, 2), dilation=(2, 2), groups=2, bias=False)"
    assert c2.weight.shape == (6, 2, 3, 2)
    t = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1)
    assert t.weight.shape == (4, 6, 3, 3)
    assert t(autodiff.randn(1, 4, 5, 5)).shape == (1, 6, 10, 10)
    c1 = nn.Conv1d(3, 5, 3)
    assert c1.weight.shape == (5, 3, 3) and c1(autodiff.randn(2, 3, 10)).shape == (2, 5, 8)
    assert nn.Conv2d(3, 4, 3, padding="same")(autodiff.randn(3, 6, 6)).shape == (4, 6, 6)  # unbatched
    # default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both weight and bias
    big = nn.Conv2d(16, 32, 3)
    bound = 1 / np.sqrt(16 * 9)
    assert np.abs(big.weight.detach().numpy()).max() <= bound
    assert np.abs(big.weight.detach().numpy()).max() > 0.9 * bound


def test_conv_padding_modes():
    x = autodiff.randn(1, 2, 5, 5, dtype=autodiff.float64, requires_grad=True)
    for mode in ("reflect", "replicate", "circular"):
        c = nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode).double()
        assert c(x).shape == (1, 3, 5, 5)
    c = nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect").double()
    ref = conv_ref(np.pad(x.detach().numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect"),
                   c.weight.detach().numpy(), c.bias.detach().numpy(), (1, 1), (0, 0), (1, 1), 1)
    np.testing.assert_allclose(c(x).detach().numpy(), ref, rtol=1e-10)


def test_conv_bad_input_errors():
    c = nn.Conv2d(3, 8, 3)
    with pytest.raises(RuntimeError, match=r"Conv2d\(3, 8.*input has 1 channels.*expected 3"):
        c(autodiff.randn(2, 1, 8, 8))
    with pytest.raises(RuntimeError, match="4-D"):
        c(autodiff.randn(8, 8))
    with pytest.raises(RuntimeError, match="smaller than the"):
        c(autodiff.randn(1, 3, 2, 2))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 8, 3, groups=2)
    with pytest.raises(RuntimeError, match="conv2d.*channels"):
        F.conv2d(autodiff.randn(1, 4, 5, 5), autodiff.randn(2, 3, 3, 3))
    with pytest.raises(RuntimeError, match="dtype"):
        F.conv2d(autodiff.randn(1, 3, 5, 5), autodiff.randn(2, 3, 3, 3, dtype=autodiff.float64))


# ----------------------------------------------------------------------------- pooling
def maxpool_ref(x, k, s, p, d, ceil):
    from autodiff.backends.base import Backend
    n, c, h, w = x.shape
    oh = Backend.pool_output_size(h, k[0], s[0], p[0], d[0], ceil)
    ow = Backend.pool_output_size(w, k[1], s[1], p[1], d[1], ceil)
    out = np.full((n, c, oh, ow), -np.inf)
    idx = np.zeros((n, c, oh, ow), dtype=np.int64)
    for i in range(oh):
        for j in range(ow):
            for a in range(k[0]):
                for b in range(k[1]):
                    r, cc = i * s[0] - p[0] + a * d[0], j * s[1] - p[1] + b * d[1]
                    if 0 <= r < h and 0 <= cc < w:
                        v = x[:, :, r, cc]
                        better = v > out[:, :, i, j]
                        out[:, :, i, j] = np.where(better, v, out[:, :, i, j])
                        idx[:, :, i, j] = np.where(better, r * w + cc, idx[:, :, i, j])
    return out, idx


def avgpool_ref(x, k, s, p, ceil, cip, div):
    from autodiff.backends.base import Backend
    n, c, h, w = x.shape
    oh = Backend.pool_output_size(h, k[0], s[0], p[0], 1, ceil)
    ow = Backend.pool_output_size(w, k[1], s[1], p[1], 1, ceil)
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
            h1, w1 = min(h0 + k[0], h + p[0]), min(w0 + k[1], w + p[1])
            pool = (h1 - h0) * (w1 - w0)
            hs, ws, he, we = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            tot = x[:, :, hs:he, ws:we].sum(axis=(2, 3))
            dv = div if div else (pool if cip else (he - hs) * (we - ws))
            out[:, :, i, j] = tot / dv
    return out


POOL_CASES = [
    # kernel, stride, padding, dilation, ceil
    ((2, 2), (2, 2), (0, 0), (1, 1), False),
    ((3, 3), (2, 2), (1, 1), (1, 1), False),
    ((3, 2), (2, 1), (1, 0), (1, 1), True),
    ((2, 2), (1, 2), (0, 1), (2, 1), False),
    ((3, 3), (3, 3), (0, 0), (1, 1), False),
]


@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool2d_matches_reference(backend, device, case):
    k, s, p, d, ceil = case
    x = np.random.default_rng(3).standard_normal((2, 3, 9, 8))
    out, idx = F.max_pool2d(autodiff.tensor(x, device=device), k, s, p, d, ceil, return_indices=True)
    ro, ri = maxpool_ref(x, k, s, p, d, ceil)
    np.testing.assert_allclose(to_numpy(out), ro)
    np.testing.assert_array_equal(to_numpy(idx), ri)
    xt = autodiff.tensor(x, device=device, requires_grad=True)
    F.max_pool2d(xt, k, s, p, d, ceil).sum().backward()
    gref = np.zeros(x.size)
    flat = (ri + (np.arange(6) * 72).reshape(2, 3, 1, 1)).reshape(-1)
    np.add.at(gref, flat, 1.0)
    np.testing.assert_allclose(to_numpy(xt.grad), gref.reshape(x.shape))


@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool2d_gradcheck(case):
    k, s, p, d, ceil = case
    x = autodiff.tensor(np.random.default_rng(4).permutation(70).reshape(1, 2, 5, 7) / 7.0, requires_grad=True)
    assert gradcheck(lambda x: F.max_pool2d(x, k, s, p, d, ceil), (x,), eps=1e-4)


def test_max_pool2d_gradgradcheck_and_unpool():
    x = autodiff.tensor(np.random.default_rng(5).permutation(32).reshape(1, 2, 4, 4) / 3.0, requires_grad=True)
    assert gradgradcheck(lambda x: F.max_pool2d(x, 2), (x,), eps=1e-4)
    out, idx = F.max_pool2d(x, 2, return_indices=True)
    up = F.max_unpool2d(out, idx, 2)
    assert up.shape == (1, 2, 4, 4)
    assert np.count_nonzero(up.detach().numpy()) == 8


@pytest.mark.parametrize("case", [
    ((2, 2), (2, 2), (0, 0), False, True, None),
    ((3, 3), (2, 2), (1, 1), False, True, None),
    ((3, 3), (2, 2), (1, 1), False, False, None),
    ((3, 2), (2, 2), (1, 1), True, True, None),
    ((3, 2), (2, 2), (1, 1), True, False, None),
    ((2, 3), (1, 2), (1, 0), False, True, 5),
])
def test_avg_pool2d_matches_reference_and_gradcheck(backend, device, case):
    k, s, p, ceil, cip, div = case
    x = np.random.default_rng(6).standard_normal((2, 2, 7, 6))
    out = F.avg_pool2d(autodiff.tensor(x, device=device), k, s, p, ceil, cip, div)
    np.testing.assert_allclose(to_numpy(out), avgpool_ref(x, k, s, p, ceil, cip, div), rtol=1e-10)
    if backend == "numpy":
        xt = autodiff.tensor(x[:1, :1], requires_grad=True)
        assert gradcheck(lambda x: F.avg_pool2d(x, k, s, p, ceil, cip, div), (xt,))
        assert gradgradcheck(lambda x: F.avg_pool2d(x, k, s, p, ceil, cip, div), (xt,))


def test_adaptive_avg_pool2d():
    x = autodiff.randn(2, 3, 7, 5, dtype=autodiff.float64, requires_grad=True)
    y = F.adaptive_avg_pool2d(x, (3, 2))
    xn = x.detach().numpy()
    ref = np.zeros((2, 3, 3, 2))
    for i in range(3):
        for j in range(2):
            a, b = (i * 7) // 3, -(-(i + 1) * 7 // 3)
            c, d = (j * 5) // 2, -(-(j + 1) * 5 // 2)
            ref[:, :, i, j] = xn[:, :, a:b, c:d].mean(axis=(2, 3))
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-12)
    assert gradcheck(lambda x: F.adaptive_avg_pool2d(x, (3, 2)), (x,))
    assert F.adaptive_avg_pool2d(x, 1).shape == (2, 3, 1, 1)
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d((None, 1))(x).detach().numpy(), xn.mean(axis=3, keepdims=True))


def test_pool_layers_repr_and_errors():
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.AvgPool2d(3, 2)) == "AvgPool2d(kernel_size=3, stride=2, padding=0)"
    assert repr(nn.AdaptiveAvgPool2d((1, 1))) == "AdaptiveAvgPool2d(output_size=(1, 1))"
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        F.max_pool2d(autodiff.randn(1, 1, 6, 6), 2, padding=2)
    with pytest.raises(RuntimeError, match="output size"):
        F.max_pool2d(autodiff.randn(1, 1, 1, 1), 3)
    out, idx = nn.MaxPool2d(2, return_indices=True)(autodiff.randn(3, 4, 4))
    assert out.shape == (3, 2, 2) and idx.dtype == np.int64


def test_unfold_fold_adjoint():
    x = autodiff.randn(1, 2, 5, 4, dtype=autodiff.float64, requires_grad=True)
    u = F.unfold(x, (2, 3), padding=1, stride=(2, 1))
    assert u.shape[:2] == (1, 12)
    assert gradcheck(lambda x: F.unfold(x, (2, 3), padding=1, stride=(2, 1)), (x,))
    back = F.fold(u, (5, 4), (2, 3), padding=1, stride=(2, 1))
    assert back.shape == (1, 2, 5, 4)
