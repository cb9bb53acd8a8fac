"""Datasets: `Dataset`, `TensorDataset`, `Subset`, `ConcatDataset`, `random_split` (PyTorch's
`torch.utils.data` names and semantics).

Batched access. A dataset may define `_get_batch(indices)` (indices: a 1-D int64 NumPy array)
returning a tuple of backend arrays, one per field, each with the batch as its first axis. The
`DataLoader` then fetches a whole batch with one fancy index per field instead of a Python loop
over samples and a collate step. `TensorDataset`, `Subset` of such a dataset and the MNIST readers
implement it.
"""
from __future__ import annotations

import bisect
import math

import numpy as np

from ..tensor import Tensor


def make_rng(generator=None, seed=None, what="data"):
    """A `numpy.random.Generator` from `generator` (None, an int seed, a NumPy Generator, or an object
    with a `.seed()`-like int in `initial_seed()`) or `seed`.

    With neither given, the seed is drawn from autodiff's global CPU generator, so that
    `autodiff.manual_seed(s)` makes shuffling and splits reproducible (as `torch.manual_seed` does).
    """
    if generator is not None and seed is not None:
        raise ValueError(f"{what}: pass either generator= or seed=, not both")
    if generator is None:
        generator = seed
    if isinstance(generator, np.random.Generator):
        return generator
    if generator is None:
        from .. import backends
        s = int(backends.get_cpu_backend().rng.integers(0, 2 ** 63 - 1))
        return np.random.default_rng(s)
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    init = getattr(generator, "initial_seed", None)
    if callable(init):
        return np.random.default_rng(int(init()))
    raise TypeError(f"{what}: generator must be None, an int seed or a numpy.random.Generator, "
                    f"got {type(generator).__name__}")


class Dataset:
    """Map-style dataset: subclasses implement `__getitem__(index)` and `__len__()`."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Samples are tuples `(t[i] for t in tensors)`; all tensors share their first dimension.

    Accepts Tensors or array-likes (NumPy arrays are wrapped without copying when possible).
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        ts = tuple(t if isinstance(t, Tensor) else Tensor(np.asarray(t)) for t in tensors)
        n = ts[0].shape[0] if ts[0].ndim else None
        for t in ts:
            if t.ndim == 0 or t.shape[0] != n:
                shapes = ", ".join(str(tuple(x.shape)) for x in ts)
                raise ValueError(f"TensorDataset: size mismatch between tensors: all need the same first "
                                 f"dimension, got shapes {shapes}")
        self.tensors = ts

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]

    def _get_batch(self, indices):
        out = []
        for t in self.tensors:
            a = t.data
            if not isinstance(a, np.ndarray):  # a device array: move the index there once
                from ..backends import backend_of
                idx = backend_of(a).asarray(indices)
            else:
                idx = indices
            out.append(a[idx])
        return tuple(out)


class Subset(Dataset):
    """The samples of `dataset` at `indices`."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    """The concatenation of several datasets."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = []
        s = 0
        for d in self.datasets:
            s += len(d)
            self.cumulative_sizes.append(s)

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise IndexError(f"ConcatDataset: index {idx} out of range for length {len(self)}")
            idx = len(self) + idx
        d = bisect.bisect_right(self.cumulative_sizes, idx)
        prev = 0 if d == 0 else self.cumulative_sizes[d - 1]
        return self.datasets[d][idx - prev]


def batch_fetcher(dataset):
    """`indices -> tuple of backend arrays` for datasets that support batched access, else None."""
    if isinstance(dataset, Subset):
        inner = batch_fetcher(dataset.dataset)
        if inner is None:
            return None
        base = np.asarray(dataset.indices, dtype=np.int64)
        return lambda indices: inner(base[indices])
    if getattr(dataset, "transform", None) is not None or getattr(dataset, "target_transform", None) is not None:
        return None  # per-sample transforms need the per-sample path
    return getattr(dataset, "_get_batch", None)


def random_split(dataset, lengths, generator=None):
    """Split `dataset` into non-overlapping `Subset`s of the given lengths (or fractions summing to 1,
    with the remainder spread round-robin as in PyTorch). `generator`: None (global seed), an int
    seed, or a `numpy.random.Generator`."""
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(0 <= f <= 1 for f in lengths) and math.isclose(sum(lengths), 1) and sum(lengths) <= 1 \
            and not all(isinstance(f, (int, np.integer)) and not isinstance(f, bool) for f in lengths):
        sizes = [int(math.floor(n * f)) for f in lengths]
        rem = n - sum(sizes)
        for i in range(rem):
            sizes[i % len(sizes)] += 1
        lengths = sizes
    if any(int(x) != x or x < 0 for x in lengths):
        raise ValueError(f"random_split: lengths must be non-negative integers or fractions summing to 1, "
                         f"got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"random_split: sum of input lengths {sum(lengths)} does not equal the length of the "
                         f"input dataset {n}")
    perm = make_rng(generator, what="random_split").permutation(n)
    out, offset = [], 0
    for length in lengths:
        out.append(Subset(dataset, perm[offset:offset + int(length)].tolist()))
        offset += int(length)
    return out
