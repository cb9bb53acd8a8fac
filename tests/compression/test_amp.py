"""autodiff.amp: autocast casting rules and GradScaler's schedule (PyTorch semantics)."""
import numpy as np
import pytest

import autodiff as ad
from autodiff import amp
from tests.conftest import to_numpy


class _SGD:
    """Minimal optimizer with PyTorch's param_groups interface (the scaler only needs that)."""

    def __init__(self, params, lr):
        self.param_groups = [{"params": list(params), "lr": lr}]
        self.steps = 0

    def step(self):
        self.steps += 1
        for p in self.param_groups[0]["params"]:
            if p.grad is not None:
                p.data -= self.param_groups[0]["lr"] * p.grad.data
        return "stepped"

    def zero_grad(self):
        for p in self.param_groups[0]["params"]:
            p.grad = None


# ----------------------------------------------------------------------------- autocast
def test_autocast_matmul_low_precision_grads_float32(device):
    x = ad.randn(6, 4, device=device, requires_grad=True)
    w = ad.randn(4, 3, device=device, requires_grad=True)
    with amp.autocast(device, dtype=ad.float16):
        assert amp.is_autocast_enabled(device)
        y = x @ w
        assert y.dtype == np.float16
        z = x + 1  # not in the cast list: keeps float32
        assert z.dtype == np.float32
    assert not amp.is_autocast_enabled(device)
    assert (x @ w).dtype == np.float32
    y.float().sum().backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32
    gx, gw = to_numpy(x.grad), to_numpy(w.grad)
    x.grad = w.grad = None
    (x @ w).sum().backward()
    np.testing.assert_allclose(gx, to_numpy(x.grad), rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(gw, to_numpy(w.grad), rtol=1e-2, atol=1e-2)


def test_autocast_nesting_decorator_and_other_device():
    x, w = ad.randn(2, 3), ad.randn(3, 2)
    with amp.autocast("cpu", dtype=ad.float16):
        with amp.autocast("cpu", enabled=False):
            assert (x @ w).dtype == np.float32
        assert (x @ w).dtype == np.float16
    with amp.autocast("cuda"):  # autocast for another device type leaves CPU tensors alone
        assert (x @ w).dtype == np.float32

    @amp.autocast("cpu", dtype=ad.float16)
    def f(a, b):
        return a @ b
    assert f(x, w).dtype == np.float16
    assert amp._active == 0
    assert amp.autocast_float32(ad.randn(2, dtype=ad.float16))[0].dtype == np.float16  # off: unchanged


def test_autocast_float32_hook_and_errors():
    h = ad.randn(3, dtype=ad.float16)
    with amp.autocast("cpu", dtype=ad.float16):
        assert amp.autocast_float32(h)[0].dtype == np.float32
        assert amp.autocast_float32(ad.randn(3, dtype=ad.float64))[0].dtype == np.float64
    with pytest.raises(RuntimeError, match="autocast: dtype must be float16 or bfloat16"):
        amp.autocast("cpu", dtype=ad.float32)
    with pytest.raises(RuntimeError, match="unsupported device_type"):
        amp.autocast("tpu")


def test_autocast_bfloat16_cpu():
    if amp.bfloat16 is None:
        with pytest.raises(RuntimeError, match="ml_dtypes"):
            amp.autocast("cpu", dtype="bfloat16")
        with pytest.raises(RuntimeError, match="ml_dtypes"):
            amp.autocast("cpu")  # PyTorch's CPU default is bfloat16
    else:
        with amp.autocast("cpu", dtype="bfloat16"):
            assert (ad.randn(2, 3) @ ad.randn(3, 2)).dtype == amp.bfloat16


# ----------------------------------------------------------------------------- GradScaler
def _param_with_grad(value, device="cpu"):
    p = ad.ones(3, device=device, requires_grad=True)
    p.grad = ad.full((3,), value, device=device)
    return p


def test_scaler_scale_and_unscale(device):
    s = amp.GradScaler(device, init_scale=8.0)
    p = ad.ones(3, device=device, requires_grad=True)
    loss = (p * 2).sum()
    scaled = s.scale(loss)
    assert float(scaled.item()) == pytest.approx(48.0)
    scaled.backward()
    np.testing.assert_allclose(to_numpy(p.grad), 16.0)
    opt = _SGD([p], lr=0.5)
    s.unscale_(opt)
    np.testing.assert_allclose(to_numpy(p.grad), 2.0)
    with pytest.raises(RuntimeError, match="unscale_\\(\\) has already been called"):
        s.unscale_(opt)
    assert s.step(opt) == "stepped"           # does not unscale a second time
    np.testing.assert_allclose(to_numpy(p.data), 0.0)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        s.step(opt)
    s.update()
    assert s.get_scale() == 8.0


def test_scaler_growth_and_backoff_schedule(device):
    s = amp.GradScaler(device, init_scale=4.0, growth_factor=2.0, backoff_factor=0.5, growth_interval=3)
    p = ad.zeros(3, device=device, requires_grad=True)
    opt = _SGD([p], lr=1.0)
    scales = []
    for value in [1, 1, 1, 1, np.inf, 1, 1, 1, np.nan, 1]:
        s.scale(p.sum())  # initialises the scale on p's device
        p.grad = ad.full((3,), float(value), device=device)
        s.step(opt)
        s.update()
        scales.append(s.get_scale())
    # growth after 3 clean steps, halve on inf/NaN, growth tracker resets on both
    assert scales == [4.0, 4.0, 8.0, 8.0, 4.0, 4.0, 4.0, 8.0, 4.0, 4.0]
    assert opt.steps == 8  # two overflow steps were skipped


def test_scaler_skips_step_on_overflow_and_keeps_params(device):
    s = amp.GradScaler(device, init_scale=2.0 ** 16)
    a = ad.ones(3, device=device, requires_grad=True)
    b = ad.ones(2, device=device, requires_grad=True)
    opt = _SGD([a, b], lr=1.0)
    s.scale(a.sum())
    a.grad = ad.ones(3, device=device)
    b.grad = ad.tensor([1.0, float("inf")], device=device)
    assert s.step(opt) is None
    assert opt.steps == 0
    np.testing.assert_allclose(to_numpy(a.data), 1.0)
    s.update()
    assert s.get_scale() == 2.0 ** 15
    assert s._get_growth_tracker() == 0


def test_scaler_state_dict_disabled_and_errors():
    s = amp.GradScaler("cpu", init_scale=16.0, growth_interval=5)
    p = ad.zeros(2, requires_grad=True)
    opt = _SGD([p], lr=1.0)
    s.scale(p.sum())
    p.grad = ad.ones(2)
    s.step(opt)
    s.update()
    sd = s.state_dict()
    assert sd == {"scale": 16.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 5,
                  "_growth_tracker": 1}
    s2 = amp.GradScaler("cpu")
    s2.load_state_dict(sd)
    assert s2.get_scale() == 16.0 and s2._get_growth_tracker() == 1 and s2.get_growth_interval() == 5
    off = amp.GradScaler("cpu", enabled=False)
    loss = p.sum()
    assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {}
    assert off.step(opt) == "stepped"
    with pytest.raises(RuntimeError, match="scale was never initialised"):
        amp.GradScaler("cpu").unscale_(opt)
    with pytest.raises(RuntimeError, match="no inf checks"):
        s.update()
    s3 = amp.GradScaler("cpu")
    s3.scale(p.sum())
    with pytest.raises(RuntimeError, match="no inf checks were recorded for this optimizer"):
        s3.step(_SGD([ad.zeros(2, requires_grad=True)], lr=1.0))
    with pytest.raises(ValueError, match="growth_factor"):
        amp.GradScaler("cpu", growth_factor=0.5)
    h = ad.zeros(2, dtype=ad.float16, requires_grad=True)
    h.grad = ad.ones(2, dtype=ad.float16)
    s.scale(p.sum())
    with pytest.raises(ValueError, match="FP16 gradients"):
        s.unscale_(_SGD([h], lr=1.0))


# ----------------------------------------------------------------------------- end to end
def _blobs(n, seed):
    rng = np.random.default_rng(seed)
    centers = np.array([[2, 2], [-2, 2], [-2, -2], [2, -2]], dtype=np.float32)
    y = rng.integers(0, 4, n)
    x = centers[y] + rng.normal(0, 1.1, (n, 2)).astype(np.float32)
    return ad.tensor(x), ad.tensor(y)


def _train_mlp(use_amp, steps=150):
    ad.manual_seed(0)
    xtr, ytr = _blobs(512, 1)
    xte, yte = _blobs(2000, 2)
    w1 = (ad.randn(2, 32) * 0.5).requires_grad_()
    b1 = ad.zeros(32, requires_grad=True)
    w2 = (ad.randn(32, 4) * 0.2).requires_grad_()
    b2 = ad.zeros(4, requires_grad=True)
    opt = _SGD([w1, b1, w2, b2], lr=0.5)
    scaler = amp.GradScaler("cpu", init_scale=2.0 ** 10, enabled=use_amp)
    onehot = ad.tensor(np.eye(4, dtype=np.float32)[ytr.numpy()])

    def forward(x):
        return ((x @ w1 + b1).relu() @ w2) + b2

    for _ in range(steps):
        opt.zero_grad()
        with amp.autocast("cpu", dtype=ad.float16, enabled=use_amp):
            logits = forward(xtr)
            logits, = amp.autocast_float32(logits)
            logp = logits - logits.logsumexp(dim=1, keepdim=True)
            loss = -(logp * onehot).sum() / 512
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    with ad.no_grad():
        pred = forward(xte).argmax(dim=1)
    return float((pred == yte).float().mean().item()) * 100


def test_mlp_under_autocast_matches_float32_accuracy():
    acc32 = _train_mlp(False)
    acc16 = _train_mlp(True)
    assert acc32 > 85
    assert abs(acc32 - acc16) <= 0.5, (acc32, acc16)


def test_nn_training_with_autocast_and_scaler_skips_overflow():
    import nn
    import optim
    ad.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 4))
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, y = _blobs(64, 3)
    scaler = amp.GradScaler("cpu", init_scale=2.0 ** 40, growth_interval=1000)  # float16 grads overflow
    before = [to_numpy(p).copy() for p in model.parameters()]
    with amp.autocast("cpu", dtype=ad.float16):
        out = model(x)
        assert out.dtype == np.float16
        loss = nn.functional.cross_entropy(out, y)
        assert loss.dtype == np.float32
    with np.errstate(all="ignore"):  # the overflow is the point of this step
        scaler.scale(loss).backward()
    assert model[0].weight.grad.dtype == np.float32
    assert scaler.step(opt) is None  # inf/NaN in the float16 backward: skipped
    scaler.update()
    assert scaler.get_scale() == 2.0 ** 39
    for a, p in zip(before, model.parameters()):
        np.testing.assert_array_equal(a, to_numpy(p))
    scaler.update(2.0 ** 8)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        with amp.autocast("cpu", dtype=ad.float16):
            loss = nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)  # e.g. for clipping: grads are now unscaled
        scaler.step(opt)
        scaler.update()
        losses.append(float(loss.item()))
    assert losses[-1] < 0.5 * losses[0]


def test_autocast_leaves_float64_alone():
    a, b = ad.randn(2, 3, dtype=ad.float64), ad.randn(3, 2, dtype=ad.float64)
    with amp.autocast("cpu", dtype=ad.float16):
        assert (a @ b).dtype == np.float64  # float64 is not eligible for autocast (as PyTorch)
        assert amp.autocast_operands(ad.randn(2))[0].dtype == np.float16
