"""Learning-rate sequences of every scheduler against values derived by hand / from the closed-form
formulas in PyTorch's documentation (written out here, not taken from the implementation)."""
import math
import warnings

import numpy as np
import pytest

import autodiff
import optim
from optim import lr_scheduler as S

# these tests look at lr sequences only; some step a scheduler without an optimizer step first
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`")


def _opt(lr=1.0, cls=optim.SGD, groups=1, **kw):
    ws = [autodiff.ones(2, requires_grad=True) for _ in range(groups)]
    if groups == 1:
        return cls(ws, lr=lr, **kw)
    return cls([{"params": [w], "lr": lr * (i + 1)} for i, w in enumerate(ws)], lr=lr, **kw)


def _seq(sched, n):
    """lr after construction and after each of n-1 steps (an optimizer step before each scheduler step)."""
    out = [sched.get_last_lr()[0]]
    for _ in range(n - 1):
        sched.optimizer.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
        assert sched.optimizer.param_groups[0]["lr"] == out[-1]
    return out


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_step_lr():
    _close(_seq(S.StepLR(_opt(), step_size=2, gamma=0.1), 7), [1, 1, 0.1, 0.1, 0.01, 0.01, 0.001])
    _close(_seq(S.StepLR(_opt(0.5), step_size=3), 7), [0.5, 0.5, 0.5, 0.05, 0.05, 0.05, 0.005])


def test_multistep_lr_repeated_milestone():
    _close(_seq(S.MultiStepLR(_opt(), milestones=[2, 5, 5], gamma=0.5), 7), [1, 1, 0.5, 0.5, 0.5, 0.125, 0.125])


def test_exponential_lr():
    _close(_seq(S.ExponentialLR(_opt(2.0), gamma=0.5), 5), [2, 1, 0.5, 0.25, 0.125])


def test_cosine_annealing_lr_including_past_t_max():
    expected = [(1 + math.cos(math.pi * t / 4)) / 2 for t in range(13)]  # period 2*T_max past T_max
    got = _seq(S.CosineAnnealingLR(_opt(), T_max=4), 13)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    assert got[4] == pytest.approx(0.0, abs=1e-15)
    eta, base = 0.01, 0.1
    expected = [eta + (base - eta) * (1 + math.cos(math.pi * t / 10)) / 2 for t in range(11)]
    np.testing.assert_allclose(_seq(S.CosineAnnealingLR(_opt(base), T_max=10, eta_min=eta), 11), expected,
                               rtol=1e-9)


def test_linear_lr_warmup():
    _close(_seq(S.LinearLR(_opt(), start_factor=0.25, total_iters=4), 7), [0.25, 0.4375, 0.625, 0.8125, 1, 1, 1])
    _close(_seq(S.LinearLR(_opt(), start_factor=1.0, end_factor=0.5, total_iters=2), 4), [1, 0.75, 0.5, 0.5])
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        S.LinearLR(_opt(), start_factor=0)
    with pytest.raises(ValueError, match="Ending multiplicative factor"):
        S.LinearLR(_opt(), end_factor=1.5)


def test_lambda_lr_per_group():
    opt = _opt(groups=2)
    s = S.LambdaLR(opt, [lambda e: 0.5 ** e, lambda e: 1.0 / (e + 1)])
    lrs = [s.get_last_lr()]
    for _ in range(3):
        opt.step()
        s.step()
        lrs.append(s.get_last_lr())
    _close(lrs, [[1, 2], [0.5, 1.0], [0.25, 2 / 3], [0.125, 0.5]])
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 1"):
        S.LambdaLR(_opt(groups=2), [lambda e: 1.0])


def test_constant_polynomial_multiplicative():
    _close(_seq(S.ConstantLR(_opt(), factor=0.5, total_iters=2), 4), [0.5, 0.5, 1, 1])
    _close(_seq(S.PolynomialLR(_opt(), total_iters=4, power=2.0), 6),
           [(1 - min(t, 4) / 4) ** 2 for t in range(6)])
    _close(_seq(S.MultiplicativeLR(_opt(), lambda e: 0.9), 4), [1, 0.9, 0.81, 0.729])


def test_one_cycle_cos_with_momentum():
    s = S.OneCycleLR(_opt(momentum=0.9), max_lr=1.0, total_steps=10)
    init, lo = 1.0 / 25, 1.0 / 25 / 1e4

    def cos(a, b, pct):
        return b + (a - b) / 2 * (1 + math.cos(math.pi * pct))

    # phase 1 ends at step 0.3*10 - 1 = 2, phase 2 at step 9
    exp_lr = [cos(init, 1.0, t / 2) for t in range(3)] + [cos(1.0, lo, (t - 2) / 7) for t in range(3, 10)]
    exp_m = [cos(0.95, 0.85, t / 2) for t in range(3)] + [cos(0.85, 0.95, (t - 2) / 7) for t in range(3, 10)]
    lrs, ms = [], []
    for t in range(10):
        lrs.append(s.get_last_lr()[0])
        ms.append(s.optimizer.param_groups[0]["momentum"])
        s.optimizer.step()
        if t < 9:
            s.step()
    np.testing.assert_allclose(lrs, exp_lr, rtol=1e-12)
    np.testing.assert_allclose(ms, exp_m, rtol=1e-12)
    assert lrs[:3] == pytest.approx([0.04, 0.52, 1.0])
    s.step()  # step 10 == total_steps is allowed
    with pytest.raises(ValueError, match="Tried to step 11 times. The specified number of total steps is 10"):
        s.step()


def test_one_cycle_three_phase_linear_with_adam_betas():
    s = S.OneCycleLR(_opt(cls=optim.Adam), max_lr=1.0, total_steps=10, anneal_strategy="linear", three_phase=True,
                     div_factor=10.0, final_div_factor=100.0)
    init, lo = 0.1, 0.001
    # phases end at steps 2, 4 and 9
    exp = [0.1, 0.55, 1.0, 0.55, 0.1] + [init + (lo - init) * (t - 4) / 5 for t in range(5, 10)]
    exp_b1 = [0.95, 0.9, 0.85, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]
    lrs, b1 = [], []
    for t in range(10):
        lrs.append(s.get_last_lr()[0])
        b1.append(s.optimizer.param_groups[0]["betas"][0])
        assert s.optimizer.param_groups[0]["betas"][1] == 0.999
        if t < 9:
            s.step()
    np.testing.assert_allclose(lrs, exp, rtol=1e-12)
    np.testing.assert_allclose(b1, exp_b1, rtol=1e-12)


def test_one_cycle_errors():
    with pytest.raises(ValueError, match="You must define either total_steps OR"):
        S.OneCycleLR(_opt(), max_lr=1.0)
    with pytest.raises(ValueError, match="Expected positive integer total_steps"):
        S.OneCycleLR(_opt(), max_lr=1.0, total_steps=0)
    with pytest.raises(ValueError, match="Expected float between 0 and 1 pct_start"):
        S.OneCycleLR(_opt(), max_lr=1.0, total_steps=10, pct_start=1.5)
    with pytest.raises(ValueError, match="anneal_strategy must be one of 'cos' or 'linear'"):
        S.OneCycleLR(_opt(), max_lr=1.0, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        S.OneCycleLR(_opt(cls=optim.Adagrad), max_lr=1.0, total_steps=10)
    s = S.OneCycleLR(_opt(), max_lr=1.0, epochs=2, steps_per_epoch=5, cycle_momentum=False)
    assert s.total_steps == 10


def _plateau(metrics, **kw):
    opt = _opt()
    s = S.ReduceLROnPlateau(opt, **kw)
    out = []
    for m in metrics:
        s.step(m)
        out.append(opt.param_groups[0]["lr"])
        assert s.get_last_lr() == [out[-1]]
    return out


def test_reduce_lr_on_plateau():
    # best 10, 9; then 9 (bad 1), 9 (bad 2), 9 (bad 3 > 2: reduce), 9 (1), 8 (best), 8, 8, 8 (3: reduce)
    assert _plateau([10, 9, 9, 9, 9, 9, 8, 8, 8, 8], factor=0.5, patience=2) == [1, 1, 1, 1, .5, .5, .5, .5, .5, .25]
    # constant metric, patience 1: a reduction every other step after the first two
    assert _plateau([5] * 9, factor=0.5, patience=1) == [1, 1, .5, .5, .25, .25, .125, .125, .0625]
    # with cooldown 1 the step after a reduction doesn't count as bad
    assert _plateau([5] * 9, factor=0.5, patience=1, cooldown=1) == [1, 1, .5, .5, .5, .25, .25, .25, .125]
    # min_lr clamps; changes smaller than eps are ignored
    assert _plateau([5] * 9, factor=0.5, patience=1, min_lr=0.3) == [1, 1, .5, .5, .3, .3, .3, .3, .3]
    # mode max, absolute threshold: 1.05 is not better than 1.0 + 0.1
    assert _plateau([1.0, 1.05, 1.2, 1.25, 1.5], mode="max", threshold=0.1, threshold_mode="abs", patience=0,
                    factor=0.1) == pytest.approx([1, 0.1, 0.1, 0.01, 0.01])
    # relative threshold in min mode: 0.9999 is not < 1 * (1 - 1e-3)
    assert _plateau([1.0, 0.9999, 0.5], threshold=1e-3, patience=0, factor=0.5) == [1, 0.5, 0.5]
    assert _plateau([autodiff.tensor(3.0), autodiff.tensor(3.0)], patience=0) == pytest.approx([1, 0.1])


def test_reduce_lr_on_plateau_errors():
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        S.ReduceLROnPlateau(_opt(), factor=1.0)
    with pytest.raises(ValueError, match="mode maxx is unknown"):
        S.ReduceLROnPlateau(_opt(), mode="maxx")
    with pytest.raises(ValueError, match="threshold mode relative is unknown"):
        S.ReduceLROnPlateau(_opt(), threshold_mode="relative")
    with pytest.raises(ValueError, match="expected 2 min_lrs, got 1"):
        S.ReduceLROnPlateau(_opt(groups=2), min_lr=[0.1])


def test_sequential_lr_warmup_then_decay():
    opt = _opt()
    s = S.SequentialLR(opt, [S.LinearLR(opt, start_factor=0.1, total_iters=3), S.ExponentialLR(opt, gamma=0.5)],
                       milestones=[3])
    # linear warmup 0.1 -> 1 over 3 steps, then exponential decay restarting from the base lr
    _close(_seq(s, 7), [0.1, 0.4, 0.7, 1.0, 0.5, 0.25, 0.125])
    opt = _opt()
    s = S.SequentialLR(opt, [S.ConstantLR(opt, factor=0.5, total_iters=10), S.CosineAnnealingLR(opt, T_max=4)],
                       milestones=[2])
    np.testing.assert_allclose(_seq(s, 7), [0.5, 0.5] + [(1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)],
                               rtol=1e-9, atol=1e-12)


def test_sequential_lr_errors():
    opt = _opt()
    a = S.StepLR(opt, 2)
    with pytest.raises(ValueError, match="expects number of schedulers provided to be one more"):
        S.SequentialLR(opt, [a, S.StepLR(opt, 2)], milestones=[])
    with pytest.raises(ValueError, match="expects at least one scheduler"):
        S.SequentialLR(opt, [], milestones=[])
    with pytest.raises(ValueError, match="does not support `ReduceLROnPlateau`"):
        S.SequentialLR(opt, [a, S.ReduceLROnPlateau(opt)], milestones=[2])
    other = _opt()
    with pytest.raises(ValueError, match="expects all schedulers to belong to the same optimizer"):
        S.SequentialLR(opt, [a, S.StepLR(other, 2)], milestones=[2])


def test_chained_scheduler():
    opt = _opt()
    s = S.ChainedScheduler([S.ConstantLR(opt, factor=0.5, total_iters=2), S.ExponentialLR(opt, gamma=0.9)])
    _close(_seq(s, 4), [0.5, 0.45, 0.81, 0.729])


def test_cosine_warm_restarts():
    # T_0 = 3, T_mult = 2: cycles of 3, 6, 12 steps; lr = (1 + cos(pi * T_cur / T_i)) / 2
    tc = [(0, 3), (1, 3), (2, 3)] + [(i, 6) for i in range(6)] + [(0, 12), (1, 12)]
    expected = [(1 + math.cos(math.pi * c / t)) / 2 for c, t in tc]
    np.testing.assert_allclose(_seq(S.CosineAnnealingWarmRestarts(_opt(), T_0=3, T_mult=2), 11), expected,
                               rtol=1e-12, atol=1e-15)
    s = S.CosineAnnealingWarmRestarts(_opt(), T_0=4, eta_min=0.1)
    s.step(5.5)  # fractional epochs: T_cur = 1.5 in the second cycle
    assert s.get_last_lr()[0] == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 1.5 / 4)) / 2)
    with pytest.raises(ValueError, match="Expected positive integer T_0"):
        S.CosineAnnealingWarmRestarts(_opt(), T_0=0)
    with pytest.raises(ValueError, match="Expected integer T_mult >= 1"):
        S.CosineAnnealingWarmRestarts(_opt(), T_0=2, T_mult=0)


def test_cyclic_lr():
    tri = S.CyclicLR(_opt(momentum=0.9), base_lr=0.1, max_lr=1.0, step_size_up=2)
    _close(_seq(tri, 7), [0.1, 0.55, 1.0, 0.55, 0.1, 0.55, 1.0])
    assert tri.optimizer.param_groups[0]["momentum"] == pytest.approx(0.8)  # at max_lr: base_momentum
    tri2 = S.CyclicLR(_opt(momentum=0.9), base_lr=0.1, max_lr=1.0, step_size_up=2, mode="triangular2",
                      cycle_momentum=False)
    _close(_seq(tri2, 9), [0.1, 0.55, 1.0, 0.55, 0.1, 0.325, 0.55, 0.325, 0.1])
    # asymmetric: 1 step up, 3 down
    _close(_seq(S.CyclicLR(_opt(momentum=0.9), base_lr=0.0, max_lr=0.3, step_size_up=1, step_size_down=3), 6),
           [0.0, 0.3, 0.2, 0.1, 0.0, 0.3])
    exp = S.CyclicLR(_opt(momentum=0.9), base_lr=0.0, max_lr=1.0, step_size_up=1, mode="exp_range", gamma=0.5)
    _close(_seq(exp, 4), [0.0, 0.5, 0.0, 0.125])  # amplitude * gamma ** iteration
    with pytest.raises(ValueError, match="mode is invalid and scale_fn is None"):
        S.CyclicLR(_opt(momentum=0.9), 0.1, 1.0, mode="sine")
    with pytest.raises(ValueError, match="optimizer must support momentum"):
        S.CyclicLR(_opt(cls=optim.Adagrad), 0.1, 1.0)


def test_groups_and_initial_lr_and_resume_errors():
    opt = _opt(0.1, groups=2)
    s = S.StepLR(opt, step_size=1, gamma=0.5)
    assert s.base_lrs == [0.1, 0.2] and [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.2]
    opt.step()
    s.step()
    _close(s.get_last_lr(), [0.05, 0.1])
    with pytest.raises(KeyError, match="param 'initial_lr' is not specified in param_groups\\[0\\]"):
        S.StepLR(_opt(), step_size=1, last_epoch=3)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        S.StepLR(object(), step_size=1)


def test_step_with_epoch_uses_closed_form_and_warns():
    s = S.StepLR(_opt(), step_size=2, gamma=0.1)
    s.optimizer.step()
    with pytest.warns(UserWarning, match="epoch parameter"):
        s.step(5)
    assert s.get_last_lr()[0] == pytest.approx(0.01)


@pytest.mark.parametrize("make", [
    lambda o: S.StepLR(o, step_size=2, gamma=0.5),
    lambda o: S.MultiStepLR(o, milestones=[1, 3, 3], gamma=0.5),
    lambda o: S.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
    lambda o: S.OneCycleLR(o, max_lr=2.0, total_steps=12),
    lambda o: S.LinearLR(o, start_factor=0.2, total_iters=4),
    lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=2), S.ExponentialLR(o, gamma=0.8)],
                             milestones=[2]),
    lambda o: S.LambdaLR(o, lambda e: 1 / (1 + e)),
    lambda o: S.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=2),
    lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3, mode="triangular2"),
], ids=["step", "multistep", "cosine", "onecycle", "linear", "sequential", "lambda", "warm-restarts", "cyclic"])
def test_scheduler_state_dict_resume(make, tmp_path):
    """Stop after 4 steps, save optimizer + scheduler state with autodiff.save, rebuild, load,
    continue: the lr sequence equals the uninterrupted one."""
    full = _seq(make(_opt(momentum=0.9)), 11)
    opt = _opt(momentum=0.9)
    s = make(opt)
    first = _seq(s, 5)
    autodiff.save({"optimizer": opt.state_dict(), "scheduler": s.state_dict()}, tmp_path / "ck")
    ck = autodiff.load(tmp_path / "ck")
    opt2 = _opt(momentum=0.9)
    s2 = make(opt2)
    opt2.load_state_dict(ck["optimizer"])
    s2.load_state_dict(ck["scheduler"])
    rest = _seq(s2, 7)[1:]
    assert s2.get_last_lr() == [opt2.param_groups[0]["lr"]]
    np.testing.assert_allclose(first + rest, full, rtol=1e-15)


def test_plateau_state_dict_roundtrip(tmp_path):
    opt = _opt()
    s = S.ReduceLROnPlateau(opt, patience=1, factor=0.5, cooldown=1)
    for m in (3, 3, 3):
        s.step(m)
    autodiff.save(s.state_dict(), tmp_path / "p")
    s2 = S.ReduceLROnPlateau(_opt(), patience=5)
    s2.load_state_dict(autodiff.load(tmp_path / "p"))
    assert (s2.best, s2.patience, s2.cooldown_counter, s2.last_epoch) == (3, 1, 1, 3)
    assert s2.mode_worse == math.inf


def test_no_warning_from_sequential_internal_epoch_step():
    opt = _opt()
    s = S.SequentialLR(opt, [S.ConstantLR(opt, total_iters=1), S.StepLR(opt, 1)], milestones=[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s.step()
        s.step()
