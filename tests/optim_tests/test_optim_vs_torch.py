"""Optimizers and schedulers against PyTorch itself, when `torch` is importable (skipped otherwise).

Same initial parameters, same gradients (a function of the current parameters), then the
trajectories are compared: float64 to ~1e-12, float32 to float32 rounding. Scheduler learning-rate
sequences must be equal to PyTorch's (to 1e-15 relative), state-dict keys the same.
"""
import math

import numpy as np
import pytest

import autodiff
import optim
from optim import lr_scheduler as S

torch = pytest.importorskip("torch")

OPT_CASES = [
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, maximize=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True, maximize=True, betas=(0.8, 0.9))),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.1, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, maximize=True)),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.1)),
    ("Adamax", dict(lr=0.01, weight_decay=0.1, betas=(0.8, 0.9))),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, betas=(0.9, 0.99))),
]


def _run(lib, name, kw, dtype, steps=10):
    rng = np.random.default_rng(0)
    p0 = [rng.standard_normal((4, 3)), rng.standard_normal(5)]
    a = [rng.uniform(0.5, 2, p.shape) for p in p0]
    b = [rng.standard_normal(p.shape) for p in p0]
    if lib == "torch":
        ps = [torch.tensor(p.astype(dtype), requires_grad=True) for p in p0]
        opt = getattr(torch.optim, name)(ps, **kw)
    else:
        ps = [autodiff.tensor(p.astype(dtype), requires_grad=True) for p in p0]
        opt = getattr(optim, name)(ps, **kw)
    for _ in range(steps):
        for p, ai, bi in zip(ps, a, b):
            cur = p.detach().numpy()
            g = (ai * cur + bi).astype(dtype)
            p.grad = torch.tensor(g) if lib == "torch" else autodiff.tensor(g)
        opt.step()
    return [p.detach().numpy() for p in ps], opt


@pytest.mark.parametrize("name,kw", OPT_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(OPT_CASES)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_trajectory_matches_torch(name, kw, dtype, backend):
    ours, opt = _run("autodiff", name, kw, dtype)
    ref, topt = _run("torch", name, kw, dtype)
    tol = dict(rtol=1e-11, atol=1e-13) if dtype == np.float64 else dict(rtol=2e-6, atol=2e-7)
    for o, r in zip(ours, ref):
        np.testing.assert_allclose(o, r, **tol)
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert set(sd["state"][0]) == set(tsd["state"][0])
    missing = set(tsd["param_groups"][0]) - set(sd["param_groups"][0])
    assert not missing, f"param group keys PyTorch has and we lack: {missing}"
    for k, v in tsd["state"][0].items():
        np.testing.assert_allclose(np.asarray(sd["state"][0][k].numpy()), v.numpy(), **tol)


def _lrs(lib, make, n, groups=1, opt_name="SGD", metrics=None, **okw):
    if lib == "torch":
        ps = [torch.zeros(2, requires_grad=True) for _ in range(groups)]
        mod, O = torch.optim.lr_scheduler, getattr(torch.optim, opt_name)
    else:
        ps = [autodiff.zeros(2, requires_grad=True) for _ in range(groups)]
        mod, O = S, getattr(optim, opt_name)
    opt = O([{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(ps)], **okw)
    sched = make(mod, opt)
    out = []
    for i in range(n):
        g = opt.param_groups[0]
        out.append([grp["lr"] for grp in opt.param_groups] + [g.get("momentum", g.get("betas", (0,))[0])])
        opt.step()
        if metrics is not None:
            sched.step(metrics[i])
        else:
            sched.step()
    return out


SCHED_CASES = {
    "step": lambda m, o: m.StepLR(o, step_size=3, gamma=0.3),
    "multistep": lambda m, o: m.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.5),
    "exponential": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "cosine": lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.001),
    "linear": lambda m, o: m.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=6),
    "lambda": lambda m, o: m.LambdaLR(o, lambda e: 0.95 ** e),
    "constant": lambda m, o: m.ConstantLR(o, factor=0.3, total_iters=4),
    "polynomial": lambda m, o: m.PolynomialLR(o, total_iters=8, power=1.5),
    "onecycle-cos": lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=25),
    "onecycle-linear-3phase": lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=25, anneal_strategy="linear",
                                                          three_phase=True, pct_start=0.25, div_factor=5.0),
    "sequential": lambda m, o: m.SequentialLR(o, [m.LinearLR(o, start_factor=0.1, total_iters=4),
                                                  m.CosineAnnealingLR(o, T_max=10)], milestones=[4]),
    "sequential3": lambda m, o: m.SequentialLR(o, [m.ConstantLR(o, factor=0.5, total_iters=3),
                                                   m.ExponentialLR(o, gamma=0.9),
                                                   m.StepLR(o, step_size=2)], milestones=[3, 8]),
    "warm-restarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.01),
    "cyclic-tri2": lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=[0.1, 0.2], step_size_up=3, step_size_down=5,
                                           mode="triangular2"),
    "cyclic-exp": lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4, mode="exp_range",
                                          gamma=0.97),
    "chained": lambda m, o: m.ChainedScheduler([m.ConstantLR(o, factor=0.5, total_iters=3),
                                                m.ExponentialLR(o, gamma=0.9)]),
}


@pytest.mark.parametrize("case", list(SCHED_CASES))
def test_scheduler_sequence_matches_torch(case):
    n = 24 if case.startswith("onecycle") else 30
    ours = _lrs("autodiff", SCHED_CASES[case], n, groups=2, momentum=0.9)
    ref = _lrs("torch", SCHED_CASES[case], n, groups=2, momentum=0.9)
    np.testing.assert_allclose(ours, ref, rtol=1e-15, atol=0)


def test_onecycle_with_adam_betas_matches_torch():
    make = lambda m, o: m.OneCycleLR(o, max_lr=0.5, total_steps=20)
    np.testing.assert_allclose(_lrs("autodiff", make, 20, opt_name="Adam"), _lrs("torch", make, 20, opt_name="Adam"),
                               rtol=1e-15)


@pytest.mark.parametrize("kw", [dict(patience=2, factor=0.5), dict(patience=1, cooldown=2, min_lr=0.01),
                                dict(mode="max", threshold_mode="abs", threshold=0.1, patience=0)])
def test_plateau_matches_torch(kw):
    metrics = [5, 4, 4.5, 4, 4, 3.9999, 3, 3, 3, 3, 2, 2.5, 2.6, 2.7, 2.8, 2.9, 1, 1, 1, 1]
    make = lambda m, o: m.ReduceLROnPlateau(o, **kw)
    ours = _lrs("autodiff", make, 20, groups=2, metrics=metrics)
    ref = _lrs("torch", make, 20, groups=2, metrics=metrics)
    assert ours == ref


def test_torch_state_dict_loads_into_our_optimizer():
    """A PyTorch optimizer state dict (converted to NumPy) loads and continues identically."""
    ref, topt = _run("torch", "Adam", dict(lr=0.01, amsgrad=True), np.float64, steps=3)
    tsd = topt.state_dict()
    sd = {"state": {k: {n: v.numpy() for n, v in st.items()} for k, st in tsd["state"].items()},
          "param_groups": tsd["param_groups"]}
    ps = [autodiff.tensor(r, requires_grad=True) for r in ref]
    opt = optim.Adam(ps, lr=0.5)
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.01 and math.isclose(float(opt.state[ps[0]]["step"]), 3.0)
