"""nn.distill: the Hinton KD loss against a hand computation, its gradient, and the Distiller loop."""
import numpy as np
import pytest

import autodiff as ad
import nn
import optim
from nn.distill import Distiller, accuracy, distillation_loss
from tests.conftest import to_numpy


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _reference(s, t, y, T, alpha):
    ps, pt = _softmax(s / T), _softmax(t / T)
    kl = (pt * (np.log(pt) - np.log(ps))).sum() / s.shape[0]
    ce = -np.log(_softmax(s)[np.arange(len(y)), y]).mean()
    return alpha * T * T * kl + (1 - alpha) * ce


def test_distillation_loss_matches_hand_computation(device):
    rng = np.random.default_rng(0)
    s = rng.normal(size=(5, 4)) * 3
    t = rng.normal(size=(5, 4)) * 3
    y = rng.integers(0, 4, 5)
    for T, alpha in [(4.0, 0.9), (1.0, 0.5), (2.5, 0.0), (3.0, 1.0)]:
        got = distillation_loss(ad.tensor(s, device=device), ad.tensor(t, device=device),
                                ad.tensor(y, device=device), T=T, alpha=alpha)
        assert float(got.item()) == pytest.approx(_reference(s, t, y, T, alpha), rel=1e-9, abs=1e-12)
    # a tiny fixed case worked by hand: T=1, alpha=1, identical logits -> KL = 0
    z = ad.tensor([[1.0, 2.0, 3.0]], device=device)
    assert float(distillation_loss(z, z, None, T=1.0).item()) == pytest.approx(0.0, abs=1e-12)
    # targets=None: the soft term alone, T^2 scaled
    soft = distillation_loss(ad.tensor(s, device=device), ad.tensor(t, device=device), None, T=2.0)
    assert float(soft.item()) == pytest.approx(_reference(s, t, y, 2.0, 1.0), rel=1e-9)


def test_distillation_loss_gradcheck(backend):
    s = ad.randn(3, 5, dtype=ad.float64, requires_grad=True)
    t = ad.randn(3, 5, dtype=ad.float64)
    y = ad.tensor([0, 4, 2])
    ad.gradcheck(lambda s: distillation_loss(s, t, y, T=3.0, alpha=0.7), (s,))
    # the teacher gets no gradient even if its logits require grad
    t2 = t.detach().requires_grad_()
    distillation_loss(s, t2, y).backward()
    assert t2.grad is None and s.grad is not None


def test_distillation_loss_errors():
    s, t = ad.randn(3, 5), ad.randn(3, 4)
    with pytest.raises(ValueError, match="distillation_loss: student and teacher logits"):
        distillation_loss(s, t, ad.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="targets must be"):
        distillation_loss(s, ad.randn(3, 5), ad.tensor([0, 1]))
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(s, ad.randn(3, 5), None, T=0)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(s, ad.randn(3, 5), None, alpha=1.5)


def _data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    w = np.random.default_rng(99).normal(size=(8, 3))
    y = (x @ w + 0.3 * np.sin(3 * x[:, :3])).argmax(1)
    return ad.tensor(x), ad.tensor(y)


def test_distiller_trains_student_with_frozen_teacher():
    ad.manual_seed(0)
    xtr, ytr = _data(256, 1)
    xte, yte = _data(256, 2)
    teacher = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 3))
    topt = optim.Adam(teacher.parameters(), lr=1e-2)
    for _ in range(60):
        topt.zero_grad()
        nn.functional.cross_entropy(teacher(xtr), ytr).backward()
        topt.step()
    t_before = [to_numpy(p).copy() for p in teacher.parameters()]
    student = nn.Sequential(nn.Linear(8, 3))
    d = Distiller(teacher, student, optim.Adam(student.parameters(), lr=2e-2), T=2.0, alpha=0.7)
    batches = [(xtr[i:i + 64], ytr[i:i + 64]) for i in range(0, 256, 64)]
    hist = d.fit(batches, epochs=15)
    assert len(hist) == 15 and hist[-1] < hist[0]
    assert not teacher.training
    for a, p in zip(t_before, teacher.parameters()):
        np.testing.assert_array_equal(a, to_numpy(p))  # the teacher never moved
    acc = d.evaluate([(xte, yte)])
    assert acc > 70
    assert accuracy(teacher, [(xte, yte)]) > 70
    loss = d.train_step(xtr[:8], ytr[:8])
    assert loss.grad_fn is None and loss.shape == ()
    with pytest.raises(ValueError, match="different modules"):
        Distiller(student, student, None)
