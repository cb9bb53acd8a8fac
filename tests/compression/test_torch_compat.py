"""Compression features against PyTorch itself (skipped when torch is not installed)."""
import math

import numpy as np
import pytest

import autodiff as ad
import nn
from autodiff import amp
from nn.distill import distillation_loss
from nn.utils import prune

torch = pytest.importorskip("torch")
import torch.nn.utils.prune as tprune  # noqa: E402


def _pair(out_f, in_f, seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(out_f, in_f)).astype(np.float32)
    b = rng.normal(size=out_f).astype(np.float32)
    ours = nn.Linear(in_f, out_f)
    ours.weight.data[...] = w
    ours.bias.data[...] = b
    theirs = torch.nn.Linear(in_f, out_f)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(w))
        theirs.bias.copy_(torch.from_numpy(b))
    return ours, theirs


@pytest.mark.parametrize("steps", [
    [("l1", 0.3)], [("l1", 5)], [("l1", 0.5), ("l1", 0.5)], [("ln", 0.4, 2, 0)], [("ln", 2, 1, 1)],
    [("ln", 0.5, math.inf, 0), ("l1", 0.2)], [("l1", 0.3), ("ln", 0.5, 2, 0)], [("ln", 1, -math.inf, 0)],
])
def test_prune_masks_match_torch(steps):
    ours, theirs = _pair(6, 5, 0)
    for st in steps:
        if st[0] == "l1":
            prune.l1_unstructured(ours, "weight", amount=st[1])
            tprune.l1_unstructured(theirs, "weight", amount=st[1])
        else:
            prune.ln_structured(ours, "weight", amount=st[1], n=st[2], dim=st[3])
            tprune.ln_structured(theirs, "weight", amount=st[1], n=st[2], dim=st[3])
    np.testing.assert_array_equal(ours.weight_mask.numpy(), theirs.weight_mask.numpy())
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = np.random.default_rng(1).normal(size=(3, 5)).astype(np.float32)
    np.testing.assert_allclose(ours(ad.tensor(x)).detach().numpy(), theirs(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    prune.remove(ours, "weight")
    tprune.remove(theirs, "weight")
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_global_unstructured_matches_torch():
    (a, ta), (b, tb) = _pair(6, 5, 2), _pair(4, 6, 3)
    prune.l1_unstructured(a, "weight", amount=0.2)
    tprune.l1_unstructured(ta, "weight", amount=0.2)
    prune.global_unstructured([(a, "weight"), (b, "weight"), (b, "bias")], prune.L1Unstructured, amount=0.4)
    tprune.global_unstructured([(ta, "weight"), (tb, "weight"), (tb, "bias")], tprune.L1Unstructured, amount=0.4)
    for m, t in [(a, ta), (b, tb)]:
        np.testing.assert_array_equal(m.weight_mask.numpy(), t.weight_mask.numpy())
    np.testing.assert_array_equal(b.bias_mask.numpy(), tb.bias_mask.numpy())


def test_distillation_loss_matches_torch_formula():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(6, 5)) * 2, rng.normal(size=(6, 5)) * 2
    y = rng.integers(0, 5, 6)
    T, alpha = 3.0, 0.8
    ts = torch.tensor(s, requires_grad=True)
    F = torch.nn.functional
    ref = alpha * T * T * F.kl_div(F.log_softmax(ts / T, 1), F.softmax(torch.tensor(t) / T, 1),
                                   reduction="batchmean") + (1 - alpha) * F.cross_entropy(ts, torch.tensor(y))
    ref.backward()
    ours_s = ad.tensor(s, requires_grad=True)
    got = distillation_loss(ours_s, ad.tensor(t), ad.tensor(y), T=T, alpha=alpha)
    got.backward()
    assert float(got.item()) == pytest.approx(ref.item(), rel=1e-10)
    np.testing.assert_allclose(ours_s.grad.numpy(), ts.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_grad_scaler_schedule_matches_torch():
    kw = dict(init_scale=8.0, growth_factor=2.0, backoff_factor=0.5, growth_interval=2)
    ours, theirs = amp.GradScaler("cpu", **kw), torch.amp.GradScaler("cpu", **kw)
    p = ad.zeros(2, requires_grad=True)
    tp = torch.zeros(2, requires_grad=True)

    class Opt:
        param_groups = [{"params": [p]}]

        def step(self):
            pass
    topt = torch.optim.SGD([tp], lr=0.0)
    for v in [1.0, 1.0, 1.0, float("inf"), 1.0, float("nan"), 1.0, 1.0, 1.0]:
        ours.scale(p.sum())
        p.grad = ad.full((2,), v)
        ours.step(Opt())
        ours.update()
        theirs.scale(tp.sum())
        tp.grad = torch.full((2,), v)
        theirs.step(topt)
        theirs.update()
        assert ours.get_scale() == theirs.get_scale()
    assert ours.state_dict() == theirs.state_dict()
