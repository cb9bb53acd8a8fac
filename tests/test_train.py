"""The training job (autodiff.train): bit-exact resume, atomic checkpoints, NaN/Inf stopping,
detect_anomaly, and the CLI's errors. Small synthetic data; nothing is downloaded."""
import os

import numpy as np
import pytest

import autodiff
from autodiff import train as T
from autodiff.data import TensorDataset


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = rng.random((n, 1, 28, 28), dtype=np.float32) * 0.3
    x[np.arange(n), 0, y, y] += 1.0  # a learnable signal
    return TensorDataset(autodiff.tensor(x), autodiff.tensor(y))


def _args(tmp_path, *extra, name="ck.ckpt"):
    return ["--model", "mlp", "--device", "cpu", "--epochs", "3", "--batch-size", "16", "--quiet", "--no-plot",
            "--checkpoint", str(tmp_path / name), *extra]


def _params(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_resume_is_bit_exact(tmp_path, opt):
    tr, te = _data(), _data(32, seed=1)
    quiet = lambda *a: None  # noqa: E731
    full = T.run(_args(tmp_path, "--optimizer", opt, name="a.ckpt"), tr, te, log=quiet)
    # interrupted after one epoch, then resumed in a "new process" (fresh model, other seeds drawn)
    part = T.run(_args(tmp_path, "--optimizer", opt, name="b.ckpt"), tr, te, stop_after=1, log=quiet)
    assert len(part["history"]["test_acc"]) == 1
    autodiff.manual_seed(12345)
    autodiff.randn(100)
    res = T.run(_args(tmp_path, "--optimizer", opt, "--resume", name="b.ckpt"), tr, te, log=quiet)
    a, b = _params(full["model"]), _params(res["model"])
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert res["history"]["train_loss"] == full["history"]["train_loss"]
    assert len(res["history"]["test_acc"]) == 3
    ck = autodiff.load(str(tmp_path / "b.ckpt"))
    assert set(ck) >= {"model", "optimizer", "scheduler", "epoch", "rng", "loader", "history"}


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    msgs = []
    res = T.run(_args(tmp_path, "--resume", "--epochs", "1"), _data(32), _data(16), log=msgs.append)
    assert any("starting from scratch" in m for m in msgs)
    assert os.path.isfile(res["checkpoint"])


def test_run_learns_and_reports(tmp_path):
    msgs = []
    res = T.run(_args(tmp_path, "--epochs", "4", "--lr", "3e-3"), _data(160), _data(160), log=msgs.append)
    assert res["history"]["train_loss"][-1] < res["history"]["train_loss"][0]
    assert len(res["epoch_times"]) == 4 and all(t > 0 for t in res["epoch_times"])
    assert any("final test accuracy" in m and "time per epoch" in m for m in msgs)
    assert any("s/epoch" in m and "samples/s" in m for m in msgs)


def test_atomic_save_survives_crash_mid_write(tmp_path, monkeypatch):
    path = tmp_path / "ck.ckpt"
    T.atomic_save({"w": autodiff.ones(3), "epoch": 1}, path)
    before = path.read_bytes()
    real_save = autodiff.save

    def crashing_save(obj, f):
        f.write(b"ADCKPT01 half a checkpoint")
        raise KeyboardInterrupt("simulated crash mid-write")
    monkeypatch.setattr(autodiff, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        T.atomic_save({"w": autodiff.zeros(3), "epoch": 2}, path)
    monkeypatch.setattr(autodiff, "save", real_save)
    assert path.read_bytes() == before
    ck = autodiff.load(str(path))
    assert ck["epoch"] == 1 and ck["w"].tolist() == [1.0, 1.0, 1.0]
    assert os.listdir(tmp_path) == ["ck.ckpt"]  # the temp file is gone


def test_atomic_save_replaces(tmp_path):
    path = tmp_path / "sub" / "x.ckpt"
    T.atomic_save({"a": 1}, path)
    T.atomic_save({"a": 2}, path)
    assert autodiff.load(str(path))["a"] == 2
    assert os.listdir(tmp_path / "sub") == ["x.ckpt"]


def test_nan_loss_stops_training_naming_the_step(tmp_path):
    tr = _data(64)
    x = tr.tensors[0].numpy().copy()
    x[:] = np.nan
    bad = TensorDataset(autodiff.tensor(x), tr.tensors[1])
    with pytest.raises(T.NonFiniteLossError, match="loss is nan at epoch 1, step 1"):
        T.run(_args(tmp_path), bad, _data(16), log=lambda *a: None)


def test_running_meter_names_exact_step():
    m = T.RunningMeter(epoch=2, sync_every=4)
    for step, v in enumerate([1.0, 2.0, float("inf"), 3.0]):
        if step < 3:
            m.update(step, 8, autodiff.tensor(v))
        else:
            with pytest.raises(T.NonFiniteLossError, match="loss is inf at epoch 3, step 3 "):
                m.update(step, 8, autodiff.tensor(v))
    m = T.RunningMeter(epoch=0, sync_every=2, names=("c",))
    m.update(0, 4, autodiff.tensor(1.0), [autodiff.tensor(3)])
    m.update(1, 4, autodiff.tensor(3.0), [autodiff.tensor(4)])
    assert m.loss() == 2.0 and m.mean("c") == 7 / 8


def test_main_explains_make_data(tmp_path, capsys):
    rc = T.main(["--data-root", str(tmp_path / "none"), "--device", "cpu", "--quiet", "--no-plot",
                 "--checkpoint", str(tmp_path / "c.ckpt")])
    assert rc == 1
    assert "make data" in capsys.readouterr().err


def test_bad_model_and_optimizer_names(tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        T.make_model("rnn")
    import nn
    with pytest.raises(ValueError, match="unknown optimizer 'adamz'"):
        T.make_optimizer("adamz", nn.Linear(2, 2).parameters(), 0.1)
    with pytest.raises(SystemExit):
        T.build_parser().parse_args(["--model", "rnn"])


def test_models_shapes():
    import nn
    out = T.make_model("mlp")(autodiff.randn(2, 1, 28, 28))
    assert out.shape == (2, 10)
    if not hasattr(nn, "Conv2d") or not hasattr(nn, "MaxPool2d"):
        pytest.skip("nn.Conv2d / nn.MaxPool2d not available yet")
    out = T.make_model("cnn")(autodiff.randn(2, 1, 28, 28))
    assert out.shape == (2, 10)


def test_rng_state_roundtrip():
    autodiff.manual_seed(3)
    s = T.rng_state()
    a = autodiff.rand(5).numpy()
    T.set_rng_state(s)
    np.testing.assert_array_equal(autodiff.rand(5).numpy(), a)


def test_plot_curves(tmp_path):
    h = {"train_loss": [1.0, 0.5], "test_loss": [1.1, 0.6], "train_acc": [0.5, 0.8], "test_acc": [0.4, 0.7]}
    out = T.plot_curves(h, str(tmp_path / "c.png"))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert out is None
    else:
        assert os.path.isfile(out)


# ----------------------------------------------------------------------------- detect_anomaly
def test_detect_anomaly_names_first_nan_op(backend):
    dev = "cuda" if backend == "cuda" else "cpu"
    x = autodiff.tensor([0.0, 1.0], requires_grad=True, device=dev)
    with np.errstate(all="ignore"):
        y = (autodiff.sqrt(x) * 0).sum()
        y.backward()  # no error without anomaly mode: NaN flows into x.grad
        assert np.isnan(x.grad.numpy()[0])
        assert not autodiff.is_anomaly_enabled()
        with autodiff.detect_anomaly():
            assert autodiff.is_anomaly_enabled()
            y = (autodiff.sqrt(x) * 0).sum()
            with pytest.raises(RuntimeError, match="'SqrtBackward' returned nan values in its 0th output"):
                y.backward()
        assert not autodiff.is_anomaly_enabled()
        with autodiff.detect_anomaly():
            z = (autodiff.exp(x) * 2).sum()
            z.backward()  # finite: no error


def test_detect_anomaly_inf_and_decorator():
    x = autodiff.tensor([0.0], requires_grad=True)

    @autodiff.detect_anomaly()
    def step():
        (1.0 / x).sum().backward()
    with np.errstate(all="ignore"), pytest.raises(RuntimeError, match="returned inf values"):
        step()
    with autodiff.set_detect_anomaly(True):
        assert autodiff.is_anomaly_enabled()
    assert not autodiff.is_anomaly_enabled()


def test_amp_run(tmp_path):
    res = T.run(_args(tmp_path, "--epochs", "1", "--amp"), _data(48), _data(16), log=lambda *a: None)
    assert np.isfinite(res["history"]["train_loss"][0])
    assert all(p.dtype == np.float32 for p in res["model"].parameters())
