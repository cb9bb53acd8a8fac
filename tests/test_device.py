"""The device model: `autodiff.device` objects, Tensor/Module moves, the default device, and, on a GPU,
the CUDA backend end to end (placement, moves, mixed-device errors, float16, seeds, memory statistics,
and a training step with zero device-to-host transfers).

The CPU tests run everywhere; the `cuda`-marked ones are skipped with the reason when CuPy or a GPU is
missing (`make gpu-check` runs them).
"""
import gc

import numpy as np
import pytest

import autodiff
from autodiff import backends


# ----------------------------------------------------------------------------- device objects (CPU)
def test_device_parse_print_compare():
    d = autodiff.device("cuda:1")
    assert (d.type, d.index) == ("cuda", 1)
    assert str(d) == "cuda:1" and repr(d) == "device(type='cuda', index=1)"
    assert repr(autodiff.device("cpu")) == "device(type='cpu')" and str(autodiff.device("cpu")) == "cpu"
    assert autodiff.device("cuda", 0) == autodiff.device("cuda:0") == "cuda:0"
    assert autodiff.device("cuda") != autodiff.device("cuda:0")  # no index != index 0, as PyTorch
    assert autodiff.device(0) == autodiff.device("cuda:0")
    assert autodiff.device(autodiff.device("cuda:2")) == "cuda:2"
    assert autodiff.device("CPU") == "cpu"
    assert autodiff.device("cpu") != "cuda" and autodiff.device("cpu") != 3
    assert len({autodiff.device("cuda:0"), autodiff.device("cuda", 0), autodiff.device("cpu")}) == 2


@pytest.mark.parametrize("spec, err", [("tpu", "unknown device type 'tpu'"), ("cuda:x", "bad device index"),
                                       ("cuda:-1", "negative index"), ("cpu:1", "cpu has no index")])
def test_device_bad_specs(spec, err):
    with pytest.raises(ValueError, match=err):
        autodiff.device(spec)


def test_device_bad_type():
    with pytest.raises(TypeError, match="expected a string"):
        autodiff.device(1.5)
    with pytest.raises(ValueError, match="index given twice"):
        autodiff.device("cuda:0", 1)


def test_tensor_device_and_moves_on_cpu():
    x = autodiff.arange(6.0)
    assert x.device == "cpu" and not x.is_cuda
    assert x.cpu() is x and x.to("cpu") is x
    y = x.to("cpu", autodiff.float64)
    assert y.dtype == np.float64 and y.device == "cpu"
    z = x.to(dtype=autodiff.float16)
    assert z.dtype == np.float16
    w = x.to(autodiff.zeros(1, dtype=autodiff.float64))  # to(other) takes its device and dtype
    assert w.dtype == np.float64


def test_factories_default_device_cpu():
    for t in (autodiff.zeros(2), autodiff.ones(2, 3), autodiff.randn(2), autodiff.rand(2),
              autodiff.arange(3), autodiff.full((2,), 1.0), autodiff.eye(2), autodiff.tensor([1.0])):
        assert t.device == "cpu"
    assert autodiff.zeros(2, device="cpu").device == "cpu"


def test_bad_cuda_index_error_needs_no_gpu():
    # Without CUDA this is the clear unavailable error; with CUDA an invalid ordinal.
    with pytest.raises(RuntimeError):
        autodiff.zeros(2, device="cuda:99")


# ----------------------------------------------------------------------------- on the GPU
def _cuda():
    try:
        return backends.get_backend("cupy")
    except backends.BackendUnavailable as e:
        pytest.skip(f"needs a CUDA GPU with CuPy (run `make gpu-check` on one): {e}")


@pytest.fixture
def cuda():
    return _cuda()


@pytest.mark.cuda
def test_cuda_factories_and_placement(cuda):
    cp = cuda.xp
    for t in (autodiff.zeros(2, 3, device="cuda"), autodiff.randn(4, device="cuda:0"),
              autodiff.arange(5, device="cuda"), autodiff.tensor([1.0, 2.0], device="cuda"),
              autodiff.full((2,), 3.0, device="cuda"), autodiff.rand(3, device=autodiff.device("cuda", 0)),
              autodiff.randint(0, 5, (3,), device="cuda"), autodiff.randperm(6, device="cuda")):
        assert isinstance(t.data, cp.ndarray) and t.device == "cuda:0" and t.is_cuda
    assert autodiff.cuda.is_available() and autodiff.cuda.device_count() >= 1
    assert autodiff.cuda.current_device() == 0
    assert isinstance(autodiff.cuda.get_device_name(), str) and autodiff.cuda.get_device_name()
    autodiff.cuda.synchronize()


@pytest.mark.cuda
def test_cuda_moves_roundtrip_and_grad(cuda):
    x = autodiff.randn(3, 4, requires_grad=True)
    g = x.cuda()
    assert g.device == "cuda:0" and g.to("cuda") is g and g.cuda() is g
    y = (g * 2.0).to("cpu", autodiff.float64)
    assert y.device == "cpu" and y.dtype == np.float64
    y.sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), np.full((3, 4), 2.0))
    np.testing.assert_array_equal(g.cpu().numpy(), x.detach().numpy())
    h = g.to(autodiff.float16)
    assert h.dtype == np.float16 and h.device == "cuda:0"


@pytest.mark.cuda
def test_cuda_mixed_device_errors(cuda):
    a = autodiff.ones(3, device="cuda")
    b = autodiff.ones(3)
    with pytest.raises(RuntimeError, match=r"expected all tensors on the same device, got cuda:0, cpu"):
        a + b
    with pytest.raises(RuntimeError, match=r"same device, got cpu, cuda:0"):
        autodiff.ones(2, 3) @ autodiff.ones(3, 2, device="cuda")
    # Python scalars and 0-d CPU tensors combine with CUDA tensors
    c = a * 2 + autodiff.tensor(1.5)
    assert c.device == "cuda:0"
    np.testing.assert_allclose(c.cpu().numpy(), np.full(3, 3.5))


@pytest.mark.cuda
def test_cuda_float16_elementwise_and_matmul(cuda):
    rng = np.random.default_rng(0)
    an = rng.standard_normal((16, 32)).astype(np.float16)
    bn = rng.standard_normal((32, 8)).astype(np.float16)
    a, b = autodiff.tensor(an, device="cuda"), autodiff.tensor(bn, device="cuda")
    assert (a + 1).dtype == np.float16 and a.relu().dtype == np.float16
    np.testing.assert_allclose((a * a).cpu().numpy().astype(np.float32), (an * an).astype(np.float32),
                               rtol=1e-3)
    c = a @ b
    assert c.dtype == np.float16
    np.testing.assert_allclose(c.cpu().numpy().astype(np.float32), an.astype(np.float32) @ bn.astype(np.float32),
                               rtol=2e-2, atol=2e-2)


@pytest.mark.cuda
def test_cuda_bfloat16_supported_or_clear_error(cuda):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf = np.dtype(ml_dtypes.bfloat16)
    try:
        x = cuda.asarray(np.ones(4, dtype=np.float32), dtype=bf)
    except TypeError as e:
        assert "bfloat16 is not supported on CUDA" in str(e) and "float16 or float32" in str(e)
        return
    assert x.dtype == bf


@pytest.mark.cuda
def test_cuda_manual_seed_reproducible(cuda):
    autodiff.manual_seed(123)
    a = autodiff.randn(5, device="cuda").cpu().numpy()
    autodiff.cuda.manual_seed(123)
    b = autodiff.randn(5, device="cuda").cpu().numpy()
    autodiff.cuda.manual_seed_all(123)
    c = autodiff.randn(5, device="cuda").cpu().numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


@pytest.mark.cuda
def test_cuda_memory_stats(cuda):
    gc.collect()
    autodiff.cuda.empty_cache()
    base = autodiff.cuda.memory_allocated()
    autodiff.cuda.reset_peak_memory_stats()
    x = autodiff.zeros(1 << 20, device="cuda")  # 4 MiB
    assert autodiff.cuda.memory_allocated() >= base + (4 << 20)
    assert autodiff.cuda.max_memory_allocated() >= base + (4 << 20)
    assert autodiff.cuda.memory_reserved() >= autodiff.cuda.memory_allocated()
    del x
    gc.collect()
    assert autodiff.cuda.memory_allocated() == base
    assert autodiff.cuda.max_memory_allocated() >= base + (4 << 20)  # the peak remembers
    autodiff.cuda.reset_peak_memory_stats()
    assert autodiff.cuda.max_memory_allocated() == base


def _mlp_step_parts(device):
    nn = pytest.importorskip("nn")
    optim = pytest.importorskip("optim")
    F = pytest.importorskip("nn.functional")
    autodiff.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5)).to(device)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = autodiff.randn(16, 20).to(device)  # drawn on the CPU: the same data on every device
    y = autodiff.randint(0, 5, (16,)).to(device)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return model, opt, step


@pytest.mark.cuda
def test_cuda_training_step_has_zero_host_transfers(cuda):
    model, opt, step = _mlp_step_parts("cuda")
    step()  # warm-up: kernel compilation and optimizer state creation
    with autodiff.cuda._count_transfers() as log:
        loss = step()
        step()
    assert log.count == 0, f"device-to-host transfers in a training step:\n{log!r}"
    assert all(p.device == "cuda:0" for p in model.parameters())
    with autodiff.cuda._count_transfers() as log:
        loss.item()
    assert log.count == 1  # the counter does see a real transfer


@pytest.mark.cuda
def test_cuda_transfer_counter_sees_each_host_read(cuda):
    """The counter behind the zero-transfer test must see every kind of host read on this CuPy (CuPy 14 no
    longer calls its sync detector; autodiff.cuda._count_transfers also wraps ndarray.get)."""
    cp = cuda.xp
    a = cp.arange(4, dtype=cp.float32)
    reads = {"float": lambda: float(a.sum()), "bool": lambda: bool(a.any()), "int": lambda: int(a[1]),
             "item": lambda: a.sum().item(), "tolist": lambda: a.tolist(), "get": lambda: a.get(),
             "asnumpy": lambda: cp.asnumpy(a), "repr": lambda: repr(a)}
    missed = {}
    for what, read in reads.items():
        with autodiff.cuda._count_transfers() as log:
            read()
        if log.count != 1:
            missed[what] = log.count
    assert not missed, f"transfers counted per host read (want 1 each): {missed}; hooks {log.hooks}"


@pytest.mark.cuda
def test_cuda_training_matches_cpu(cuda):
    losses = {}
    for dev in ("cpu", "cuda"):
        _, _, step = _mlp_step_parts(dev)
        losses[dev] = [step().item() for _ in range(3)]
    np.testing.assert_allclose(losses["cuda"], losses["cpu"], rtol=1e-4, atol=1e-5)


@pytest.mark.cuda
def test_cuda_module_and_optimizer_state_follow(cuda):
    model, opt, step = _mlp_step_parts("cpu")
    step()  # optimizer state created on the CPU
    model.to("cuda")
    x = autodiff.randn(4, 20, device="cuda")
    model(x).sum().backward()
    opt.step()  # state follows the parameters to the GPU
    for st in opt.state.values():
        for v in st.values():
            if isinstance(v, autodiff.Tensor) and v.ndim > 0:
                assert v.device == "cuda:0"


@pytest.mark.cuda
def test_cuda_memory_returns_to_baseline_after_step(cuda):
    model, opt, step = _mlp_step_parts("cuda")
    step()
    gc.collect()
    base = autodiff.cuda.memory_allocated()
    for _ in range(3):
        step()
    gc.collect()
    assert autodiff.cuda.memory_allocated() == base
