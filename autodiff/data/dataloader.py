"""`DataLoader`, samplers and `default_collate` (PyTorch's names and argument order).

Differences from PyTorch, on purpose:
- `device=` moves every batch to that device (one transfer per field per batch), so a training loop
  needs no `.to(device)` calls.
- `seed=` is a shortcut for `generator=` with an int; `generator` may also be a
  `numpy.random.Generator`. With neither, each epoch's shuffle seed is drawn from autodiff's global
  CPU generator, so `autodiff.manual_seed(s)` makes the order reproducible (as in PyTorch).
- Batches are fetched in the main process (`num_workers` is accepted for compatibility and must be 0).
- Datasets with batched access (`TensorDataset`, the MNIST readers, `Subset` of those) are indexed
  once per batch with a single fancy index per field; other datasets go sample by sample through
  `collate_fn` (default: `default_collate`).
"""
from __future__ import annotations

import numbers

import numpy as np

from ..autograd import _new_tensor
from ..device import as_device, backend_for
from ..tensor import Tensor
from .dataset import batch_fetcher, make_rng


# ----------------------------------------------------------------------------- samplers
class Sampler:
    """Base of index samplers: iterate over dataset indices."""

    def __iter__(self):
        raise NotImplementedError

    def _epoch_indices(self):
        """This epoch's indices as a 1-D int64 array (used by DataLoader's batched path)."""
        return np.fromiter(iter(self), dtype=np.int64)


class SequentialSampler(Sampler):
    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)

    def _epoch_indices(self):
        return np.arange(len(self.data_source), dtype=np.int64)


class RandomSampler(Sampler):
    """A random permutation each epoch (or `num_samples` draws with replacement)."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = bool(replacement)
        self._num_samples = num_samples
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples <= 0):
            raise ValueError(f"RandomSampler: num_samples should be a positive integer, got {num_samples!r}")
        self.generator = generator
        # an explicit generator/seed is one stream across epochs; None draws a fresh seed per epoch
        self._rng = None if generator is None else make_rng(generator, what="RandomSampler")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __len__(self):
        return self.num_samples

    def _epoch_indices(self):
        rng = self._rng if self._rng is not None else make_rng(None, what="RandomSampler")
        n = len(self.data_source)
        if self.replacement:
            return rng.integers(0, n, size=self.num_samples, dtype=np.int64)
        reps = -(-self.num_samples // n) if n else 0
        perm = np.concatenate([rng.permutation(n) for _ in range(reps)]) if reps else np.empty(0, np.int64)
        return perm[:self.num_samples].astype(np.int64, copy=False)

    def __iter__(self):
        return iter(self._epoch_indices().tolist())

    def state_dict(self):
        return {} if self._rng is None else {"bit_generator": self._rng.bit_generator.state}

    def load_state_dict(self, state):
        if "bit_generator" in state:
            if self._rng is None:
                self._rng = np.random.default_rng()
            self._rng.bit_generator.state = state["bit_generator"]


class SubsetRandomSampler(Sampler):
    """The given indices in a random order each epoch."""

    def __init__(self, indices, generator=None):
        self.indices = np.asarray(indices, dtype=np.int64)
        self._rng = None if generator is None else make_rng(generator, what="SubsetRandomSampler")

    def __len__(self):
        return len(self.indices)

    def _epoch_indices(self):
        rng = self._rng if self._rng is not None else make_rng(None, what="SubsetRandomSampler")
        return self.indices[rng.permutation(len(self.indices))]

    def __iter__(self):
        return iter(self._epoch_indices().tolist())


class BatchSampler(Sampler):
    """Groups the indices of `sampler` into lists of `batch_size`."""

    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size should be a positive integer, got {batch_size!r}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = bool(drop_last)

    def __iter__(self):
        batch = []
        for i in self.sampler:
            batch.append(int(i))
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


# ----------------------------------------------------------------------------- collate
def default_collate(batch):
    """Stack a list of samples into a batch, recursing into tuples, lists and dicts.

    Tensors and NumPy arrays are stacked along a new first axis (dtype kept); Python ints become an
    int64 tensor, floats a float64 tensor and bools a bool tensor (as PyTorch); strings stay a list.
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        from ..ops.shape import stack
        return stack([b.detach() if b.requires_grad else b for b in batch], 0)
    if isinstance(elem, np.ndarray):
        return Tensor(np.stack(batch))
    if isinstance(elem, np.generic):
        return Tensor(np.array(batch, dtype=elem.dtype))
    if isinstance(elem, bool):
        return Tensor(np.array(batch, dtype=np.bool_))
    if isinstance(elem, numbers.Integral):
        return Tensor(np.array(batch, dtype=np.int64))
    if isinstance(elem, numbers.Real):
        return Tensor(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, dict):
        return {k: default_collate([d[k] for d in batch]) for k in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, (tuple, list)):
        n = len(elem)
        if any(len(b) != n for b in batch):
            raise RuntimeError("default_collate: each element in the batch should be of equal size")
        return [default_collate(list(s)) for s in zip(*batch)]
    raise TypeError(f"default_collate: batch must contain tensors, NumPy arrays, numbers, dicts or lists; "
                    f"found {type(elem).__name__}")


def _to_device(obj, dev):
    if dev is None:
        return obj
    if isinstance(obj, Tensor):
        return obj.to(dev)
    if isinstance(obj, dict):
        return {k: _to_device(v, dev) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_to_device(v, dev) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, dev) for v in obj)
    return obj


# ----------------------------------------------------------------------------- DataLoader
class DataLoader:
    """Iterate over `dataset` in batches of Tensors.

    `DataLoader(dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
    num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
    worker_init_fn=None, generator=None, *, seed=None, device=None)`.

    Each batch of a batched-access dataset is a list with one Tensor per field (as
    `default_collate` gives for tuple samples). `state_dict()` / `load_state_dict()` save and restore
    the shuffle generator, so a resumed run sees the same order as an uninterrupted one.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 generator=None, *, seed=None, device=None, prefetch_factor=None, persistent_workers=False):
        if num_workers != 0:
            raise ValueError(f"DataLoader: num_workers={num_workers} is not supported; batches are fetched in "
                             "the main process (batched datasets need no workers), use num_workers=0")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size = None
        elif batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size <= 0
                                         or isinstance(batch_size, bool)):
            raise ValueError(f"DataLoader: batch_size should be a positive integer, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        self.dataset = dataset
        self.batch_size = None if batch_size is None else int(batch_size)
        self.drop_last = bool(drop_last)
        self.num_workers = 0
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.collate_fn = collate_fn
        self.device = None if device is None else as_device(device)
        if self.device is not None:
            backend_for(self.device)  # an unavailable device fails here, with the backend's explanation
        if generator is not None or seed is not None:
            generator = make_rng(generator, seed, what="DataLoader")
        self.generator = generator
        if sampler is None:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self._fetch = batch_fetcher(dataset) if collate_fn is None else None

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.sampler)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def state_dict(self):
        sd = getattr(self.sampler, "state_dict", None)
        return {"sampler": sd() if sd is not None else {}}

    def load_state_dict(self, state):
        ld = getattr(self.sampler, "load_state_dict", None)
        if ld is not None:
            ld(state.get("sampler", {}))

    def _batches(self):
        if self.batch_sampler is not None:
            for b in self.batch_sampler:
                yield np.asarray(b, dtype=np.int64)
            return
        idx = self.sampler._epoch_indices() if hasattr(self.sampler, "_epoch_indices") else \
            np.fromiter(iter(self.sampler), dtype=np.int64)
        if self.batch_size is None:
            for i in idx:
                yield i
            return
        bs = self.batch_size
        n = len(idx)
        stop = n - n % bs if self.drop_last else n
        for s in range(0, stop, bs):
            yield idx[s:s + bs]

    def __iter__(self):
        dev = self.device
        move = None if dev is None else backend_for(dev)
        fetch = self._fetch
        if fetch is not None and self.batch_size is not None:
            for idx in self._batches():
                arrays = fetch(idx)
                if move is not None:
                    yield [_new_tensor(move.asarray(a, device=dev)) if type(a) not in move.array_types
                           else _new_tensor(a) for a in arrays]
                else:
                    yield [_new_tensor(a) for a in arrays]
            return
        collate = self.collate_fn if self.collate_fn is not None else default_collate
        ds = self.dataset
        for idx in self._batches():
            if self.batch_size is None and self.batch_sampler is None:
                sample = ds[int(idx)]
                yield _to_device(sample if self.collate_fn is None else collate(sample), dev)
            else:
                yield _to_device(collate([ds[int(i)] for i in idx]), dev)
