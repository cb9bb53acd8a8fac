"""Each example runs end to end on a small MNIST-shaped slice written by the test (no download,
no data/mnist.npz needed)."""
import importlib.util
import os
import sys

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def _load(name):
    if EXAMPLES not in sys.path:
        sys.path.insert(0, EXAMPLES)
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(EXAMPLES, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory):
    """A small learnable stand-in for data/mnist.npz: each class lights up its own block of pixels."""
    root = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(0)

    def split(n):
        y = rng.integers(0, 10, n)
        x = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(y):
            r, col = divmod(int(c), 5)
            x[i, 4 + 10 * r:12 + 10 * r, 2 + 5 * col:6 + 5 * col] = 255
        return x, y.astype(np.int64)
    xtr, ytr = split(256)
    xte, yte = split(64)
    np.savez(root / "mnist.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return str(root)


@pytest.mark.parametrize("name,extra,min_acc", [
    ("mnist_pytorch_style", ["--batch-size", "16", "--lr", "0.05"], 0.5),
    ("mnist_keras_style", ["--batch-size", "16"], 0.5),
    ("mnist_cnn", ["--batch-size", "16", "--lr", "3e-3", "--limit", "48"], 0.25),  # 6 steps: above chance (0.1)
])
def test_example_runs_on_a_slice(name, extra, min_acc, tiny_mnist, capsys):
    mod = _load(name)
    res = mod.main(["--epochs", "2", "--limit", "200", "--data-root", tiny_mnist, "--device", "cpu", *extra])
    out = capsys.readouterr().out
    assert "epoch" in out.lower()
    assert 0.0 <= res["test_accuracy"] <= 1.0
    assert res["test_accuracy"] > min_acc  # the slice is easy: it must actually learn


def test_example_without_data_explains_make_data(tmp_path):
    from autodiff.data import DataError
    mod = _load("mnist_pytorch_style")
    with pytest.raises(DataError, match="make data"):
        mod.main(["--epochs", "1", "--data-root", str(tmp_path), "--device", "cpu"])
