"""Shared fixtures: the `backend` / `device` fixture that runs a test once per available backend.

CUDA cases carry the `cuda` marker and are skipped with a reason unless CuPy sees a GPU; CI runs
them skipped, `make gpu-check` runs them for real.
"""
import numpy as np
import pytest

import autodiff
from autodiff import backends


def _numba_ok():
    try:
        backends.get_backend("numba")
        return True, ""
    except Exception as e:  # noqa: BLE001 - report why
        return False, f"numba backend unavailable: {e}"


def cuda_available():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001
        return False


_NUMBA_OK, _NUMBA_WHY = _numba_ok()
CUDA_OK = cuda_available()
requires_cuda = pytest.mark.skipif(not CUDA_OK, reason="needs a CUDA GPU with CuPy (run `make gpu-check` on one)")

BACKEND_PARAMS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("numba", id="numba", marks=pytest.mark.skipif(not _NUMBA_OK, reason=_NUMBA_WHY or "numba")),
    pytest.param("cuda", id="cuda", marks=[pytest.mark.cuda, requires_cuda]),
]


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request):
    """Name of the backend under test ('numpy', 'numba' or 'cuda'); the CPU backend is switched for
    the duration of the test."""
    name = request.param
    prev = backends.get_cpu_backend().name
    if name in ("numpy", "numba"):
        autodiff.set_backend(name)
    try:
        yield name
    finally:
        autodiff.set_backend(prev)


@pytest.fixture
def device(backend):
    """'cpu' for the CPU backends, 'cuda' for CuPy."""
    return "cuda" if backend == "cuda" else "cpu"


def to_numpy(t):
    """A Tensor (any device) or array as a NumPy array, for comparisons in tests."""
    if isinstance(t, autodiff.Tensor):
        t = t.data
    if hasattr(t, "get"):
        t = t.get()
    return np.asarray(t)


@pytest.fixture(autouse=True)
def _seed():
    """Each test starts seeded and with grad mode on, whatever the previous test left behind."""
    autodiff.manual_seed(0)
    autodiff.autograd._mode.enabled = True
    yield
    autodiff.autograd._mode.enabled = True
