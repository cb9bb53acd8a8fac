"""Backend registry and device selection.

Which backend runs an op is decided by the type of its input arrays (a dict lookup, no per-op
search): NumPy arrays go to the current CPU backend (`numpy` or `numba`, chosen by `set_backend` or
the environment variable AUTODIFF_BACKEND), CuPy arrays to the CuPy backend. CuPy is imported only
when CUDA is first asked for, so `import autodiff` works on machines without it.
"""
from __future__ import annotations

import os

import numpy as np

from .base import Backend

CPU_BACKENDS = ("numpy", "numba")
_instances: dict[str, Backend] = {}
# array type -> backend; the CPU entry is replaced by set_backend, CuPy's added when CUDA loads.
_by_array_type: dict[type, Backend] = {}


class BackendUnavailable(RuntimeError):
    """Raised when a backend or device is requested that this machine cannot provide."""


def _make(name: str) -> Backend:
    if name == "numpy":
        from .numpy_backend import NumpyBackend
        return NumpyBackend()
    if name == "numba":
        try:
            from .numba_backend import NumbaBackend
        except ImportError as e:  # numba missing or backend not built
            raise BackendUnavailable(f"numba backend unavailable ({e}); install it with: pip install numba") from e
        return NumbaBackend()
    if name == "cupy":
        from .cupy_backend import load_cupy_backend
        return load_cupy_backend()
    raise ValueError(f"unknown backend {name!r}; choose one of 'numpy', 'numba', 'cupy'")


def get_backend(name: str) -> Backend:
    b = _instances.get(name)
    if b is None:
        b = _instances[name] = _make(name)
        if name == "cupy":
            for t in b.array_types:
                _by_array_type[t] = b
    return b


def set_backend(name: str) -> None:
    """Choose the CPU backend: 'numpy' (reference) or 'numba' (compiled kernels)."""
    if name not in CPU_BACKENDS:
        raise ValueError(f"set_backend: unknown CPU backend {name!r}; choose 'numpy' or 'numba' "
                         "(CUDA is selected by device='cuda', not by backend)")
    _by_array_type[np.ndarray] = get_backend(name)


def get_cpu_backend() -> Backend:
    return _by_array_type[np.ndarray]


def backend_of(array) -> Backend:
    """The backend that owns `array` (by its type)."""
    try:
        return _by_array_type[type(array)]
    except KeyError:
        raise TypeError(f"not a backend array: {type(array).__name__}") from None


def cuda_backend() -> Backend:
    """The CuPy backend, with one clear error if CuPy or a GPU is missing."""
    return get_backend("cupy")


set_backend(os.environ.get("AUTODIFF_BACKEND", "numpy"))
