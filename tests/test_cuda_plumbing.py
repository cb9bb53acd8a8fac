"""CUDA plumbing that can be checked without a GPU.

- the errors for missing CuPy, a broken CuPy import and a missing GPU/driver (CuPy faked or blocked);
- `import autodiff` does not import CuPy; `python -m autodiff.info`; AUTODIFF_DEVICE / AUTODIFF_BACKEND;
- dispatch, device moves, mixed-device errors and the no-host-transfer training step, with a FAKE device
  backend that substitutes NumPy for CuPy (an ndarray subclass registered as the "cuda" array type).

The fake-backend tests are plumbing tests only: they are NOT GPU validation (see tests/test_device.py and
tests/backends/test_cuda_kernels.py, marked `cuda`, for that).
"""
import importlib.abc
import importlib.machinery
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import autodiff
from autodiff import backends
from autodiff.backends import BackendUnavailable
from autodiff.backends import cupy_backend
from autodiff.backends.base import Backend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code=None, args=None, env=None, timeout=60):
    e = dict(os.environ)
    for k in ("AUTODIFF_DEVICE", "AUTODIFF_BACKEND"):
        e.pop(k, None)
    e.update(env or {})
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    cmd = [sys.executable] + (["-c", code] if code is not None else args)
    return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout, cwd=ROOT)


def _cuda_ok():
    return autodiff.cuda.is_available()


# ----------------------------------------------------------------------------- lazy import
def test_import_autodiff_does_not_import_cupy():
    r = _run("import sys, autodiff, autodiff.cuda, autodiff.info\n"
             "x = autodiff.ones(3, requires_grad=True); (x * 2).sum().backward()\n"
             "print(autodiff.cuda.__name__)\n"
             "assert 'cupy' not in sys.modules, 'autodiff imported cupy'\n"
             "print('ok')")
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


# ----------------------------------------------------------------------------- unavailable-CUDA errors
@pytest.fixture
def no_cuda_loaded(monkeypatch):
    """Forget a loaded CUDA backend for the duration of the test (restored afterwards)."""
    monkeypatch.delitem(backends._instances, "cupy", raising=False)
    for name in [m for m in sys.modules if m == "cupy" or m.startswith("cupy.") or m.startswith("cupyx")]:
        monkeypatch.delitem(sys.modules, name)
    return monkeypatch


def test_missing_cupy_error(no_cuda_loaded):
    no_cuda_loaded.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail like a missing package
    with pytest.raises(BackendUnavailable) as ei:
        cupy_backend.load_cupy_backend()
    msg = str(ei.value)
    assert "CuPy is not installed" in msg
    assert "pip install 'autodiff[cuda13]'" in msg and "autodiff[cuda12]" in msg
    # the same error through the public entry points; the query functions answer instead of raising
    with pytest.raises(BackendUnavailable, match="CuPy is not installed"):
        autodiff.zeros(2, device="cuda")
    with pytest.raises(BackendUnavailable, match="CuPy is not installed"):
        autodiff.ones(2).cuda()
    with pytest.raises(BackendUnavailable, match="CuPy is not installed"):
        autodiff.ones(2).to("cuda:0")
    assert isinstance(ei.value, RuntimeError)
    assert autodiff.cuda.is_available() is False
    assert autodiff.cuda.device_count() == 0
    assert "not installed" in autodiff.cuda.unavailable_reason()
    with pytest.raises(BackendUnavailable):
        autodiff.cuda.memory_allocated()


class _BrokenCupyFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds a 'cupy' whose import fails the way a wheel built for another CUDA version does."""

    def find_spec(self, name, path=None, target=None):
        if name == "cupy":
            return importlib.machinery.ModuleSpec("cupy", self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise ImportError("libcudart.so.13: cannot open shared object file: No such file or directory")


def test_broken_cupy_import_error(no_cuda_loaded):
    no_cuda_loaded.setattr(sys, "meta_path", [_BrokenCupyFinder()] + sys.meta_path)
    with pytest.raises(BackendUnavailable) as ei:
        cupy_backend.load_cupy_backend()
    msg = str(ei.value)
    assert "installed and fails to import" in msg
    assert "libcudart.so.13" in msg
    assert "autodiff[cuda13]" in msg


def _fake_cupy(get_count):
    cp = types.ModuleType("cupy")
    cp.__version__ = "14.0.0"
    cp.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=get_count))
    return cp


def test_no_gpu_error(no_cuda_loaded):
    def count():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    no_cuda_loaded.setitem(sys.modules, "cupy", _fake_cupy(count))
    with pytest.raises(BackendUnavailable) as ei:
        cupy_backend.load_cupy_backend()
    msg = str(ei.value)
    assert "CuPy 14.0.0 cannot use a GPU" in msg
    assert "cudaErrorNoDevice: no CUDA-capable device is detected" in msg
    assert "nvidia-smi" in msg
    with pytest.raises(BackendUnavailable, match="cudaErrorNoDevice"):
        autodiff.randn(3, device="cuda")
    assert autodiff.cuda.is_available() is False
    assert "cudaErrorNoDevice" in autodiff.cuda.unavailable_reason()


def test_zero_gpus_error(no_cuda_loaded):
    no_cuda_loaded.setitem(sys.modules, "cupy", _fake_cupy(lambda: 0))
    with pytest.raises(BackendUnavailable, match="no CUDA GPU is visible"):
        cupy_backend.load_cupy_backend()
    assert "cupy" not in backends._instances  # a failure is not cached: a later call tries again


# ----------------------------------------------------------------------------- autodiff.info
def test_info_command():
    r = _run(args=["-m", "autodiff.info"])
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("autodiff ")
    assert "numpy" in out and "backends:" in out and "default device: cpu" in out
    if _cuda_ok():
        assert "cupy   available" in out and "CUDA runtime" in out and "cuda:0" in out
    else:
        assert "cupy   unavailable: " in out
        assert "GPU: none usable" in out


def test_info_json():
    r = _run(args=["-m", "autodiff.info", "--json"])
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["backends"]["numpy"] == {"available": True}
    assert set(info["backends"]) == {"numpy", "numba", "cupy"}
    if not info["backends"]["cupy"]["available"]:
        assert info["backends"]["cupy"]["why"] and info["gpus"] == []


# ----------------------------------------------------------------------------- default device and backend selection
def test_env_device_cpu():
    r = _run("import autodiff; print(autodiff.zeros(2).device, autodiff.get_default_device())",
             env={"AUTODIFF_DEVICE": "cpu"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["cpu", "cpu"]


def test_env_device_cuda():
    r = _run("import autodiff\n"
             "print(autodiff.get_default_device())\n"
             "autodiff.set_default_device('cpu')  # the environment variable wins\n"
             "print(autodiff.randn(2, 2).device)", env={"AUTODIFF_DEVICE": "cuda"})
    if _cuda_ok():
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["cuda", "cuda:0"]
    else:
        assert r.returncode != 0
        assert r.stdout.split() == ["cuda"]
        assert "BackendUnavailable" in r.stderr and "CuPy" in r.stderr


def test_env_device_invalid():
    r = _run("import autodiff; autodiff.zeros(2)", env={"AUTODIFF_DEVICE": "tpu"})
    assert r.returncode != 0
    assert "unknown device type 'tpu'" in r.stderr


def test_set_default_device_in_process():
    prev = autodiff.get_default_device()
    try:
        autodiff.set_default_device("cpu")
        assert autodiff.ones(1).device == autodiff.device("cpu")
        assert autodiff.get_default_device() == "cpu"
    finally:
        autodiff.set_default_device(prev)


def test_env_backend():
    r = _run("import autodiff; from autodiff import backends; print(backends.get_cpu_backend().name)",
             env={"AUTODIFF_BACKEND": "numba"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() in ("numba", "numpy")  # numpy (with a warning) where numba cannot load
    r = _run("import autodiff", env={"AUTODIFF_BACKEND": "cupy"})
    assert r.returncode != 0
    assert "AUTODIFF_BACKEND='cupy' is not a CPU backend" in r.stderr and "AUTODIFF_DEVICE=cuda" in r.stderr


def test_set_backend_errors():
    with pytest.raises(ValueError, match="set_backend: unknown CPU backend 'cuda'"):
        autodiff.set_backend("cuda")
    with pytest.raises(ValueError, match="choose 'numpy' or 'numba'"):
        autodiff.set_backend("torch")
    assert backends.get_cpu_backend().name in ("numpy", "numba")


# ----------------------------------------------------------------------------- plumbing with a fake device backend
HOST_READS = []  # host reads of FakeGpuArray values (what would be a device->host sync on a GPU)


class FakeGpuArray(np.ndarray):
    """A NumPy array that the fake backend claims lives on 'cuda:0' (plumbing tests only). Reading a
    value on the host (bool, float, int, item, tolist) is recorded in HOST_READS."""

    def _read(self, what):
        HOST_READS.append(what)

    def __bool__(self):
        self._read("bool")
        return super().__bool__()

    def __float__(self):
        self._read("float")
        return super().__float__()

    def __int__(self):
        self._read("int")
        return super().__int__()

    def item(self, *args):
        self._read("item")
        return super().item(*args)

    def tolist(self):
        self._read("tolist")
        return super().tolist()


def _to_fake(r):
    if type(r) is np.ndarray:
        return r.view(FakeGpuArray)
    if isinstance(r, tuple):
        return tuple(_to_fake(x) for x in r)
    return r


class _FakeXP:
    """numpy, except that every array it makes is a FakeGpuArray (as cupy makes cupy arrays)."""

    def __getattr__(self, name):
        f = getattr(np, name)
        if callable(f) and not isinstance(f, (type, np.ufunc)):
            return lambda *a, **k: _to_fake(f(*a, **k))
        return f

    @staticmethod
    def asarray(a, dtype=None):
        return np.asarray(a, dtype=dtype).view(FakeGpuArray)


class FakeCudaBackend(Backend):
    """NumPy pretending to be a GPU backend; counts host transfers (to_numpy calls)."""
    name = "fake-cuda"
    device_type = "cuda"
    array_types = (FakeGpuArray,)

    def __init__(self):
        super().__init__()
        self.xp = _FakeXP()
        self.to_host = 0
        self.placed_on = []

    def asarray(self, data, dtype=None, device=None):
        self.placed_on.append(None if device is None else str(device))
        if isinstance(data, np.ndarray):
            data = np.asarray(data)
        return np.array(data, dtype=dtype).view(FakeGpuArray)

    def to_numpy(self, a):
        self.to_host += 1
        return np.asarray(a).copy()

    def device_of(self, a):
        return "cuda:0"

    def full(self, shape, value, dtype, device=None):
        return np.full(shape, value, dtype=dtype).view(FakeGpuArray)

    def random(self, kind, shape, dtype, device=None, low=0, high=None):
        return np.asarray(super().random(kind, shape, dtype, device, low, high)).view(FakeGpuArray)

    @property
    def rng(self):
        if self._rng is None:
            self._rng = np.random.default_rng(0)
        return self._rng


@pytest.fixture
def fake_cuda(monkeypatch):
    b = FakeCudaBackend()
    monkeypatch.setitem(backends._instances, "cupy", b)
    monkeypatch.setitem(backends._by_array_type, FakeGpuArray, b)
    return b


def test_plumbing_factories_and_moves(fake_cuda):
    x = autodiff.zeros(2, 3, device="cuda")
    assert type(x.data) is FakeGpuArray and x.device == autodiff.device("cuda:0") and x.is_cuda
    c = autodiff.arange(6.0).reshape(2, 3)
    g = c.cuda()
    assert g.device == "cuda:0" and type(g.data) is FakeGpuArray
    assert fake_cuda.placed_on[-1] == "cuda"
    g1 = c.to("cuda:0", dtype=autodiff.float64)
    assert g1.dtype == np.float64 and g1.device == "cuda:0"
    back = g.cpu()
    assert type(back.data) is np.ndarray and back.device == "cpu"
    assert g.to("cuda") is g  # same device: no copy, like PyTorch
    np.testing.assert_array_equal(back.numpy(), np.arange(6.0).reshape(2, 3))


def test_plumbing_ops_stay_on_device(fake_cuda):
    a = autodiff.randn(4, 3, device="cuda", requires_grad=True)
    w = autodiff.randn(3, 2, device="cuda", requires_grad=True)
    y = (a @ w).relu().sum() * 2.0 + 1  # Python scalars combine with device tensors
    assert y.device == "cuda:0" and type(y.data) is FakeGpuArray
    y.backward()
    assert a.grad.device == "cuda:0" and w.grad.device == "cuda:0"
    assert type(a.grad.data) is FakeGpuArray and type(w.grad.data) is FakeGpuArray


def test_plumbing_mixed_devices_raise(fake_cuda):
    a = autodiff.ones(3, device="cuda")
    b = autodiff.ones(3)
    with pytest.raises(RuntimeError, match=r"Add: expected all tensors on the same device, got cuda:0, cpu"):
        a + b
    with pytest.raises(RuntimeError, match=r"expected all tensors on the same device, got cpu, cuda:0"):
        b * a
    with pytest.raises(RuntimeError, match="same device"):
        autodiff.ones(3, 2) @ autodiff.ones(2, 2, device="cuda")


def test_plumbing_zero_dim_cpu_tensor_combines(fake_cuda):
    a = autodiff.ones(3, device="cuda", requires_grad=True)
    s = autodiff.tensor(2.0, requires_grad=True)  # 0-d CPU tensor: allowed beside a device tensor
    y = a * s
    assert y.device == "cuda:0"
    y.sum().backward()
    assert a.grad.device == "cuda:0"
    assert s.grad is not None and float(s.grad.numpy()) == 3.0


def test_plumbing_to_device_is_differentiable(fake_cuda):
    x = autodiff.randn(3, requires_grad=True)  # cpu leaf
    y = x.cuda() * 3.0
    y.sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 3.0))


def test_plumbing_training_step_has_no_host_transfer(fake_cuda):
    """An MLP step (forward, loss, backward, SGD update) on the device neither copies to the host nor
    reads a device value there (bool/float/item); the one `.item()` at the end is the one transfer."""
    autodiff.manual_seed(0)
    w1 = autodiff.randn(8, 16, device="cuda", requires_grad=True)
    w2 = autodiff.randn(16, 3, device="cuda", requires_grad=True)
    x = autodiff.randn(5, 8, device="cuda")
    t = autodiff.randn(5, 3, device="cuda")
    fake_cuda.to_host = 0
    HOST_READS.clear()
    for _ in range(2):
        h = (x @ w1).relu()
        loss = ((h @ w2 - t) ** 2).mean()
        loss.backward()
        with autodiff.no_grad():
            for p in (w1, w2):
                p -= 0.01 * p.grad
                p.grad = None
    assert fake_cuda.to_host == 0
    assert HOST_READS == []
    loss.item()
    assert fake_cuda.to_host == 1


def test_plumbing_transfer_counter_hooks_syncdetect(monkeypatch):
    """autodiff.cuda._count_transfers wraps CuPy's sync detector (faked here) and restores it."""
    calls = []
    sd = types.ModuleType("cupy._core.syncdetect")
    sd._declare_synchronize = lambda: calls.append(1)
    core = types.ModuleType("cupy._core")
    core.syncdetect = sd
    cp = types.ModuleType("cupy")
    cp._core = core
    monkeypatch.setitem(sys.modules, "cupy", cp)
    monkeypatch.setitem(sys.modules, "cupy._core", core)
    monkeypatch.setitem(sys.modules, "cupy._core.syncdetect", sd)
    fake = types.SimpleNamespace(xp=cp)
    monkeypatch.setitem(backends._instances, "cupy", fake)
    orig = sd._declare_synchronize
    with autodiff.cuda._count_transfers() as log:
        sd._declare_synchronize()
        sd._declare_synchronize()
    assert log.count == 2 and len(calls) == 2
    assert "test_cuda_plumbing.py" in log.where[0]
    assert sd._declare_synchronize is orig


# ----------------------------------------------------------------------------- the GPU check on a CPU machine
def test_gpu_check_dry_run_reports_no_gpu(tmp_path):
    r = _run(args=["-m", "bench.gpu_check", "--dry-run"], env={"OUT": str(tmp_path)}, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    if not _cuda_ok():
        assert "no GPU" in r.stdout
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    assert summary["dry_run"] is True
    assert (tmp_path / "gpu_check.md").exists()


def test_plumbing_module_and_optimizer_state_follow_to(fake_cuda):
    """Module.to('cuda') moves parameters in place; optimizer state created on the CPU follows them at the
    next step; the step runs on the device backend's sgd_step_ slot."""
    nn = pytest.importorskip("nn")
    optim = pytest.importorskip("optim")
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    params = list(model.parameters())
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(autodiff.randn(3, 4)).sum().backward()
    opt.step()  # momentum buffers created on the CPU
    assert model.to("cuda") is model
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]  # same objects, new arrays
    assert all(p.device == "cuda:0" and type(p.data) is FakeGpuArray for p in model.parameters())
    opt.zero_grad()
    model(autodiff.randn(3, 4, device="cuda")).sum().backward()
    assert all(p.grad.device == "cuda:0" for p in model.parameters())
    opt.step()
    for st in opt.state.values():
        assert type(st["momentum_buffer"].data) is FakeGpuArray
    assert all(type(p.data) is FakeGpuArray for p in model.parameters())
    model.cpu()
    assert all(p.device == "cpu" for p in model.parameters())


# ----------------------------------------------------------------------------- CupyBackend's Python logic on a fake CuPy
def _make_fake_cupy(n_gpus=1):
    """A NumPy-backed stand-in for the parts of CuPy that CupyBackend and autodiff.cuda call outside the
    fused kernels (which it cannot emulate: building one raises). Plumbing only, NOT GPU validation."""
    cp = types.ModuleType("cupy")
    cp.__version__ = "0.0-fake"
    core = types.ModuleType("cupy._core")
    sd = types.ModuleType("cupy._core.syncdetect")
    sd._declare_synchronize = lambda: None
    core.syncdetect = sd
    cp._core = core
    current = [0]

    class Device:
        def __init__(self, i=None):
            self.id = current[0] if i is None else i

        def __enter__(self):
            self._prev = current[0]
            current[0] = self.id
            return self

        def __exit__(self, *exc):
            current[0] = self._prev

        def synchronize(self):
            sd._declare_synchronize()

        def use(self):
            current[0] = self.id

    class ndarray(np.ndarray):
        dev_id = 0

        def __array_finalize__(self, obj):
            self.dev_id = getattr(obj, "dev_id", current[0])

        @property
        def device(self):
            return Device(self.dev_id)

        def get(self):
            sd._declare_synchronize()
            return np.array(self).view(np.ndarray)

        def item(self):
            return self.get().item()

        def copy(self, *a, **k):
            out = np.array(self).view(ndarray)
            out.dev_id = current[0]
            return out

    def wrap(r):
        if type(r) is np.ndarray:
            out = r.view(ndarray)
            out.dev_id = current[0]
            return out
        return tuple(wrap(x) for x in r) if isinstance(r, tuple) else r

    def asarray(a, dtype=None):
        if isinstance(a, ndarray) and (dtype is None or a.dtype == dtype):
            return a
        return wrap(np.array(a, dtype=dtype))

    for name in ("zeros", "ones", "full", "empty", "arange", "exp", "log", "sqrt", "maximum", "where", "pad",
                 "take_along_axis", "zeros_like", "empty_like", "broadcast_to", "matmul", "tensordot",
                 "ascontiguousarray", "tanh"):
        setattr(cp, name, (lambda f: lambda *a, **k: wrap(f(*a, **k)))(getattr(np, name)))
    cp.asarray = asarray
    cp.ndarray = ndarray
    cp.add = np.add
    for name in ("float16", "float32", "float64", "int64", "int32", "bool_", "dtype", "inf", "iinfo"):
        setattr(cp, name, getattr(np, name))

    class Gen:
        def __init__(self, seed):
            self.g = np.random.default_rng(seed)

        def random(self, size=None, dtype=np.float64):
            return wrap(np.asarray(self.g.random(size, dtype=dtype)))

        def standard_normal(self, size=None, dtype=np.float64):
            return wrap(np.asarray(self.g.standard_normal(size, dtype=dtype)))

        def integers(self, low, high=None, size=None, dtype=np.int64):
            return wrap(np.asarray(self.g.integers(low, high, size=size, dtype=dtype)))

    cp.random = types.SimpleNamespace(default_rng=lambda seed=None: Gen(seed))

    class Pool:
        used = 0

        def used_bytes(self):
            return self.used

        def total_bytes(self):
            return self.used + 100

        def free_all_blocks(self):
            pass

    pool = Pool()
    cp.get_default_memory_pool = lambda: pool
    cp.get_default_pinned_memory_pool = lambda: pool
    allocator = [lambda size: types.SimpleNamespace(device_id=current[0], size=size)]
    cp.cuda = types.SimpleNamespace(
        Device=Device, get_allocator=lambda: allocator[0], set_allocator=lambda f: allocator.__setitem__(0, f),
        runtime=types.SimpleNamespace(getDeviceCount=lambda: n_gpus, getDevice=lambda: current[0],
                                      getDeviceProperties=lambda i: {"name": b"Fake GPU", "totalGlobalMem": 1 << 30,
                                                                     "major": 9, "minor": 0},
                                      runtimeGetVersion=lambda: 13000, driverGetVersion=lambda: 13000))

    def no_kernels(*a, **k):
        raise NotImplementedError("the fake CuPy compiles no kernels")
    cp.ElementwiseKernel = cp.RawModule = no_kernels
    cp._allocate = allocator
    return cp


@pytest.fixture
def fake_cupy(monkeypatch):
    """Swap in the fake CuPy (and forget any real CUDA backend) for one test; everything is restored."""
    cp = _make_fake_cupy(n_gpus=2)
    saved = [(d, dict(d)) for d in (backends._by_array_type, backends._instances, backends._seeds)]
    backends._instances.pop("cupy", None)
    for name in [m for m in sys.modules if m.split(".")[0] in ("cupy", "cupyx")] + [
            "autodiff.backends.cuda_kernels"]:
        monkeypatch.delitem(sys.modules, name, raising=False)
    # `from . import cuda_kernels` returns the package attribute when set: drop it too, so that a module bound
    # to the fake is imported fresh here and the real one (if any) is put back afterwards.
    had_kernels = "cuda_kernels" in vars(backends)
    monkeypatch.delattr(backends, "cuda_kernels", raising=False)
    monkeypatch.setitem(sys.modules, "cupy", cp)
    monkeypatch.setitem(sys.modules, "cupy._core", cp._core)
    monkeypatch.setitem(sys.modules, "cupy._core.syncdetect", cp._core.syncdetect)
    monkeypatch.setitem(sys.modules, "cupyx", None)  # a real cupyx must not be imported against the fake
    monkeypatch.setattr(autodiff.cuda, "_tracking", False)
    monkeypatch.setattr(autodiff.cuda, "_peak", {})
    try:
        yield cp
    finally:
        for d, snapshot in saved:
            d.clear()
            d.update(snapshot)
        sys.modules.pop("autodiff.backends.cuda_kernels", None)  # bound to the fake; monkeypatch restores a real one
        if not had_kernels:
            vars(backends).pop("cuda_kernels", None)  # (monkeypatch puts back only what was there)


def test_fake_cupy_backend_placement_and_devices(fake_cupy):
    x = autodiff.zeros(2, 3, device="cuda")
    assert type(x.data) is fake_cupy.ndarray and x.device == "cuda:0"
    y = autodiff.ones(2, device="cuda:1")
    assert y.device == "cuda:1"
    assert x.to("cuda:1").device == "cuda:1" and x.to("cuda:1").data.dev_id == 1  # copied to GPU 1
    with pytest.raises(RuntimeError, match=r"invalid device ordinal: cuda:5 requested but 2 GPU\(s\)"):
        autodiff.zeros(1, device="cuda:5")
    assert autodiff.cuda.device_count() == 2 and autodiff.cuda.get_device_name(1) == "Fake GPU"
    c = autodiff.tensor([1.0, 2.0]).cuda()
    np.testing.assert_array_equal(c.cpu().numpy(), [1.0, 2.0])
    assert c.cpu().device == "cpu"


def test_fake_cupy_seeds_before_and_after_load(fake_cupy):
    autodiff.manual_seed(7)  # before CUDA is loaded: applied when it loads
    a = autodiff.randn(4, device="cuda").cpu().numpy()
    autodiff.cuda.manual_seed(7)
    b = autodiff.randn(4, device="cuda").cpu().numpy()
    np.testing.assert_array_equal(a, b)
    p = autodiff.randperm(9, device="cuda").cpu().numpy()
    assert sorted(p.tolist()) == list(range(9))
    r = autodiff.randint(3, 6, (20,), device="cuda").cpu().numpy()
    assert r.min() >= 3 and r.max() < 6


def test_fake_cupy_generic_slots_and_index_conversion(fake_cupy):
    cb = backends.get_backend("cupy")
    out = cb.index_add((4, 2), np.float32, np.array([0, 0, 3]), fake_cupy.asarray(np.ones((3, 2), np.float32)))
    np.testing.assert_array_equal(np.asarray(out), [[2, 2], [0, 0], [0, 0], [1, 1]])
    # float16 takes the xp-generic path (no fused kernel is built for it)
    x = np.array([[1.0, 2.0, 0.5]], dtype=np.float16)
    loss, probs = cb.softmax_cross_entropy(fake_cupy.asarray(x), fake_cupy.asarray(np.array([1])))
    ref = backends.get_backend("numpy").softmax_cross_entropy(x, np.array([1]))
    np.testing.assert_allclose(np.asarray(loss, dtype=np.float32), ref[0].astype(np.float32), rtol=1e-3)
    # float32 goes to the fused kernels, which the fake cannot build
    with pytest.raises(NotImplementedError, match="compiles no kernels"):
        cb.softmax_cross_entropy(fake_cupy.asarray(x.astype(np.float32)), fake_cupy.asarray(np.array([1])))


def test_fake_cupy_memory_stats_and_transfer_counter(fake_cupy):
    pool = fake_cupy.get_default_memory_pool()
    pool.used = 1000
    assert autodiff.cuda.memory_allocated() == 1000 and autodiff.cuda.memory_reserved() == 1100
    autodiff.cuda.reset_peak_memory_stats()
    pool.used = 5000
    fake_cupy._allocate[0](4000)  # an allocation through the wrapped allocator records the peak
    pool.used = 2000
    assert autodiff.cuda.max_memory_allocated() == 5000
    autodiff.cuda.reset_peak_memory_stats()
    assert autodiff.cuda.max_memory_allocated() == 2000
    autodiff.cuda.empty_cache()
    t = autodiff.ones(3, device="cuda")
    with autodiff.cuda._count_transfers() as log:
        u = t * 2 + 1
        assert log.count == 0
        u.sum().item()
        autodiff.cuda.synchronize()
    assert log.count == 2, log


def test_fake_cupy_transfer_counter_without_syncdetect(fake_cupy, monkeypatch):
    """CuPy 14 no longer calls its sync detector: the wrapped ndarray.get still sees every transfer, once."""
    monkeypatch.delattr(fake_cupy._core, "syncdetect")
    monkeypatch.delitem(sys.modules, "cupy._core.syncdetect")
    t = autodiff.ones(3, device="cuda")
    orig = fake_cupy.ndarray.get
    with autodiff.cuda._count_transfers() as log:
        u = t * 2
        assert log.count == 0
        u.sum().item()
        u.data.get()
    assert log.count == 2 and log.hooks == ["ndarray.get"], log
    assert fake_cupy.ndarray.get is orig


def _numpy_cupy_for_baselines():
    """The few raw-CuPy calls bench.gpu_check's baselines make, on NumPy (plumbing only)."""
    cp = types.ModuleType("cupy")
    for name in ("dtype", "asarray", "full", "ones", "matmul", "empty_like", "copyto", "float32", "float16"):
        setattr(cp, name, getattr(np, name))
    rng = np.random.default_rng(0)
    cp.random = types.SimpleNamespace(
        standard_normal=lambda size=None, dtype=np.float64: rng.standard_normal(size).astype(dtype))
    return cp


def test_gpu_check_benchmarks_run_on_a_fake_device(fake_cuda, monkeypatch):
    """bench.gpu_check's benchmarks at dry-run sizes on the fake device: model building, dtype moves,
    optimizers, the NumPy-backend baseline and the raw-CuPy baselines all run without error, so the
    GPU run does not spend its minutes on a Python mistake. Timings here mean nothing."""
    pytest.importorskip("nn")
    from bench import gpu_check
    monkeypatch.setitem(sys.modules, "cupy", _numpy_cupy_for_baselines())
    monkeypatch.setattr(gpu_check, "_sync_all", lambda torch=None: None)
    monkeypatch.setattr(gpu_check, "_import_torch", lambda: (None, "torch left out of this test"))
    prev = backends.get_cpu_backend().name
    try:
        results = gpu_check.run_benches(gpu_check.Budget(300), 290, dry=True, quick=False)
    finally:
        autodiff.set_backend(prev)
    assert [r["kind"] for r in results] == ["mlp", "mlp", "wide_mlp", "wide_mlp", "elementwise", "cnn"]
    bad = [(r["title"], r.get("error"), r.get("traceback"), r.get("skipped")) for r in results
           if "error" in r or "skipped" in r]
    assert not bad, bad
    for r in results:
        assert gpu_check._bench_line(r)
    summary = {"date": "now", "dry_run": True, "wall_s": 0, "env": {}, "command": "x", "bench": results}
    assert "| benchmark |" in gpu_check._markdown(summary)


class _ArityCheckingKernel:
    """Stands in for cupy.ElementwiseKernel on the fake CuPy: checks that each call passes the inputs (and
    optionally the outputs) the kernel declares, with arrays where non-raw array parameters are expected.
    Computes nothing (outputs are left as they are, or fresh empty arrays)."""

    calls: list = []

    def __init__(self, in_params, out_params, operation, name, **kw):
        self.ins = [p.split() for p in in_params.split(",")]
        self.outs = [p.split() for p in out_params.split(",")]
        self.name = name

    def __call__(self, *args, **kw):
        n_in, n_out = len(self.ins), len(self.outs)
        assert len(args) in (n_in, n_in + n_out), f"{self.name}: {len(args)} arguments for {n_in}+{n_out} params"
        for p, a in zip(self.ins + self.outs, args):
            if "raw" in p:
                assert isinstance(a, np.ndarray), f"{self.name}: raw parameter {p[-1]} given {type(a).__name__}"
        _ArityCheckingKernel.calls.append(self.name)
        if len(args) == n_in + n_out:
            outs = args[n_in:]
        else:
            arrays = [a for a in args if isinstance(a, np.ndarray)]
            outs = tuple(np.empty_like(arrays[0]) for _ in self.outs)
        return outs[0] if len(outs) == 1 else outs


class _ArityCheckingModule:
    """Stands in for cupy.RawModule: get_function(name) gives a launcher that checks the grid/block tuples
    and the argument count against the kernel's parameter list in the source."""

    def __init__(self, code, name_expressions=(), **kw):
        import re
        self.params = {}
        for m in re.finditer(r"__global__ void (\w+)\(([^)]*)\)", code):
            self.params[m.group(1)] = len(m.group(2).split(","))
        self.names = set(name_expressions)

    def get_function(self, name):
        assert name in self.names, f"{name} is not one of the module's name_expressions"
        n = self.params[name.split("<")[0]]

        def launch(grid, block, args):
            assert len(grid) >= 1 and all(int(g) > 0 for g in grid), grid
            assert 32 <= block[0] <= 1024 and block[0] % 32 == 0, block
            assert len(args) == n, f"{name}: {len(args)} arguments for {n} parameters"
            _ArityCheckingKernel.calls.append(name)
        return launch


def test_gpu_check_kernel_warmup_calls_match_the_backend(fake_cupy, monkeypatch):
    """bench.gpu_check.warm_kernels on the fake CuPy, with kernel stand-ins that check every launch's
    argument count and kinds against the kernel's declared parameters: catches a wrapper in cuda_kernels.py
    passing too few/many arguments, and a wrong slot call in the warm-up. The only failure left is the
    missing cupyx (erf). Numerical results are checked on the GPU only (tests/backends/test_cuda_kernels.py)."""
    from bench import gpu_check
    fake_cupy.ElementwiseKernel = _ArityCheckingKernel
    fake_cupy.RawModule = _ArityCheckingModule
    _ArityCheckingKernel.calls = []
    res = gpu_check.warm_kernels()
    assert len(res["ok"]) + len(res["failed"]) == 26
    assert set(res["failed"]) == {"erf[float32]", "erf[float64]"}, res["failed"]
    names = set(_ArityCheckingKernel.calls)
    assert {"ad_sce_fwd<float>", "ad_sce_bwd", "ad_softmax_rows<double>", "ad_sgd_plain", "ad_sgd_momentum",
            "ad_adam", "ad_adam_amsgrad", "ad_gelu", "ad_gelu_tanh", "ad_silu", "ad_bias_relu", "ad_im2col",
            "ad_col2im", "ad_max_pool2d", "ad_max_pool2d_bwd"} <= names, names
