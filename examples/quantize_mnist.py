"""Post-training int8 quantisation of an MNIST MLP: model size and test accuracy before/after, for
dynamic quantisation (float and exact-int32 accumulation) and static quantisation calibrated on
training images.

    .venv/bin/python examples/quantize_mnist.py [--epochs 3 --calib 2000 --limit N]

Needs data/mnist.npz (`make data`).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import autodiff as ad  # noqa: E402
import nn  # noqa: E402
import optim  # noqa: E402
from autodiff.data import DataLoader, TensorDataset  # noqa: E402
from examples.prune_mnist import accuracy, load_mnist  # noqa: E402
from nn import quantize as Q  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/mnist.npz")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--calib", type=int, default=2000, help="training images used to calibrate static quantisation")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--limit-test", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    ad.manual_seed(args.seed)
    xtr, ytr, xte, yte = load_mnist(args.data, args.limit, args.limit_test)
    loader = DataLoader(TensorDataset(xtr, ytr), batch_size=args.batch_size, shuffle=True, seed=args.seed)
    h = args.hidden
    model = nn.Sequential(nn.Linear(784, h), nn.ReLU(), nn.Linear(h, h // 2), nn.ReLU(), nn.Linear(h // 2, 10))
    opt = optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    print(f"trained 784-{h}-{h // 2}-10 for {args.epochs} epochs in {time.perf_counter() - t0:.1f} s")

    rows = []

    def report(name, m):
        t = time.perf_counter()
        acc = accuracy(m, xte, yte)
        dt = time.perf_counter() - t
        size = Q.model_size_bytes(m)
        rows.append({"model": name, "bytes": size, "accuracy": acc, "eval_s": dt})

    report("float32", model)
    report("dynamic int8 (float accumulate)", Q.quantize_dynamic(model))
    report("dynamic int8 (int32 accumulate)", Q.quantize_dynamic(model, accumulate="int32"))
    calib = [xtr[i:i + 500] for i in range(0, min(args.calib, xtr.shape[0]), 500)]
    report(f"static int8 ({sum(c.shape[0] for c in calib)} calib images)", Q.quantize_static(model, calib))

    base = rows[0]
    print(f"{'model':<36}{'bytes':>10}{'smaller':>9}{'accuracy':>10}{'change':>9}{'eval s':>8}")
    for r in rows:
        print(f"{r['model']:<36}{r['bytes']:>10,}{base['bytes'] / r['bytes']:>8.2f}x{r['accuracy']:>9.2f}%"
              f"{r['accuracy'] - base['accuracy']:>+9.2f}{r['eval_s']:>8.2f}")
    return rows


if __name__ == "__main__":
    main()
