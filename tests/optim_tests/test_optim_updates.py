"""Each optimizer over 8 steps (RAdam rectifies from step 6 on) against its update rule written out here in NumPy (float64).

The references follow the algorithms as PyTorch documents them (torch.optim docs pseudo-code), in
their textbook form (bias-corrected moments, etc.), not the implementation's operation order.
Gradients depend on the current parameters (g = a * p + b) so weight decay and state interact.
"""
import math

import numpy as np
import pytest

import autodiff
import optim
from conftest import to_numpy

STEPS = 8


# ----------------------------------------------------------------------------- NumPy references
def ref_sgd(p, g, st, t, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False):
    if maximize:
        g = -g
    g = g + weight_decay * p
    if momentum:
        st["b"] = g.copy() if t == 1 else momentum * st["b"] + (1 - dampening) * g
        g = g + momentum * st["b"] if nesterov else st["b"]
    return p - lr * g


def ref_adam(p, g, st, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, maximize=False,
             decoupled=False):
    b1, b2 = betas
    if maximize:
        g = -g
    if decoupled:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    st["m"] = b1 * st.get("m", 0) + (1 - b1) * g
    st["v"] = b2 * st.get("v", 0) + (1 - b2) * g * g
    m_hat = st["m"] / (1 - b1 ** t)
    if amsgrad:
        st["vmax"] = np.maximum(st.get("vmax", 0), st["v"])
        v_hat = st["vmax"] / (1 - b2 ** t)
    else:
        v_hat = st["v"] / (1 - b2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def ref_adamw(p, g, st, t, weight_decay=1e-2, **kw):
    return ref_adam(p, g, st, t, weight_decay=weight_decay, decoupled=True, **kw)


def ref_adagrad(p, g, st, t, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                maximize=False):
    if maximize:
        g = -g
    g = g + weight_decay * p
    clr = lr / (1 + (t - 1) * lr_decay)
    st["s"] = st.get("s", initial_accumulator_value) + g * g
    return p - clr * g / (np.sqrt(st["s"]) + eps)


def ref_rmsprop(p, g, st, t, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                maximize=False):
    if maximize:
        g = -g
    g = g + weight_decay * p
    st["v"] = alpha * st.get("v", 0) + (1 - alpha) * g * g
    v = st["v"]
    if centered:
        st["ga"] = alpha * st.get("ga", 0) + (1 - alpha) * g
        v = v - st["ga"] ** 2
    if momentum > 0:
        st["b"] = momentum * st.get("b", 0) + g / (np.sqrt(v) + eps)
        return p - lr * st["b"]
    return p - lr * g / (np.sqrt(v) + eps)


def ref_adadelta(p, g, st, t, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False):
    if maximize:
        g = -g
    g = g + weight_decay * p
    st["v"] = rho * st.get("v", 0) + (1 - rho) * g * g
    dx = np.sqrt(st.get("u", 0) + eps) / np.sqrt(st["v"] + eps) * g
    st["u"] = rho * st.get("u", 0) + (1 - rho) * dx * dx
    return p - lr * dx


def ref_adamax(p, g, st, t, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, maximize=False):
    b1, b2 = betas
    if maximize:
        g = -g
    g = g + weight_decay * p
    st["m"] = b1 * st.get("m", 0) + (1 - b1) * g
    st["u"] = np.maximum(b2 * st.get("u", 0), np.abs(g) + eps)
    return p - lr / (1 - b1 ** t) * st["m"] / st["u"]


def ref_nadam(p, g, st, t, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
              decoupled_weight_decay=False, maximize=False):
    b1, b2 = betas
    if maximize:
        g = -g
    if decoupled_weight_decay:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    # PyTorch keeps the running product of mu as a float32 scalar (the default scalar dtype)
    st["prod"] = np.float32(np.float32(st.get("prod", 1.0)) * np.float32(mu))
    prod = float(st["prod"])
    st["m"] = b1 * st.get("m", 0) + (1 - b1) * g
    st["v"] = b2 * st.get("v", 0) + (1 - b2) * g * g
    m_hat = mu_next * st["m"] / (1 - prod * mu_next) + (1 - mu) * g / (1 - prod)
    v_hat = st["v"] / (1 - b2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def ref_radam(p, g, st, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
              maximize=False):
    b1, b2 = betas
    if maximize:
        g = -g
    if decoupled_weight_decay:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    st["m"] = b1 * st.get("m", 0) + (1 - b1) * g
    st["v"] = b2 * st.get("v", 0) + (1 - b2) * g * g
    m_hat = st["m"] / (1 - b1 ** t)
    rho_inf = 2 / (1 - b2) - 1
    rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
    if rho_t > 5:
        l_t = math.sqrt(1 - b2 ** t) / (np.sqrt(st["v"]) + eps)
        r_t = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        return p - lr * m_hat * l_t * r_t
    return p - lr * m_hat


def ref_lion(p, g, st, t, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, maximize=False):
    b1, b2 = betas
    if maximize:
        g = -g
    m = st.get("m", np.zeros_like(p))
    c = b1 * m + (1 - b1) * g
    p = p * (1 - lr * weight_decay) - lr * np.sign(c)
    st["m"] = b2 * m + (1 - b2) * g
    return p


CASES = [
    ("SGD", ref_sgd, dict(lr=0.1)),
    ("SGD", ref_sgd, dict(lr=0.1, momentum=0.9)),
    ("SGD", ref_sgd, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.1)),
    ("SGD", ref_sgd, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("SGD", ref_sgd, dict(lr=0.05, momentum=0.5, maximize=True)),
    ("Adam", ref_adam, dict()),
    ("Adam", ref_adam, dict(lr=0.1, betas=(0.8, 0.9), eps=1e-3)),
    ("Adam", ref_adam, dict(lr=0.05, weight_decay=0.1, amsgrad=True)),
    ("Adam", ref_adam, dict(lr=0.05, maximize=True, amsgrad=True)),
    ("AdamW", ref_adamw, dict(lr=0.05)),
    ("AdamW", ref_adamw, dict(lr=0.05, weight_decay=0.3, amsgrad=True, betas=(0.5, 0.9))),
    ("AdamW", ref_adamw, dict(lr=0.05, maximize=True)),
    ("Adagrad", ref_adagrad, dict()),
    ("Adagrad", ref_adagrad, dict(lr=0.1, lr_decay=0.3, initial_accumulator_value=0.5)),
    ("Adagrad", ref_adagrad, dict(lr=0.1, weight_decay=0.2, eps=1e-3, maximize=True)),
    ("RMSprop", ref_rmsprop, dict()),
    ("RMSprop", ref_rmsprop, dict(lr=0.01, alpha=0.9, momentum=0.5)),
    ("RMSprop", ref_rmsprop, dict(lr=0.01, alpha=0.8, centered=True, weight_decay=0.1)),
    ("RMSprop", ref_rmsprop, dict(lr=0.01, centered=True, momentum=0.9, maximize=True, eps=1e-4)),
    ("Adadelta", ref_adadelta, dict()),
    ("Adadelta", ref_adadelta, dict(lr=0.5, rho=0.6, eps=1e-4, weight_decay=0.1)),
    ("Adadelta", ref_adadelta, dict(maximize=True)),
    ("Adamax", ref_adamax, dict()),
    ("Adamax", ref_adamax, dict(lr=0.05, betas=(0.7, 0.95), eps=1e-2, weight_decay=0.1)),
    ("Adamax", ref_adamax, dict(maximize=True)),
    ("NAdam", ref_nadam, dict()),
    ("NAdam", ref_nadam, dict(lr=0.05, betas=(0.8, 0.95), momentum_decay=0.05, weight_decay=0.1)),
    ("NAdam", ref_nadam, dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", ref_radam, dict()),
    ("RAdam", ref_radam, dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.1)),  # rectified from step 6
    ("RAdam", ref_radam, dict(lr=0.05, betas=(0.5, 0.6))),  # rho_inf = 4: never rectified
    ("RAdam", ref_radam, dict(lr=0.05, betas=(0.6, 0.6), weight_decay=0.1, decoupled_weight_decay=True,
                              maximize=True)),
    ("Lion", ref_lion, dict()),
    ("Lion", ref_lion, dict(lr=0.01, betas=(0.5, 0.7), weight_decay=0.5)),
    ("Lion", ref_lion, dict(lr=0.01, maximize=True)),
]


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    p0 = [rng.standard_normal((3, 4)), rng.standard_normal(5), rng.standard_normal(())]
    a = [rng.uniform(0.5, 2.0, p.shape) for p in p0]
    b = [rng.standard_normal(p.shape) for p in p0]
    b[1][0] = 0.0  # one coordinate with zero gradient at p = 0 (sign(0) = 0 for Lion, eps in Adamax)
    p0[1][0] = 0.0
    return p0, a, b


def _run_reference(ref, kw, steps=STEPS):
    p0, a, b = _problem()
    ps = [p.copy() for p in p0]
    states = [{} for _ in ps]
    for t in range(1, steps + 1):
        ps = [ref(p, ai * p + bi, st, t, **kw) for p, ai, bi, st in zip(ps, a, b, states)]
    return ps


def _run_optimizer(name, kw, device, dtype=np.float64, steps=STEPS):
    p0, a, b = _problem()
    params = [autodiff.tensor(p.astype(dtype), device=device, requires_grad=True) for p in p0]
    opt = getattr(optim, name)(params, **kw)
    for _ in range(steps):
        for p, ai, bi in zip(params, a, b):
            p.grad = autodiff.tensor((ai * to_numpy(p) + bi).astype(dtype), device=device)
        opt.step()
    return params, opt


@pytest.mark.parametrize("name,ref,kw", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_update_matches_reference(name, ref, kw, device):
    params, opt = _run_optimizer(name, kw, device)
    expected = _run_reference(ref, kw)
    for p, e in zip(params, expected):
        assert p.dtype == np.float64
        np.testing.assert_allclose(to_numpy(p), e, rtol=1e-10, atol=1e-12, err_msg=f"{name} {kw}")


@pytest.mark.parametrize("name,ref,kw", [c for c in CASES if c[2].get("lr", 0) >= 0.05 or c[0] == "SGD"][::3])
def test_float32_close_to_reference_and_state_dtype(name, ref, kw, device):
    params, opt = _run_optimizer(name, kw, device, dtype=np.float32)
    expected = _run_reference(ref, kw)
    for p, e in zip(params, expected):
        assert p.dtype == np.float32
        np.testing.assert_allclose(to_numpy(p), e, rtol=2e-4, atol=2e-5)
        for k, v in opt.state[p].items():
            if k in ("step", "mu_product"):
                assert v.device == "cpu" and v.shape == ()
            else:
                assert v.dtype == np.float32 and v.shape == p.shape and v.device == p.device


def test_step_count_and_state_keys(device):
    expect = {"SGD": ({"momentum": 0.9}, {"momentum_buffer"}),
              "Adam": ({"amsgrad": True}, {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}),
              "AdamW": ({}, {"step", "exp_avg", "exp_avg_sq"}),
              "Adagrad": ({}, {"step", "sum"}),
              "RMSprop": ({"momentum": 0.5, "centered": True}, {"step", "square_avg", "momentum_buffer", "grad_avg"}),
              "Adadelta": ({}, {"step", "square_avg", "acc_delta"}),
              "Adamax": ({}, {"step", "exp_avg", "exp_inf"}),
              "NAdam": ({}, {"step", "mu_product", "exp_avg", "exp_avg_sq"}),
              "RAdam": ({}, {"step", "exp_avg", "exp_avg_sq"}),
              "Lion": ({}, {"exp_avg"})}
    for name, (kw, keys) in expect.items():
        params, opt = _run_optimizer(name, kw, device, steps=3)
        st = opt.state[params[0]]
        assert set(st) == keys, name
        if "step" in st:
            assert float(st["step"]) == 3.0


def test_sgd_without_momentum_keeps_no_state(device):
    params, opt = _run_optimizer("SGD", dict(lr=0.1), device, steps=2)
    assert opt.state_dict()["state"] == {}


def test_params_without_grad_are_skipped(device):
    p = autodiff.ones(3, device=device, requires_grad=True)
    q = autodiff.ones(3, device=device, requires_grad=True)
    opt = optim.Adam([p, q], lr=0.1)
    p.grad = autodiff.ones(3, device=device)
    opt.step()
    assert np.all(to_numpy(q) == 1) and len(opt.state[q]) == 0
    assert np.all(to_numpy(p) < 1)


def test_param_groups_use_their_own_hyperparameters(device):
    p = autodiff.ones(2, device=device, requires_grad=True)
    q = autodiff.ones(2, device=device, requires_grad=True)
    opt = optim.SGD([{"params": [p]}, {"params": q, "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert opt.param_groups[0]["momentum"] == 0 and opt.param_groups[1]["momentum"] == 0.9
    for t in (p, q):
        t.grad = autodiff.ones(2, device=device)
    opt.step()
    np.testing.assert_allclose(to_numpy(p), 0.9)
    np.testing.assert_allclose(to_numpy(q), 0.5)


def test_training_with_autograd_gradients(device):
    """End to end: gradients from backward(), zero_grad between steps, loss decreases."""
    rng = np.random.default_rng(1)
    x = autodiff.tensor(rng.standard_normal((16, 3)), device=device)
    y = x @ autodiff.tensor(np.array([[1.0], [-2.0], [0.5]]), device=device)
    for name, kw in [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.1)), ("RMSprop", dict(lr=0.01)),
                     ("Adagrad", dict(lr=0.5)), ("NAdam", dict(lr=0.1)), ("RAdam", dict(lr=0.1)),
                     ("Adamax", dict(lr=0.1)), ("AdamW", dict(lr=0.1)), ("Lion", dict(lr=0.05)),
                     ("Adadelta", dict(lr=10.0))]:
        w = autodiff.zeros((3, 1), device=device, requires_grad=True)
        opt = getattr(optim, name)([w], **kw)
        losses = []
        for _ in range(30):
            opt.zero_grad()
            loss = ((x @ w - y) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < 0.5 * losses[0], (name, losses[0], losses[-1])
        assert w.grad_fn is None and w.requires_grad


def test_closure_is_evaluated_with_grad_enabled_and_returns_loss(device):
    w = autodiff.tensor([1.0, 2.0], device=device, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    calls = []

    def closure():
        calls.append(autodiff.is_grad_enabled())
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with autodiff.no_grad():
        loss = opt.step(closure)
    assert calls == [True]
    assert float(loss) == 5.0
    np.testing.assert_allclose(to_numpy(w), [0.8, 1.6])
    assert optim.SGD([w], lr=0.1).step() is None


def test_zero_grad(device):
    w = autodiff.ones(3, device=device, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * 2).sum().backward()
    g = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is g and np.all(to_numpy(w.grad) == 0)
    opt.zero_grad()
    assert w.grad is None


def test_update_bumps_version_counter(device):
    w = autodiff.ones(3, device=device, requires_grad=True)
    opt = optim.Adam([w])
    w.grad = autodiff.ones(3, device=device)
    v = w._version
    opt.step()
    assert w._version > v


def test_state_follows_param_backend_plumbing_numpy_subclass(device):
    """Plumbing only (NumPy stands in for a device move): a state array whose type differs from its
    parameter's array type is converted with the parameter's backend before the update."""
    if device != "cpu":
        pytest.skip("plumbing test on the CPU")

    class Other(np.ndarray):
        pass

    w = autodiff.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.Adam([w], lr=0.1)
    w.grad = autodiff.tensor([1.0, 1.0])
    opt.step()
    st = opt.state[w]
    st["exp_avg"].data = st["exp_avg"].data.view(Other)
    before = st["exp_avg"].data.copy()
    opt.step()
    assert type(st["exp_avg"].data) is np.ndarray
    np.testing.assert_allclose(to_numpy(st["exp_avg"]), 0.9 * np.asarray(before) + 0.1)


@pytest.mark.cuda
def test_state_follows_module_to_cuda(backend):
    if backend != "cuda":
        pytest.skip("needs the cuda backend")
    w = autodiff.tensor([1.0, 2.0], requires_grad=True)
    ref = autodiff.tensor([1.0, 2.0], requires_grad=True)
    opts = [optim.Adam([w], lr=0.1), optim.Adam([ref], lr=0.1)]
    for t, o in ((w, opts[0]), (ref, opts[1])):
        t.grad = autodiff.tensor([1.0, -1.0])
        o.step()
    w.data = w.to("cuda").data  # as Module.to does: same Parameter object, new array
    for t, o in ((w, opts[0]), (ref, opts[1])):
        t.grad = autodiff.tensor([0.5, -1.0], device=t.device)
        o.step()
    assert opts[0].state[w]["exp_avg"].device.type == "cuda"
    assert opts[0].state[w]["step"].device == "cpu"
    np.testing.assert_allclose(to_numpy(w), to_numpy(ref), rtol=1e-6)
