"""Tensor creation, dtype inference and conversion, attributes, printing."""
import numpy as np
import pytest

import autodiff as ad
from conftest import to_numpy


# ----------------------------------------------------------------------------- factories
def test_factories(device):
    assert ad.zeros(2, 3, device=device).shape == (2, 3)
    assert ad.zeros((2, 3), device=device).dtype == ad.float32
    assert float(ad.ones(4, device=device).sum()) == 4.0
    f = ad.full((2, 2), 7, device=device)
    assert f.dtype == ad.int64 and f.tolist() == [[7, 7], [7, 7]]
    assert ad.full((2,), 1.5, device=device).dtype == ad.float32
    assert ad.full((2,), True, device=device).dtype == ad.bool
    assert ad.empty(3, dtype=ad.float64, device=device).dtype == ad.float64
    a = ad.arange(5, device=device)
    assert a.dtype == ad.int64 and a.tolist() == [0, 1, 2, 3, 4]
    assert ad.arange(1, 2, 0.25, device=device).tolist() == [1.0, 1.25, 1.5, 1.75]
    assert ad.arange(0.0, 3, device=device).dtype == ad.float32
    ls = ad.linspace(0, 1, 5, device=device)
    assert ls.dtype == ad.float32 and np.allclose(to_numpy(ls), [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(to_numpy(ad.eye(3, device=device)), np.eye(3))
    assert ad.eye(2, 3, device=device).shape == (2, 3)
    r = ad.rand(1000, device=device)
    assert r.dtype == ad.float32 and 0 <= float(r.min()) and float(r.max()) < 1
    n = ad.randn(2000, dtype=ad.float64, device=device)
    assert n.dtype == ad.float64 and abs(float(n.mean())) < 0.1
    ri = ad.randint(3, 6, (100,), device=device)
    assert ri.dtype == ad.int64 and int(ri.min()) >= 3 and int(ri.max()) < 6
    assert ad.randint(4, size=(2, 2), device=device).shape == (2, 2)
    z = ad.zeros(2, requires_grad=True, device=device)
    assert z.requires_grad and z.is_leaf


def test_like_factories(device):
    x = ad.ones(2, 3, dtype=ad.float64, device=device)
    for f in (ad.zeros_like, ad.ones_like, ad.empty_like, ad.rand_like, ad.randn_like):
        y = f(x)
        assert y.shape == (2, 3) and y.dtype == ad.float64 and y.device == x.device
    assert ad.zeros_like(x, dtype=ad.int32).dtype == ad.int32
    assert ad.full_like(x, 3.0).tolist() == [[3.0] * 3] * 2
    assert ad.randint_like(x, 5).dtype == ad.float64
    assert float(ad.ones_like(x).sum()) == 6.0
    assert ad.zeros_like(x, requires_grad=True).requires_grad


def test_manual_seed_reproducible(device):
    ad.manual_seed(123)
    a = ad.randn(5, device=device).tolist()
    ad.manual_seed(123)
    b = ad.randn(5, device=device).tolist()
    assert a == b


# ----------------------------------------------------------------------------- dtypes
def test_dtype_inference():
    assert ad.tensor(1.5).dtype == ad.float32
    assert ad.tensor([1, 2]).dtype == ad.int64
    assert ad.tensor([1, 2.5]).dtype == ad.float32
    assert ad.tensor([True, False]).dtype == ad.bool
    assert ad.tensor([[1, 2], [3, 4]]).shape == (2, 2)
    assert ad.tensor(np.zeros(3, dtype=np.float64)).dtype == ad.float64
    assert ad.tensor(np.zeros(3, dtype=np.int32)).dtype == ad.int32
    assert ad.tensor(np.float64(2.0)).dtype == ad.float64
    assert ad.tensor([]).dtype == ad.float32
    assert ad.tensor(ad.ones(2, dtype=ad.float16)).dtype == ad.float16


def test_dtype_names_interchangeable_with_numpy():
    assert ad.float32 == np.float32 and ad.float64 == np.dtype("float64")
    assert ad.int64 == np.int64 and ad.bool == np.bool_
    for spelled in (ad.float64, np.float64, "float64", "double", np.dtype(np.float64)):
        assert ad.zeros(1, dtype=spelled).dtype == ad.float64
    assert ad.ones(2, dtype=ad.int32).dtype == np.int32
    assert ad.tensor([1, 2], dtype=np.float16).dtype == ad.float16
    assert ad.float16 == ad.half and ad.float64 == ad.double and ad.int64 == ad.long
    assert isinstance(ad.float32, ad.dtype)


def test_default_dtype():
    assert ad.get_default_dtype() == ad.float32
    ad.set_default_dtype(ad.float64)
    try:
        assert ad.tensor([1.5]).dtype == ad.float64 and ad.zeros(1).dtype == ad.float64
    finally:
        ad.set_default_dtype(ad.float32)
    with pytest.raises(TypeError, match="set_default_dtype"):
        ad.set_default_dtype(ad.int64)


def test_dtype_conversions(device):
    x = ad.tensor([1.7, -2.2], device=device)
    assert x.double().dtype == ad.float64
    assert x.half().dtype == ad.float16
    assert x.float().dtype == ad.float32
    assert x.long().dtype == ad.int64 and x.long().tolist() == [1, -2]
    assert x.int().dtype == ad.int32
    assert x.bool().dtype == ad.bool
    assert x.to(ad.float64).dtype == ad.float64
    assert x.to(dtype=np.float64).dtype == ad.float64
    assert x.to("float64").dtype == ad.float64
    assert x.to(device).device == x.device
    assert x.type_as(ad.ones(1, dtype=ad.float64)).dtype == ad.float64
    assert x.to(ad.float32) is x
    assert x.to(ad.float32, copy=True) is not x


def test_to_is_differentiable(device):
    x = ad.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x.double() * 3).sum().backward()
    assert x.grad.dtype == ad.float32 and x.grad.tolist() == [3.0, 3.0]
    assert not x.long().requires_grad


# ----------------------------------------------------------------------------- attributes
def test_attributes(device):
    x = ad.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], device=device, requires_grad=True)
    assert x.shape == (2, 3) and x.size() == (2, 3) and x.size(1) == 3 and x.size(-1) == 3
    assert x.ndim == 2 and x.dim() == 2 and x.numel() == 6 and len(x) == 2
    assert x.dtype == ad.float32 and x.device == ad.device(device)
    assert x.is_leaf and x.grad is None and x.grad_fn is None
    assert x.T.shape == (3, 2) and x.T.tolist() == [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]
    y = x * 2
    assert not y.is_leaf and y.requires_grad and y.grad_fn.name() == "Mul"
    assert y.grad_fn.next_functions[0][0] is x
    assert x.is_floating_point() and not ad.ones(1, dtype=ad.int64).is_floating_point()
    assert ad.is_tensor(x) and not ad.is_tensor(np.ones(1))


def test_data_is_settable_and_bypasses_autograd(device):
    x = ad.tensor([1.0, 2.0], device=device, requires_grad=True)
    new = ad.tensor([5.0, 6.0], device=device).data
    x.data = new
    assert x.data is new and x.tolist() == [5.0, 6.0] and x.requires_grad
    (x * x).sum().backward()
    assert x.grad.tolist() == [10.0, 12.0]
    g = x.grad
    g.data = g.data * 0
    assert x.grad.tolist() == [0.0, 0.0]


def test_grad_is_settable(device):
    x = ad.tensor([1.0], device=device, requires_grad=True)
    x.grad = ad.tensor([3.0], device=device)
    (x * 2).sum().backward()
    assert x.grad.tolist() == [5.0]
    x.grad = None
    assert x.grad is None


def test_numpy_item_tolist(device):
    x = ad.tensor([[1.0, 2.0]], device=device)
    if device == "cpu":
        arr = x.numpy()
        assert isinstance(arr, np.ndarray) and arr.shape == (1, 2)
        arr[0, 0] = 9.0  # shares memory, as torch.Tensor.numpy on the CPU
        assert x.tolist() == [[9.0, 2.0]]
    assert ad.tensor([3.5], device=device).item() == 3.5
    assert isinstance(ad.tensor(3, device=device).item(), int)
    assert isinstance(ad.tensor(True, device=device).item(), bool)
    assert ad.tensor([[1, 2]], device=device).tolist() == [[1, 2]]
    assert float(ad.tensor(2.5, device=device)) == 2.5 and int(ad.tensor(7, device=device)) == 7
    with pytest.raises(RuntimeError, match="requires grad.*detach"):
        ad.ones(1, requires_grad=True).numpy()


def test_detach_and_requires_grad_(device):
    x = ad.ones(2, device=device)
    assert x.requires_grad_() is x and x.requires_grad
    y = (x * 2).detach()
    assert not y.requires_grad and y.is_leaf
    x.requires_grad_(False)
    assert not x.requires_grad
    z = ad.ones(2, requires_grad=True, device=device) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        z.requires_grad_(False)


def test_repr(device):
    x = ad.tensor([1.0, 2.5], device=device)
    r = repr(x)
    assert r == "tensor([1.0000, 2.5000])" + ("" if device == "cpu" else ", device='cuda:0'")
    assert repr(ad.tensor([1.0, 2.0], device=device)).startswith("tensor([1., 2.]")
    assert repr(ad.tensor([1e-5, 1.0], device=device)).startswith("tensor([1.0000e-05, 1.0000e+00]")
    assert "dtype" not in r  # default dtype omitted, as PyTorch
    assert "dtype=float64" in repr(x.double())
    assert "requires_grad=True" in repr(x.requires_grad_())
    assert repr(x * 2).endswith("grad_fn=<MulBackward0>)")
    if device == "cpu":
        assert repr(ad.tensor([1, 2])) == "tensor([1, 2])"
    else:
        assert "device='cuda:0'" in repr(x)
    assert str(x.device) == ("cpu" if device == "cpu" else "cuda:0")


def test_repr_shows_backward_name():
    x = ad.ones(2, requires_grad=True)
    assert "grad_fn=<MulBackward0>" in repr(x * 2)
    assert "grad_fn=<SumBackward0>" in repr((x * 2).sum())
    assert "grad_fn=<ExpBackward0>" in repr(x.exp())


def test_iteration_and_bool(device):
    x = ad.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    rows = list(x)
    assert len(rows) == 2 and rows[1].tolist() == [3.0, 4.0]
    assert bool(ad.tensor([1.0], device=device)) and not bool(ad.tensor(0.0, device=device))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(x)
    with pytest.raises(TypeError, match="0-d"):
        len(ad.tensor(1.0, device=device))


def test_tensor_hash_is_identity(device):
    a, b = ad.ones(2, device=device), ad.ones(2, device=device)
    assert len({a, b}) == 2 and hash(a) != hash(b)
    assert (a == b).dtype == ad.bool  # __eq__ is elementwise, as PyTorch


def test_device_objects():
    d = ad.device("cpu")
    assert str(d) == "cpu" and d == "cpu" and d.type == "cpu"
    assert ad.device("cuda:1").index == 1 and ad.device("cuda").index is None
    with pytest.raises(ValueError, match="unknown device type"):
        ad.device("tpu")


def test_numpy_interop(device):
    x = ad.tensor([1.0, 2.0], device=device)
    a = np.asarray(x)
    assert isinstance(a, np.ndarray) and a.tolist() == [1.0, 2.0]
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    y = np.ones(2, np.float32) * x  # ndarray op Tensor defers to the Tensor
    assert isinstance(y, ad.Tensor) and y.tolist() == [1.0, 2.0]
    s = ad.tensor([ad.tensor(1.5, device=device), ad.tensor(2.5, device=device)])
    assert s.tolist() == [1.5, 2.5] and s.dtype == ad.float32
    with pytest.raises(RuntimeError, match="requires grad"):
        np.asarray(ad.ones(2, requires_grad=True))


def test_view_dtype_reinterprets(device):
    x = ad.tensor([1.0, -2.0], device=device)
    bits = x.view(ad.int32)
    assert bits.dtype == ad.int32 and bits.tolist() == np.array([1.0, -2.0], np.float32).view(np.int32).tolist()
    with pytest.raises(RuntimeError, match="view: cannot view a float32 tensor as float64"):
        x.view(ad.float64)


def test_misc_pytorch_api(device):
    x = ad.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    assert x.type() == ("autodiff.FloatTensor" if device == "cpu" else "autodiff.cuda.FloatTensor")
    assert x.type(ad.float64).dtype == ad.float64
    assert x.is_contiguous() and not x.T.is_contiguous()
    z = x.new_zeros(3)
    assert z.shape == (3,) and z.dtype == ad.float32 and z.device == x.device
    assert x.new_ones((2, 1)).tolist() == [[1.0], [1.0]]
    assert x.new_full((2,), 7.0).tolist() == [7.0, 7.0]
    assert x.new_tensor([1, 2]).dtype == ad.float32
    assert x.new_zeros(2, dtype=ad.int64).dtype == ad.int64
    assert ad.isclose(x, x + 1e-9).all().item() and not ad.isclose(x, x + 1).any().item()
    v, i = ad.sort(ad.tensor([3.0, 1.0, 2.0, 1.0], device=device), descending=True)
    assert v.tolist() == [3.0, 2.0, 1.0, 1.0] and i.tolist() == [0, 2, 1, 3]  # stable among ties
    if hasattr(ad.Tensor, "softmax"):
        np.testing.assert_allclose(to_numpy(x.softmax(1).sum(1)), [1.0, 1.0], rtol=1e-6)


def test_autocast_is_exported_like_torch_autocast():
    import autodiff as ad
    assert ad.autocast is ad.amp.autocast


def test_subpackages_load_lazily_on_attribute_access():
    import subprocess
    import sys
    code = ("import sys, autodiff; assert 'autodiff.data' not in sys.modules; "
            "autodiff.data.DataLoader; autodiff.utils.data.TensorDataset; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_shape_is_a_size_tuple_like_torch_size():
    import autodiff as ad
    x = ad.ones(2, 3)
    assert isinstance(x.shape, tuple) and x.shape == (2, 3) and x.size() == ad.Size([2, 3])
    assert repr(x.shape) == "autodiff.Size([2, 3])" and x.shape.numel() == 6
    assert isinstance(x.shape[1:], ad.Size) and x.shape[0] == 2
