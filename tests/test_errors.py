"""Bad input: each case raises an exception whose message names the op and the offending
shapes / dtypes / devices."""
import numpy as np
import pytest

import autodiff as ad
from autodiff import backends
from autodiff.backends.numpy_backend import NumpyBackend
from conftest import CUDA_OK


def test_shape_mismatch_binary(device):
    with pytest.raises(RuntimeError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        ad.ones(2, 3, device=device) + ad.ones(4, device=device)


@pytest.mark.parametrize("opname,fn", [
    ("mul", lambda a, b: a * b), ("sub", lambda a, b: a - b), ("div", lambda a, b: a / b),
    ("maximum", ad.maximum), ("pow", lambda a, b: a ** b), ("eq", lambda a, b: a == b),
])
def test_broadcast_failure_names_op_and_shapes(opname, fn, device):
    a, b = ad.ones(2, 3, device=device), ad.ones(3, 2, device=device)
    with pytest.raises(RuntimeError, match=rf"{opname}: shapes \(2, 3\) and \(3, 2\) cannot be broadcast"):
        fn(a, b)


def test_matmul_shape_mismatch(device):
    with pytest.raises(RuntimeError, match=r"matmul: shapes \(2, 3\) and \(2, 3\) do not align"):
        ad.ones(2, 3, device=device) @ ad.ones(2, 3, device=device)
    with pytest.raises(RuntimeError, match=r"matmul: batch dimensions of \(2, 2, 3\) and \(3, 3, 2\)"):
        ad.ones(2, 2, 3, device=device) @ ad.ones(3, 3, 2, device=device)
    with pytest.raises(RuntimeError, match=r"matmul: both arguments need at least 1 dimension"):
        ad.ones((), device=device) @ ad.ones(3, device=device)


def test_other_shape_errors(device):
    x = ad.ones(2, 3, device=device)
    with pytest.raises(RuntimeError, match=r"reshape: shape \(4,\) is invalid for input of size 6"):
        x.reshape(4)
    with pytest.raises(RuntimeError, match=r"cat: sizes of tensors must match.*\(2, 3\).*\(2, 4\)"):
        ad.cat([x, ad.ones(2, 4, device=device)])
    with pytest.raises(RuntimeError, match=r"stack: expects each tensor to be equal size.*\(2, 3\).*\(3,\)"):
        ad.stack([x, ad.ones(3, device=device)])
    with pytest.raises(RuntimeError, match=r"broadcast_to: shape \(2, 3\) cannot be expanded to \(4, 3\)"):
        x.expand(4, 3)
    with pytest.raises(RuntimeError, match=r"where: condition of shape \(2,\)"):
        ad.where(ad.ones(2, device=device) > 0, ad.ones(3, device=device), 0.0)
    with pytest.raises(RuntimeError, match=r"dot: inconsistent tensor size"):
        ad.dot(ad.ones(2, device=device), ad.ones(3, device=device))
    with pytest.raises(RuntimeError, match=r"einsum: subscript 'j' has size 2 in one operand and 3"):
        ad.einsum("ij,jk", x, x)
    with pytest.raises(RuntimeError, match=r"split: split sizes \[1, 0\] do not sum to the dimension size 2"):
        x.split([1, 0], dim=0)


def test_wrong_dtype(device):
    with pytest.raises(RuntimeError, match=r"mean: input dtype should be floating point, got int64"):
        ad.tensor([1, 2], device=device).mean()
    with pytest.raises(RuntimeError, match=r"masked_fill: mask must be a bool tensor, got float32"):
        ad.ones(2, device=device).masked_fill(ad.ones(2, device=device), 0.0)
    with pytest.raises(RuntimeError, match=r"gather: index must be an integer tensor, got float32"):
        ad.ones(3, device=device).gather(0, ad.ones(3, device=device))
    with pytest.raises(RuntimeError, match=r"scatter_add: index must be an integer tensor, got float32"):
        ad.scatter_add(ad.zeros(3, device=device), 0, ad.ones(2, device=device), ad.ones(2, device=device))
    with pytest.raises(RuntimeError, match=r"scatter_add: index of shape \(2,\) does not fit input \(3, 4\)"):
        ad.scatter_add(ad.zeros(3, 4, device=device), 0, ad.tensor([0, 1], device=device), ad.ones(1, 2, device=device))
    with pytest.raises(IndexError, match=r"getitem: tensors used as indices must be long, int or bool, got float32"):
        ad.ones(3, device=device)[ad.tensor([0.5], device=device)]
    with pytest.raises(RuntimeError, match=r"matmul: not implemented for bool"):
        ad.ones(2, dtype=ad.bool, device=device) @ ad.ones(2, dtype=ad.bool, device=device)
    with pytest.raises(TypeError, match=r"neg: negation of a bool tensor"):
        -ad.ones(2, dtype=ad.bool, device=device)
    with pytest.raises(TypeError, match=r"unknown dtype 'foo'"):
        ad.ones(2, dtype="foo", device=device)
    with pytest.raises(TypeError, match=r"add: unsupported operand type str"):
        ad.ones(2, device=device) + "a"


def test_integer_tensor_cannot_require_grad(device):
    for dt in (ad.int64, ad.int32, ad.bool):
        with pytest.raises(RuntimeError, match=rf"only floating point tensors can require gradients, got {dt}"):
            ad.ones(2, dtype=dt, device=device).requires_grad_()
    with pytest.raises(RuntimeError, match="only floating point"):
        ad.tensor([1, 2], requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match="only floating point"):
        ad.zeros(2, dtype=ad.int64, requires_grad=True, device=device)
    t = ad.tensor([1, 2], device=device)
    with pytest.raises(RuntimeError, match=r"requires_grad: only floating point tensors can require gradients, got int64"):
        t.requires_grad = True
    assert not t.requires_grad
    y = ad.ones(2, requires_grad=True, device=device) * 2
    with pytest.raises(RuntimeError, match=r"requires_grad: you can only change requires_grad flags of leaf"):
        y.requires_grad = False
    f = ad.ones(2, device=device)
    f.requires_grad = True
    assert f.requires_grad and f.is_leaf


def test_backward_nonscalar_without_gradient(device):
    y = ad.ones(3, requires_grad=True, device=device) * 2
    with pytest.raises(RuntimeError, match=r"backward: grad can be implicitly created only for scalar outputs; "
                                           r"got an output of shape \(3,\)"):
        y.backward()
    with pytest.raises(RuntimeError, match=r"backward: gradient has shape \(2,\) but the output has shape \(3,\)"):
        y.backward(ad.ones(2, device=device))


def test_backward_on_tensor_without_grad(device):
    with pytest.raises(RuntimeError, match=r"backward: element of shape \(\) does not require grad"):
        ad.ones(3, device=device).sum().backward()
    with pytest.raises(RuntimeError, match=r"grad: an input of shape \(2,\) does not require grad"):
        ad.grad(ad.ones(2, requires_grad=True, device=device).sum(), ad.ones(2, device=device))


def test_item_on_multi_element(device):
    with pytest.raises(RuntimeError, match=r"item: a tensor with 3 elements \(shape \(3,\)\) cannot be converted"):
        ad.ones(3, device=device).item()
    with pytest.raises(RuntimeError, match=r"bool: a tensor with 2 elements is ambiguous"):
        bool(ad.ones(2, device=device))


@pytest.mark.parametrize("opname,fn", [
    ("sum", lambda x: x.sum(dim=2)), ("mean", lambda x: x.mean(-3)), ("amax", lambda x: x.amax(2)),
    ("max", lambda x: x.max(dim=5)), ("var", lambda x: x.var(2)), ("argmax", lambda x: x.argmax(2)),
    ("logsumexp", lambda x: x.logsumexp(2)), ("softmax|cumsum", lambda x: x.cumsum(2)),
    ("transpose", lambda x: x.transpose(0, 2)), ("squeeze", lambda x: x.squeeze(5)),
    ("unsqueeze", lambda x: x.unsqueeze(4)), ("flatten", lambda x: x.flatten(3)), ("size", lambda x: x.size(2)),
    ("cat", lambda x: ad.cat([x, x], dim=2)), ("flip", lambda x: x.flip(2)), ("split", lambda x: x.split(1, 2)),
    ("gather", lambda x: x.gather(2, ad.zeros(2, 3, dtype=ad.int64, device=x.device))),
])
def test_out_of_range_dim(opname, fn, device):
    x = ad.ones(2, 3, device=device)
    with pytest.raises(IndexError, match=rf"({opname}): dimension -?\d out of range for a tensor of 2 dimensions"):
        fn(x)


def test_index_out_of_range(device):
    with pytest.raises(IndexError, match=r"getitem: index 5 is out of bounds for dimension 0 with size 3"):
        ad.ones(3, device=device)[5]
    with pytest.raises(IndexError, match=r"getitem: index 3 is out of bounds for dimension 1 with size 3"):
        ad.ones(2, 3, device=device)[:, [0, 3]]
    with pytest.raises(IndexError, match=r"getitem: too many indices"):
        ad.ones(2, device=device)[0, 0]
    with pytest.raises(IndexError, match=r"getitem: boolean mask of shape \(3,\) does not match"):
        ad.ones(2, device=device)[ad.tensor([True, False, True], device=device)]


def test_reduction_of_empty(device):
    with pytest.raises((RuntimeError, IndexError), match=r"(max|amax): cannot reduce"):
        ad.zeros(0, device=device).max()
    with pytest.raises(IndexError, match=r"max: cannot reduce over dimension 1 of size 0"):
        ad.zeros(2, 0, device=device).max(dim=1)


# ----------------------------------------------------------------------------- devices
class _FakeDeviceArray(np.ndarray):
    """A NumPy array type standing in for a second device's arrays (plumbing test only)."""


class _FakeDeviceBackend(NumpyBackend):
    name = "fake"
    device_type = "cuda"
    array_types = (_FakeDeviceArray,)

    def asarray(self, data, dtype=None, device=None):
        return np.asarray(data, dtype=dtype).view(_FakeDeviceArray)

    def device_of(self, a):
        return "cuda:0"


@pytest.fixture
def fake_device():
    b = _FakeDeviceBackend()
    backends._by_array_type[_FakeDeviceArray] = b
    try:
        yield b
    finally:
        del backends._by_array_type[_FakeDeviceArray]


def _on_fake(b, values):
    return ad.autograd._new_tensor(b.asarray(np.asarray(values, dtype=np.float32)))


def test_mixing_devices_raises_plumbing(fake_device):
    """Plumbing test of the device check with a fake second array type; not GPU validation."""
    cpu = ad.ones(3)
    other = _on_fake(fake_device, [1.0, 2.0, 3.0])
    assert str(other.device) == "cuda:0"
    for fn in (lambda: cpu + other, lambda: other * cpu, lambda: ad.maximum(cpu, other),
               lambda: ad.where(cpu > 0, cpu, other)):
        with pytest.raises(RuntimeError, match=r"expected all tensors on the same device, got (cpu, cuda:0|"
                                               r"cuda:0, cpu)"):
            fn()
    with pytest.raises(RuntimeError, match=r"(cat|Cat): expected all tensors on the same device"):
        ad.cat([cpu, other])
    with pytest.raises(RuntimeError, match=r"matmul|MatMul"):
        cpu @ other


def test_zero_dim_cpu_tensor_may_join_device_tensor_plumbing(fake_device):
    """As PyTorch: a 0-d CPU tensor is allowed beside a device tensor (plumbing only)."""
    other = _on_fake(fake_device, [1.0, 2.0])
    out = other * ad.tensor(3.0)
    assert isinstance(out.data, _FakeDeviceArray) and out.tolist() == [3.0, 6.0]


@pytest.mark.skipif(CUDA_OK, reason="checks the error raised when CUDA is missing")
def test_cuda_unavailable_says_how_to_install():
    with pytest.raises(ad.BackendUnavailable, match=r"(?i)pip install.*cuda|cupy"):
        ad.zeros(2, device="cuda")


def test_bad_device_string():
    with pytest.raises(ValueError, match=r"device: unknown device type 'tpu'"):
        ad.zeros(2, device="tpu")


def test_host_index_lists_checked_then_moved_to_device_plumbing(fake_device):
    """Plumbing (fake second array type, not GPU validation): list indices are range-checked on
    the host and then moved to the tensor's device; device index arrays are not synced to check."""
    x = _on_fake(fake_device, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    with pytest.raises(IndexError, match=r"getitem: index 3 is out of bounds for dimension 1 with size 3"):
        x[:, [0, 3]]
    y = x[:, [2, 0]]
    assert isinstance(y.data, _FakeDeviceArray) and y.tolist() == [[3.0, 1.0], [6.0, 4.0]]
