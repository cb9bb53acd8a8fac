"""Checkpoint / resume: training interrupted after k steps, saved with autodiff.save (model +
optimizer + scheduler), restored into freshly built objects and continued gives parameters
bit-identical to uninterrupted training."""
import numpy as np
import pytest

import autodiff
import nn
import optim
from optim import lr_scheduler as S
from conftest import to_numpy

TOTAL, STOP = 10, 4


def _batches(device):
    rng = np.random.default_rng(123)
    out = []
    for _ in range(TOTAL):
        x = rng.standard_normal((16, 4)).astype(np.float32)
        y = (x[:, 0] + 2 * x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
        out.append((autodiff.tensor(x, device=device), autodiff.tensor(y, device=device)))
    return out


SETUPS = {
    "sgd-nesterov-steplr": (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
                            lambda o: S.StepLR(o, step_size=3, gamma=0.5)),
    "adam-amsgrad-onecycle": (lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True),
                              lambda o: S.OneCycleLR(o, max_lr=0.05, total_steps=TOTAL)),
    "adamw-warmup-cosine": (lambda ps: optim.AdamW(ps, lr=0.02),
                            lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=3),
                                                         S.CosineAnnealingLR(o, T_max=7)], milestones=[3])),
    "rmsprop-plateau": (lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
                        lambda o: S.ReduceLROnPlateau(o, patience=0, factor=0.5, threshold=0.5)),
    "nadam-multistep": (lambda ps: optim.NAdam(ps, lr=0.01), lambda o: S.MultiStepLR(o, [2, 5], gamma=0.3)),
    "adagrad-exponential": (lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01), lambda o: S.ExponentialLR(o, 0.9)),
}


def _build(setup, device, seed):
    autodiff.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).to(device)
    make_opt, make_sched = SETUPS[setup]
    opt = make_opt(list(model.parameters()))
    return model, opt, make_sched(opt)


def _train(model, opt, sched, batches, start, stop):
    crit = nn.CrossEntropyLoss()
    for i in range(start, stop):
        x, y = batches[i]
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        if isinstance(sched, S.ReduceLROnPlateau):
            sched.step(loss.item())
        else:
            sched.step()


@pytest.mark.parametrize("setup", list(SETUPS))
def test_resume_is_bit_identical(setup, device, tmp_path):
    batches = _batches(device)
    model, opt, sched = _build(setup, device, seed=0)
    _train(model, opt, sched, batches, 0, TOTAL)
    expected = {k: to_numpy(v).copy() for k, v in model.state_dict().items()}
    expected_lr = [g["lr"] for g in opt.param_groups]

    model, opt, sched = _build(setup, device, seed=0)
    _train(model, opt, sched, batches, 0, STOP)
    path = tmp_path / "checkpoint.pt"
    autodiff.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                   "step": STOP}, path)
    del model, opt, sched

    model, opt, sched = _build(setup, device, seed=99)  # different initial weights: the load must overwrite them
    ck = autodiff.load(path)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    assert ck["step"] == STOP
    _train(model, opt, sched, batches, ck["step"], TOTAL)

    got = {k: to_numpy(v) for k, v in model.state_dict().items()}
    assert list(got) == list(expected)
    for k in expected:
        np.testing.assert_array_equal(got[k], expected[k], err_msg=f"{setup}: {k} differs after resume")
    assert [g["lr"] for g in opt.param_groups] == expected_lr
    # the optimizer still updates the model's own parameters (not copies made by the load)
    assert opt.param_groups[0]["params"][0] is next(iter(model.parameters()))


def test_training_converges_and_checkpoint_map_location_cpu(device, tmp_path):
    """A small MLP reaches high accuracy on a separable problem; its checkpoint loads on the CPU."""
    batches = _batches(device)
    autodiff.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3)).to(device)
    opt = optim.Adam(model.parameters(), lr=0.05)
    crit = nn.CrossEntropyLoss()
    for _ in range(15):
        for x, y in batches:
            opt.zero_grad()
            crit(model(x), y).backward()
            opt.step()
    x = autodiff.cat([b[0] for b in batches])
    y = autodiff.cat([b[1] for b in batches])
    acc = float((model(x).argmax(1) == y).float().mean())
    assert acc >= 0.95
    autodiff.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "m")
    ck = autodiff.load(tmp_path / "m", map_location="cpu")
    cpu_model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    cpu_model.load_state_dict(ck["model"])
    assert all(v.device == "cpu" for v in ck["optimizer"]["state"][0].values())
    np.testing.assert_allclose(to_numpy(cpu_model(x.cpu())), to_numpy(model(x)), rtol=1e-5, atol=1e-6)
