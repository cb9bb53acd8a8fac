"""The MNIST examples run end to end on a tiny synthetic MNIST-shaped file (and exit 1 without data)."""
import importlib.util
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_example_{name}", os.path.join(ROOT, "examples", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def fake_mnist(tmp_path_factory):
    rng = np.random.default_rng(0)
    protos = rng.integers(0, 256, (10, 28, 28))

    def make(n):
        y = rng.integers(0, 10, n)
        x = np.clip(protos[y] + rng.normal(0, 40, (n, 28, 28)), 0, 255).astype(np.uint8)
        return x, y.astype(np.int64)
    xtr, ytr = make(256)
    xte, yte = make(128)
    p = tmp_path_factory.mktemp("mnist") / "mnist.npz"
    np.savez(p, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return str(p)


def test_prune_example(fake_mnist, capsys):
    out = _load("prune_mnist").main(["--data", fake_mnist, "--epochs", "1", "--finetune-epochs", "1",
                                     "--limit", "256", "--batch-size", "64", "--hidden", "32,16"])
    assert [round(s["sparsity"], 2) for s in out["steps"]] == [0.5, 0.75, 0.9]
    assert abs(out["report"]["global"]["sparsity"] - 0.9) < 1e-3
    assert "after prune.remove" in capsys.readouterr().out


def test_distill_example(fake_mnist, tmp_path):
    ex = _load("distill_mnist")
    args = ["--data", fake_mnist, "--teacher-epochs", "1", "--epochs", "1", "--teacher-hidden", "64",
            "--student-hidden", "4", "--batch-size", "64", "--teacher-cache", str(tmp_path / "t.npz")]
    out = ex.main(args)
    assert out["param_ratio"] >= 10
    assert set(out) == {"teacher", "scratch", "distilled", "param_ratio"}
    again = ex.main(args + ["--student-limit", "128"])  # teacher loaded from the cache this time
    assert again["teacher"] == out["teacher"]


def test_quantize_example(fake_mnist):
    rows = _load("quantize_mnist").main(["--data", fake_mnist, "--epochs", "1", "--hidden", "32", "--calib", "128"])
    assert len(rows) == 4
    assert all(rows[0]["bytes"] / r["bytes"] > 3.5 for r in rows[1:])


def test_amp_example(fake_mnist):
    out = _load("amp_mnist").main(["--data", fake_mnist, "--epochs", "1", "--hidden", "16", "--limit", "128"])
    assert set(out) == {"float32", "amp", "time_float32", "time_amp", "scale"} and out["scale"] > 0


@pytest.mark.parametrize("name", ["prune_mnist", "distill_mnist", "quantize_mnist", "amp_mnist"])
def test_examples_exit_1_without_data(tmp_path, name, capsys):
    with pytest.raises(SystemExit) as e:
        _load(name).main(["--data", str(tmp_path / "missing.npz")])
    assert e.value.code == 1
    assert "make data" in capsys.readouterr().err
