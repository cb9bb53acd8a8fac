"""Mixed-precision training on MNIST: the same MLP, seed and batches trained in float32 and under
`autodiff.amp.autocast(float16)` with a `GradScaler`; prints test accuracy, time and the scaler's
final scale.

On the CPU this checks correctness only (NumPy has no float16 BLAS, so float16 matmuls are slower than
float32 ones); on a GPU pass `--device cuda` for the speed.

    .venv/bin/python examples/amp_mnist.py [--epochs 2 --limit 20000 --device cpu]

Needs data/mnist.npz (`make data`).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import autodiff as ad  # noqa: E402
import nn  # noqa: E402
import optim  # noqa: E402
from autodiff import amp  # noqa: E402
from autodiff.data import DataLoader, TensorDataset  # noqa: E402
from examples.prune_mnist import accuracy, load_mnist  # noqa: E402


def run(use_amp, args, xtr, ytr, xte, yte):
    ad.manual_seed(args.seed)
    model = nn.Sequential(nn.Linear(784, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 10)).to(args.device)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    scaler = amp.GradScaler(args.device, enabled=use_amp)
    loader = DataLoader(TensorDataset(xtr, ytr), batch_size=args.batch_size, shuffle=True, seed=args.seed)
    loss_fn = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        for xb, yb in loader:
            xb, yb = xb.to(args.device), yb.to(args.device)
            opt.zero_grad()
            with amp.autocast(args.device, dtype=ad.float16, enabled=use_amp):
                loss = loss_fn(model(xb), yb)
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is the scaler's job to detect
                scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    elapsed = time.perf_counter() - t0
    return accuracy(model, xte.to(args.device), yte.to(args.device)), elapsed, scaler.get_scale()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/mnist.npz")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--limit", type=int, default=20000)
    ap.add_argument("--limit-test", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    xtr, ytr, xte, yte = load_mnist(args.data, args.limit, args.limit_test)
    acc32, t32, _ = run(False, args, xtr, ytr, xte, yte)
    acc16, t16, scale = run(True, args, xtr, ytr, xte, yte)
    print(f"MLP 784-{args.hidden}-10, {args.epochs} epochs on {xtr.shape[0]} images, device {args.device}")
    print(f"  float32:                      {acc32:.2f}%  ({t32:.1f} s)")
    print(f"  autocast float16 + GradScaler: {acc16:.2f}%  ({t16:.1f} s, final scale {scale:g})  "
          f"difference {acc16 - acc32:+.2f} points")
    return {"float32": acc32, "amp": acc16, "time_float32": t32, "time_amp": t16, "scale": scale}


if __name__ == "__main__":
    main()
