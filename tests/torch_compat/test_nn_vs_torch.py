"""nn against PyTorch itself (skipped when `torch` is not importable).

The layer, activation, normalisation and loss comparisons run on every backend (the `device` fixture:
numpy, numba, and CUDA where a GPU is present).

Each layer is built in both frameworks; torch's parameters and buffers are copied into ours through
`load_state_dict` (NumPy arrays), which also checks the state_dict key names, order and shapes. The same
input and the same output gradient go through both; outputs, input gradients and parameter gradients
must agree (float64 tightly, float32 to float32 rounding). Losses, functional forms, default
initialisation, module API (repr, state_dict, named_parameters), gradient clipping and vector
conversion are compared the same way.
"""
import math

import numpy as np
import pytest

import autodiff
import nn
import nn.functional as F
import optim

torch = pytest.importorskip("torch")
tnn = torch.nn
TF = torch.nn.functional

TOL = {np.float64: dict(rtol=1e-9, atol=1e-10), np.float32: dict(rtol=2e-4, atol=2e-5)}
TDT = {np.float64: torch.float64, np.float32: torch.float32}
DTYPES = [np.float64, np.float32]


def _np(t):
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    return t.detach().cpu().numpy()


def _close(a, b, dtype, what, **kw):
    tol = dict(TOL[dtype])
    tol.update(kw)
    a, b = _np(a), _np(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs torch {b.shape}"
    np.testing.assert_allclose(a, b, err_msg=what, **tol)


def _flat(out):
    if isinstance(out, (tuple, list)):
        res = []
        for o in out:
            res.extend(_flat(o))
        return res
    return [] if out is None else [out]


def _copy_params(tm, om):
    """torch -> ours through load_state_dict with NumPy arrays; key names and order must agree."""
    tsd = tm.state_dict()
    osd = om.state_dict()
    assert list(osd.keys()) == list(tsd.keys()), f"state_dict keys {list(osd)} vs torch {list(tsd)}"
    for k in tsd:
        assert tuple(osd[k].shape) == tuple(tsd[k].shape), f"{k}: shape {osd[k].shape} vs torch {tsd[k].shape}"
    om.load_state_dict({k: v.detach().cpu().numpy() for k, v in tsd.items()})


def compare_module(tm, om, inputs, dtype, train=True, rng=None, kwargs=None, check_params=True,
                   grad_inputs=None, device="cpu", **tol):
    """Run both modules on the same inputs (NumPy arrays; float ones require grad) and compare outputs,
    input gradients and parameter gradients, plus buffers afterwards. Ours runs on `device`."""
    rng = rng or np.random.default_rng(1)
    kwargs = kwargs or {}
    tm = tm.to(TDT[dtype])
    _copy_params(tm, om)
    om = om.double() if dtype == np.float64 else om.float()
    if device != "cpu":
        om = om.to(device)
    tm.zero_grad()
    om.zero_grad()
    tm.train(train)
    om.train(train)
    tin, oin = [], []
    for i, a in enumerate(inputs):
        if a is None:
            tin.append(None)
            oin.append(None)
            continue
        a = np.asarray(a)
        fl = a.dtype.kind == "f"
        if fl:
            a = a.astype(dtype)
        rg = fl and (grad_inputs is None or i in grad_inputs)
        tin.append(torch.tensor(a, requires_grad=rg))
        oin.append(autodiff.tensor(a, requires_grad=rg, device=device))
    tout = _flat(tm(*tin, **kwargs))
    oout = _flat(om(*oin, **{k: (autodiff.tensor(_np(v), device=device) if isinstance(v, torch.Tensor) else v)
                            for k, v in kwargs.items()}))
    assert len(tout) == len(oout), f"{type(om).__name__}: {len(oout)} outputs vs torch {len(tout)}"
    for k, (t, o) in enumerate(zip(tout, oout)):
        _close(o, t, dtype, f"{type(om).__name__} output {k}", **tol)
    tl, ol = 0, 0
    for t, o in zip(tout, oout):
        if not t.requires_grad or not t.dtype.is_floating_point:
            continue
        g = rng.standard_normal(tuple(t.shape)).astype(dtype)
        tl = tl + (t * torch.tensor(g)).sum()
        ol = ol + (o * autodiff.tensor(g, device=device)).sum()
    if isinstance(tl, torch.Tensor):
        tl.backward()
        ol.backward()
        for i, (t, o) in enumerate(zip(tin, oin)):
            if t is not None and t.requires_grad:
                assert o.grad is not None, f"{type(om).__name__}: input {i} got no grad"
                _close(o.grad, t.grad, dtype, f"{type(om).__name__} grad of input {i}", **tol)
        if check_params:
            tp = dict(tm.named_parameters())
            op = dict(om.named_parameters())
            assert list(op) == list(tp), f"named_parameters {list(op)} vs torch {list(tp)}"
            for n in tp:
                if tp[n].grad is None:
                    assert op[n].grad is None or not np.any(_np(op[n].grad)), f"{n}: grad where torch has none"
                    continue
                assert op[n].grad is not None, f"{type(om).__name__}.{n}: no grad"
                _close(op[n].grad, tp[n].grad, dtype, f"{type(om).__name__}.{n}.grad", **tol)
    tb = dict(tm.named_buffers())
    ob = dict(om.named_buffers())
    assert list(ob) == list(tb), f"buffers {list(ob)} vs torch {list(tb)}"
    for n in tb:
        _close(ob[n], tb[n], dtype if tb[n].dtype.is_floating_point else np.float64, f"buffer {n}")
    return tout, oout


def _pair(name, *args, **kw):
    torch.manual_seed(0)
    return getattr(tnn, name)(*args, **kw), getattr(nn, name)(*args, **kw)


R = np.random.default_rng(0)


def rn(*shape):
    return R.standard_normal(shape)


# ---------------------------------------------------------------------------------------------- layers
LAYER_CASES = [
    ("Linear", (5, 3), {}, [(4, 5)]),
    ("Linear", (5, 3), dict(bias=False), [(2, 3, 5)]),
    ("Bilinear", (3, 4, 2), {}, [(5, 3), (5, 4)]),
    ("Conv1d", (2, 4, 3), dict(stride=2, padding=1), [(2, 2, 9)]),
    ("Conv1d", (4, 4, 3), dict(padding="same", dilation=2, groups=2), [(2, 4, 8)]),
    ("Conv1d", (2, 3, 4), dict(padding="same", bias=False), [(1, 2, 7)]),
    ("Conv2d", (3, 4, 3), {}, [(2, 3, 7, 6)]),
    ("Conv2d", (4, 6, (3, 2)), dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2, bias=False),
     [(2, 4, 8, 7)]),
    ("Conv2d", (2, 3, 3), dict(padding="same"), [(1, 2, 5, 6)]),
    ("Conv2d", (2, 3, 4), dict(padding="same", dilation=2), [(1, 2, 6, 7)]),
    ("Conv2d", (2, 3, 3), dict(padding=1, padding_mode="reflect"), [(1, 2, 5, 6)]),
    ("Conv2d", (2, 3, 3), dict(padding=2, padding_mode="replicate"), [(1, 2, 5, 6)]),
    ("Conv2d", (2, 3, 3), dict(padding=1, padding_mode="circular"), [(1, 2, 5, 6)]),
    ("ConvTranspose2d", (3, 2, 3), {}, [(2, 3, 4, 5)]),
    ("ConvTranspose2d", (4, 6, 3), dict(stride=2, padding=1, output_padding=1, groups=2), [(1, 4, 4, 3)]),
    ("ConvTranspose2d", (2, 3, (3, 2)), dict(stride=(3, 2), dilation=2, bias=False), [(2, 2, 3, 4)]),
    ("ConvTranspose1d", (2, 3, 3), dict(stride=2, padding=1, output_padding=1), [(2, 2, 5)]),
    ("MaxPool2d", (2,), {}, [(2, 3, 6, 5)]),
    ("MaxPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True), [(2, 2, 8, 7)]),
    ("MaxPool2d", (2,), dict(stride=1, dilation=2), [(1, 2, 6, 6)]),
    ("MaxPool1d", (3,), dict(stride=2, padding=1), [(2, 3, 9)]),
    ("AvgPool2d", (2,), {}, [(2, 3, 6, 5)]),
    ("AvgPool2d", (3,), dict(stride=2, padding=1, count_include_pad=False), [(2, 2, 7, 7)]),
    ("AvgPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True), [(2, 2, 8, 7)]),
    ("AvgPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False), [(1, 2, 8, 7)]),
    ("AvgPool2d", (2,), dict(divisor_override=3), [(1, 2, 4, 4)]),
    ("AvgPool1d", (3,), dict(stride=2, padding=1), [(2, 3, 9)]),
    ("AdaptiveAvgPool2d", ((3, 2),), {}, [(2, 3, 7, 5)]),
    ("AdaptiveAvgPool2d", (4,), {}, [(1, 2, 6, 9)]),
    ("AdaptiveAvgPool2d", ((None, 3),), {}, [(1, 2, 5, 7)]),
    ("AdaptiveAvgPool1d", (3,), {}, [(2, 3, 7)]),
    ("AdaptiveMaxPool2d", ((3, 2),), {}, [(2, 3, 7, 5)]),
    ("AdaptiveMaxPool2d", ((3, 4),), dict(return_indices=True), [(2, 3, 7, 9)]),
    ("AdaptiveMaxPool2d", ((None, 4),), {}, [(3, 7, 9)]),
    ("LayerNorm", (5,), {}, [(3, 4, 5)]),
    ("LayerNorm", ((4, 5),), dict(elementwise_affine=False), [(3, 4, 5)]),
    ("LayerNorm", ((4, 5),), dict(bias=False, eps=1e-3), [(3, 4, 5)]),
    ("GroupNorm", (2, 4), {}, [(3, 4, 5)]),
    ("GroupNorm", (3, 6), dict(affine=False), [(2, 6, 3, 2)]),
    ("GroupNorm", (3, 6), dict(bias=False), [(2, 6, 3, 2)]),
    ("InstanceNorm2d", (3,), dict(affine=True, bias=False, track_running_stats=True), [(2, 3, 4, 5)]),
    ("InstanceNorm2d", (3,), {}, [(2, 3, 4, 5)]),
    ("InstanceNorm2d", (3,), dict(affine=True), [(2, 3, 4, 5)]),
    ("RMSNorm", (5,), {}, [(3, 5)]),
    ("Flatten", (), {}, [(2, 3, 4, 5)]),
    ("Flatten", (0, -2), {}, [(2, 3, 4, 5)]),
    ("Unflatten", (1, (2, 3)), {}, [(4, 6, 2)]),
    ("Identity", (), {}, [(3, 4)]),
    ("PixelShuffle", (2,), {}, [(2, 8, 3, 2)]),
    ("ZeroPad2d", ((1, 2, 0, 3),), {}, [(1, 2, 3, 4)]),
    ("ConstantPad1d", (2, 1.5), {}, [(1, 2, 3)]),
    ("ReflectionPad2d", (2,), {}, [(1, 2, 4, 5)]),
    ("ReplicationPad2d", ((1, 0, 2, 3),), {}, [(1, 2, 4, 5)]),
    ("Upsample", (), dict(scale_factor=2, mode="nearest"), [(1, 2, 3, 4)]),
    ("Upsample", (), dict(size=(5, 7), mode="bilinear", align_corners=False), [(1, 2, 3, 4)]),
    ("Upsample", (), dict(scale_factor=2, mode="bilinear", align_corners=True), [(1, 2, 3, 4)]),
    ("PReLU", (), {}, [(2, 3, 4)]),
    ("PReLU", (3,), dict(init=0.1), [(2, 3, 4)]),
    ("Conv3d", (4, 6, (2, 3, 1)), dict(stride=(2, 1, 2), padding=(1, 0, 1), dilation=(2, 1, 1), groups=2, bias=False),
     [(1, 4, 7, 5, 6)]),
    ("Conv3d", (2, 3, 3), dict(padding="same", dilation=(1, 2, 1)), [(1, 2, 5, 6, 4)]),
    ("Conv3d", (2, 3, 2), dict(padding=1, padding_mode="reflect"), [(2, 4, 4, 4)]),
    ("ConvTranspose3d", (4, 2, (3, 2, 2)), dict(stride=(2, 3, 1), padding=(1, 0, 1), output_padding=(1, 2, 0),
                                                groups=2, dilation=(1, 1, 2)), [(1, 4, 3, 3, 4)]),
    ("MaxPool3d", (3,), dict(stride=2, padding=1, ceil_mode=True), [(1, 2, 6, 7, 5)]),
    ("MaxPool3d", ((2, 3, 2),), dict(stride=1, dilation=(2, 1, 1)), [(2, 5, 5, 5)]),
    ("AvgPool3d", (3,), dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False), [(1, 2, 6, 7, 5)]),
    ("AvgPool3d", (2,), dict(divisor_override=3), [(1, 2, 4, 4, 4)]),
    ("AdaptiveAvgPool3d", ((None, 3, 2),), {}, [(2, 2, 5, 7, 4)]),
    ("AdaptiveMaxPool3d", ((2, 3, 2),), {}, [(2, 5, 7, 4)]),
]


@pytest.mark.parametrize("case", LAYER_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(LAYER_CASES)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_matches_torch(case, dtype, device):
    name, args, kw, shapes = case
    tm, om = _pair(name, *args, **kw)
    compare_module(tm, om, [rn(*s) for s in shapes], dtype, device=device)


ACTS = [("ReLU", {}), ("ReLU6", {}), ("LeakyReLU", dict(negative_slope=0.2)), ("ELU", dict(alpha=0.7)),
        ("SELU", {}), ("CELU", dict(alpha=1.3)), ("GELU", {}), ("GELU", dict(approximate="tanh")), ("SiLU", {}),
        ("Mish", {}), ("Sigmoid", {}), ("Tanh", {}), ("Softplus", dict(beta=2, threshold=3)), ("Softsign", {}),
        ("LogSigmoid", {}), ("Hardtanh", dict(min_val=-0.5, max_val=2)), ("Hardsigmoid", {}), ("Hardswish", {}),
        ("GLU", {}), ("GLU", dict(dim=1)), ("Softmax", dict(dim=1)), ("Softmax", dict(dim=-1)),
        ("LogSoftmax", dict(dim=0)), ("LogSoftmax", dict(dim=2)), ("Softmin", dict(dim=1))]


@pytest.mark.parametrize("case", ACTS, ids=[f"{c[0]}-{i}" for i, c in enumerate(ACTS)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_matches_torch(case, dtype, device):
    name, kw = case
    tm, om = _pair(name, **kw)
    x = rn(3, 4, 6) * 3
    # torch's own CELU / Hardsigmoid backward kernels round a coefficient to float32 (ours are exact)
    tol = dict(rtol=1e-6) if name in ("CELU", "Hardsigmoid") and dtype == np.float64 else {}
    compare_module(tm, om, [x], dtype, device=device, **tol)
    assert str(om) == str(tm)


# ------------------------------------------------------------------------------------------ batch norm
BN_CASES = [
    ("BatchNorm1d", (4,), {}, (6, 4)),
    ("BatchNorm1d", (3,), dict(momentum=None), (5, 3, 4)),
    ("BatchNorm1d", (3,), dict(affine=False, momentum=0.3), (5, 3)),
    ("BatchNorm2d", (3,), {}, (4, 3, 2, 3)),
    ("BatchNorm2d", (3,), dict(momentum=None, eps=1e-3), (2, 3, 3, 2)),
    ("BatchNorm2d", (3,), dict(track_running_stats=False), (2, 3, 3, 2)),
    ("BatchNorm2d", (3,), dict(affine=False, track_running_stats=False), (2, 3, 3, 2)),
    ("BatchNorm2d", (3,), dict(bias=False), (2, 3, 3, 2)),
]


@pytest.mark.parametrize("case", BN_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(BN_CASES)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnorm_train_eval_and_running_stats(case, dtype, device):
    name, args, kw, shape = case
    tm, om = _pair(name, *args, **kw)
    rng = np.random.default_rng(3)
    for step in range(4):  # several training steps: running stats (and num_batches_tracked) follow torch
        x = rng.standard_normal(shape) * 2 + 1
        tout, oout = compare_module(tm, om, [x], dtype, train=True, device=device) if step == 0 else (None, None)
        if step:
            with torch.no_grad():
                tm(torch.tensor(x.astype(dtype)))
            with autodiff.no_grad():
                om(autodiff.tensor(x.astype(dtype), device=device))
            for (n, tb), (n2, ob) in zip(tm.named_buffers(), om.named_buffers()):
                assert n == n2
                _close(ob, tb, dtype if tb.dtype.is_floating_point else np.float64, f"{name} buffer {n}")
    x = rng.standard_normal(shape)
    tm.eval()
    om.eval()
    tout = tm(torch.tensor(x.astype(dtype)))
    oout = om(autodiff.tensor(x.astype(dtype), device=device))
    _close(oout, tout, dtype, f"{name} eval output")


# ------------------------------------------------------------------------------------ dropout, embedding
def test_dropout_identity_and_scaling():
    x = rn(4, 5)
    for p, train in ((0.0, True), (0.5, False), (0.9, False)):
        for name in ("Dropout", "Dropout1d", "Dropout2d", "AlphaDropout"):
            m = getattr(nn, name)(p)
            m.train(train)
            xi = rn(2, 3, 4) if name != "Dropout2d" else rn(2, 3, 4, 2)
            np.testing.assert_array_equal(_np(m(autodiff.tensor(xi))), xi, err_msg=f"{name}(p={p}) train={train}")
    assert str(nn.Dropout(0.3)) == str(tnn.Dropout(0.3))
    autodiff.manual_seed(0)
    m = nn.Dropout(0.3)
    x = autodiff.tensor(np.ones((200, 200)), requires_grad=True)
    y = m(x)
    yn = _np(y)
    kept = yn != 0
    assert set(np.unique(np.round(yn, 12))) <= {0.0, round(1 / 0.7, 12)}
    assert abs(kept.mean() - 0.7) < 0.02
    y.sum().backward()
    np.testing.assert_allclose(_np(x.grad), kept / 0.7)
    # Dropout2d zeroes whole channels
    y2 = _np(nn.Dropout2d(0.5)(autodiff.tensor(np.ones((8, 16, 3, 3)))))
    per_chan = y2.reshape(8, 16, -1)
    assert np.all((per_chan == 0).all(-1) | (per_chan == 2.0).all(-1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [{}, dict(padding_idx=1), dict(padding_idx=-2), dict(max_norm=1.0),
                                dict(scale_grad_by_freq=True)])
def test_embedding_matches_torch(kw, dtype):
    tm, om = _pair("Embedding", 6, 3, **kw)
    idx = np.array([[1, 2, 1, 4], [0, 1, 5, 2]])
    compare_module(tm, om, [idx], dtype)
    if "max_norm" in kw:  # renormalised rows written back into the weight, as torch does
        _close(om.weight, tm.weight, dtype, "Embedding max_norm weight")
    assert str(om) == str(tm)


# -------------------------------------------------------------------------------------------- recurrent
RNN_CASES = [
    ("RNN", dict(), False),
    ("RNN", dict(nonlinearity="relu", num_layers=2, batch_first=True), True),
    ("LSTM", dict(), True),
    ("LSTM", dict(num_layers=2, bidirectional=True, batch_first=True), False),
    ("LSTM", dict(bidirectional=True, bias=False), True),
    ("LSTM", dict(proj_size=2, num_layers=2, bidirectional=True), True),
    ("LSTM", dict(proj_size=3, batch_first=True), False),
    ("GRU", dict(), False),
    ("GRU", dict(num_layers=2, bidirectional=True), True),
    ("GRU", dict(batch_first=True), True),
]


@pytest.mark.parametrize("case", RNN_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(RNN_CASES)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rnn_matches_torch(case, dtype):
    name, kw, with_h0 = case
    tm, om = _pair(name, 3, 4, **kw)
    L, N = 5, 2
    x = rn(N, L, 3) if kw.get("batch_first") else rn(L, N, 3)
    inputs = [x]
    if with_h0:
        nl = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
        h0 = rn(nl, N, kw.get("proj_size") or 4)
        inputs.append((h0, rn(nl, N, 4)) if name == "LSTM" else h0)
    if name == "LSTM" and with_h0:
        # tuple state: flatten into the call
        tm = tm.to(TDT[dtype])
        _copy_params(tm, om)
        om = om.double() if dtype == np.float64 else om.float()
        ta = [torch.tensor(a.astype(dtype), requires_grad=True) for a in (x, *inputs[1])]
        oa = [autodiff.tensor(a.astype(dtype), requires_grad=True) for a in (x, *inputs[1])]
        to, (th, tc) = tm(ta[0], (ta[1], ta[2]))
        oo, (oh, oc) = om(oa[0], (oa[1], oa[2]))
        for o, t, w in ((oo, to, "out"), (oh, th, "h_n"), (oc, tc, "c_n")):
            _close(o, t, dtype, f"LSTM {w}")
        g = [rn(*t.shape).astype(dtype) for t in (to, th, tc)]
        sum((t * torch.tensor(gi)).sum() for t, gi in zip((to, th, tc), g)).backward()
        sum((o * autodiff.tensor(gi)).sum() for o, gi in zip((oo, oh, oc), g)).backward()
        for o, t in zip(oa, ta):
            _close(o.grad, t.grad, dtype, "LSTM input grad")
        for (n, tp), (n2, op) in zip(tm.named_parameters(), om.named_parameters()):
            assert n == n2
            _close(op.grad, tp.grad, dtype, f"LSTM {n}.grad")
        return
    compare_module(tm, om, inputs, dtype)
    assert str(om) == str(tm)


@pytest.mark.parametrize("name", ["RNNCell", "LSTMCell", "GRUCell"])
def test_rnn_cells_match_torch(name):
    tm, om = _pair(name, 3, 4)
    compare_module(tm, om, [rn(2, 3)], np.float64)
    tm2, om2 = _pair(name, 3, 4, bias=False)
    compare_module(tm2, om2, [rn(3)], np.float64)


def test_rnn_unbatched_input():
    tm, om = _pair("GRU", 3, 4, num_layers=2)
    compare_module(tm, om, [rn(5, 3)], np.float64)


# -------------------------------------------------------------------------------------------- attention
MHA_CASES = [
    dict(batch_first=False),
    dict(batch_first=True, kpm=True),
    dict(batch_first=True, mask="bool"),
    dict(batch_first=False, mask="float", kpm=True, average_attn_weights=False),
    dict(batch_first=True, need_weights=False, bias=False),
    dict(batch_first=True, kdim=5, vdim=2),
    dict(batch_first=True, add_bias_kv=True, add_zero_attn=True),
    dict(batch_first=True, mask="bool3d"),
]


@pytest.mark.parametrize("case", MHA_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_multihead_attention_matches_torch(case, dtype):
    case = dict(case)
    bf = case.pop("batch_first")
    kpm = case.pop("kpm", False)
    mask = case.pop("mask", None)
    call = {k: case.pop(k) for k in ("need_weights", "average_attn_weights") if k in case}
    E, H, N, L, S = 6, 2, 2, 3, 4
    tm, om = _pair("MultiheadAttention", E, H, batch_first=bf, **case)
    kd, vd = case.get("kdim", E), case.get("vdim", E)
    shp = (lambda n, l, e: (n, l, e)) if bf else (lambda n, l, e: (l, n, e))
    q, k, v = rn(*shp(N, L, E)), rn(*shp(N, S, kd)), rn(*shp(N, S, vd))
    kw = dict(call)
    if kpm:
        m = np.zeros((N, S), bool)
        m[0, -1] = m[1, 0] = True
        kw["key_padding_mask"] = torch.tensor(m)
    if mask == "bool":
        kw["attn_mask"] = torch.tensor(np.triu(np.ones((L, S), bool), 1))
    elif mask == "float":
        kw["attn_mask"] = torch.tensor(rn(L, S).astype(dtype))
    elif mask == "bool3d":
        m = np.zeros((N * H, L, S), bool)
        m[:, :, 1] = True
        kw["attn_mask"] = torch.tensor(m)
    compare_module(tm, om, [q, k, v], dtype, kwargs=kw)
    assert str(om) == str(tm)


@pytest.mark.parametrize("kw", [dict(), dict(norm_first=True, activation="gelu", batch_first=True),
                                dict(batch_first=True, bias=False)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_transformer_encoder_layer_eval_matches_torch(kw, dtype):
    torch.manual_seed(0)
    tm = tnn.TransformerEncoderLayer(8, 2, dim_feedforward=16, **kw)
    om = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, **kw)
    x = rn(2, 3, 8)
    compare_module(tm, om, [x], dtype, train=False)
    m = np.zeros((2, 3) if kw.get("batch_first") else (3, 2), bool)
    m[0, -1] = True
    compare_module(tm, om, [x], dtype, train=False,
                   kwargs=dict(src_key_padding_mask=torch.tensor(m)))
    tenc = tnn.TransformerEncoder(tm, 2, enable_nested_tensor=False)
    oenc = nn.TransformerEncoder(om, 2, enable_nested_tensor=False)
    compare_module(tenc, oenc, [x], dtype, train=False)


SDPA_CASES = [dict(), dict(is_causal=True), dict(mask="bool"), dict(mask="float"), dict(scale=0.3),
              dict(is_causal=True, scale=2.0)]


@pytest.mark.parametrize("case", SDPA_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_scaled_dot_product_attention_matches_torch(case, dtype):
    case = dict(case)
    mask = case.pop("mask", None)
    q, k, v = rn(2, 3, 4, 5), rn(2, 3, 4, 5), rn(2, 3, 4, 6)
    if mask == "bool":
        m = R.random((4, 4)) > 0.3
        m[:, 0] = True
        case["attn_mask"] = m
    elif mask == "float":
        case["attn_mask"] = rn(2, 1, 4, 4)
    ta = [torch.tensor(a.astype(dtype), requires_grad=True) for a in (q, k, v)]
    oa = [autodiff.tensor(a.astype(dtype), requires_grad=True) for a in (q, k, v)]
    tkw = {k2: (torch.tensor(v2.astype(dtype) if v2.dtype.kind == "f" else v2) if isinstance(v2, np.ndarray) else v2)
           for k2, v2 in case.items()}
    okw = {k2: (autodiff.tensor(v2.astype(dtype) if v2.dtype.kind == "f" else v2) if isinstance(v2, np.ndarray)
                else v2) for k2, v2 in case.items()}
    t = TF.scaled_dot_product_attention(*ta, **tkw)
    o = F.scaled_dot_product_attention(*oa, **okw)
    _close(o, t, dtype, "sdpa")
    g = rn(*t.shape).astype(dtype)
    (t * torch.tensor(g)).sum().backward()
    (o * autodiff.tensor(g)).sum().backward()
    for a, b in zip(oa, ta):
        _close(a.grad, b.grad, dtype, "sdpa grad")


# ---------------------------------------------------------------------------------------------- losses
def _loss_compare(name, kw, inputs, dtype, grad_inputs=(0,), tol=None, device="cpu"):
    tkw = {k: (torch.tensor(v.astype(dtype)) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    okw = {k: (autodiff.tensor(v.astype(dtype), device=device) if isinstance(v, np.ndarray) else v)
           for k, v in kw.items()}
    tm, om = getattr(tnn, name)(**tkw), getattr(nn, name)(**okw)
    tin = [torch.tensor(a.astype(dtype) if a.dtype.kind == "f" else a, requires_grad=i in grad_inputs)
           for i, a in enumerate(inputs)]
    oin = [autodiff.tensor(a.astype(dtype) if a.dtype.kind == "f" else a, requires_grad=i in grad_inputs,
                           device=device) for i, a in enumerate(inputs)]
    t, o = tm(*tin), om(*oin)
    _close(o, t, dtype, f"{name}({kw}) value", **(tol or {}))
    g = rn(*t.shape).astype(dtype)
    (t * torch.tensor(g)).sum().backward()
    (o * autodiff.tensor(g, device=device)).sum().backward()
    for i in grad_inputs:
        _close(oin[i].grad, tin[i].grad, dtype, f"{name}({kw}) grad {i}", **(tol or {}))
    assert str(om) == str(tm)


REDS = ["mean", "sum", "none"]


def _probs(*shape):
    return R.uniform(0.05, 0.95, shape)


LOSS_CASES = [
    ("MSELoss", {}, lambda: [rn(3, 4), rn(3, 4)], (0, 1)),
    ("L1Loss", {}, lambda: [rn(3, 4), rn(3, 4)], (0, 1)),
    ("HuberLoss", dict(delta=0.7), lambda: [rn(3, 4) * 2, rn(3, 4)], (0, 1)),
    ("SmoothL1Loss", dict(beta=0.5), lambda: [rn(3, 4) * 2, rn(3, 4)], (0, 1)),
    ("SmoothL1Loss", dict(beta=0.0), lambda: [rn(3, 4) * 2, rn(3, 4)], (0,)),
    ("CrossEntropyLoss", {}, lambda: [rn(5, 4), R.integers(0, 4, 5)], (0,)),
    ("CrossEntropyLoss", dict(ignore_index=1, weight=R.uniform(0.5, 2, 4)),
     lambda: [rn(6, 4), np.array([0, 1, 2, 3, 1, 2])], (0,)),
    ("CrossEntropyLoss", dict(label_smoothing=0.2, weight=R.uniform(0.5, 2, 4), ignore_index=2),
     lambda: [rn(6, 4), np.array([0, 1, 2, 3, 1, 2])], (0,)),
    ("CrossEntropyLoss", dict(label_smoothing=0.1), lambda: [rn(2, 4, 3, 2), R.integers(0, 4, (2, 3, 2))], (0,)),
    ("CrossEntropyLoss", dict(weight=R.uniform(0.5, 2, 3)), lambda: [rn(2, 3, 4), R.integers(0, 3, (2, 4))], (0,)),
    ("CrossEntropyLoss", {}, lambda: [rn(5, 4), R.dirichlet(np.ones(4), 5)], (0, 1)),
    ("CrossEntropyLoss", dict(label_smoothing=0.3, weight=R.uniform(0.5, 2, 4)),
     lambda: [rn(5, 4), R.dirichlet(np.ones(4), 5)], (0, 1)),
    ("CrossEntropyLoss", {}, lambda: [rn(4), np.array(2)], (0,)),
    ("NLLLoss", {}, lambda: [rn(5, 4), R.integers(0, 4, 5)], (0,)),
    ("NLLLoss", dict(weight=R.uniform(0.5, 2, 4), ignore_index=0), lambda: [rn(6, 4), np.array([0, 1, 2, 3, 0, 2])],
     (0,)),
    ("NLLLoss", dict(weight=R.uniform(0.5, 2, 3)), lambda: [rn(2, 3, 2, 2), R.integers(0, 3, (2, 2, 2))], (0,)),
    ("BCELoss", {}, lambda: [_probs(3, 4), _probs(3, 4)], (0, 1)),
    ("BCELoss", dict(weight=R.uniform(0.5, 2, 4)), lambda: [_probs(3, 4), _probs(3, 4)], (0,)),
    ("BCEWithLogitsLoss", {}, lambda: [rn(3, 4) * 3, _probs(3, 4)], (0, 1)),
    ("BCEWithLogitsLoss", dict(pos_weight=R.uniform(0.5, 2, 4), weight=R.uniform(0.5, 2, 4)),
     lambda: [rn(3, 4) * 3, _probs(3, 4)], (0, 1)),
    ("BCEWithLogitsLoss", dict(pos_weight=np.array([3.0])),
     lambda: [np.array([[-200.0, 200.0, 50.0, -50.0, 0.0]]), np.array([[1.0, 0.0, 0.3, 0.7, 0.5]])], (0, 1)),
    ("KLDivLoss", {}, lambda: [np.log(_probs(3, 4)), _probs(3, 4)], (0, 1)),
    ("KLDivLoss", dict(log_target=True), lambda: [np.log(_probs(3, 4)), np.log(_probs(3, 4))], (0, 1)),
    ("KLDivLoss", dict(reduction="batchmean"), lambda: [np.log(_probs(3, 4)), _probs(3, 4)], (0, 1)),
    ("KLDivLoss", dict(reduction="batchmean", log_target=True), lambda: [rn(3, 4), rn(3, 4)], (0, 1)),
    ("PoissonNLLLoss", {}, lambda: [rn(3, 4), R.poisson(2, (3, 4)).astype(float)], (0,)),
    ("PoissonNLLLoss", dict(log_input=False, full=True), lambda: [_probs(3, 4) * 3, R.poisson(2, (3, 4)) + 0.0],
     (0,)),
    ("GaussianNLLLoss", dict(full=True), lambda: [rn(3, 4), rn(3, 4), _probs(3, 4)], (0, 2)),
    ("GaussianNLLLoss", {}, lambda: [rn(3, 4), rn(3, 4), _probs(3, 1)], (0, 2)),
    ("CosineEmbeddingLoss", dict(margin=0.2), lambda: [rn(4, 5), rn(4, 5), np.array([1, -1, 1, -1])], (0, 1)),
    ("MarginRankingLoss", dict(margin=0.1), lambda: [rn(5), rn(5), np.array([1.0, -1, 1, -1, 1])], (0, 1)),
    ("SoftMarginLoss", {}, lambda: [rn(3, 4), np.sign(rn(3, 4))], (0,)),
]


@pytest.mark.parametrize("case", LOSS_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(LOSS_CASES)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_matches_torch(case, dtype, device):
    name, kw, make, gi = case
    inputs = make()
    reds = ["batchmean"] if kw.get("reduction") == "batchmean" else REDS
    kw = {k: v for k, v in kw.items() if k != "reduction"}
    for red in reds:
        _loss_compare(name, dict(kw, reduction=red), inputs, dtype, grad_inputs=gi, device=device)


def test_loss_bad_input_raises():
    with pytest.raises(Exception, match="(?i)mse|shape|size"):
        nn.MSELoss()(autodiff.randn(3, 4), autodiff.randn(4, 3))
    with pytest.raises(Exception, match="(?i)cross|target|class"):
        nn.CrossEntropyLoss()(autodiff.randn(3, 4), autodiff.tensor(np.array([0, 1, 7])))
    with pytest.raises(ValueError):
        nn.MSELoss(reduction="avg")(autodiff.randn(3), autodiff.randn(3))


# ----------------------------------------------------------------------------------------- functional
@pytest.mark.parametrize("dtype", DTYPES)
def test_functional_misc_matches_torch(dtype):
    x = rn(2, 3, 4, 5).astype(dtype)

    def both(fn_t, fn_o, *arrs, **kw):
        ta = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrs]
        oa = [autodiff.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrs]
        t, o = fn_t(*ta, **kw), fn_o(*oa, **kw)
        _close(o, t, dtype, f"{fn_o.__name__}({kw})")
        if t.requires_grad:
            g = rn(*t.shape).astype(dtype)
            (t * torch.tensor(g)).sum().backward()
            (o * autodiff.tensor(g)).sum().backward()
            for a, b in zip(oa, ta):
                if b.requires_grad:
                    _close(a.grad, b.grad, dtype, f"{fn_o.__name__}({kw}) grad")

    for pad, mode, val in [((1, 2), "constant", 0.5), ((1, 0, 2, 1), "constant", None), ((1, 2, 0, 1), "reflect", None),
                           ((2, 1, 1, 2), "replicate", None), ((1, 2, 2, 1), "circular", None),
                           ((1, 1, 0, 0, 1, 2), "constant", None)]:
        kw = dict(mode=mode) if val is None else dict(mode=mode, value=val)
        both(TF.pad, F.pad, x, pad=pad, **kw)
    for p, dim in ((2.0, 1), (1.0, -1), (3.0, 0)):
        both(TF.normalize, F.normalize, x, p=p, dim=dim)
    both(TF.cosine_similarity, F.cosine_similarity, rn(3, 4).astype(dtype), rn(3, 4).astype(dtype), dim=1)
    for kw in (dict(size=(7, 3), mode="nearest"), dict(scale_factor=2, mode="nearest"),
               dict(size=(6, 9), mode="bilinear", align_corners=False),
               dict(size=(6, 9), mode="bilinear", align_corners=True),
               dict(scale_factor=(1.5, 0.5), mode="bilinear", align_corners=False),
               dict(size=(2, 3), mode="bilinear", align_corners=False),
               dict(scale_factor=1.7, mode="nearest-exact"), dict(size=(3, 4), mode="nearest-exact"),
               dict(size=(3, 4), mode="area"), dict(size=(7, 9), mode="bicubic"),
               dict(size=(2, 7), mode="bicubic", align_corners=True), dict(size=(2, 3), mode="bilinear", antialias=True),
               dict(scale_factor=0.6, mode="bicubic", antialias=True)):
        both(TF.interpolate, F.interpolate, x, **kw)
    both(TF.interpolate, F.interpolate, rn(1, 2, 3, 4, 2).astype(dtype), size=(4, 3, 3), mode="trilinear")
    x3 = rn(2, 3, 8).astype(dtype)
    for kw in (dict(size=5, mode="linear", align_corners=False), dict(scale_factor=2, mode="nearest"),
               dict(size=11, mode="linear", align_corners=True)):
        both(TF.interpolate, F.interpolate, x3, **kw)
    both(TF.glu, F.glu, x, dim=2)
    both(TF.softmax, F.softmax, x, dim=-1)
    both(TF.log_softmax, F.log_softmax, x, dim=1)
    both(TF.linear, F.linear, rn(3, 4).astype(dtype), rn(5, 4).astype(dtype), rn(5).astype(dtype))


def test_one_hot_matches_torch():
    a = np.array([[0, 3], [2, 1]])
    t = TF.one_hot(torch.tensor(a))
    o = F.one_hot(autodiff.tensor(a))
    assert o.dtype == autodiff.int64 and tuple(o.shape) == tuple(t.shape)
    np.testing.assert_array_equal(_np(o), _np(t))
    np.testing.assert_array_equal(_np(F.one_hot(autodiff.tensor(a), 6)), _np(TF.one_hot(torch.tensor(a), 6)))
    with pytest.raises(Exception):
        F.one_hot(autodiff.tensor(a), 3)


def test_max_pool_return_indices_and_unpool_match_torch():
    x = rn(2, 3, 6, 7)
    tm, om = _pair("MaxPool2d", 3, stride=2, padding=1, return_indices=True, ceil_mode=True)
    compare_module(tm, om, [x], np.float64)
    (to, ti), (oo, oi) = tm(torch.tensor(x)), om(autodiff.tensor(x))
    np.testing.assert_array_equal(_np(oi), _np(ti))
    assert oi.dtype == autodiff.int64
    tu, ou = tnn.MaxUnpool2d(3, stride=2, padding=1), nn.MaxUnpool2d(3, stride=2, padding=1)
    _close(ou(oo, oi, output_size=(6, 7)), tu(to, ti, output_size=(6, 7)), np.float64, "MaxUnpool2d")
    x1 = rn(2, 3, 9)
    (to, ti), (oo, oi) = TF.max_pool1d(torch.tensor(x1), 3, 2, 1, return_indices=True), \
        F.max_pool1d(autodiff.tensor(x1), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(_np(oi), _np(ti))
    _close(nn.MaxUnpool1d(3, 2, 1)(oo, oi, output_size=[9]), tnn.MaxUnpool1d(3, 2, 1)(to, ti, output_size=[9]),
           np.float64, "MaxUnpool1d")
    assert str(nn.MaxUnpool1d(3, 2, 1)) == str(tnn.MaxUnpool1d(3, 2, 1))


# --------------------------------------------------------------------------------------- initialisation
def test_calculate_gain_matches_torch():
    for nl, p in [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                  ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None), ("conv_transpose2d", None)]:
        assert math.isclose(nn.init.calculate_gain(nl, p), tnn.init.calculate_gain(nl, p), rel_tol=1e-12), nl
    with pytest.raises(ValueError):
        nn.init.calculate_gain("nope")


def _bound_stats(a):
    a = _np(a).ravel()
    return a.min(), a.max(), a.mean(), a.std()


@pytest.mark.parametrize("shape", [(64, 50), (32, 8, 3, 3), (16, 12, 5)])
def test_init_functions_distributions_match_torch(shape):
    fan_in = shape[1] * int(np.prod(shape[2:]))
    fan_out = shape[0] * int(np.prod(shape[2:]))
    assert nn.init._calculate_fan_in_and_fan_out(autodiff.empty(*shape)) == \
        tnn.init._calculate_fan_in_and_fan_out(torch.empty(*shape)) == (fan_in, fan_out)
    cases = [
        ("uniform_", dict(a=-0.3, b=0.7), ("U", -0.3, 0.7)),
        ("normal_", dict(mean=0.5, std=0.2), ("N", 0.5, 0.2)),
        ("xavier_uniform_", dict(gain=2.0), ("U", -2.0 * math.sqrt(6 / (fan_in + fan_out)),
                                             2.0 * math.sqrt(6 / (fan_in + fan_out)))),
        ("xavier_normal_", dict(gain=0.5), ("N", 0.0, 0.5 * math.sqrt(2 / (fan_in + fan_out)))),
        ("kaiming_uniform_", dict(a=math.sqrt(5)), ("U", -math.sqrt(6 / ((1 + 5) * fan_in)),
                                                    math.sqrt(6 / ((1 + 5) * fan_in)))),
        ("kaiming_uniform_", dict(mode="fan_out", nonlinearity="relu"),
         ("U", -math.sqrt(6 / fan_out), math.sqrt(6 / fan_out))),
        ("kaiming_normal_", dict(mode="fan_out", nonlinearity="relu"), ("N", 0.0, math.sqrt(2 / fan_out))),
        ("kaiming_normal_", dict(a=0.1, nonlinearity="leaky_relu"),
         ("N", 0.0, math.sqrt(2 / (1.01)) / math.sqrt(fan_in))),
        ("trunc_normal_", dict(mean=0.1, std=1.0, a=-0.5, b=1.0), ("T", -0.5, 1.0)),
    ]
    for fn, kw, (kind, a, b) in cases:
        o = autodiff.empty(*shape)
        getattr(nn.init, fn)(o, **kw)
        mn, mx, mean, std = _bound_stats(o)
        n = o.numel() if callable(getattr(o, "numel", None)) else int(np.prod(shape))
        if kind == "U":
            assert a <= mn and mx <= b, (fn, kw, mn, mx)
            assert abs(mean - (a + b) / 2) < 5 * (b - a) / math.sqrt(12 * n), (fn, kw)
            assert abs(std - (b - a) / math.sqrt(12)) < 0.1 * (b - a) / math.sqrt(12), (fn, kw)
        elif kind == "N":
            assert abs(mean - a) < 5 * b / math.sqrt(n), (fn, kw)
            assert abs(std - b) < 0.1 * b, (fn, kw, std, b)
        else:
            assert a <= mn and mx <= b and mn < a + 0.1 and mx > b - 0.1, (fn, kw, mn, mx)
    for fn, val in (("zeros_", 0.0), ("ones_", 1.0)):
        o = autodiff.empty(*shape)
        getattr(nn.init, fn)(o)
        assert np.all(_np(o) == val)
    o = autodiff.empty(*shape)
    nn.init.constant_(o, 0.25)
    assert np.all(_np(o) == 0.25)


def test_orthogonal_eye_dirac_match_torch():
    for shape, gain in (((6, 4), 1.0), ((4, 6), 2.0), ((3, 2, 2, 2), 1.0)):
        o = autodiff.empty(*shape)
        nn.init.orthogonal_(o, gain=gain)
        m = _np(o).reshape(shape[0], -1)
        if m.shape[0] < m.shape[1]:
            m = m.T
        np.testing.assert_allclose(m.T @ m, gain ** 2 * np.eye(m.shape[1]), atol=1e-5)
    o, t = autodiff.empty(3, 5), torch.empty(3, 5)
    nn.init.eye_(o)
    tnn.init.eye_(t)
    np.testing.assert_array_equal(_np(o), _np(t))
    for groups in (1, 2):
        o, t = autodiff.empty(4, 2, 3, 3), torch.empty(4, 2, 3, 3)
        nn.init.dirac_(o, groups)
        tnn.init.dirac_(t, groups)
        np.testing.assert_array_equal(_np(o), _np(t))
    o = autodiff.empty(20, 10)
    nn.init.sparse_(o, 0.3)
    assert ((_np(o) == 0).sum(0) == math.ceil(0.3 * 20)).all()


@pytest.mark.parametrize("name,args", [("Linear", (40, 30)), ("Conv2d", (6, 8, 3)), ("Conv1d", (4, 6, 5)),
                                       ("ConvTranspose2d", (6, 4, 3)), ("Bilinear", (5, 6, 7)),
                                       ("Embedding", (50, 8)), ("RNN", (6, 5)), ("LSTM", (6, 5)), ("GRU", (6, 5)),
                                       ("BatchNorm2d", (4,)), ("LayerNorm", (6,)), ("GroupNorm", (2, 6)),
                                       ("MultiheadAttention", (8, 2)), ("PReLU", ()),
                                       ("Transformer", (8, 2, 1, 1, 16)), ("Conv3d", (3, 4, 3)),
                                       ("ConvTranspose3d", (3, 4, 2))])
def test_default_init_matches_torch_distribution(name, args):
    """Every parameter's default initial values (pooled over several fresh modules) lie in torch's range and
    have torch's spread."""
    torch.manual_seed(0)
    autodiff.manual_seed(0)
    tms = [getattr(tnn, name)(*args) for _ in range(12)]
    oms = [getattr(nn, name)(*args) for _ in range(12)]
    tnames = [n for n, _ in tms[0].named_parameters()]
    assert [n for n, _ in oms[0].named_parameters()] == tnames
    for n in tnames:
        t = np.stack([_np(dict(m.named_parameters())[n]) for m in tms])
        o = np.stack([_np(dict(m.named_parameters())[n]) for m in oms])
        assert t.shape == o.shape and o.dtype == np.float32, (n, o.shape, o.dtype)
        if t.std() == 0:
            np.testing.assert_array_equal(o, t, err_msg=f"{name}.{n}")
            continue
        lo, hi = t.min(), t.max()
        span = hi - lo
        assert o.min() >= lo - 0.1 * span and o.max() <= hi + 0.1 * span, (name, n, o.min(), o.max(), lo, hi)
        assert 0.75 < o.std() / t.std() < 1.33, (name, n, o.std(), t.std())
        assert abs(o.mean() - t.mean()) < 6 * t.std() / math.sqrt(t.size), (name, n, o.mean(), t.mean())
    for (n, tb), (n2, ob) in zip(tms[0].named_buffers(), oms[0].named_buffers()):
        assert n == n2
        np.testing.assert_array_equal(_np(ob), _np(tb))


# ------------------------------------------------------------------------------------------ module API
def _nested(lib):
    m = lib.nn if lib is torch else nn
    torch.manual_seed(0)
    return m.Sequential(
        m.Conv2d(3, 4, 3, padding=1),
        m.BatchNorm2d(4),
        m.ReLU(),
        m.ModuleList([m.Linear(4, 5), m.Sequential(m.Linear(5, 5), m.Tanh())]),
        m.ModuleDict({"head": m.Linear(5, 2), "norm": m.LayerNorm(2)}),
        m.Dropout(0.1),
        m.Flatten(),
    )


def test_state_dict_named_parameters_and_repr_match_torch():
    t, o = _nested(torch), _nested(None)
    assert list(o.state_dict()) == list(t.state_dict())
    assert [n for n, _ in o.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in o.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert [n for n, _ in o.named_modules()] == [n for n, _ in t.named_modules()]
    assert [n for n, _ in o.named_children()] == [n for n, _ in t.named_children()]
    assert sum(p.numel() for p in o.parameters()) == sum(p.numel() for p in t.parameters())
    assert str(o) == str(t)
    assert o.state_dict()["1.num_batches_tracked"].dtype == autodiff.int64
    o.eval()
    assert not any(m.training for m in o.modules())
    o.train()
    assert all(m.training for m in o.modules())
    o[3][1].eval()
    assert not o[3][1][0].training and o[3].training
    # torch's state dict (as NumPy) loads into ours
    o.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    # strict loading reports missing / unexpected keys
    sd = {k: v.numpy() for k, v in t.state_dict().items()}
    sd.pop("0.bias")
    sd["extra"] = np.zeros(1)
    with pytest.raises(RuntimeError, match="0.bias"):
        o.load_state_dict(sd)
    res = o.load_state_dict(sd, strict=False)
    assert list(res.missing_keys) == ["0.bias"] and list(res.unexpected_keys) == ["extra"]


REPRS = [("Linear", (3, 4), {}), ("Linear", (3, 4), dict(bias=False)), ("Bilinear", (2, 3, 4), {}),
         ("Conv2d", (3, 8, 3), {}), ("Conv2d", (3, 8, (3, 5)), dict(stride=2, padding=1, dilation=2, groups=1,
                                                                    bias=False)),
         ("Conv2d", (4, 8, 3), dict(padding="same", groups=2, padding_mode="reflect")),
         ("Conv1d", (3, 8, 3), dict(stride=2)), ("ConvTranspose2d", (3, 8, 3), dict(stride=2, output_padding=1)),
         ("BatchNorm2d", (4,), {}), ("BatchNorm1d", (4,), dict(momentum=None, affine=False)),
         ("BatchNorm2d", (4,), dict(track_running_stats=False)),
         ("LayerNorm", ((3, 4),), {}), ("LayerNorm", (4,), dict(elementwise_affine=False)), ("GroupNorm", (2, 4), {}),
         ("InstanceNorm2d", (3,), {}), ("RMSNorm", (4,), {}),
         ("MaxPool2d", (2,), {}), ("MaxPool2d", (3,), dict(stride=1, padding=1, ceil_mode=True)),
         ("AvgPool2d", (2,), {}), ("AvgPool2d", (3,), dict(stride=2, padding=1, count_include_pad=False)),
         ("AdaptiveAvgPool2d", ((1, 1),), {}), ("AdaptiveMaxPool2d", (2,), {}), ("MaxPool1d", (2,), {}),
         ("AvgPool1d", (2,), {}), ("AdaptiveAvgPool1d", (3,), {}),
         ("Embedding", (10, 3), {}), ("Embedding", (10, 3), dict(padding_idx=0, max_norm=1.0)),
         ("Dropout", (), {}), ("Dropout2d", (0.2,), {}), ("Flatten", (), {}), ("Unflatten", (1, (2, 3)), {}),
         ("Identity", (), {}), ("ReLU", (), {}), ("ReLU", (), dict(inplace=True)), ("LeakyReLU", (0.2,), {}),
         ("ELU", (), {}), ("GELU", (), {}), ("GELU", (), dict(approximate="tanh")), ("Softmax", (), dict(dim=1)),
         ("LogSoftmax", (), dict(dim=-1)), ("Hardtanh", (), {}), ("Softplus", (), {}), ("PReLU", (), {}),
         ("Threshold", (0.1, 20), {}), ("Tanh", (), {}), ("Sigmoid", (), {}), ("SiLU", (), {}),
         ("RNN", (3, 4), {}), ("LSTM", (3, 4), dict(num_layers=2, dropout=0.1, bidirectional=True)),
         ("GRU", (3, 4), dict(batch_first=True, bias=False)), ("LSTMCell", (3, 4), {}),
         ("MultiheadAttention", (4, 2), {}), ("Upsample", (), dict(scale_factor=2.0, mode="nearest")),
         ("PixelShuffle", (2,), {}), ("ZeroPad2d", (1,), {}), ("ReflectionPad2d", (2,), {}),
         ("Conv3d", (3, 8, 3), dict(stride=2, padding=(1, 0, 1))), ("MaxPool3d", (2,), {}), ("AvgPool3d", (3,), {}),
         ("ConvTranspose3d", (3, 8, 3), dict(stride=2)), ("AdaptiveAvgPool3d", (2,), {}),
         ("MSELoss", (), {}), ("CrossEntropyLoss", (), dict(label_smoothing=0.1)),
         ("TransformerEncoderLayer", (8, 2), dict(dim_feedforward=16))]


@pytest.mark.parametrize("case", REPRS, ids=[f"{c[0]}-{i}" for i, c in enumerate(REPRS)])
def test_repr_matches_torch(case):
    name, args, kw = case
    if not hasattr(nn, name):
        pytest.xfail(f"nn.{name} is not implemented")
    assert str(getattr(nn, name)(*args, **kw)) == str(getattr(tnn, name)(*args, **kw))


# ------------------------------------------------------------------------------------------- nn.utils
@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5), rng.standard_normal((2, 2))]
    tp = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    op = [autodiff.zeros(*g.shape, dtype=autodiff.float64, requires_grad=True) for g in grads]
    op.append(autodiff.zeros(3, requires_grad=True))  # a parameter without grad is skipped
    for t, o, g in zip(tp, op, grads):
        t.grad, o.grad = torch.tensor(g), autodiff.tensor(g)
    tn = torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type=norm_type)
    on = nn.utils.clip_grad_norm_(op, max_norm, norm_type=norm_type)
    assert isinstance(on, autodiff.Tensor) and on.ndim == 0
    np.testing.assert_allclose(_np(on), _np(tn), rtol=1e-12)
    for t, o in zip(tp, op):
        np.testing.assert_allclose(_np(o.grad), _np(t.grad), rtol=1e-12)
    # a single tensor is accepted too
    t1 = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    o1 = autodiff.zeros(4, dtype=autodiff.float64, requires_grad=True)
    t1.grad, o1.grad = torch.tensor(grads[1][:4]), autodiff.tensor(grads[1][:4])
    np.testing.assert_allclose(_np(nn.utils.clip_grad_norm_(o1, 0.1)), _np(torch.nn.utils.clip_grad_norm_(t1, 0.1)))
    np.testing.assert_allclose(_np(o1.grad), _np(t1.grad), rtol=1e-12)


def test_clip_grad_value_and_vector_conversion_match_torch():
    rng = np.random.default_rng(6)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    tp = [torch.tensor(rng.standard_normal(g.shape), requires_grad=True) for g in grads]
    op = [autodiff.tensor(_np(t), requires_grad=True) for t in tp]
    for t, o, g in zip(tp, op, grads):
        t.grad, o.grad = torch.tensor(g), autodiff.tensor(g)
    torch.nn.utils.clip_grad_value_(tp, 0.5)
    nn.utils.clip_grad_value_(op, 0.5)
    for t, o in zip(tp, op):
        np.testing.assert_array_equal(_np(o.grad), _np(t.grad))
    tv = torch.nn.utils.parameters_to_vector(tp)
    ov = nn.utils.parameters_to_vector(op)
    np.testing.assert_array_equal(_np(ov), _np(tv))
    new = rng.standard_normal(tv.shape[0])
    torch.nn.utils.vector_to_parameters(torch.tensor(new), tp)
    nn.utils.vector_to_parameters(autodiff.tensor(new), op)
    for t, o in zip(tp, op):
        np.testing.assert_array_equal(_np(o), _np(t))


# ------------------------------------------------------------------------------------------ optimizers
OPTS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.5, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.5, 0.6), eps=1e-6, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01, amsgrad=True, maximize=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, maximize=True, eps=1e-5)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.01)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.3, maximize=True)),
    ("Adamax", dict()),
    ("Adamax", dict(lr=0.02, maximize=True)),
    ("NAdam", dict()),
    ("RAdam", dict()),
    ("Rprop", dict()),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2), maximize=True)),
    ("ASGD", dict()),
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.5, t0=3, weight_decay=0.1)),
    ("ASGD", dict(lr=0.05, t0=0, maximize=True)),
    ("Adafactor", dict()),
    ("Adafactor", dict(lr=0.05, beta2_decay=-0.5, eps=(1e-4, 1e-2), d=1.5, weight_decay=0.1, maximize=True)),
]


def _opt_run(lib, name, kw, dtype, steps=10):
    torch.manual_seed(0)
    tmodel = tnn.Sequential(tnn.Linear(4, 3), tnn.Tanh(), tnn.Linear(3, 2)).to(TDT[dtype])
    if lib == "torch":
        model = tmodel
        O, t = getattr(torch.optim, name), torch.tensor
    else:
        model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
        model.load_state_dict({k: v.numpy() for k, v in tmodel.state_dict().items()})
        model = model.double() if dtype == np.float64 else model.float()
        O, t = getattr(optim, name), autodiff.tensor
    params = list(model.parameters())
    opt = O([{"params": params[:2]}, {"params": params[2:], "lr": 0.03}], **kw)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        for p in params:  # gradients: a fixed function of the current parameters (no backward differences)
            cur = p.detach().numpy()
            p.grad = t((np.cos(cur) * 0.5 + rng.standard_normal(cur.shape)).astype(dtype))
        opt.step()
        opt.zero_grad()
        assert all(p.grad is None for p in params)
    return [p.detach().numpy() for p in params], opt


@pytest.mark.parametrize("case", OPTS, ids=[f"{c[0]}-{i}" for i, c in enumerate(OPTS)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_optimizer_matches_torch(case, dtype):
    name, kw = case
    ours, opt = _opt_run("autodiff", name, kw, dtype)
    ref, topt = _opt_run("torch", name, kw, dtype)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for o, r in zip(ours, ref):
        np.testing.assert_allclose(o, r, **tol)
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sorted(sd) == sorted(tsd)
    assert list(sd["state"]) == list(tsd["state"])
    for i in tsd["state"]:
        assert sorted(sd["state"][i]) == sorted(tsd["state"][i]), (sd["state"][i].keys(), tsd["state"][i].keys())
        for k, v in tsd["state"][i].items():
            ov = sd["state"][i][k]
            np.testing.assert_allclose(np.asarray(ov.numpy() if hasattr(ov, "numpy") else ov), v.numpy(), **tol)
    assert len(sd["param_groups"]) == len(tsd["param_groups"])
    for g, tg in zip(sd["param_groups"], tsd["param_groups"]):
        assert set(tg) <= set(g), f"param_group keys missing: {set(tg) - set(g)}"
        for k, v in tg.items():
            if k in ("foreach", "fused", "capturable", "differentiable", "decoupled_weight_decay"):
                continue
            assert g[k] == v, (k, g[k], v)
    assert opt.defaults.keys() >= {k for k in topt.defaults if k not in ("foreach", "fused")}


def test_optimizer_api_matches_torch():
    p = autodiff.zeros(3, requires_grad=True)
    q = autodiff.zeros(2, requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": [q], "lr": 0.5})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5] and opt.param_groups[1]["momentum"] == 0.9
    with pytest.raises(ValueError):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError):
        optim.Adam([p], betas=(1.5, 0.9))
    with pytest.raises(ValueError):
        opt.add_param_group({"params": [p]})  # a parameter in two groups
    s = optim.lr_scheduler.StepLR(opt, 2, gamma=0.5)
    assert s.get_last_lr() == [0.1, 0.5] and s.last_epoch == 0
    assert all("initial_lr" in g for g in opt.param_groups)
    ts = torch.optim.lr_scheduler.StepLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), 2)
    assert set(ts.state_dict()) <= set(s.state_dict()), set(ts.state_dict()) - set(s.state_dict())


# ------------------------------------------------------------------------ more layers, distances, losses
EXTRA_CASES = [
    ("Threshold", (0.1, 20.0), {}, [(3, 4)]),
    ("Hardshrink", (0.7,), {}, [(3, 4)]),
    ("Softshrink", (), {}, [(3, 4)]),
    ("Tanhshrink", (), {}, [(3, 4)]),
    ("Softmax2d", (), {}, [(2, 3, 4, 2)]),
    ("Softmax2d", (), {}, [(3, 4, 2)]),
    ("CosineSimilarity", (), dict(dim=-1), [(3, 4), (3, 4)]),
    ("PairwiseDistance", (), {}, [(3, 4), (3, 4)]),
    ("PairwiseDistance", (), dict(p=1.0, keepdim=True), [(3, 4), (3, 4)]),
    ("PairwiseDistance", (), dict(p=3.0, eps=0.1), [(3, 4), (1, 4)]),
    ("PixelUnshuffle", (2,), {}, [(2, 3, 4, 6)]),
    ("ChannelShuffle", (2,), {}, [(2, 6, 2, 3)]),
    ("Unfold", ((2, 3),), dict(padding=1, stride=2), [(2, 3, 5, 6)]),
    ("Fold", ((4, 5), (2, 2)), dict(stride=1), [(2, 12, 12)]),
    ("UpsamplingNearest2d", (), dict(scale_factor=2), [(1, 2, 3, 4)]),
    ("UpsamplingBilinear2d", (), dict(size=(5, 7)), [(1, 2, 3, 4)]),
    ("ZeroPad1d", ((1, 2),), {}, [(2, 3, 4)]),
    ("ReflectionPad1d", (2,), {}, [(2, 3, 4)]),
    ("ReplicationPad1d", ((3, 1),), {}, [(2, 3, 4)]),
    ("CircularPad1d", (1,), {}, [(2, 3, 4)]),
    ("CircularPad2d", ((1, 2, 0, 1),), {}, [(2, 3, 4, 4)]),
    ("ConstantPad3d", (1, 0.5), {}, [(1, 2, 2, 3, 2)]),
    ("AdaptiveMaxPool1d", (3,), {}, [(2, 3, 7)]),
    ("InstanceNorm1d", (3,), dict(affine=True), [(2, 3, 6)]),
    ("InstanceNorm1d", (3,), {}, [(3, 6)]),
    ("InstanceNorm3d", (2,), dict(affine=True, track_running_stats=True), [(2, 2, 3, 2, 3)]),
    ("LocalResponseNorm", (3,), {}, [(2, 5, 3, 2)]),
    ("LocalResponseNorm", (2,), dict(alpha=0.1, beta=0.5, k=2.0), [(2, 4, 5)]),
    ("RReLU", (0.1, 0.3), {}, [(3, 4)]),
    ("ReflectionPad3d", ((1, 0, 2, 1, 0, 1),), {}, [(1, 2, 3, 4, 3)]),
    ("ReplicationPad3d", (1,), {}, [(2, 3, 2, 3)]),
    ("CircularPad3d", ((1, 0, 1, 1, 0, 1),), {}, [(1, 1, 2, 3, 2)]),
]


@pytest.mark.parametrize("case", EXTRA_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(EXTRA_CASES)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_more_layers_match_torch(case, dtype, device):
    name, args, kw, shapes = case
    tm, om = _pair(name, *args, **kw)
    compare_module(tm, om, [rn(*s) for s in shapes], dtype, train=name != "RReLU", device=device)
    assert str(om) == str(tm)


EXTRA_LOSSES = [
    ("TripletMarginLoss", dict(margin=0.5), lambda: [rn(4, 3), rn(4, 3), rn(4, 3)], (0, 1, 2)),
    ("TripletMarginLoss", dict(p=1.0, swap=True), lambda: [rn(4, 3), rn(4, 3), rn(4, 3)], (0, 1, 2)),
    ("HingeEmbeddingLoss", dict(margin=0.8), lambda: [rn(3, 4), np.sign(rn(3, 4))], (0,)),
    ("MultiMarginLoss", {}, lambda: [rn(5, 4), R.integers(0, 4, 5)], (0,)),
    ("MultiMarginLoss", dict(p=2, margin=0.7, weight=R.uniform(0.5, 2, 4)), lambda: [rn(5, 4), R.integers(0, 4, 5)],
     (0,)),
    ("MultiLabelSoftMarginLoss", {}, lambda: [rn(3, 4), (rn(3, 4) > 0).astype(float)], (0,)),
    ("MultiLabelSoftMarginLoss", dict(weight=R.uniform(0.5, 2, 4)), lambda: [rn(3, 4), _probs(3, 4)], (0, 1)),
    ("TripletMarginWithDistanceLoss", dict(margin=0.5, swap=True), lambda: [rn(4, 3), rn(4, 3), rn(4, 3)], (0, 1, 2)),
    ("MultiLabelMarginLoss", {}, lambda: [rn(3, 4), np.array([[3, 0, -1, 1], [0, 1, 2, 3], [-1, 0, 0, 0]])], (0,)),
    ("MultiLabelMarginLoss", {}, lambda: [rn(4), np.array([2, 1, -1, 0])], (0,)),
]


@pytest.mark.parametrize("case", EXTRA_LOSSES, ids=[f"{c[0]}-{i}" for i, c in enumerate(EXTRA_LOSSES)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_more_losses_match_torch(case, dtype, device):
    name, kw, make, gi = case
    inputs = make()
    for red in REDS:
        _loss_compare(name, dict(kw, reduction=red), inputs, dtype, grad_inputs=gi, device=device)


def test_random_layers_statistics():
    autodiff.manual_seed(0)
    x = autodiff.tensor(-np.ones((100, 100)), requires_grad=True)
    m = nn.RReLU(0.1, 0.3)
    y = _np(m(x))
    assert -0.3 <= y.min() and y.max() <= -0.1 and abs(y.mean() + 0.2) < 0.01
    m.eval()
    np.testing.assert_allclose(_np(m(x)), -0.2 * np.ones((100, 100)))
    g = F.gumbel_softmax(autodiff.tensor(np.log([[0.7, 0.2, 0.1]] * 4000)), tau=0.5, hard=True)
    gn = _np(g)
    assert set(np.unique(gn)) <= {0.0, 1.0} and np.all(gn.sum(1) == 1)
    np.testing.assert_allclose(gn.mean(0), [0.7, 0.2, 0.1], atol=0.03)
    d3 = _np(nn.Dropout3d(0.5)(autodiff.tensor(np.ones((4, 8, 2, 2, 2)))))
    per = d3.reshape(4, 8, -1)
    assert np.all((per == 0).all(-1) | (per == 2.0).all(-1))
    assert str(nn.Dropout3d(0.2)) == str(tnn.Dropout3d(0.2))


def test_new_functionals_gradcheck():
    from autodiff import gradcheck

    def t(*s):
        return autodiff.tensor(rn(*s), requires_grad=True)
    tg = autodiff.tensor(R.integers(0, 4, 3))
    pt = autodiff.tensor(_probs(3, 4))
    st = autodiff.tensor(np.sign(rn(3, 4)))
    cases = [
        (lambda x: F.threshold(x, 0.1, 2.0), (t(3, 4),)),
        (lambda x: F.hardshrink(x, 0.3), (t(3, 4),)),
        (lambda x: F.softshrink(x, 0.3), (t(3, 4),)),
        (F.tanhshrink, (t(3, 4),)),
        (lambda a, b: F.pairwise_distance(a, b, 3.0), (t(3, 4), t(3, 4))),
        (lambda a, b, c: F.triplet_margin_loss(a, b, c, margin=2.0, swap=True), (t(3, 4), t(3, 4), t(3, 4))),
        (lambda x: F.multi_margin_loss(x, tg, p=2, margin=2.0), (t(3, 4),)),
        (lambda x: F.multilabel_soft_margin_loss(x, pt), (t(3, 4),)),
        (lambda x: F.hinge_embedding_loss(x, st, margin=3.0), (t(3, 4),)),
        (lambda x: F.multilabel_margin_loss(x, autodiff.tensor(np.array([[3, 0, -1, 1]] * 3))), (t(3, 4),)),
        (lambda a, b, c: F.triplet_margin_with_distance_loss(a, b, c, margin=3.0), (t(3, 4), t(3, 4), t(3, 4))),
        (lambda x: F.local_response_norm(x, 3, alpha=0.5), (t(2, 4, 3),)),
        (lambda x: F.pixel_unshuffle(x, 2), (t(1, 2, 4, 4),)),
        (lambda x: F.channel_shuffle(x, 2), (t(1, 4, 2),)),
        (lambda x: F.interpolate(x, size=(5, 3), mode="bicubic"), (t(1, 2, 3, 4),)),
        (lambda x: F.interpolate(x, size=(2, 3), mode="area"), (t(1, 2, 5, 4),)),
        (lambda x: F.interpolate(x, size=(3, 2, 4), mode="trilinear", align_corners=True), (t(1, 1, 2, 3, 2),)),
        (lambda x, w: F.conv3d(x, w, stride=(1, 2, 1), padding=1, groups=2), (t(1, 4, 3, 4, 3), t(2, 2, 2, 2, 2))),
        (lambda x, w: F.conv_transpose3d(x, w, stride=2, padding=(1, 0, 0), output_padding=(1, 0, 1)),
         (t(1, 2, 2, 3, 2), t(2, 1, 2, 2, 2))),
        (lambda x: F.avg_pool3d(x, 2, 1, 1, count_include_pad=False), (t(1, 1, 3, 3, 2),)),
        (lambda x: F.max_pool3d(x, 2, 1), (t(1, 1, 3, 3, 2),)),
        (lambda x: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2), (t(1, 2, 4, 4),)),
    ]
    for fn, args in cases:
        assert gradcheck(fn, args), fn


@pytest.mark.parametrize("kw", [dict(), dict(norm_first=True, activation="gelu", batch_first=True)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_transformer_decoder_and_transformer_match_torch(kw, dtype):
    bf = kw.get("batch_first", False)
    torch.manual_seed(0)
    tl = tnn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0, **kw)
    ol = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0, **kw)
    tgt, mem = (rn(2, 3, 8), rn(2, 4, 8)) if bf else (rn(3, 2, 8), rn(4, 2, 8))
    causal = tnn.Transformer.generate_square_subsequent_mask(3, dtype=TDT[dtype])
    np.testing.assert_array_equal(_np(nn.Transformer.generate_square_subsequent_mask(3, dtype=autodiff.float64)),
                                  _np(causal))
    kpm = np.zeros((2, 4), bool)
    kpm[1, -1] = True
    compare_module(tl, ol, [tgt, mem], dtype, train=True,
                   kwargs=dict(tgt_mask=causal, memory_key_padding_mask=torch.tensor(kpm)))
    compare_module(tnn.TransformerDecoder(tl, 2, norm=tnn.LayerNorm(8)), nn.TransformerDecoder(ol, 2, norm=nn.LayerNorm(8)),
                   [tgt, mem], dtype, train=False, kwargs=dict(tgt_mask=causal, tgt_is_causal=True))
    torch.manual_seed(0)
    tt = tnn.Transformer(8, 2, 2, 1, 16, dropout=0.0, **kw)
    ot = nn.Transformer(8, 2, 2, 1, 16, dropout=0.0, **kw)
    assert str(ot) == str(tt)
    src = rn(2, 4, 8) if bf else rn(4, 2, 8)
    compare_module(tt, ot, [src, tgt], dtype, train=True,
                   kwargs=dict(tgt_mask=causal, src_key_padding_mask=torch.tensor(kpm)))


# ----------------------------------------------------------------------------------- packed sequences
def test_pad_and_pack_sequences_match_torch():
    from nn.utils import rnn as ornn
    trnn = torch.nn.utils.rnn
    seqs = [rn(3, 2), rn(5, 2), rn(1, 2), rn(4, 2)]
    ts = [torch.tensor(s, requires_grad=True) for s in seqs]
    os_ = [autodiff.tensor(s, requires_grad=True) for s in seqs]
    for kw in (dict(), dict(batch_first=True, padding_value=-1.0), dict(padding_side="left")):
        _close(ornn.pad_sequence(os_, **kw), trnn.pad_sequence(ts, **kw), np.float64, f"pad_sequence {kw}")
    lengths = [3, 5, 1, 4]
    for bf in (False, True):
        tp = trnn.pack_padded_sequence(trnn.pad_sequence(ts, batch_first=bf), lengths, batch_first=bf,
                                       enforce_sorted=False)
        op = ornn.pack_padded_sequence(ornn.pad_sequence(os_, batch_first=bf), lengths, batch_first=bf,
                                       enforce_sorted=False)
        _close(op.data, tp.data, np.float64, "packed data")
        for a, b in zip(op[1:], tp[1:]):
            np.testing.assert_array_equal(_np(a), _np(b))
        tpad, tl = trnn.pad_packed_sequence(tp, batch_first=bf, total_length=6)
        opad, ol = ornn.pad_packed_sequence(op, batch_first=bf, total_length=6)
        _close(opad, tpad, np.float64, "pad_packed_sequence")
        np.testing.assert_array_equal(_np(ol), _np(tl))
    tps = trnn.pack_sequence(sorted(ts, key=len, reverse=True))
    ops = ornn.pack_sequence(sorted(os_, key=lambda s: s.shape[0], reverse=True))
    _close(ops.data, tps.data, np.float64, "pack_sequence")
    for a, b in zip(ornn.unpack_sequence(ops), trnn.unpack_sequence(tps)):
        _close(a, b, np.float64, "unpack_sequence")
    with pytest.raises(RuntimeError, match="decreasing"):
        ornn.pack_padded_sequence(ornn.pad_sequence(os_), lengths)


@pytest.mark.parametrize("name,kw", [("LSTM", dict(num_layers=2, bidirectional=True)), ("GRU", dict(batch_first=True)),
                                     ("RNN", dict(bidirectional=True)), ("LSTM", dict(proj_size=2))])
def test_rnn_on_packed_sequence_matches_torch(name, kw):
    trnn = torch.nn.utils.rnn
    from nn.utils import rnn as ornn
    tm, om = _pair(name, 3, 4, **kw)
    tm = tm.double()
    _copy_params(tm, om)
    om = om.double()
    bf = kw.get("batch_first", False)
    lengths = [2, 5, 3]
    x = rn(3, 5, 3) if bf else rn(5, 3, 3)
    tx, ox = torch.tensor(x, requires_grad=True), autodiff.tensor(x, requires_grad=True)
    d = 2 if kw.get("bidirectional") else 1
    nl = kw.get("num_layers", 1) * d
    h0 = rn(nl, 3, kw.get("proj_size") or 4)
    th0, oh0 = torch.tensor(h0, requires_grad=True), autodiff.tensor(h0, requires_grad=True)
    if name == "LSTM":
        c0 = rn(nl, 3, 4)
        thx, ohx = (th0, torch.tensor(c0)), (oh0, autodiff.tensor(c0))
    else:
        thx, ohx = th0, oh0
    tout, th = tm(trnn.pack_padded_sequence(tx, lengths, batch_first=bf, enforce_sorted=False), thx)
    oout, oh = om(ornn.pack_padded_sequence(ox, lengths, batch_first=bf, enforce_sorted=False), ohx)
    assert isinstance(oout, ornn.PackedSequence)
    _close(oout.data, tout.data, np.float64, f"{name} packed output")
    th, oh = (th[0], oh[0]) if name == "LSTM" else (th, oh)
    _close(oh, th, np.float64, f"{name} h_n")
    tpad = trnn.pad_packed_sequence(tout, batch_first=bf)[0]
    opad = ornn.pad_packed_sequence(oout, batch_first=bf)[0]
    g, gh = rn(*tpad.shape), rn(*th.shape)
    ((tpad * torch.tensor(g)).sum() + (th * torch.tensor(gh)).sum()).backward()
    ((opad * autodiff.tensor(g)).sum() + (oh * autodiff.tensor(gh)).sum()).backward()
    _close(ox.grad, tx.grad, np.float64, "packed input grad")
    _close(oh0.grad, th0.grad, np.float64, "h0 grad")
    for (n, tp), (_, op) in zip(tm.named_parameters(), om.named_parameters()):
        _close(op.grad, tp.grad, np.float64, f"{name}.{n}.grad")


@pytest.mark.parametrize("kw", [dict(), dict(line_search_fn="strong_wolfe"), dict(lr=0.5, history_size=3, max_iter=7)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_lbfgs_matches_torch(kw, dtype):
    def run(lib):
        torch.manual_seed(0)
        tm = tnn.Sequential(tnn.Linear(3, 4), tnn.Tanh(), tnn.Linear(4, 1)).to(TDT[dtype])
        rng = np.random.default_rng(0)
        X, Y = rng.standard_normal((10, 3)).astype(dtype), rng.standard_normal((10, 1)).astype(dtype)
        if lib == "torch":
            m, t, O, lossf = tm, torch.tensor, torch.optim.LBFGS, TF.mse_loss
        else:
            m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
            m.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
            m = m.double() if dtype == np.float64 else m.float()
            t, O, lossf = autodiff.tensor, optim.LBFGS, F.mse_loss
        opt = O(m.parameters(), **kw)
        x, y = t(X), t(Y)

        def closure():
            opt.zero_grad()
            loss = lossf(m(x), y)
            loss.backward()
            return loss
        losses = [float(opt.step(closure).detach()) for _ in range(2)]
        st = opt.state[next(iter(opt.state))]
        return [_np(p) for p in m.parameters()], losses, st["func_evals"], st["n_iter"]
    ours, ref = run("ours"), run("torch")
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-2, atol=2e-3)
    for a, b in zip(ours[0], ref[0]):
        np.testing.assert_allclose(a, b, **tol)
    np.testing.assert_allclose(ours[1], ref[1], **tol)
    if dtype == np.float64:
        assert ours[2:] == ref[2:]


# ----------------------------------------------------------------------------------------- swa_utils
@pytest.mark.parametrize("mode", ["swa", "ema", "ema_fn", "buffers"])
def test_averaged_model_and_update_bn_match_torch(mode):
    from optim import swa_utils as OS
    TS = torch.optim.swa_utils
    torch.manual_seed(0)
    tm = tnn.Sequential(tnn.Linear(3, 4), tnn.BatchNorm1d(4), tnn.Linear(4, 2)).double()
    om = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    _copy_params(tm, om)
    om = om.double()
    kw_t, kw_o = {}, {}
    if mode == "ema":
        kw_t, kw_o = dict(multi_avg_fn=TS.get_ema_multi_avg_fn(0.9)), dict(multi_avg_fn=OS.get_ema_multi_avg_fn(0.9))
    elif mode == "ema_fn":
        kw_t, kw_o = dict(avg_fn=TS.get_ema_avg_fn(0.8)), dict(avg_fn=OS.get_ema_avg_fn(0.8))
    elif mode == "buffers":
        kw_t, kw_o = dict(use_buffers=True), dict(use_buffers=True)
    ta, oa = TS.AveragedModel(tm, **kw_t), OS.AveragedModel(om, **kw_o)
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.standard_normal((5, 3))
        tm(torch.tensor(x))
        om(autodiff.tensor(x))
        upd = {k: rng.standard_normal(tuple(v.shape)) for k, v in tm.named_parameters()}
        with torch.no_grad():
            for k, p in tm.named_parameters():
                p += torch.tensor(upd[k])
        for k, p in om.named_parameters():
            p.data += upd[k]
        ta.update_parameters(tm)
        oa.update_parameters(om)
    assert list(oa.state_dict()) == list(ta.state_dict())
    for (k, a), (_, b) in zip(oa.state_dict().items(), ta.state_dict().items()):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-12, atol=1e-14, err_msg=k)
    loader = [(torch.tensor(rng.standard_normal((6, 3))), 0) for _ in range(3)]
    TS.update_bn(loader, ta)
    OS.update_bn([(autodiff.tensor(_np(x)), y) for x, y in loader], oa)
    for (k, a), (_, b) in zip(oa.state_dict().items(), ta.state_dict().items()):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-12, atol=1e-14, err_msg=k)
    assert oa.module[1].momentum == 0.1
    x = rng.standard_normal((2, 3))
    ta.eval()
    oa.eval()
    _close(oa(autodiff.tensor(x)), ta(torch.tensor(x)), np.float64, "AveragedModel forward")


@pytest.mark.parametrize("kw", [dict(swa_lr=0.05), dict(swa_lr=[0.05, 0.01], anneal_epochs=3, anneal_strategy="linear"),
                                dict(swa_lr=0.02, anneal_epochs=0)])
def test_swalr_matches_torch(kw):
    from optim import swa_utils as OS

    def seq(lib):
        ps = [torch.zeros(1, requires_grad=True) for _ in range(2)] if lib == "torch" else \
            [autodiff.zeros(1, requires_grad=True) for _ in range(2)]
        O = torch.optim.SGD if lib == "torch" else optim.SGD
        opt = O([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.3}], lr=0.5)
        S_ = (torch.optim.swa_utils if lib == "torch" else OS).SWALR(opt, **kw)
        out = []
        for _ in range(14):
            out.append([g["lr"] for g in opt.param_groups])
            opt.step()
            S_.step()
        return out
    np.testing.assert_allclose(seq("ours"), seq("torch"), rtol=1e-14)


def test_loss_and_norm_edge_cases_match_torch():
    def both(ft, fo, *arrs, grad=(0,), **kw):
        ta = [torch.tensor(a, requires_grad=i in grad) for i, a in enumerate(arrs)]
        oa = [autodiff.tensor(a, requires_grad=i in grad) for i, a in enumerate(arrs)]
        t, o = ft(*ta, **kw), fo(*oa, **kw)
        np.testing.assert_allclose(_np(o), _np(t), rtol=1e-9, equal_nan=True)
        t.sum().backward()
        o.sum().backward()
        for i in grad:
            np.testing.assert_allclose(_np(oa[i].grad), _np(ta[i].grad), rtol=1e-9, equal_nan=True)
    x = rn(2, 3)
    # every target ignored: nan loss, zero gradient
    both(TF.cross_entropy, F.cross_entropy, x, np.array([-100, -100]))
    both(TF.nll_loss, F.nll_loss, x, np.array([1, 1]), ignore_index=1)
    w = np.array([1.0, 2.0, 3.0])
    both(lambda a, b: TF.cross_entropy(a, b, weight=torch.tensor(w), ignore_index=1),
         lambda a, b: F.cross_entropy(a, b, weight=autodiff.tensor(w), ignore_index=1), x, np.array([1, 1]))
    # zero vectors: the norm's zero gradient (normalize: 1 / eps)
    both(TF.normalize, F.normalize, np.zeros((1, 3)))
    both(TF.cosine_similarity, F.cosine_similarity, np.zeros((1, 4)), rn(1, 4), grad=(0, 1))
    both(TF.pairwise_distance, F.pairwise_distance, rn(2, 3), rn(2, 3), grad=(0, 1), p=float("inf"))
    # GaussianNLL: var with one dimension less, clamped without blocking its gradient
    both(TF.gaussian_nll_loss, F.gaussian_nll_loss, rn(3, 4), rn(3, 4), np.array([0.5, 1e-9, 2.0]), grad=(0, 2))
    both(TF.gaussian_nll_loss, F.gaussian_nll_loss, rn(3, 4), rn(3, 4), np.array([[0.5], [0.1], [2.0]]), grad=(0, 2),
         full=True, reduction="sum")


def test_conv_transpose1d_output_size_matches_torch():
    for size in ([11], [2, 3, 12], [10]):
        compare_module(*_pair("ConvTranspose1d", 2, 3, 3, stride=3, padding=1), [rn(2, 2, 4)], np.float64,
                       kwargs=dict(output_size=size))
    with pytest.raises(ValueError, match="output size"):
        nn.ConvTranspose1d(2, 3, 3, stride=3, padding=1)(autodiff.randn(2, 2, 4), output_size=[20])
    with pytest.raises(ValueError, match="zeros"):
        nn.ConvTranspose1d(2, 3, 3, padding_mode="reflect")


def test_replacing_children_keeps_order_as_torch():
    for lib in (nn, tnn):
        s = lib.Sequential(lib.ReLU(), lib.ReLU(), lib.ReLU())
        s.set_submodule("1", lib.Tanh())
        assert type(s[1]).__name__ == "Tanh" and [n for n, _ in s.named_children()] == ["0", "1", "2"]
    o, t = nn.Linear(2, 3), tnn.Linear(2, 3)
    o.weight = nn.Parameter(autodiff.zeros(3, 2))
    t.weight = tnn.Parameter(torch.zeros(3, 2))
    assert list(o.state_dict()) == list(t.state_dict()) == ["weight", "bias"]


# --------------------------------------------------------------------------------- parametrizations
@pytest.mark.parametrize("make,dim", [(lambda m: m.Linear(3, 4), 0), (lambda m: m.Linear(3, 4), None),
                                      (lambda m: m.Conv2d(2, 3, 3), 1)])
@pytest.mark.parametrize("legacy", [False, True])
def test_weight_norm_matches_torch(make, dim, legacy):
    torch.manual_seed(0)
    if legacy:
        tm, om = torch.nn.utils.weight_norm(make(tnn), dim=dim), nn.utils.weight_norm(make(nn), dim=dim)
    else:
        tm = torch.nn.utils.parametrizations.weight_norm(make(tnn), dim=dim)
        om = nn.utils.parametrizations.weight_norm(make(nn), dim=dim)
    assert str(om) == str(tm)
    x = rn(2, 3) if isinstance(tm, tnn.Linear) else rn(1, 2, 5, 5)
    compare_module(tm, om, [x], np.float64)
    if legacy:
        nn.utils.remove_weight_norm(om)
        torch.nn.utils.remove_weight_norm(tm)
    else:
        nn.utils.parametrize.remove_parametrizations(om, "weight")
        torch.nn.utils.parametrize.remove_parametrizations(tm, "weight")
        assert type(om) is type(make(nn)) and not nn.utils.parametrize.is_parametrized(om)
    assert list(om.state_dict()) == list(tm.state_dict())
    _close(om.weight, tm.weight, np.float64, "weight after removal")


def test_custom_parametrization_matches_torch():
    class TSym(tnn.Module):
        def forward(self, x):
            return x.triu() + x.triu(1).transpose(-1, -2)

        def right_inverse(self, a):
            return a.triu()

    class OSym(nn.Module):
        def forward(self, x):
            return x.triu() + x.triu(1).transpose(-1, -2)

        def right_inverse(self, a):
            return a.triu()

    class TScale(tnn.Module):
        def forward(self, x):
            return 2 * x

    class OScale(nn.Module):
        def forward(self, x):
            return 2 * x

    from nn.utils import parametrize as OP
    TP = torch.nn.utils.parametrize
    torch.manual_seed(0)
    tm, om = tnn.Linear(3, 3), nn.Linear(3, 3)
    TP.register_parametrization(tm, "weight", TSym())
    OP.register_parametrization(om, "weight", OSym())
    TP.register_parametrization(tm, "weight", TScale(), unsafe=True)
    OP.register_parametrization(om, "weight", OScale(), unsafe=True)
    assert str(om).replace("OS", "TS") == str(tm) and list(om.state_dict()) == list(tm.state_dict())
    compare_module(tm.double(), om, [rn(2, 3)], np.float64)
    w = _np(om.weight)
    np.testing.assert_allclose(w, w.T)
    with OP.cached():
        assert om.weight is om.weight
    assert OP.is_parametrized(om) and OP.is_parametrized(om, "weight") and not OP.is_parametrized(om, "bias")
    OP.remove_parametrizations(om, "weight", leave_parametrized=True)
    TP.remove_parametrizations(tm, "weight", leave_parametrized=True)
    _close(om.weight, tm.weight, np.float64, "weight after removal")
    with pytest.raises(ValueError):
        OP.register_parametrization(om, "nope", OSym())


EBAG_CASES = [
    (dict(), [np.array([[1, 2, 4], [4, 3, 0]])], {}),
    (dict(mode="sum", padding_idx=2), [np.array([1, 2, 4, 4, 3, 2, 0]), np.array([0, 2, 2, 5])], {}),
    (dict(mode="max"), [np.array([1, 2, 4, 4, 3, 2, 0]), np.array([0, 3, 3])], {}),
    (dict(mode="mean", include_last_offset=True, padding_idx=0), [np.array([1, 0, 4, 0, 3]), np.array([0, 2, 2, 5])],
     {}),
    (dict(mode="sum"), [np.array([[1, 2], [4, 3]]), None, rn(2, 2)], {}),
    (dict(mode="max", padding_idx=1), [np.array([[1, 2, 1], [1, 1, 1]])], {}),
]


@pytest.mark.parametrize("case", EBAG_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_bag_matches_torch(case, dtype):
    kw, inputs, _ = case
    tm, om = _pair("EmbeddingBag", 6, 3, **kw)
    assert str(om) == str(tm)
    compare_module(tm, om, inputs, dtype)


@pytest.mark.parametrize("make,kw", [(lambda m: m.Linear(4, 3), {}),
                                     (lambda m: m.Conv2d(2, 3, 3), dict(n_power_iterations=3)),
                                     (lambda m: m.ConvTranspose2d(2, 3, 3), {})])
def test_spectral_norm_matches_torch(make, kw):
    """The power-iteration vectors are random: torch's (_u, _v buffers) are loaded into ours, then training
    forwards (one power step each) and eval forwards must agree."""
    torch.manual_seed(0)
    tm = torch.nn.utils.parametrizations.spectral_norm(make(tnn), **kw)
    om = nn.utils.parametrizations.spectral_norm(make(nn), **kw)
    assert list(om.state_dict()) == list(tm.state_dict()) and str(om) == str(tm)
    x = rn(2, 4) if isinstance(tm, tnn.Linear) else rn(1, 2, 5, 5)
    for train in (True, False, True):
        compare_module(tm, om, [x], np.float64, train=train)
    w = _np(om.weight).reshape(_np(om.weight).shape[0], -1)
    if isinstance(tm, tnn.Linear):  # after enough power steps sigma(weight / sigma) -> 1
        om.train()
        for _ in range(30):
            om(autodiff.tensor(x))
        w = _np(om.weight)
        assert abs(np.linalg.svd(w, compute_uv=False)[0] - 1) < 1e-3


CTC_CASES = [
    (np.array([[1, 2, 2], [3, 1, 0], [4, 4, 4]]), [8, 6, 8], [3, 2, 3], {}),
    (np.array([1, 2, 2, 3, 1, 4]), [8, 7, 5], [3, 2, 1], dict(reduction="sum")),
    (np.array([[1, 1, 1, 1, 1], [2, 0, 0, 0, 0], [3, 4, 0, 0, 0]]), [4, 8, 8], [5, 1, 2],
     dict(reduction="none", zero_infinity=True)),
    (np.array([[2, 3], [1, 1], [0, 3]]), [8, 8, 3], [2, 2, 2], dict(blank=4)),
]


@pytest.mark.parametrize("case", CTC_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_ctc_loss_matches_torch(case, dtype):
    tg, il, tl, kw = case
    x = rn(8, 3, 5)
    lp = (x - np.log(np.exp(x).sum(-1, keepdims=True))).astype(dtype)
    t, o = torch.tensor(lp, requires_grad=True), autodiff.tensor(lp, requires_grad=True)
    tm, om = tnn.CTCLoss(**kw), nn.CTCLoss(**kw)
    assert str(om) == str(tm)
    lt = tm(t, torch.tensor(tg), torch.tensor(il), torch.tensor(tl))
    lo = om(o, autodiff.tensor(tg), autodiff.tensor(il), autodiff.tensor(tl))
    _close(lo, lt, dtype, "ctc loss")
    g = rn(*lt.shape).astype(dtype)
    (lt * torch.tensor(g)).sum().backward()
    (lo * autodiff.tensor(g)).sum().backward()
    _close(o.grad, t.grad, dtype, "ctc grad (PyTorch's logits convention)")


def test_ctc_loss_gradcheck_through_log_softmax_and_infinite():
    from autodiff import gradcheck
    x = autodiff.tensor(rn(5, 2, 4), requires_grad=True)
    tg, il, tl = autodiff.tensor(np.array([[1, 2], [3, 3]])), [5, 4], [2, 2]
    assert gradcheck(lambda z: F.ctc_loss(F.log_softmax(z, -1), tg, il, tl), (x,))
    lo = F.ctc_loss(F.log_softmax(x[:, :1], -1), autodiff.tensor(np.array([[1, 1, 1]])), [2], [3], reduction="none")
    assert np.isinf(_np(lo)).all()
    with pytest.raises(RuntimeError, match="ctc_loss: expected 2 input and target lengths"):
        F.ctc_loss(F.log_softmax(x, -1), tg, [5], [2])


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_grid_sample_and_affine_grid_match_torch(mode, padding_mode):
    x = rn(2, 3, 5, 6)
    theta = rn(2, 2, 3) * 0.8
    for ac in (False, True):
        tt, ot = torch.tensor(theta, requires_grad=True), autodiff.tensor(theta, requires_grad=True)
        tx, ox = torch.tensor(x, requires_grad=True), autodiff.tensor(x, requires_grad=True)
        tg = TF.affine_grid(tt, (2, 3, 4, 7), align_corners=ac)
        og = F.affine_grid(ot, (2, 3, 4, 7), align_corners=ac)
        _close(og, tg, np.float64, "affine_grid")
        ty = TF.grid_sample(tx, tg, mode=mode, padding_mode=padding_mode, align_corners=ac)
        oy = F.grid_sample(ox, og, mode=mode, padding_mode=padding_mode, align_corners=ac)
        _close(oy, ty, np.float64, f"grid_sample {mode} {padding_mode} {ac}")
        g = rn(*ty.shape)
        (ty * torch.tensor(g)).sum().backward()
        (oy * autodiff.tensor(g)).sum().backward()
        _close(ox.grad, tx.grad, np.float64, "grid_sample input grad")
        _close(ot.grad, tt.grad, np.float64, "affine_grid theta grad", rtol=1e-8, atol=1e-9)
    t3 = rn(2, 3, 4)
    _close(F.affine_grid(autodiff.tensor(t3), (2, 1, 2, 3, 4)), TF.affine_grid(torch.tensor(t3), (2, 1, 2, 3, 4),
                                                                                 align_corners=False),
           np.float64, "affine_grid 3d")


def test_grid_sample_gradcheck():
    from autodiff import gradcheck
    x = autodiff.tensor(rn(1, 2, 3, 4), requires_grad=True)
    g = autodiff.tensor(R.uniform(-0.9, 0.9, (1, 2, 3, 2)), requires_grad=True)
    for mode, pm in (("bilinear", "zeros"), ("bicubic", "border"), ("bilinear", "reflection")):
        assert gradcheck(lambda a, b: F.grid_sample(a, b, mode=mode, padding_mode=pm, align_corners=False), (x, g))


# ------------------------------------------------------------------------------------------ schedulers
SCHED_COMBOS = {
    "two chainable": lambda m, o: [m.StepLR(o, 3, 0.5), m.ExponentialLR(o, 0.9)],
    "cos+step": lambda m, o: [m.CosineAnnealingLR(o, 5), m.StepLR(o, 4, 0.5)],
    "multistep+linear": lambda m, o: [m.MultiStepLR(o, [2, 6], 0.3), m.LinearLR(o, 0.5, 1.0, 4)],
    "seq3": lambda m, o: [m.SequentialLR(o, [m.ExponentialLR(o, 0.5), m.CosineAnnealingLR(o, 4),
                                             m.ConstantLR(o, 0.2, 2)], [3, 8])],
    "onecycle epochs": lambda m, o: [m.OneCycleLR(o, 1.0, epochs=3, steps_per_epoch=5, anneal_strategy="linear")],
    "warm restarts": lambda m, o: [m.CosineAnnealingWarmRestarts(o, 2, 3, 0.001)],
    "plateau": lambda m, o: [m.ReduceLROnPlateau(o, factor=0.5, patience=1, threshold=0.1)],
}


@pytest.mark.parametrize("name", list(SCHED_COMBOS))
def test_scheduler_combinations_match_torch(name):
    import warnings
    from optim import lr_scheduler as OS
    metrics = [1, 0.99, 0.98, 0.97, 0.5, 0.49, 0.48, 0.2, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1]

    def run(lib):
        p = torch.zeros(2, requires_grad=True) if lib == "t" else autodiff.zeros(2, requires_grad=True)
        o = (torch.optim if lib == "t" else optim).SGD([p], lr=0.1, momentum=0.9)
        scheds = SCHED_COMBOS[name](torch.optim.lr_scheduler if lib == "t" else OS, o)
        out = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in range(15):
                o.step()
                for s in scheds:
                    s.step(metrics[i]) if "Plateau" in type(s).__name__ else s.step()
                out.append([o.param_groups[0]["lr"], o.param_groups[0]["momentum"], scheds[0].get_last_lr()[0]])
        return np.array(out)
    np.testing.assert_allclose(run("o"), run("t"), rtol=1e-12)


@pytest.mark.parametrize("kind", ["conv", "conv_transpose", "linear"])
def test_fuse_bn_eval_matches_torch(kind):
    torch.manual_seed(0)
    if kind == "conv":
        pair, bnp, shape = _pair("Conv2d", 2, 3, 3), _pair("BatchNorm2d", 3), (2, 2, 5, 5)
    elif kind == "conv_transpose":
        pair, bnp, shape = _pair("ConvTranspose2d", 2, 3, 3, bias=False), _pair("BatchNorm2d", 3), (2, 2, 4, 4)
    else:
        pair, bnp, shape = _pair("Linear", 4, 3), _pair("BatchNorm1d", 3), (5, 4)
    (tc, oc), (tb, ob) = pair, bnp
    with torch.no_grad():
        tb.running_mean.uniform_(-1, 1)
        tb.running_var.uniform_(0.5, 2)
        tb.weight.uniform_(0.5, 2)
        tb.bias.uniform_(-1, 1)
    tc, tb = tc.double().eval(), tb.double().eval()
    _copy_params(tc, oc)
    _copy_params(tb, ob)
    oc, ob = oc.double().eval(), ob.double().eval()
    if kind == "linear":
        tf, of = torch.nn.utils.fuse_linear_bn_eval(tc, tb), nn.utils.fuse_linear_bn_eval(oc, ob)
    else:
        tr = kind == "conv_transpose"
        tf = torch.nn.utils.fuse_conv_bn_eval(tc, tb, transpose=tr)
        of = nn.utils.fuse_conv_bn_eval(oc, ob, transpose=tr)
    x = rn(*shape)
    _close(of(autodiff.tensor(x)), tf(torch.tensor(x)), np.float64, "fused")
    _close(of(autodiff.tensor(x)), ob(oc(autodiff.tensor(x))), np.float64, "fused vs unfused")
    assert list(of.state_dict()) == list(tf.state_dict())
    with pytest.raises(AssertionError):
        nn.utils.fuse_conv_bn_eval(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1))


def test_functional_call_matches_torch():
    torch.manual_seed(0)
    tm, om = _pair("Linear", 3, 2)
    tm = tm.double()
    _copy_params(tm, om)
    om = om.double()
    w, x = rn(2, 3), rn(4, 3)
    tw, ow = torch.tensor(w, requires_grad=True), autodiff.tensor(w, requires_grad=True)
    ty = torch.func.functional_call(tm, {"weight": tw * 2}, (torch.tensor(x),))
    oy = nn.utils.stateless.functional_call(om, {"weight": ow * 2}, (autodiff.tensor(x),))
    _close(oy, ty, np.float64, "functional_call")
    ty.sum().backward()
    oy.sum().backward()
    _close(ow.grad, tw.grad, np.float64, "functional_call grad")
    assert om.weight.grad is None and np.array_equal(_np(om.weight), _np(tm.weight))  # restored, untouched
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, shared)
    z = autodiff.zeros(2, 2, dtype=shared.weight.dtype)
    out = nn.utils.stateless.functional_call(seq, {"0.weight": z, "0.bias": autodiff.zeros(2)}, autodiff.ones(1, 2))
    np.testing.assert_array_equal(_np(out), np.zeros((1, 2)))  # tie_weights: "1.weight" replaced too
    with pytest.raises(RuntimeError, match="missing"):
        nn.utils.stateless.functional_call(om, {"weight": ow}, (autodiff.tensor(x),), strict=True)


def test_lazy_linear_becomes_linear_as_torch():
    o, t = nn.LazyLinear(3), tnn.LazyLinear(3)
    assert str(o) == str(t)
    o(autodiff.randn(2, 5))
    t(torch.randn(2, 5))
    assert type(o) is nn.Linear and str(o) == str(t)
    assert tuple(o.weight.shape) == tuple(t.weight.shape) and list(o.state_dict()) == list(t.state_dict())


LAZY_CASES = [("LazyConv2d", (4, 3), dict(stride=2, groups=2), (2, 6, 7, 7)), ("LazyConv1d", (4, 3), {}, (2, 3, 7)),
              ("LazyConv3d", (2, 2), {}, (1, 3, 4, 4, 4)), ("LazyConvTranspose2d", (4, 3), dict(groups=2), (2, 6, 4, 4)),
              ("LazyConvTranspose1d", (4, 3), dict(stride=2), (2, 3, 5)),
              ("LazyBatchNorm1d", (), {}, (5, 3)), ("LazyBatchNorm2d", (), dict(momentum=None), (2, 3, 4, 4)),
              ("LazyInstanceNorm2d", (), {}, (2, 3, 4, 4)), ("LazyBatchNorm3d", (), dict(affine=False), (2, 3, 2, 2, 2))]


@pytest.mark.parametrize("case", LAZY_CASES, ids=[c[0] for c in LAZY_CASES])
def test_lazy_modules_match_torch(case):
    name, args, kw, shape = case
    tm, om = _pair(name, *args, **kw)
    assert str(om) == str(tm)
    before = list(om.parameters())  # an optimizer built now keeps working: the objects stay
    x = rn(*shape).astype(np.float32)
    tm(torch.tensor(x))
    om(autodiff.tensor(x))
    assert type(om).__name__ == type(tm).__name__ and str(om) == str(tm)
    assert all(p is q for p, q in zip(before, om.parameters())) and len(before) == len(list(om.parameters()))
    compare_module(tm, om, [rn(*shape)], np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adaptive_log_softmax_matches_torch(dtype):
    tm, om = _pair("AdaptiveLogSoftmaxWithLoss", 8, 10, [3, 6], div_value=2.0, head_bias=True)
    assert str(om) == str(tm)
    x, t = rn(7, 8), np.array([0, 4, 9, 2, 7, 5, 1])
    compare_module(tm, om, [x, t], dtype)
    compare_module(tm, om, [x[0], np.array(8)], dtype)
    _close(om.log_prob(autodiff.tensor(x.astype(dtype))), tm.log_prob(torch.tensor(x.astype(dtype))), dtype, "log_prob")
    np.testing.assert_array_equal(_np(om.predict(autodiff.tensor(x.astype(dtype)))),
                                  _np(tm.predict(torch.tensor(x.astype(dtype)))))
    with pytest.raises(RuntimeError, match="Target values"):
        om(autodiff.tensor(x.astype(dtype)), autodiff.tensor(np.array([0, 1, 2, 3, 4, 5, 10])))


def test_skip_init_as_torch():
    m = nn.utils.skip_init(nn.Linear, 3, 4, bias=False)
    t = torch.nn.utils.skip_init(tnn.Linear, 3, 4, bias=False)
    assert str(m) == str(t) and tuple(m.weight.shape) == tuple(t.weight.shape)
    assert "reset_parameters" in nn.Linear.__dict__ and "reset_parameters" not in nn.Conv2d.__dict__
    nn.utils.skip_init(nn.Conv2d, 2, 3, 3)
    assert "reset_parameters" not in nn.Conv2d.__dict__  # the class is left as it was
    with pytest.raises(RuntimeError, match="device"):
        nn.utils.skip_init(nn.ReLU)
