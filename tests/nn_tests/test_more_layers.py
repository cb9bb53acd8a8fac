"""Less common options: BatchNorm momentum=None / no running stats, LSTM with given state, MHA with
kdim/vdim and per-head weights, Embedding max_norm / scale_grad_by_freq, CE probability targets with
class weights, hooks with kwargs, state_dict(keep_vars) and load_state_dict(assign)."""
import numpy as np
import pytest

import autodiff
import nn
import nn.functional as F
from autodiff import gradcheck

f64 = autodiff.float64


def test_batchnorm_cumulative_average_and_no_running_stats():
    bn = nn.BatchNorm1d(2, momentum=None)
    xs = [np.random.default_rng(i).standard_normal((5, 2)).astype(np.float32) for i in range(3)]
    for x in xs:
        bn(autodiff.tensor(x))
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([x.mean(0) for x in xs], axis=0), rtol=1e-5,
                               atol=1e-6)
    assert int(bn.num_batches_tracked.numpy()) == 3
    nb = nn.BatchNorm2d(3, track_running_stats=False, affine=False)
    assert nb.running_mean is None and list(nb.parameters()) == [] and "running_mean" not in nb.state_dict()
    nb.eval()  # still normalises with batch statistics
    x = autodiff.randn(2, 3, 2, 2)
    y = nb(x).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)


def test_lstm_given_state_and_unbatched():
    m = nn.LSTM(2, 3, batch_first=True).double()
    x = autodiff.randn(2, 4, 2, dtype=f64)
    h0 = autodiff.randn(1, 2, 3, dtype=f64, requires_grad=True)
    c0 = autodiff.randn(1, 2, 3, dtype=f64, requires_grad=True)
    out, (h, c) = m(x, (h0, c0))
    np.testing.assert_allclose(out.detach().numpy()[:, -1], h.detach().numpy()[0])
    assert gradcheck(lambda h0, c0: m(x, (h0, c0))[1][1], (h0, c0))
    out1, (h1, c1) = m(x[0], (h0[:, 0], c0[:, 0]))
    assert out1.shape == (4, 3) and h1.shape == (1, 3)
    np.testing.assert_allclose(out1.detach().numpy(), out.detach().numpy()[0], rtol=1e-12)
    with pytest.raises(RuntimeError, match="hidden size"):
        m(x, (autodiff.zeros(2, 2, 3, dtype=f64), autodiff.zeros(2, 2, 3, dtype=f64)))


def test_mha_kdim_vdim_and_unaveraged_weights():
    mha = nn.MultiheadAttention(4, 2, kdim=3, vdim=5).double()
    assert mha.in_proj_weight is None and mha.k_proj_weight.shape == (4, 3) and mha.v_proj_weight.shape == (4, 5)
    q = autodiff.randn(2, 1, 4, dtype=f64, requires_grad=True)  # (L, N, E)
    k = autodiff.randn(3, 1, 3, dtype=f64)
    v = autodiff.randn(3, 1, 5, dtype=f64)
    out, w = mha(q, k, v, average_attn_weights=False)
    assert out.shape == (2, 1, 4) and w.shape == (1, 2, 2, 3)
    fmask = autodiff.randn(2, 3, dtype=f64)
    assert gradcheck(lambda q: mha(q, k, v, attn_mask=fmask)[0], (q,))
    with pytest.raises(AssertionError, match="divisible"):
        nn.MultiheadAttention(5, 2)


def test_embedding_max_norm_and_freq_scaling():
    emb = nn.Embedding(4, 3, max_norm=1.0)
    with autodiff.no_grad():
        emb.weight.data[...] = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = emb(autodiff.tensor([1, 2]))
    np.testing.assert_allclose(np.linalg.norm(out.detach().numpy(), axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(emb.weight.detach().numpy()[0], [0, 1, 2])  # untouched row
    w = autodiff.randn(4, 2, dtype=f64, requires_grad=True)
    idx = autodiff.tensor([1, 1, 3])
    F.embedding(idx, w, scale_grad_by_freq=True).sum().backward()
    np.testing.assert_allclose(w.grad.numpy()[:, 0], [0, 1, 0, 1])  # row 1 seen twice: scaled by 1/2 (by design)


def test_cross_entropy_prob_targets_with_weight():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((3, 4))
    p = rng.dirichlet(np.ones(4), 3)
    w = np.array([1.0, 2.0, 0.5, 1.0])
    lp = z - z.max(1, keepdims=True)
    lp = lp - np.log(np.exp(lp).sum(1, keepdims=True))
    ref = -(p * w * lp).sum(1).mean()
    got = F.cross_entropy(autodiff.tensor(z), autodiff.tensor(p), weight=autodiff.tensor(w))
    np.testing.assert_allclose(got.item(), ref, rtol=1e-12)


def test_hooks_with_kwargs_prepend_and_state_dict_options():
    lin = nn.Linear(2, 2)
    order = []
    lin.register_forward_pre_hook(lambda m, a: order.append("a"))
    lin.register_forward_pre_hook(lambda m, a: order.append("b"), prepend=True)
    lin.register_forward_hook(lambda m, a, kw, out: order.append(("kw", sorted(kw))), with_kwargs=True)
    lin(input=autodiff.ones(1, 2))
    assert order == ["b", "a", ("kw", ["input"])]
    sd = lin.state_dict(keep_vars=True)
    assert sd["weight"] is lin.weight
    new_w = np.ones((2, 2), dtype=np.float32)
    lin.load_state_dict({"weight": new_w, "bias": np.zeros(2, dtype=np.float32)}, assign=True)
    np.testing.assert_array_equal(lin.weight.detach().numpy(), new_w)
    with pytest.raises(TypeError, match="dict-like"):
        lin.load_state_dict([1, 2])


def test_sequential_editing_and_module_dict_errors():
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    del seq[1]
    assert [type(m).__name__ for m in seq] == ["Linear", "Linear"] and list(seq._modules) == ["0", "1"]
    seq.insert(1, nn.Tanh())
    assert isinstance(seq[1], nn.Tanh) and len(seq) == 3
    assert seq(autodiff.randn(4, 2)).shape == (4, 1)
    with pytest.raises(TypeError, match="not a Module subclass"):
        nn.ModuleDict({"a": 3})
    with pytest.raises(KeyError, match="non-empty string"):
        nn.Module().add_module("a.b", nn.ReLU())


def test_groupnorm_and_layernorm_errors():
    with pytest.raises(ValueError, match="divisible by num_groups"):
        nn.GroupNorm(3, 4)
    with pytest.raises(RuntimeError, match="GroupNorm"):
        nn.GroupNorm(2, 4)(autodiff.randn(2, 3, 5))
    with pytest.raises(RuntimeError, match="layer_norm: input of shape .* does not end with"):
        nn.LayerNorm(4)(autodiff.randn(2, 3))


def test_full_backward_hooks():
    lin = nn.Linear(3, 2)
    seen = {}

    def hook(m, grad_input, grad_output):
        seen["gi"] = [None if g is None else g.shape for g in grad_input]
        seen["go"] = [g.shape for g in grad_output]
        return None if grad_input[0] is None else (grad_input[0] * 0,)

    h = lin.register_full_backward_hook(hook)
    pre = []
    lin.register_full_backward_pre_hook(lambda m, go: pre.append(go[0].shape))
    x = autodiff.randn(4, 3, requires_grad=True)
    lin(x).sum().backward()
    assert seen == {"gi": [(4, 3)], "go": [(4, 2)]} and pre == [(4, 2)]
    assert np.all(x.grad.numpy() == 0) and lin.weight.grad is not None  # grad_input replaced
    seen.clear()
    lin(autodiff.randn(4, 3)).sum().backward()  # no input needs grad: the hook still runs
    assert seen == {"gi": [None], "go": [(4, 2)]}
    h.remove()
    x.grad = None
    lin(x).sum().backward()
    assert np.abs(x.grad.numpy()).sum() > 0
    # a hook on a container sees the gradient w.r.t. the container's input
    seq = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
    got = []
    seq.register_full_backward_hook(lambda m, gi, go: got.append(gi[0].numpy().copy()))
    x2 = autodiff.randn(2, 3, requires_grad=True)
    seq(x2).sum().backward()
    np.testing.assert_allclose(got[0], x2.grad.numpy())


def test_interpolate_upsample_and_padding_layers():
    x = autodiff.arange(16.0, dtype=f64).reshape(1, 1, 4, 4)
    up = nn.Upsample(scale_factor=2)
    assert repr(up) == "Upsample(scale_factor=2.0, mode='nearest')"
    np.testing.assert_array_equal(up(x).numpy()[0, 0, :2], [[0, 0, 1, 1, 2, 2, 3, 3]] * 2)
    # bilinear (align_corners=False) written out for x[i, j] = 4 i + j: separable, so out = 4 r(i) + c(j)
    y = F.interpolate(x, size=(3, 5), mode="bilinear", align_corners=False).numpy()[0, 0]
    r = np.maximum((np.arange(3) + 0.5) * 4 / 3 - 0.5, 0)
    c = np.minimum(np.maximum((np.arange(5) + 0.5) * 4 / 5 - 0.5, 0), 3)  # the last source index clamps
    np.testing.assert_allclose(y, 4 * r[:, None] + c[None, :], rtol=1e-12)
    ya = F.interpolate(x, size=(3, 5), mode="bilinear", align_corners=True).numpy()[0, 0]
    np.testing.assert_allclose(ya, 4 * np.linspace(0, 3, 3)[:, None] + np.linspace(0, 3, 5)[None, :], rtol=1e-12)
    xg = autodiff.randn(1, 2, 3, 3, dtype=f64, requires_grad=True)
    assert gradcheck(lambda x: F.interpolate(x, scale_factor=1.7, mode="bilinear"), (xg,))
    assert gradcheck(lambda x: F.interpolate(x, size=(4, 2), mode="bicubic", antialias=True), (xg,))
    with pytest.raises(NotImplementedError, match="lanczos"):
        F.interpolate(xg, scale_factor=2, mode="lanczos")
    assert nn.ZeroPad2d(1)(x).shape == (1, 1, 6, 6)
    assert nn.ReflectionPad2d((1, 0, 2, 0))(x).shape == (1, 1, 6, 5)
    np.testing.assert_array_equal(nn.ConstantPad2d(1, 3.5)(x).numpy()[0, 0, 0], [3.5] * 6)
    assert nn.PixelShuffle(2)(autodiff.randn(1, 8, 2, 2)).shape == (1, 2, 4, 4)
