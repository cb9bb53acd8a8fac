"""The training-step fast paths (bench/RESULTS.md, "overhead") give the same results and errors as the
general paths: F.cross_entropy's one-reduction class-range check, Module.__call__'s hook flag, nn.ReLU
calling its primitive, the engine's inline leaf gradient, plain SGD inline."""
import copy
import pickle

import numpy as np
import pytest

import autodiff as ad
import nn
import nn.functional as F
import optim
from autodiff.gradcheck import gradcheck


def _logits(n=5, c=4, dtype=np.float64, seed=0):
    return ad.tensor(np.random.default_rng(seed).standard_normal((n, c)).astype(dtype), requires_grad=True)


@pytest.mark.parametrize("tdtype", [np.int64, np.int32, np.int16, np.uint8, np.uint64])
def test_cross_entropy_fast_path_matches_reference(tdtype):
    z = _logits()
    t = np.array([0, 3, 1, 2, 3]).astype(tdtype)
    for reduction in ("mean", "sum"):
        loss = F.cross_entropy(z, ad.tensor(t), reduction=reduction)
        zd = z.data
        ref = -(zd - np.log(np.exp(zd).sum(1, keepdims=True)))[np.arange(5), t.astype(np.int64)]
        np.testing.assert_allclose(loss.data, ref.mean() if reduction == "mean" else ref.sum(), rtol=1e-12)
    assert gradcheck(lambda a: F.cross_entropy(a, ad.tensor(t)), (z,))


@pytest.mark.parametrize("bad", [-1, 4, -100])
def test_cross_entropy_out_of_range_still_raises(bad):
    t = ad.tensor(np.array([0, bad, 1, 2, 3]))
    if bad == -100:  # the default ignore_index: ignored, not an error (general path)
        loss = F.cross_entropy(_logits(), t)
        assert np.isfinite(loss.data)
        return
    with pytest.raises(IndexError, match=rf"cross_entropy: target {bad} is out of bounds"):
        F.cross_entropy(_logits(), t)
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(_logits(), ad.tensor(np.array([0, bad, 1, 2, 3], np.int32)), reduction="sum")


def test_cross_entropy_ignore_index_inside_range_takes_general_path():
    z = _logits()
    t = ad.tensor(np.array([0, 3, 1, 2, 3]))
    full = F.cross_entropy(z, t, reduction="none").data
    got = F.cross_entropy(z, t, ignore_index=3).data
    np.testing.assert_allclose(got, full[[0, 2, 3]].mean(), rtol=1e-12)


def test_module_hook_registered_after_fast_calls_runs():
    import nn.module as M
    lin = nn.Linear(3, 2)
    x = ad.randn(4, 3)
    M._hooks_seen[0] = False  # as in a process where no hook was registered yet: the fast path
    lin(x)
    seen = []
    h = lin.register_forward_hook(lambda m, a, out: seen.append(out.shape) or out * 2)
    y = lin(x)
    assert seen == [(4, 2)]
    h.remove()
    np.testing.assert_allclose(y.data, 2 * lin(x).data, rtol=1e-6)
    pre = lin.register_forward_pre_hook(lambda m, a: (a[0] * 0,))
    np.testing.assert_allclose(lin(x).data, np.broadcast_to(lin.bias.data, (4, 2)), rtol=1e-6)
    pre.remove()


def _double(m, a, out):
    return out * 2


def test_module_hooks_survive_pickle_and_deepcopy():
    import nn.module as M
    lin = nn.Linear(3, 2)
    lin.register_forward_hook(_double)
    x = ad.randn(4, 3)
    try:
        for make in (lambda: pickle.loads(pickle.dumps(lin)), lambda: copy.deepcopy(lin)):
            M._hooks_seen[0] = False  # as in a process that never registered a hook
            clone = make()
            assert M._hooks_seen[0]  # unpickling a module with hooks turns the fast path off
            expect = 2 * (x.data @ clone.weight.data.T + clone.bias.data)
            np.testing.assert_allclose(clone(x).data, expect, rtol=1e-5)
    finally:
        M._hooks_seen[0] = True  # hooks were registered in this process


def test_relu_module_matches_functional_and_inplace():
    x = ad.tensor(np.array([[-1.0, 0.0, 2.0, np.nan]]), requires_grad=True)
    y = nn.ReLU()(x)
    assert type(y.grad_fn).__name__ == "Relu"
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0.0, 0.0, 1.0, 1.0]])  # NaN passes the gradient (PyTorch)
    with ad.no_grad():
        z = ad.tensor(np.array([-1.0, 3.0]))
        assert nn.ReLU(inplace=True)(z) is z
        np.testing.assert_array_equal(z.data, [0.0, 3.0])
    with pytest.raises(AttributeError):
        nn.ReLU()([1.0, -1.0])  # not a Tensor: the same error as before the fast path


def test_leaf_gradients_are_fresh_contiguous_and_unshared():
    w = ad.tensor(np.ones((3, 2)), requires_grad=True)
    b = ad.tensor(np.ones(2), requires_grad=True)
    x = ad.tensor(np.arange(12.0).reshape(4, 3))
    (x @ w + b).sum().backward()
    assert w.grad.data.flags.c_contiguous and w.grad.data.flags.writeable
    np.testing.assert_allclose(w.grad.data, np.repeat(x.data.sum(0)[:, None], 2, 1))
    # one array returned for two leaves (Add's backward) is stored once and copied once
    a = ad.tensor(np.zeros(3), requires_grad=True)
    c = ad.tensor(np.zeros(3), requires_grad=True)
    (a + c).sum().backward()
    assert a.grad.data is not c.grad.data and not np.shares_memory(a.grad.data, c.grad.data)


@pytest.mark.parametrize("kw", [{}, {"momentum": 0.9}, {"weight_decay": 0.1}, {"maximize": True}])
def test_sgd_matches_formula(kw, backend):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((3, 2)).astype(np.float32)
    gs = [rng.standard_normal((3, 2)).astype(np.float32) for _ in range(3)]
    p = nn.Parameter(ad.tensor(p0.copy()))
    opt = optim.SGD([p], lr=0.1, **kw)
    ref, buf = p0.astype(np.float64), None
    for i, g in enumerate(gs):
        p.grad = ad.tensor(g)
        v0 = p._vc[0]
        opt.step()
        assert p._vc[0] == v0 + 1
        d = -g.astype(np.float64) if kw.get("maximize") else g.astype(np.float64)
        d = d + kw.get("weight_decay", 0) * ref
        if kw.get("momentum"):
            buf = d if buf is None else 0.9 * buf + d
            d = buf
        ref = ref - 0.1 * d
    np.testing.assert_allclose(p.data, ref, rtol=1e-5, atol=1e-6)
