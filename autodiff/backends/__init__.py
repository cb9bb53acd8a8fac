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


# Seeds given before a backend is loaded (autodiff.manual_seed / autodiff.cuda.manual_seed) are applied
# when it loads, so `manual_seed(0)` followed by the first CUDA tensor is reproducible.
_seeds: dict[str, int] = {}


def get_backend(name: str) -> Backend:
    b = _instances.get(name)
    if b is None:
        b = _make(name)
        seed = _seeds.get(name, _seeds.get("all"))
        if seed is not None:
            b.manual_seed(seed)
        _instances[name] = b
        if name == "cupy":
            for t in b.array_types:
                _by_array_type[t] = b
    return b


def set_cuda_seed(seed: int) -> None:
    """Seed the CUDA generators now if CUDA is loaded, else when it loads."""
    _seeds["cupy"] = int(seed)
    b = _instances.get("cupy")
    if b is not None:
        b.manual_seed(int(seed))


def note_global_seed(seed: int) -> None:
    """Called by autodiff.manual_seed: backends loaded later start from this seed too."""
    _seeds.clear()
    _seeds["all"] = int(seed)


def set_backend(name: str) -> None:
    """Choose the CPU backend: 'numpy' (reference) or 'numba' (compiled kernels). The environment variable
    AUTODIFF_BACKEND sets it at import. CUDA is not a backend choice here: it is a device."""
    if not isinstance(name, str) or name not in CPU_BACKENDS:
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
    b = _instances.get("cupy")
    return b if b is not None else get_backend("cupy")


def _initial_cpu_backend():
    name = os.environ.get("AUTODIFF_BACKEND", "").strip().lower() or "numpy"
    if name not in CPU_BACKENDS:
        raise ValueError(f"AUTODIFF_BACKEND={name!r} is not a CPU backend; use 'numpy' or 'numba' "
                         "(select the GPU with AUTODIFF_DEVICE=cuda)")
    try:
        set_backend(name)
    except BackendUnavailable as e:
        import warnings
        warnings.warn(f"AUTODIFF_BACKEND={name}: {e}; using the numpy backend", RuntimeWarning, stacklevel=2)
        set_backend("numpy")


_initial_cpu_backend()
