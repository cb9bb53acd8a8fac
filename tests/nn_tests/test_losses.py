"""Losses and softmax family: values vs NumPy references, float64 gradcheck, stability, bad input."""
import numpy as np
import pytest

import autodiff
import nn
import nn.functional as F
from autodiff import gradcheck, gradgradcheck
from tests.conftest import to_numpy


def _logsoftmax(z, axis=1):
    m = z.max(axis=axis, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=axis, keepdims=True))


def ce_ref(z, t, w=None, ignore=-100, eps=0.0, reduction="mean"):
    """PyTorch's cross_entropy for (N, C) logits and class indices, written out."""
    n, c = z.shape
    lp = _logsoftmax(z)
    w = np.ones(c) if w is None else w
    valid = t != ignore
    ts = np.where(valid, t, 0)
    nll = -lp[np.arange(n), ts] * w[ts] * valid
    smooth = -(lp * w[None]).sum(1) * valid
    rows = (1 - eps) * nll + eps / c * smooth
    if reduction == "none":
        return rows
    if reduction == "sum":
        return rows.sum()
    return rows.sum() / (w[ts] * valid).sum()


def test_softmax_log_softmax(backend, device):
    x = np.random.default_rng(0).standard_normal((3, 5))
    t = autodiff.tensor(x, device=device)
    np.testing.assert_allclose(to_numpy(F.log_softmax(t, 1)), _logsoftmax(x), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(F.softmax(t, 0)), np.exp(_logsoftmax(x, 0)), rtol=1e-12)
    big = autodiff.tensor([[1e4, -1e4, 0.0]], device=device)
    assert np.isfinite(to_numpy(F.log_softmax(big, 1))).all()


def test_softmax_gradcheck_and_gradgrad():
    x = autodiff.randn(3, 4, dtype=autodiff.float64, requires_grad=True)
    for fn in (lambda x: F.softmax(x, 1), lambda x: F.log_softmax(x, 0), lambda x: F.softmin(x, -1)):
        assert gradcheck(fn, (x,))
        assert gradgradcheck(fn, (x,))


@pytest.mark.parametrize("kw", [
    {}, {"reduction": "sum"}, {"reduction": "none"}, {"ignore_index": 1}, {"label_smoothing": 0.2},
    {"weight": [1.0, 2.0, 0.5, 1.5]}, {"weight": [1.0, 2.0, 0.5, 1.5], "label_smoothing": 0.1, "ignore_index": 2},
])
def test_cross_entropy_indices_vs_reference(backend, device, kw):
    rng = np.random.default_rng(1)
    z = rng.standard_normal((6, 4))
    t = np.array([0, 1, 2, 3, 1, 2])
    kw2 = dict(kw)
    w = kw2.pop("weight", None)
    wt = autodiff.tensor(w, dtype=autodiff.float64, device=device) if w is not None else None
    out = F.cross_entropy(autodiff.tensor(z, device=device), autodiff.tensor(t, device=device), weight=wt, **kw2)
    ref = ce_ref(z, t, None if w is None else np.array(w), kw2.get("ignore_index", -100),
                 kw2.get("label_smoothing", 0.0), kw2.get("reduction", "mean"))
    np.testing.assert_allclose(to_numpy(out), ref, rtol=1e-10)
    if backend == "numpy":
        zt = autodiff.tensor(z, requires_grad=True)
        tt = autodiff.tensor(t)
        assert gradcheck(lambda z: F.cross_entropy(z, tt, weight=wt, **kw2), (zt,))
        assert gradgradcheck(lambda z: F.cross_entropy(z, tt, weight=wt, **kw2), (zt,))


def test_cross_entropy_probabilities_and_nd():
    rng = np.random.default_rng(2)
    z = autodiff.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    p = autodiff.tensor(rng.dirichlet(np.ones(4), size=3), requires_grad=True)
    loss = F.cross_entropy(z, p)
    ref = -(p.detach().numpy() * _logsoftmax(z.detach().numpy())).sum(1).mean()
    np.testing.assert_allclose(loss.item(), ref, rtol=1e-12)
    assert gradcheck(lambda z, p: F.cross_entropy(z, p, label_smoothing=0.1), (z, p))
    # (N, C, d) logits with (N, d) targets equal the flattened (N*d, C) problem
    z3 = autodiff.tensor(rng.standard_normal((2, 4, 3)), requires_grad=True)
    t3 = autodiff.tensor(rng.integers(0, 4, (2, 3)))
    l3 = F.cross_entropy(z3, t3, reduction="none")
    assert l3.shape == (2, 3)
    flat = ce_ref(np.moveaxis(z3.detach().numpy(), 1, -1).reshape(-1, 4), t3.numpy().reshape(-1), reduction="none")
    np.testing.assert_allclose(l3.detach().numpy().reshape(-1), flat, rtol=1e-12)
    assert gradcheck(lambda z: F.cross_entropy(z, t3), (z3,))
    # unbatched (C,) with a 0-d target
    assert F.cross_entropy(autodiff.randn(5), autodiff.tensor(2)).shape == ()


def test_cross_entropy_extreme_logits_are_finite(backend, device):
    z = autodiff.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]], device=device, requires_grad=True)
    t = autodiff.tensor([1, 0], device=device)
    for kw in ({}, {"label_smoothing": 0.1}):
        loss = nn.CrossEntropyLoss(**kw)(z, t)
        loss.backward()
        assert np.isfinite(to_numpy(loss)).all() and np.isfinite(to_numpy(z.grad)).all()
        np.testing.assert_allclose(to_numpy(loss), 2e4, rtol=0.1)
        z.grad = None


def test_cross_entropy_and_nll_errors():
    z = autodiff.randn(4, 3)
    with pytest.raises(IndexError, match=r"cross_entropy: target 3 is out of bounds.*\[0, 2\]"):
        F.cross_entropy(z, autodiff.tensor([0, 1, 3, 0]))
    with pytest.raises(ValueError, match=r"cross_entropy: expected target of shape \(4,\).*got target of shape \(3,\)"):
        F.cross_entropy(z, autodiff.tensor([0, 1, 2]))
    with pytest.raises(RuntimeError, match="nll_loss: expected target of an integer dtype.*float32"):
        nn.NLLLoss()(F.log_softmax(z, 1), autodiff.tensor([0.0, 1.0, 2.0, 0.0]))
    with pytest.raises(IndexError, match="nll_loss.*out of bounds"):
        F.nll_loss(z, autodiff.tensor([0, 1, -1, 0]))
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.cross_entropy(z, autodiff.tensor([0, 1, 2, 0]), reduction="avg")
    with pytest.raises(ValueError, match="mse_loss: target shape \\(4, 1\\) differs from input shape \\(4,\\)"):
        F.mse_loss(autodiff.randn(4), autodiff.randn(4, 1))
    with pytest.raises(ValueError, match="binary_cross_entropy_with_logits"):
        F.binary_cross_entropy_with_logits(autodiff.randn(4), autodiff.randn(3))


def test_nll_loss_matches_cross_entropy():
    rng = np.random.default_rng(3)
    z = autodiff.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    t = autodiff.tensor([0, 3, 1, 1, -100])
    w = autodiff.tensor([0.5, 1.0, 2.0, 1.0], dtype=autodiff.float64)
    a = F.nll_loss(F.log_softmax(z, 1), t, weight=w)
    b = F.cross_entropy(z, t, weight=w)
    np.testing.assert_allclose(a.item(), b.item(), rtol=1e-12)
    assert gradcheck(lambda z: F.nll_loss(z, t, weight=w, reduction="sum"), (z,))


def test_regression_losses_values_and_gradcheck(backend, device):
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((3, 4)) * 2, rng.standard_normal((3, 4))
    d = x - y
    refs = {
        "mse": (d ** 2).mean(), "l1": np.abs(d).mean(),
        "huber": np.where(np.abs(d) < 0.7, 0.5 * d * d, 0.7 * (np.abs(d) - 0.35)).mean(),
        "smooth_l1": np.where(np.abs(d) < 0.5, 0.5 * d * d / 0.5, np.abs(d) - 0.25).sum(),
    }
    X, Y = autodiff.tensor(x, device=device), autodiff.tensor(y, device=device)
    got = {"mse": nn.MSELoss()(X, Y), "l1": nn.L1Loss()(X, Y), "huber": nn.HuberLoss(delta=0.7)(X, Y),
           "smooth_l1": nn.SmoothL1Loss(reduction="sum", beta=0.5)(X, Y)}
    for k in refs:
        np.testing.assert_allclose(to_numpy(got[k]), refs[k], rtol=1e-12, err_msg=k)
    if backend == "numpy":
        Xg = autodiff.tensor(x, requires_grad=True)
        Yg = autodiff.tensor(y, requires_grad=True)
        for fn in (F.mse_loss, F.l1_loss, lambda a, b: F.huber_loss(a, b, delta=0.7),
                   lambda a, b: F.smooth_l1_loss(a, b, beta=0.5, reduction="none")):
            assert gradcheck(fn, (Xg, Yg))


def test_bce_losses(backend, device):
    rng = np.random.default_rng(5)
    z = rng.standard_normal((4, 3)) * 3
    t = rng.random((4, 3))
    p = 1 / (1 + np.exp(-z))
    ref = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    Z, T = autodiff.tensor(z, device=device), autodiff.tensor(t, device=device)
    np.testing.assert_allclose(to_numpy(nn.BCELoss(reduction="none")(F.sigmoid(Z), T)), ref, rtol=1e-10)
    np.testing.assert_allclose(to_numpy(nn.BCEWithLogitsLoss()(Z, T)), ref.mean(), rtol=1e-10)
    pw = np.array([1.0, 2.0, 3.0])
    refpw = -(pw * t * np.log(p) + (1 - t) * np.log(1 - p)).mean()
    got = nn.BCEWithLogitsLoss(pos_weight=autodiff.tensor(pw, device=device))(Z, T)
    np.testing.assert_allclose(to_numpy(got), refpw, rtol=1e-10)
    # extreme logits / probabilities stay finite
    big = autodiff.tensor([1e4, -1e4, 0.0], device=device, requires_grad=True)
    lb = F.binary_cross_entropy_with_logits(big, autodiff.tensor([0.0, 1.0, 1.0], device=device))
    lb.backward()
    assert np.isfinite(to_numpy(lb)) and np.isfinite(to_numpy(big.grad)).all()
    np.testing.assert_allclose(to_numpy(big.grad)[2], -0.5 / 3)  # d/dx softplus(-x) at 0 is -1/2
    edge = F.binary_cross_entropy(autodiff.tensor([0.0, 1.0], device=device), autodiff.tensor([1.0, 0.0], device=device))
    np.testing.assert_allclose(to_numpy(edge), 100.0)
    if backend == "numpy":
        Zg = autodiff.tensor(z, requires_grad=True)
        Pg = autodiff.tensor(p * 0.9 + 0.05, requires_grad=True)
        Tg = autodiff.tensor(t, requires_grad=True)
        w = autodiff.tensor(pw)
        assert gradcheck(lambda z, t: F.binary_cross_entropy_with_logits(z, t, pos_weight=w), (Zg, Tg))
        assert gradcheck(lambda p, t: F.binary_cross_entropy(p, t), (Pg, Tg))
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(autodiff.tensor([1.5]), autodiff.tensor([1.0]))


def test_kl_div():
    rng = np.random.default_rng(6)
    lp = _logsoftmax(rng.standard_normal((3, 4)))
    q = np.exp(_logsoftmax(rng.standard_normal((3, 4))))
    q[0, 0] = 0.0
    ref = np.where(q > 0, q * (np.log(np.where(q > 0, q, 1)) - lp), 0)
    X, Q = autodiff.tensor(lp, requires_grad=True), autodiff.tensor(q)
    np.testing.assert_allclose(nn.KLDivLoss(reduction="batchmean")(X, Q).item(), ref.sum() / 3, rtol=1e-12)
    np.testing.assert_allclose(F.kl_div(X, autodiff.tensor(np.log(q + 1e-300)), reduction="sum", log_target=True).item(),
                               ref.sum(), rtol=1e-9)
    assert gradcheck(lambda x: F.kl_div(x, Q, reduction="batchmean"), (X,))
    Ql = autodiff.tensor(np.log(q + 0.1), requires_grad=True)
    assert gradcheck(lambda x, t: F.kl_div(x, t, log_target=True), (X, Ql))


def test_loss_module_reprs_and_legacy_args():
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert nn.MSELoss(size_average=False).reduction == "sum"
    assert nn.L1Loss(reduce=False).reduction == "none"
    assert nn.CrossEntropyLoss(weight=autodiff.ones(3)).state_dict()["weight"].shape == (3,)
