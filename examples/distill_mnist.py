"""Knowledge distillation on MNIST: a wide MLP teacher, a small MLP student (>= 10x fewer parameters)
trained from scratch vs distilled (`nn.distill.Distiller`), same images, epochs, seed, initial
weights and batch order.

    .venv/bin/python examples/distill_mnist.py [--teacher-epochs 3 --epochs 3 --T 4 --alpha 0.9 --limit N]
    # the regime where distillation pays: students see a 5,000-image labelled subset for longer
    .venv/bin/python examples/distill_mnist.py --student-limit 5000 --epochs 30 --student-hidden 64

`--teacher-cache PATH` saves the trained teacher's state dict there (or loads it if the file exists).

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
    ap.add_argument("--student-limit", type=int, default=None,
                    help="students train on the first N training images only (the teacher on all)")
    ap.add_argument("--teacher-cache", default=None, help="load the teacher from / save it to this .npz")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    xtr, ytr, xte, yte = load_mnist(args.data, args.limit, args.limit_test)
    n_student = xtr.shape[0] if args.student_limit is None else min(args.student_limit, xtr.shape[0])

    def loader(n=None):  # the same shuffled batch order for every run
        x, y = (xtr, ytr) if n is None else (xtr[:n], ytr[:n])
        return DataLoader(TensorDataset(x, y), batch_size=args.batch_size, shuffle=True, seed=args.seed)

    ad.manual_seed(args.seed)
    h = args.teacher_hidden
    teacher = nn.Sequential(nn.Linear(784, h), nn.ReLU(), nn.Dropout(0.2), nn.Linear(h, h), nn.ReLU(),
                            nn.Dropout(0.2), nn.Linear(h, 10))
    t0 = time.perf_counter()
    loss_fn = nn.CrossEntropyLoss()
    if args.teacher_cache and os.path.exists(args.teacher_cache):
        saved = np.load(args.teacher_cache)
        teacher.load_state_dict({k: saved[k] for k in saved.files})
        how = f"loaded from {args.teacher_cache}"
    else:
        opt = optim.Adam(teacher.parameters(), lr=args.lr)
        for _ in range(args.teacher_epochs):
            for xb, yb in loader():
                opt.zero_grad()
                loss_fn(teacher(xb), yb).backward()
                opt.step()
        if args.teacher_cache:
            np.savez(args.teacher_cache, **{k: v.numpy() for k, v in teacher.state_dict().items()})
        how = f"{args.teacher_epochs} epochs on {xtr.shape[0]} images, {time.perf_counter() - t0:.1f} s"
    t_acc = accuracy(teacher, xte, yte)
    print(f"teacher 784-{h}-{h}-10: {n_params(teacher):,} params, test accuracy {t_acc:.2f}% ({how})")

    ad.manual_seed(args.seed + 1)
    scratch = make_student(args.student_hidden)
    ad.manual_seed(args.seed + 1)
    distilled = make_student(args.student_hidden)  # identical initial weights
    ratio = n_params(teacher) / n_params(scratch)
    opt = optim.Adam(scratch.parameters(), lr=args.lr)
    for _ in range(args.epochs):
        for xb, yb in loader(n_student):
            opt.zero_grad()
            loss_fn(scratch(xb), yb).backward()
            opt.step()
    s_acc = accuracy(scratch, xte, yte)
    d = Distiller(teacher, distilled, optim.Adam(distilled.parameters(), lr=args.lr), T=args.T, alpha=args.alpha)
    for _ in range(args.epochs):
        d.fit(loader(n_student), epochs=1)
    d_acc = accuracy(distilled, xte, yte)
    print(f"student 784-{args.student_hidden}-10: {n_params(scratch):,} params ({ratio:.0f}x fewer than the "
          f"teacher), {args.epochs} epochs on {n_student} images, seed {args.seed}")
    print(f"  from scratch: {s_acc:.2f}%")
    print(f"  distilled (T={args.T:g}, alpha={args.alpha:g}): {d_acc:.2f}%  ({d_acc - s_acc:+.2f} points)")
    return {"teacher": t_acc, "scratch": s_acc, "distilled": d_acc, "param_ratio": ratio}


if __name__ == "__main__":
    main()
