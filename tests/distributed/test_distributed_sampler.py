"""DistributedSampler: PyTorch's sharding, padding and drop_last semantics (no MPI needed)."""
import pytest

import autodiff as ad
from autodiff.data import DataLoader, TensorDataset
from autodiff.data.distributed import DistributedSampler


class Len:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def shards(n, k, **kw):
    return [list(DistributedSampler(Len(n), num_replicas=k, rank=r, **kw)) for r in range(k)]


def test_no_shuffle_matches_pytorch_indices():
    # PyTorch's algorithm worked by hand for DistributedSampler(range(10), num_replicas=3, rank=r, shuffle=False)
    assert shards(10, 3, shuffle=False) == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]
    assert shards(10, 3, shuffle=False, drop_last=True) == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    assert shards(2, 5, shuffle=False) == [[0], [1], [0], [1], [0]]  # padding longer than the data
    assert shards(8, 4, shuffle=False) == [[0, 4], [1, 5], [2, 6], [3, 7]]


@pytest.mark.parametrize("n,k,drop", [(10, 3, False), (10, 3, True), (9, 3, False), (7, 2, True), (3, 4, False)])
def test_lengths_and_cover(n, k, drop):
    s = shards(n, k, shuffle=True, seed=5, drop_last=drop)
    per = -(-(n - k) // k) if drop and n % k else -(-n // k)
    assert all(len(x) == per for x in s)
    assert len(DistributedSampler(Len(n), num_replicas=k, rank=0, drop_last=drop)) == per
    flat = sum(s, [])
    if drop:
        assert len(set(flat)) == len(flat)  # disjoint, nothing repeated
    else:
        assert set(flat) == set(range(n))  # every sample is seen


def test_shuffle_same_on_every_rank_and_changes_with_epoch():
    a = shards(20, 2, seed=3)
    assert sorted(a[0] + a[1]) == list(range(20))
    samplers = [DistributedSampler(Len(20), num_replicas=2, rank=r, seed=3) for r in range(2)]
    for s in samplers:
        s.set_epoch(1)
    b = [list(s) for s in samplers]
    assert sorted(b[0] + b[1]) == list(range(20))
    assert b != a
    assert [list(s) for s in samplers] == b  # deterministic for a given epoch
    assert shards(20, 2, seed=4) != a


def test_with_dataloader():
    ds = TensorDataset(ad.arange(10, dtype=ad.float64))
    got = []
    for r in range(2):
        loader = DataLoader(ds, batch_size=2, sampler=DistributedSampler(ds, num_replicas=2, rank=r,
                                                                         shuffle=False))
        got.append([b[0].tolist() for b in loader])
    assert got == [[[0.0, 2.0], [4.0, 6.0], [8.0]], [[1.0, 3.0], [5.0, 7.0], [9.0]]]


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"Invalid rank 3, rank should be in the interval \[0, 2\]"):
        DistributedSampler(Len(5), num_replicas=3, rank=3)
    with pytest.raises(ValueError, match="Invalid rank -1"):
        DistributedSampler(Len(5), num_replicas=3, rank=-1)
    with pytest.raises(ValueError, match="num_replicas must be a positive integer"):
        DistributedSampler(Len(5), num_replicas=0, rank=0)
    with pytest.raises(RuntimeError, match="process group is not initialized"):
        DistributedSampler(Len(5))
