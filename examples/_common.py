"""Shared helpers for the examples: command-line options and MNIST as NumPy arrays."""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout

import autodiff  # noqa: E402
from autodiff.data import MNIST  # noqa: E402


def parser(description, epochs=5, lr=1e-3, batch_size=128):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--data-root", default="data", help="folder holding mnist.npz (make data) or the IDX files")
    p.add_argument("--seed", type=int, default=0)
    return p


def device(name):
    if name:
        return autodiff.device(name)
    from autodiff.train import best_device
    return autodiff.device(best_device())


def mnist_arrays(root, limit=None):
    """(x_train, y_train, x_test, y_test): float32 images (N, 1, 28, 28) in [0, 1], int64 labels.
    `limit` keeps the first `limit` training images and the first max(limit // 2, 1000) test images."""
    train, test = MNIST(root, train=True), MNIST(root, train=False)
    x_train, y_train = train.arrays()
    x_test, y_test = test.arrays()
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
        keep = max(limit // 2, 1000)
        x_test, y_test = x_test[:keep], y_test[:keep]
    return x_train, y_train, x_test, y_test


def accuracy(logits, y):
    return float((np.asarray(logits).argmax(1) == np.asarray(y)).mean())
