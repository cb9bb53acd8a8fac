"""Layers: normalisation, embedding, dropout, activations, recurrent, attention — values vs NumPy
references, float64 gradcheck, shapes and reprs."""
import numpy as np
import pytest

import autodiff
import nn
import nn.functional as F
from autodiff import gradcheck, gradgradcheck
from tests.conftest import to_numpy

f64 = autodiff.float64


def test_linear_forward_backward(backend, device):
    lin = nn.Linear(4, 3).to(device)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    xt = autodiff.tensor(x, device=device, requires_grad=True)
    y = lin(xt)
    w, b = to_numpy(lin.weight.detach()), to_numpy(lin.bias.detach())
    np.testing.assert_allclose(to_numpy(y.detach()), x @ w.T + b, rtol=1e-5, atol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(to_numpy(lin.weight.grad), np.ones((3, 5)) @ x, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(lin.bias.grad), np.full(3, 5.0))
    np.testing.assert_allclose(to_numpy(xt.grad), np.ones((5, 3)) @ w, rtol=1e-5)
    assert lin(autodiff.randn(2, 7, 4, device=device)).shape == (2, 7, 3)


def test_linear_gradcheck_and_errors():
    lin = nn.Linear(3, 2).double()
    x = autodiff.randn(4, 3, dtype=f64, requires_grad=True)
    assert gradcheck(lambda x, w, b: F.linear(x, w, b), (x, lin.weight, lin.bias))
    assert gradgradcheck(lambda x, w: F.linear(x, w), (x, lin.weight))
    x3 = autodiff.randn(2, 2, 3, dtype=f64, requires_grad=True)
    assert gradcheck(lambda x, w, b: F.linear(x, w, b), (x3, lin.weight, lin.bias))
    net = nn.Linear(784, 128)
    with pytest.raises(RuntimeError, match=r"Linear\(in_features=784, out_features=128, bias=True\): input has 100 "
                                           r"features \(shape \(2, 100\)\), expected 784"):
        net(autodiff.randn(2, 100))
    bound = 1 / np.sqrt(784)
    assert np.abs(net.weight.detach().numpy()).max() <= bound and np.abs(net.bias.detach().numpy()).max() <= bound


@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm1d, (6, 3)), (nn.BatchNorm1d, (4, 3, 5)), (nn.BatchNorm2d, (3, 3, 4, 2))])
def test_batchnorm_train_eval(backend, device, cls, shape):
    bn = cls(3, momentum=0.2).to(device)
    x = np.random.default_rng(1).standard_normal(shape) * 2 + 1
    axes = (0,) + tuple(range(2, len(shape)))
    y = bn(autodiff.tensor(x, dtype=autodiff.float32, device=device))
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    np.testing.assert_allclose(to_numpy(y.detach()), (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-4)
    n = x.size // 3
    np.testing.assert_allclose(to_numpy(bn.running_mean), 0.2 * mean.reshape(-1), rtol=1e-5)
    np.testing.assert_allclose(to_numpy(bn.running_var), 0.8 + 0.2 * var.reshape(-1) * n / (n - 1), rtol=1e-5)
    assert int(to_numpy(bn.num_batches_tracked)) == 1
    bn.eval()
    ye = bn(autodiff.tensor(x, dtype=autodiff.float32, device=device))
    rm, rv = to_numpy(bn.running_mean), to_numpy(bn.running_var)
    sh = (1, 3) + (1,) * (len(shape) - 2)
    np.testing.assert_allclose(to_numpy(ye.detach()), (x - rm.reshape(sh)) / np.sqrt(rv.reshape(sh) + 1e-5), rtol=1e-4,
                               atol=1e-4)


def test_norm_gradchecks():
    x = autodiff.randn(4, 3, 2, dtype=f64, requires_grad=True)
    w = autodiff.randn(3, dtype=f64, requires_grad=True)
    b = autodiff.randn(3, dtype=f64, requires_grad=True)
    rm, rv = autodiff.zeros(3, dtype=f64), autodiff.ones(3, dtype=f64)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, True), (x, w, b))
    assert gradgradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, True), (x, w, b))
    assert gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, False), (x, w, b))
    wl = autodiff.randn(3, 2, dtype=f64, requires_grad=True)
    bl = autodiff.randn(3, 2, dtype=f64, requires_grad=True)
    assert gradcheck(lambda x, w, b: F.layer_norm(x, (3, 2), w, b), (x, wl, bl))
    assert gradgradcheck(lambda x, w, b: F.layer_norm(x, (3, 2), w, b), (x, wl, bl))
    x4 = autodiff.randn(2, 4, 3, dtype=f64, requires_grad=True)
    wg = autodiff.randn(4, dtype=f64, requires_grad=True)
    bg = autodiff.randn(4, dtype=f64, requires_grad=True)
    assert gradcheck(lambda x, w, b: F.group_norm(x, 2, w, b), (x4, wg, bg))


def test_layer_group_norm_values(backend, device):
    x = np.random.default_rng(2).standard_normal((2, 4, 3))
    ln = nn.LayerNorm(3).to(device).double()
    y = ln(autodiff.tensor(x, device=device))
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(to_numpy(y.detach()), ref, rtol=1e-10)
    gn = nn.GroupNorm(2, 4).to(device).double()
    yg = gn(autodiff.tensor(x, device=device))
    xr = x.reshape(2, 2, -1)
    refg = ((xr - xr.mean(-1, keepdims=True)) / np.sqrt(xr.var(-1, keepdims=True) + 1e-5)).reshape(x.shape)
    np.testing.assert_allclose(to_numpy(yg.detach()), refg, rtol=1e-10)
    assert repr(ln) == "LayerNorm((3,), eps=1e-05, elementwise_affine=True, bias=True)"
    assert repr(nn.BatchNorm2d(8)) == "BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    with pytest.raises(ValueError, match="BatchNorm2d: expected 4D input"):
        nn.BatchNorm2d(3)(autodiff.randn(2, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(autodiff.randn(1, 3))


def test_embedding(backend, device):
    emb = nn.Embedding(5, 3, padding_idx=0).to(device)
    assert np.all(to_numpy(emb.weight.detach())[0] == 0)
    idx = autodiff.tensor([[0, 2, 2], [4, 1, 0]], device=device)
    out = emb(idx)
    assert out.shape == (2, 3, 3)
    np.testing.assert_allclose(to_numpy(out.detach()), to_numpy(emb.weight.detach())[to_numpy(idx)])
    out.sum().backward()
    g = to_numpy(emb.weight.grad)
    np.testing.assert_allclose(g[:, 0], [0, 1, 2, 0, 1])
    assert repr(emb) == "Embedding(5, 3, padding_idx=0)"
    w = autodiff.randn(5, 3, dtype=f64, requires_grad=True)
    i2 = autodiff.tensor([1, 3, 3, 0])
    assert gradcheck(lambda w: F.embedding(i2, w), (w,))
    assert gradgradcheck(lambda w: F.embedding(i2, w) ** 2, (w,))
    with pytest.raises(IndexError, match=r"embedding: index out of range.*\[0, 4\]"):
        emb(autodiff.tensor([5]))
    with pytest.raises(RuntimeError, match="integer"):
        emb(autodiff.tensor([1.0]))


def test_dropout_train_eval(backend, device):
    d = nn.Dropout(0.25)
    x = autodiff.ones(2000, device=device, requires_grad=True)
    y = d(x)
    yn = to_numpy(y.detach())
    assert set(np.unique(yn)) <= {0.0, np.float32(1 / 0.75)}
    assert 0.18 < (yn == 0).mean() < 0.32
    y.sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), yn)
    d.eval()
    assert d(x) is x
    assert repr(d) == "Dropout(p=0.25, inplace=False)"
    with pytest.raises(ValueError):
        nn.Dropout(1.5)
    assert np.all(to_numpy(F.dropout(x, 1.0).detach()) == 0)


ACTS = [
    (nn.ReLU(), lambda x: np.maximum(x, 0)), (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.ELU(), lambda x: np.where(x > 0, x, np.expm1(x))), (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (nn.Tanh(), np.tanh), (nn.SiLU(), lambda x: x / (1 + np.exp(-x))),
    (nn.Softplus(), lambda x: np.log1p(np.exp(x))), (nn.GELU(approximate="tanh"),
                                                      lambda x: 0.5 * x * (1 + np.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))),
    (nn.Softmax(dim=1), lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),
    (nn.LogSoftmax(dim=1), lambda x: x - np.log(np.exp(x).sum(1, keepdims=True))),
    (nn.Hardtanh(), lambda x: np.clip(x, -1, 1)), (nn.ReLU6(), lambda x: np.clip(x, 0, 6)),
    (nn.Mish(), lambda x: x * np.tanh(np.log1p(np.exp(x)))),
]


@pytest.mark.parametrize("i", range(len(ACTS)))
def test_activations(i):
    mod, ref = ACTS[i]
    x = autodiff.tensor(np.random.default_rng(i).standard_normal((3, 4)) * 2, requires_grad=True)
    np.testing.assert_allclose(mod(x).detach().numpy(), ref(x.detach().numpy()), rtol=1e-6, atol=1e-8)
    assert gradcheck(mod, (x,))


def test_activation_reprs():
    assert repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"
    assert repr(nn.LeakyReLU()) == "LeakyReLU(negative_slope=0.01)"
    assert repr(nn.GELU()) == "GELU(approximate='none')"
    assert repr(nn.Softmax(dim=-1)) == "Softmax(dim=-1)"
    assert repr(nn.ELU()) == "ELU(alpha=1.0)"
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    x = autodiff.randn(3)
    y = nn.ReLU(inplace=True)(x)
    assert y is x and float(x.min()) >= 0


# ----------------------------------------------------------------------------- recurrent
def _sig(z):
    return 1 / (1 + np.exp(-z))


def lstm_ref(x, params, H, reverse=False):
    wih, whh, bih, bhh = params
    L, N, _ = x.shape
    h, c = np.zeros((N, H)), np.zeros((N, H))
    out = np.zeros((L, N, H))
    for t in (range(L - 1, -1, -1) if reverse else range(L)):
        g = x[t] @ wih.T + bih + h @ whh.T + bhh
        i, f, gg, o = _sig(g[:, :H]), _sig(g[:, H:2 * H]), np.tanh(g[:, 2 * H:3 * H]), _sig(g[:, 3 * H:])
        c = f * c + i * gg
        h = o * np.tanh(c)
        out[t] = h
    return out, h, c


def gru_ref(x, params, H):
    wih, whh, bih, bhh = params
    L, N, _ = x.shape
    h = np.zeros((N, H))
    out = np.zeros((L, N, H))
    for t in range(L):
        xi, hh = x[t] @ wih.T + bih, h @ whh.T + bhh
        r = _sig(xi[:, :H] + hh[:, :H])
        z = _sig(xi[:, H:2 * H] + hh[:, H:2 * H])
        n = np.tanh(xi[:, 2 * H:] + r * hh[:, 2 * H:])
        h = (1 - z) * n + z * h
        out[t] = h
    return out, h


def _p(m, sfx):
    return [getattr(m, n + sfx).detach().numpy() for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def test_lstm_matches_reference_and_names():
    m = nn.LSTM(3, 4, num_layers=2, bidirectional=True).double()
    names = [n for n, _ in m.named_parameters()]
    assert names[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert "weight_ih_l1_reverse" in names and m.weight_ih_l1.shape == (16, 8)
    x = np.random.default_rng(3).standard_normal((5, 2, 3))
    out, (h, c) = m(autodiff.tensor(x))
    f0, hf, cf = lstm_ref(x, _p(m, "_l0"), 4)
    b0, hb, cb = lstm_ref(x, _p(m, "_l0_reverse"), 4, reverse=True)
    x1 = np.concatenate([f0, b0], -1)
    f1, hf1, _ = lstm_ref(x1, _p(m, "_l1"), 4)
    b1, hb1, _ = lstm_ref(x1, _p(m, "_l1_reverse"), 4, reverse=True)
    np.testing.assert_allclose(out.detach().numpy(), np.concatenate([f1, b1], -1), rtol=1e-10)
    np.testing.assert_allclose(h.detach().numpy(), np.stack([hf, hb, hf1, hb1]), rtol=1e-10)
    np.testing.assert_allclose(c.detach().numpy()[:2], np.stack([cf, cb]), rtol=1e-10)
    assert repr(m) == "LSTM(3, 4, num_layers=2, bidirectional=True)"


def test_gru_rnn_reference_batch_first_and_gradcheck():
    g = nn.GRU(3, 2, batch_first=True).double()
    x = np.random.default_rng(4).standard_normal((2, 4, 3))
    out, h = g(autodiff.tensor(x))
    ro, rh = gru_ref(x.transpose(1, 0, 2), _p(g, "_l0"), 2)
    np.testing.assert_allclose(out.detach().numpy(), ro.transpose(1, 0, 2), rtol=1e-10)
    np.testing.assert_allclose(h.detach().numpy()[0], rh, rtol=1e-10)
    xt = autodiff.tensor(x[:, :3], requires_grad=True)
    h0 = autodiff.randn(1, 2, 2, dtype=f64, requires_grad=True)
    assert gradcheck(lambda x, h0, w: g(x, h0)[0], (xt, h0, g.weight_hh_l0))
    r = nn.RNN(3, 2, num_layers=2, nonlinearity="relu").double()
    assert gradcheck(lambda x: r(x)[0], (autodiff.randn(3, 1, 3, dtype=f64, requires_grad=True),))
    lstm = nn.LSTM(2, 2).double()
    assert gradcheck(lambda x, w: lstm(x)[1][1], (autodiff.randn(3, 2, 2, dtype=f64, requires_grad=True),
                                                  lstm.weight_ih_l0))
    o, hn = nn.RNN(3, 5)(autodiff.randn(7, 3))  # unbatched
    assert o.shape == (7, 5) and hn.shape == (1, 5)
    with pytest.raises(RuntimeError, match="input has 4 features"):
        nn.GRU(3, 2)(autodiff.randn(5, 1, 4))


# ----------------------------------------------------------------------------- attention
def sdpa_ref(q, k, v, mask=None, causal=False):
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    e = np.exp(s - s.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)) @ v


def test_scaled_dot_product_attention(backend, device):
    rng = np.random.default_rng(5)
    q, k, v = rng.standard_normal((2, 3, 4, 8)), rng.standard_normal((2, 3, 5, 8)), rng.standard_normal((2, 3, 5, 6))
    T = lambda a: autodiff.tensor(a, device=device)  # noqa: E731
    np.testing.assert_allclose(to_numpy(F.scaled_dot_product_attention(T(q), T(k), T(v))), sdpa_ref(q, k, v), rtol=1e-10)
    bm = rng.random((4, 5)) > 0.3
    bm[:, 0] = True
    np.testing.assert_allclose(to_numpy(F.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=T(bm))),
                               sdpa_ref(q, k, v, bm), rtol=1e-10)
    fm = rng.standard_normal((4, 5))
    np.testing.assert_allclose(to_numpy(F.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=T(fm))),
                               sdpa_ref(q, k, v, fm), rtol=1e-10)
    qc = rng.standard_normal((2, 5, 8))
    np.testing.assert_allclose(to_numpy(F.scaled_dot_product_attention(T(qc), T(k[0, :2]), T(v[0, :2]), is_causal=True)),
                               sdpa_ref(qc, k[0, :2], v[0, :2], causal=True), rtol=1e-10)
    if backend == "numpy":
        qs = autodiff.tensor(q[:1, :1, :3, :4], requires_grad=True)
        ks = autodiff.tensor(k[:1, :1, :3, :4], requires_grad=True)
        vs = autodiff.tensor(v[:1, :1, :3, :2], requires_grad=True)
        assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), (qs, ks, vs))
    with pytest.raises(RuntimeError, match="both be set"):
        F.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=T(bm), is_causal=True)


def test_multihead_attention():
    mha = nn.MultiheadAttention(8, 2, batch_first=True).double()
    assert mha.in_proj_weight.shape == (24, 8) and mha.in_proj_bias.shape == (24,)
    assert [n for n, _ in mha.named_parameters()] == ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    x = np.random.default_rng(6).standard_normal((2, 3, 8))
    out, w = mha(autodiff.tensor(x), autodiff.tensor(x), autodiff.tensor(x))
    assert out.shape == (2, 3, 8) and w.shape == (2, 3, 3)
    W, b = mha.in_proj_weight.detach().numpy(), mha.in_proj_bias.detach().numpy()
    q, k, v = (x @ W[i * 8:(i + 1) * 8].T + b[i * 8:(i + 1) * 8] for i in range(3))
    split = lambda a: a.reshape(2, 3, 2, 4).transpose(0, 2, 1, 3)  # noqa: E731
    o = sdpa_ref(split(q), split(k), split(v)).transpose(0, 2, 1, 3).reshape(2, 3, 8)
    ref = o @ mha.out_proj.weight.detach().numpy().T + mha.out_proj.bias.detach().numpy()
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-10)
    np.testing.assert_allclose(w.detach().numpy().sum(-1), 1.0)
    causal = np.triu(np.ones((3, 3), bool), 1)  # MHA convention: True = masked out
    _, wc = mha(autodiff.tensor(x), autodiff.tensor(x), autodiff.tensor(x), attn_mask=autodiff.tensor(causal))
    assert np.all(wc.detach().numpy()[:, 0, 1:] == 0)
    kpm = np.array([[False, False, True], [False, False, False]])
    _, wk = mha(autodiff.tensor(x), autodiff.tensor(x), autodiff.tensor(x), key_padding_mask=autodiff.tensor(kpm))
    assert np.all(wk.detach().numpy()[0, :, 2] == 0)
    xs = autodiff.tensor(x[:1, :2], requires_grad=True)
    assert gradcheck(lambda x: mha(x, x, x, need_weights=False)[0], (xs,))


def test_transformer_encoder_layer():
    for norm_first in (False, True):
        layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True,
                                           norm_first=norm_first).double()
        x = autodiff.randn(2, 3, 8, dtype=f64, requires_grad=True)
        y = layer(x, is_causal=True, src_mask=None)
        assert y.shape == (2, 3, 8)
        assert gradcheck(lambda x: layer(x), (autodiff.randn(1, 2, 8, dtype=f64, requires_grad=True),))
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), num_layers=2)
    assert enc(autodiff.randn(3, 2, 8)).shape == (3, 2, 8)
    assert len(list(enc.parameters())) == 2 * len(list(nn.TransformerEncoderLayer(8, 2, 16).parameters()))
    assert enc.layers[0].linear1.weight is not enc.layers[1].linear1.weight
