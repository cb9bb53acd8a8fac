"""nn.utils.prune: PyTorch's re-parametrisation, mask composition, global pruning, remove, state dicts."""
import math

import numpy as np
import pytest

import autodiff as ad
import nn
import optim
from nn.utils import prune
from tests.conftest import to_numpy


def _linear(w, b=None, device="cpu"):
    w = np.asarray(w, dtype=np.float32)
    m = nn.Linear(w.shape[1], w.shape[0], bias=b is not None, device=device)
    m.weight.data[...] = m.weight.data * 0 + ad.tensor(w, device=device).data
    if b is not None:
        m.bias.data[...] = ad.tensor(np.asarray(b, dtype=np.float32), device=device).data
    return m


W = [[0.5, -0.1, 2.0, 0.05], [-3.0, 0.2, -0.3, 1.0], [0.01, 4.0, -0.7, 0.6]]


def test_l1_unstructured_reparametrises(device):
    m = _linear(W, [0.1, 0.2, 0.3], device)
    out = prune.l1_unstructured(m, "weight", amount=0.5)
    assert out is m
    names = dict(m.named_parameters())
    assert set(names) == {"weight_orig", "bias"}
    assert set(dict(m.named_buffers())) == {"weight_mask"}
    expect = (np.abs(np.array(W)) > 0.5).astype(np.float32)  # the 6 smallest |w| are <= 0.5
    np.testing.assert_array_equal(to_numpy(m.weight_mask), expect)
    np.testing.assert_array_equal(to_numpy(m.weight), np.array(W, dtype=np.float32) * expect)
    assert prune.is_pruned(m)
    x = ad.randn(2, 4, device=device)
    y = m(x)
    ref = to_numpy(x) @ (np.array(W) * expect).T + [0.1, 0.2, 0.3]
    np.testing.assert_allclose(to_numpy(y), ref, rtol=1e-5, atol=1e-6)
    # gradients reach weight_orig only through kept entries
    y.sum().backward()
    g = to_numpy(m.weight_orig.grad)
    assert np.all(g[expect == 0] == 0) and np.all(g[expect == 1] != 0)


def test_amount_int_and_validation():
    m = _linear(W)
    prune.l1_unstructured(m, "weight", amount=2)
    assert int(to_numpy(m.weight_mask).sum()) == 10
    with pytest.raises(TypeError, match="Invalid type for amount"):
        prune.l1_unstructured(_linear(W), "weight", amount="half")
    with pytest.raises(ValueError, match="float in the range"):
        prune.l1_unstructured(_linear(W), "weight", amount=1.5)
    with pytest.raises(ValueError, match="float in the range"):
        prune.l1_unstructured(_linear(W), "weight", amount=-1)
    fresh = _linear(W)
    with pytest.raises(ValueError, match="smaller than the number of parameters"):
        prune.l1_unstructured(fresh, "weight", amount=13)
    assert "weight" in dict(fresh.named_parameters()) and not prune.is_pruned(fresh)  # rolled back
    with pytest.raises(AttributeError, match="no tensor named"):
        prune.l1_unstructured(_linear(W), "kernel", amount=1)


def test_iterative_pruning_composes_masks():
    m = _linear(W)
    prune.l1_unstructured(m, "weight", amount=0.5)  # 6 of 12
    prune.l1_unstructured(m, "weight", amount=0.5)  # 3 of the remaining 6
    mask = to_numpy(m.weight_mask)
    assert int(mask.sum()) == 3
    np.testing.assert_array_equal(mask, (np.abs(np.array(W)) >= 2.0).astype(np.float32))
    hooks = [h for h in m._forward_pre_hooks.values() if isinstance(h, prune.BasePruningMethod)]
    assert len(hooks) == 1 and isinstance(hooks[0], prune.PruningContainer) and len(hooks[0]) == 2
    # structured on top of unstructured: the amount counts the remaining rows
    prune.ln_structured(m, "weight", amount=1, n=1, dim=0)
    mask2 = to_numpy(m.weight_mask)
    assert (mask2.sum(axis=1) > 0).sum() == 2
    assert np.all(mask2 <= mask)


@pytest.mark.parametrize("n", [1, 2, math.inf, -math.inf, "fro"])
def test_ln_structured_rows_and_columns(n):
    w = np.array(W, dtype=np.float32)
    m = _linear(w)
    prune.ln_structured(m, "weight", amount=1, n=n, dim=0)
    p = {"fro": 2}.get(n, n)
    if p == math.inf:
        norms = np.abs(w).max(1)
    elif p == -math.inf:
        norms = np.abs(w).min(1)
    else:
        norms = (np.abs(w) ** p).sum(1) ** (1 / p)
    mask = to_numpy(m.weight_mask)
    np.testing.assert_array_equal(mask.sum(1) == 0, np.arange(3) == np.argmin(norms))
    m2 = _linear(w)
    prune.ln_structured(m2, "weight", amount=0.5, n=2, dim=1)  # 2 of 4 input columns
    cols = np.sqrt((w ** 2).sum(0))
    dead = to_numpy(m2.weight_mask).sum(0) == 0
    np.testing.assert_array_equal(np.sort(np.where(dead)[0]), np.sort(np.argsort(cols)[:2]))
    with pytest.raises(ValueError, match="multidimensional"):
        prune.ln_structured(_linear(w), "bias", amount=1, n=2, dim=0) if False else \
            prune.LnStructured(1, 2, 0).compute_mask(ad.ones(3), ad.ones(3))
    with pytest.raises(IndexError, match="Invalid index"):
        prune.ln_structured(_linear(w), "weight", amount=1, n=2, dim=2)


def test_random_unstructured_and_structured_counts():
    ad.manual_seed(1)
    m = nn.Linear(10, 8)
    prune.random_unstructured(m, "weight", amount=0.3)
    assert int(to_numpy(m.weight_mask).sum()) == 80 - 24
    prune.random_structured(m, "weight", amount=2, dim=0)
    assert (to_numpy(m.weight_mask).sum(1) == 0).sum() >= 2


def test_global_unstructured_uses_one_threshold(device):
    ad.manual_seed(0)
    a, b = nn.Linear(6, 5, device=device), nn.Linear(5, 4, device=device)
    with ad.no_grad():
        b.weight.data[...] = b.weight.data * 3  # b's weights are larger: it should keep more
    params = [(a, "weight"), (b, "weight")]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.6)
    total = 30 + 20
    zeros = sum(int((to_numpy(m.weight_mask) == 0).sum()) for m, _ in params)
    assert zeros == round(0.6 * total)
    kept = np.concatenate([np.abs(to_numpy(m.weight_orig))[to_numpy(m.weight_mask) == 1] for m, _ in params])
    gone = np.concatenate([np.abs(to_numpy(m.weight_orig))[to_numpy(m.weight_mask) == 0] for m, _ in params])
    assert kept.min() >= gone.max()
    rep = prune.sparsity_report(nn.Sequential(a, b), print_fn=None)
    assert rep["global"]["zeros"] == zeros and rep["global"]["total"] == total
    assert rep["layers"][0]["name"] == "0.weight"
    assert rep["layers"][1]["sparsity"] < rep["layers"][0]["sparsity"]
    with pytest.raises(TypeError, match="unstructured"):
        prune.global_unstructured(params, pruning_method=prune.LnStructured, amount=1, n=2, dim=0)


def test_custom_from_mask_identity_and_prune_method():
    m = _linear(W)
    mask = ad.tensor(np.array([[1, 0, 1, 0]] * 3, dtype=np.float32))
    prune.custom_from_mask(m, "weight", mask)
    np.testing.assert_array_equal(to_numpy(m.weight)[:, 1], 0)
    prune.identity(m, "bias") if m.bias is not None else None
    m2 = _linear(W, [1.0, 2.0, 3.0])
    prune.identity(m2, "weight")
    np.testing.assert_array_equal(to_numpy(m2.weight_mask), 1)
    with pytest.raises(ValueError, match="does not match"):
        prune.custom_from_mask(_linear(W), "weight", ad.ones(2, 2))
    t = ad.tensor(np.array([3.0, -1.0, 0.5, 2.0]))
    np.testing.assert_array_equal(to_numpy(prune.L1Unstructured(amount=2).prune(t)), [3.0, 0.0, 0.0, 2.0])


def test_pruned_weights_stay_zero_after_optimizer_steps(device):
    ad.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)).to(device)
    prune.l1_unstructured(model[0], "weight", amount=0.6)
    prune.ln_structured(model[2], "weight", amount=1, n=2, dim=0)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    x = ad.randn(16, 5, device=device)
    y = ad.randint(0, 3, (16,), device=device)
    for _ in range(3):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    model(x)  # the pre-hook recomputes weight from the updated weight_orig
    for layer in (model[0], model[2]):
        mask = to_numpy(layer.weight_mask)
        w = to_numpy(layer.weight)
        assert np.all(w[mask == 0] == 0)
        np.testing.assert_allclose(w, to_numpy(layer.weight_orig) * mask)


def test_remove_makes_pruning_permanent():
    m = _linear(W, [0.1, 0.2, 0.3])
    prune.l1_unstructured(m, "weight", amount=0.5)
    expect = to_numpy(m.weight).copy()
    prune.remove(m, "weight")
    assert isinstance(m.weight, nn.Parameter) and m.weight.requires_grad
    assert set(dict(m.named_parameters())) == {"weight", "bias"}
    assert dict(m.named_buffers()) == {}
    assert not prune.is_pruned(m)
    np.testing.assert_array_equal(to_numpy(m.weight), expect)
    with pytest.raises(ValueError, match="has to be pruned before"):
        prune.remove(m, "weight")
    opt = optim.SGD(m.parameters(), lr=1.0)
    m(ad.randn(2, 4)).sum().backward()
    opt.step()
    assert np.any(to_numpy(m.weight)[expect == 0] != 0)  # no mask any more: pruned entries can revive


def test_state_dict_round_trip_of_pruned_model(tmp_path):
    ad.manual_seed(0)
    src = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    prune.global_unstructured([(src[0], "weight"), (src[2], "weight")], prune.L1Unstructured, amount=0.5)
    sd = src.state_dict()
    assert {"0.weight_orig", "0.weight_mask", "2.weight_orig", "2.weight_mask", "0.bias", "2.bias"} == set(sd)
    dst = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    prune.identity(dst[0], "weight")
    prune.identity(dst[2], "weight")
    dst.load_state_dict(sd)
    x = ad.randn(3, 4)
    np.testing.assert_allclose(to_numpy(dst(x)), to_numpy(src(x)), rtol=1e-6)
    np.testing.assert_array_equal(to_numpy(dst[0].weight_mask), to_numpy(src[0].weight_mask))
    if hasattr(ad, "save"):
        ad.save(sd, str(tmp_path / "pruned.pt"))
        sd2 = ad.load(str(tmp_path / "pruned.pt"))
        dst.load_state_dict(sd2)
        np.testing.assert_allclose(to_numpy(dst(x)), to_numpy(src(x)), rtol=1e-6)


def test_prune_gradcheck_float64(backend):
    w = ad.randn(3, 4, dtype=ad.float64, requires_grad=True)
    x = ad.randn(2, 4, dtype=ad.float64)
    mask = prune.L1Unstructured(amount=5).compute_mask(w.detach(), ad.ones(3, 4, dtype=ad.float64))
    ad.gradcheck(lambda w: nn.functional.linear(x, mask * w), (w,))


def test_shrink_linear_stack_identical_outputs():
    ad.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 3))
    prune.ln_structured(model[0], "weight", amount=4, n=2, dim=0)
    prune.ln_structured(model[2], "weight", amount=0.5, n=1, dim=0)
    small = prune.shrink_linear_stack(model)
    assert small[0].weight.shape == (6, 6) and small[2].weight.shape == (4, 6) and small[4].weight.shape == (3, 4)
    assert small.num_parameters() < model.num_parameters()
    x = ad.randn(5, 6)
    model.eval()
    np.testing.assert_allclose(to_numpy(small(x)), to_numpy(model(x)), rtol=1e-5, atol=1e-6)
    assert not prune.is_pruned(small) and prune.is_pruned(model)
    with pytest.raises(TypeError, match="expected an nn.Sequential"):
        prune.shrink_linear_stack(nn.Linear(2, 2))


def test_shrink_structured_conv_net_identical_outputs():
    ad.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 8, 3), nn.Tanh(),
                          nn.Flatten(), nn.Linear(8 * 2 * 2, 5))
    prune.ln_structured(model[0], "weight", amount=3, n=1, dim=0)
    prune.ln_structured(model[3], "weight", amount=0.5, n=2, dim=0)
    x = ad.randn(2, 1, 10, 10)
    small = prune.shrink_structured(model, example_input=x)
    assert small[0].weight.shape == (3, 1, 3, 3) and small[3].weight.shape == (4, 3, 3, 3)
    assert small[6].weight.shape == (5, 16)
    model.eval()
    np.testing.assert_allclose(to_numpy(small(x)), to_numpy(model(x)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="example_input"):
        prune.shrink_structured(model)
    # a padded next conv cannot absorb a non-zero constant exactly: those channels are kept
    padded = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Tanh(), nn.Conv2d(4, 2, 3, padding=1))
    with ad.no_grad():
        padded[0].bias.data[...] = 0.5
    prune.ln_structured(padded[0], "weight", amount=2, n=1, dim=0)
    kept = prune.shrink_structured(padded, example_input=x)
    assert kept[0].weight.shape == (4, 1, 3, 3)
    np.testing.assert_allclose(to_numpy(kept(x)), to_numpy(padded(x)), rtol=1e-5, atol=1e-6)
