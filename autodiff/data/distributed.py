"""`DistributedSampler`: each rank iterates over its own shard of the dataset (PyTorch's semantics).

DistributedSampler(dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False)

- Every epoch the indices are shuffled with seed `seed + epoch` (call `set_epoch(epoch)` before each
  epoch, as in PyTorch, or every epoch sees the same order). All ranks draw the same permutation, so
  the shards are disjoint.
- Without `drop_last` the index list is padded by repeating its start until it divides evenly
  (every rank gets `ceil(len / num_replicas)` samples; a few samples are seen twice per epoch);
  with `drop_last` the tail is dropped (`ceil((len - num_replicas) / num_replicas)` samples per rank
  when the length does not divide).
- Rank r takes indices r, r + num_replicas, r + 2 * num_replicas, ... of that list.

Difference from PyTorch: the permutation comes from NumPy's PCG64 (`default_rng(seed + epoch)`), not
from torch's Mersenne-Twister `randperm`, so shuffled orders differ from PyTorch's (the sharding,
padding and lengths are the same; with shuffle=False the indices are identical).
"""
from __future__ import annotations

import math

import numpy as np

from .dataloader import Sampler


class DistributedSampler(Sampler):
    """Restrict data loading to this rank's shard; use as `DataLoader(dataset, sampler=...)`."""

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            from .. import distributed as dist
            if not dist.is_initialized():
                raise RuntimeError("DistributedSampler: num_replicas and rank are needed when the default "
                                   "process group is not initialized (call "
                                   "autodiff.distributed.init_process_group() first)")
            if num_replicas is None:
                num_replicas = dist.get_world_size()
            if rank is None:
                rank = dist.get_rank()
        if not isinstance(num_replicas, (int, np.integer)) or isinstance(num_replicas, bool) or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive integer, got {num_replicas!r}")
        if not isinstance(rank, (int, np.integer)) or isinstance(rank, bool) or rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        self.drop_last = bool(drop_last)
        n = len(dataset)
        if self.drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        self.shuffle = bool(shuffle)
        self.seed = int(seed)

    def _epoch_indices(self):
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.default_rng(self.seed + self.epoch).permutation(n).astype(np.int64)
        else:
            indices = np.arange(n, dtype=np.int64)
        if not self.drop_last:
            pad = self.total_size - n
            if pad > 0:
                if pad <= n:
                    indices = np.concatenate([indices, indices[:pad]])
                else:
                    indices = np.concatenate([indices] * math.ceil(self.total_size / max(n, 1)))[:self.total_size]
        else:
            indices = indices[:self.total_size]
        assert len(indices) == self.total_size
        out = indices[self.rank:self.total_size:self.num_replicas]
        assert len(out) == self.num_samples
        return out

    def __iter__(self):
        return iter(self._epoch_indices().tolist())

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Set the epoch; with shuffle=True this changes the permutation (same on every rank)."""
        self.epoch = int(epoch)
