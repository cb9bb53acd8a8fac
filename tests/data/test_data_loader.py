"""Datasets and the DataLoader: batching, shuffle, drop_last, determinism, devices, collate."""
import numpy as np
import pytest

import autodiff
from autodiff.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, RandomSampler, SequentialSampler,
                           Subset, TensorDataset, default_collate, random_split)
from tests.conftest import to_numpy


def _ds(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64)
    return TensorDataset(autodiff.tensor(x), autodiff.tensor(y))


class _ListDataset(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full(2, i, dtype=np.float32), i


def test_tensor_dataset_basics():
    ds = _ds(5)
    assert len(ds) == 5
    x, y = ds[2]
    assert x.tolist() == [6.0, 7.0, 8.0] and y.item() == 2
    with pytest.raises(ValueError, match="size mismatch.*\\(5, 3\\).*\\(4,\\)"):
        TensorDataset(autodiff.zeros(5, 3), autodiff.zeros(4))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()


def test_batching_and_drop_last(device):
    ds = _ds(10)
    batches = list(DataLoader(ds, batch_size=4, device=device))
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    assert all(b[0].device.type == device for b in batches)
    assert to_numpy(batches[0][1]).tolist() == [0, 1, 2, 3]
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64
    dl = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dl) == 2 and [b[0].shape[0] for b in dl] == [4, 4]
    assert len(DataLoader(ds, batch_size=4)) == 3
    np.testing.assert_array_equal(np.concatenate([to_numpy(b[0]) for b in batches]), to_numpy(ds.tensors[0]))


def test_shuffle_is_a_permutation_and_reproducible():
    ds = _ds(50)
    a = np.concatenate([b[1].numpy() for b in DataLoader(ds, batch_size=8, shuffle=True, seed=3)])
    b = np.concatenate([b[1].numpy() for b in DataLoader(ds, batch_size=8, shuffle=True, seed=3)])
    c = np.concatenate([b[1].numpy() for b in DataLoader(ds, batch_size=8, shuffle=True, seed=4)])
    assert sorted(a.tolist()) == list(range(50))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # the same loader gives a new order each epoch, and the sequence of epochs is reproducible
    dl1 = DataLoader(ds, batch_size=50, shuffle=True, seed=3)
    dl2 = DataLoader(ds, batch_size=50, shuffle=True, generator=np.random.default_rng(3))
    e1 = [next(iter(dl1))[1].numpy() for _ in range(2)]
    e2 = [next(iter(dl2))[1].numpy() for _ in range(2)]
    assert not np.array_equal(e1[0], e1[1])
    np.testing.assert_array_equal(e1[0], e2[0])
    np.testing.assert_array_equal(e1[1], e2[1])


def test_shuffle_follows_manual_seed():
    ds = _ds(30)
    autodiff.manual_seed(7)
    a = next(iter(DataLoader(ds, batch_size=30, shuffle=True)))[1].numpy()
    autodiff.manual_seed(7)
    b = next(iter(DataLoader(ds, batch_size=30, shuffle=True)))[1].numpy()
    np.testing.assert_array_equal(a, b)


def test_loader_state_dict_resumes_order():
    ds = _ds(20)
    dl = DataLoader(ds, batch_size=20, shuffle=True, seed=11)
    next(iter(dl))
    state = dl.state_dict()
    expect = next(iter(dl))[1].numpy()
    dl2 = DataLoader(ds, batch_size=20, shuffle=True, seed=999)
    dl2.load_state_dict(state)
    np.testing.assert_array_equal(next(iter(dl2))[1].numpy(), expect)


def test_generic_dataset_collate_and_batched_path_agree():
    ds = _ListDataset(7)
    batches = list(DataLoader(ds, batch_size=3))
    assert len(batches) == 3
    x, y = batches[0]
    assert x.shape == (3, 2) and x.dtype == np.float32 and y.dtype == np.int64 and y.tolist() == [0, 1, 2]
    # a TensorDataset through a custom collate_fn (the slow path) gives the same batches
    td = _ds(7)
    fast = [b[0].numpy() for b in DataLoader(td, batch_size=3)]
    slow = [b[0].numpy() for b in DataLoader(td, batch_size=3, collate_fn=default_collate)]
    for f, s in zip(fast, slow):
        np.testing.assert_array_equal(f, s)


def test_default_collate_types():
    out = default_collate([{"a": 1.5, "b": np.int32(2), "c": "s"}, {"a": 2.5, "b": np.int32(3), "c": "t"}])
    assert out["a"].dtype == np.float64 and out["b"].dtype == np.int32 and out["c"] == ["s", "t"]
    assert default_collate([True, False]).dtype == np.bool_
    t = default_collate([autodiff.ones(2), autodiff.zeros(2)])
    assert t.shape == (2, 2)
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([object()])


def test_batch_size_none_and_batch_sampler():
    ds = _ListDataset(3)
    items = list(DataLoader(ds, batch_size=None))
    assert len(items) == 3 and items[1][1] == 1
    bs = BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False)
    assert list(bs) == [[0, 1], [2, 3], [4]] and len(bs) == 3
    dl = DataLoader(_ds(5), batch_sampler=bs)
    assert [b[1].tolist() for b in dl] == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(_ds(5), batch_size=2, batch_sampler=bs)


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(_ds(), batch_size=0)
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(_ds(), num_workers=2)
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(_ds(), sampler=SequentialSampler(range(3)), shuffle=True)
    with pytest.raises(ValueError, match="either generator= or seed="):
        DataLoader(_ds(), shuffle=True, seed=1, generator=2)


def test_random_split_and_subset():
    ds = _ds(10)
    a, b = random_split(ds, [7, 3], generator=0)
    assert len(a) == 7 and len(b) == 3
    ids = sorted([int(a[i][1].item()) for i in range(7)] + [int(b[i][1].item()) for i in range(3)])
    assert ids == list(range(10))
    a2, _ = random_split(ds, [7, 3], generator=0)
    assert a.indices == a2.indices
    parts = random_split(ds, [0.5, 0.3, 0.2], generator=1)
    assert [len(p) for p in parts] == [5, 3, 2]
    with pytest.raises(ValueError, match="does not equal the length"):
        random_split(ds, [3, 3])
    # Subset of a TensorDataset keeps the batched path, with the right rows
    sub = Subset(ds, [9, 1, 4])
    (x, y), = list(DataLoader(sub, batch_size=3))
    assert y.tolist() == [9, 1, 4]


def test_concat_dataset():
    c = ConcatDataset([_ListDataset(2), _ListDataset(3)])
    assert len(c) == 5 and c[2][1] == 0 and c[-1][1] == 2
    assert len(_ListDataset(2) + _ListDataset(1)) == 3


def test_random_sampler_replacement():
    s = RandomSampler(range(5), replacement=True, num_samples=20, generator=0)
    idx = list(s)
    assert len(idx) == 20 and set(idx) <= set(range(5))
    s = RandomSampler(range(4), num_samples=10, generator=0)
    assert len(list(s)) == 10


def test_unavailable_device_fails_at_construction():
    from tests.conftest import CUDA_OK
    if CUDA_OK:
        pytest.skip("a GPU is available here")
    with pytest.raises(autodiff.BackendUnavailable):
        DataLoader(_ds(), device="cuda")


def test_torch_style_import_path_is_the_same_objects():
    from autodiff.utils.data import DataLoader, TensorDataset
    import autodiff.data as D
    assert DataLoader is D.DataLoader and TensorDataset is D.TensorDataset
