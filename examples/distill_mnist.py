"""Knowledge distillation on MNIST: a wide MLP teacher, a small MLP student (>= 10x fewer parameters)
trained from scratch vs distilled (`nn.distill.Distiller`), same epochs, seed and batch order.

    .venv/bin/python examples/distill_mnist.py [--teacher-epochs 3 --epochs 3 --T 4 --alpha 0.9 --limit N]

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
from nn.distill import Distiller  # noqa: E402


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def make_student(hidden):
    return nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/mnist.npz")
    ap.add_argument("--teacher-epochs", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3, help="student epochs (same for scratch and distilled)")
    ap.add_argument("--teacher-hidden", type=int, default=800)
    ap.add_argument("--student-hidden", type=int, default=32)
    ap.add_argument("--T", type=float, default=4.0)
    ap.add_argument("--alpha", type=float, default=0.9)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--limit-test", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    xtr, ytr, xte, yte = load_mnist(args.data, args.limit, args.limit_test)

    def loader():  # the same shuffled batch order for every run
        return DataLoader(TensorDataset(xtr, ytr), batch_size=args.batch_size, shuffle=True, seed=args.seed)

    ad.manual_seed(args.seed)
    h = args.teacher_hidden
    teacher = nn.Sequential(nn.Linear(784, h), nn.ReLU(), nn.Dropout(0.2), nn.Linear(h, h), nn.ReLU(),
                            nn.Dropout(0.2), nn.Linear(h, 10))
    t0 = time.perf_counter()
    opt = optim.Adam(teacher.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(args.teacher_epochs):
        for xb, yb in loader():
            opt.zero_grad()
            loss_fn(teacher(xb), yb).backward()
            opt.step()
    t_acc = accuracy(teacher, xte, yte)
    print(f"teacher 784-{h}-{h}-10: {n_params(teacher):,} params, test accuracy {t_acc:.2f}% "
          f"({args.teacher_epochs} epochs, {time.perf_counter() - t0:.1f} s)")

    ad.manual_seed(args.seed + 1)
    scratch = make_student(args.student_hidden)
    ad.manual_seed(args.seed + 1)
    distilled = make_student(args.student_hidden)  # identical initial weights
    ratio = n_params(teacher) / n_params(scratch)
    opt = optim.Adam(scratch.parameters(), lr=args.lr)
    for _ in range(args.epochs):
        for xb, yb in loader():
            opt.zero_grad()
            loss_fn(scratch(xb), yb).backward()
            opt.step()
    s_acc = accuracy(scratch, xte, yte)
    d = Distiller(teacher, distilled, optim.Adam(distilled.parameters(), lr=args.lr), T=args.T, alpha=args.alpha)
    for _ in range(args.epochs):
        d.fit(loader(), epochs=1)
    d_acc = accuracy(distilled, xte, yte)
    print(f"student 784-{args.student_hidden}-10: {n_params(scratch):,} params ({ratio:.0f}x fewer than the "
          f"teacher), {args.epochs} epochs, seed {args.seed}")
    print(f"  from scratch: {s_acc:.2f}%")
    print(f"  distilled (T={args.T:g}, alpha={args.alpha:g}): {d_acc:.2f}%  ({d_acc - s_acc:+.2f} points)")
    return {"teacher": t_acc, "scratch": s_acc, "distilled": d_acc, "param_ratio": ratio}


if __name__ == "__main__":
    main()
