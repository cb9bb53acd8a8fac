"""Iterative global magnitude pruning of an MNIST MLP (LeNet-300-100) with fine-tuning.

Train the dense model, then prune the weights of all three Linear layers together
(`nn.utils.prune.global_unstructured` with L1 magnitude) in steps to 50%, 75% and 90% sparsity,
fine-tuning between steps; print the test accuracy after each pruning step (before and after its
fine-tuning) and a per-layer sparsity report, then make the pruning permanent (`prune.remove`).

    .venv/bin/python examples/prune_mnist.py [--epochs 3 --finetune-epochs 1 --limit N]

Needs data/mnist.npz (`make data`).
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import autodiff as ad  # noqa: E402
import nn  # noqa: E402
import optim  # noqa: E402
from autodiff.data import DataLoader, TensorDataset  # noqa: E402
from nn.utils import prune  # noqa: E402

MEAN, STD = 0.1307, 0.3081


def load_mnist(path, limit=None, limit_test=None):
    """(x_train, y_train, x_test, y_test) as Tensors: images flattened to 784 floats, normalised.
    Exits with status 1 and instructions when the file is missing."""
    if not os.path.exists(path):
        print(f"MNIST not found at {path}. Run `make data` in the repository root (it builds data/mnist.npz "
              "offline), or pass --data PATH.", file=sys.stderr)
        raise SystemExit(1)
    d = np.load(path)

    def prep(x):
        return ad.tensor(((x.reshape(len(x), -1).astype(np.float32) / 255.0) - MEAN) / STD)
    xtr, ytr = d["x_train"][:limit], d["y_train"][:limit]
    xte, yte = d["x_test"][:limit_test], d["y_test"][:limit_test]
    return prep(xtr), ad.tensor(ytr.astype(np.int64)), prep(xte), ad.tensor(yte.astype(np.int64))


def accuracy(model, x, y, batch=2000):
    model.eval()
    correct = 0
    with ad.no_grad():
        for i in range(0, x.shape[0], batch):
            correct += int((model(x[i:i + batch]).argmax(dim=1) == y[i:i + batch]).sum().item())
    model.train()
    return 100.0 * correct / x.shape[0]


def train(model, loader, opt, epochs):
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/mnist.npz")
    ap.add_argument("--epochs", type=int, default=3, help="dense training epochs")
    ap.add_argument("--finetune-epochs", type=int, default=1, help="fine-tuning epochs after each pruning step")
    ap.add_argument("--sparsities", default="0.5,0.75,0.9", help="global sparsity after each step")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    ap.add_argument("--limit-test", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hidden", default="300,100", help="hidden layer widths (LeNet-300-100 by default)")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the dense baseline given the same fine-tuning epochs without pruning")
    args = ap.parse_args(argv)

    ad.manual_seed(args.seed)
    xtr, ytr, xte, yte = load_mnist(args.data, args.limit, args.limit_test)
    loader = DataLoader(TensorDataset(xtr, ytr), batch_size=args.batch_size, shuffle=True, seed=args.seed)
    widths = [784] + [int(w) for w in args.hidden.split(",")] + [10]
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    t0 = time.perf_counter()
    train(model, loader, optim.Adam(model.parameters(), lr=args.lr), args.epochs)
    dense = accuracy(model, xte, yte)
    print(f"dense: test accuracy {dense:.2f}% ({args.epochs} epochs, {time.perf_counter() - t0:.1f} s)")

    dense_copy = copy.deepcopy(model)
    layers = [(m, "weight") for m in model if isinstance(m, nn.Linear)]
    steps = []
    prev = 0.0
    for target in [float(s) for s in args.sparsities.split(",")]:
        # amount applies to the weights still unpruned: go from `prev` to `target` overall
        amount = 1.0 - (1.0 - target) / (1.0 - prev)
        prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=amount)
        before = accuracy(model, xte, yte)
        train(model, loader, optim.Adam(model.parameters(), lr=args.lr / 2), args.finetune_epochs)
        after = accuracy(model, xte, yte)
        glob = prune.sparsity_report(model, print_fn=None)["global"]["sparsity"]
        print(f"sparsity {100 * glob:5.1f}%: accuracy {before:.2f}% right after pruning, {after:.2f}% after "
              f"{args.finetune_epochs} fine-tuning epoch(s) (dense {dense:.2f}%)")
        steps.append({"sparsity": glob, "acc_pruned": before, "acc_finetuned": after})
        prev = target
    report = prune.sparsity_report(model)
    for m, name in layers:
        prune.remove(m, name)
    final = accuracy(model, xte, yte)
    print(f"after prune.remove: accuracy {final:.2f}%, global weight sparsity "
          f"{100 * report['global']['sparsity']:.1f}%; drop vs dense {dense - final:+.2f} points")
    out = {"dense": dense, "steps": steps, "final": final, "report": report}
    if not args.no_baseline:  # the same extra fine-tuning epochs, no pruning: the fair comparison
        for _ in steps:
            train(dense_copy, loader, optim.Adam(dense_copy.parameters(), lr=args.lr / 2), args.finetune_epochs)
        out["dense_same_epochs"] = accuracy(dense_copy, xte, yte)
        print(f"dense baseline with the same {len(steps) * args.finetune_epochs} fine-tuning epochs: "
              f"{out['dense_same_epochs']:.2f}% (90%-sparse: {final - out['dense_same_epochs']:+.2f} points)")
    return out


if __name__ == "__main__":
    main()
