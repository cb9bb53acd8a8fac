"""The CUDA backend: CuPy arrays, CuPy's ufuncs/cuBLAS for the generic slots, fused kernels for the hot ones.

Loaded only when CUDA is first asked for (`device="cuda"`, `Tensor.cuda()`, `autodiff.cuda.*`), through
`load_cupy_backend()`, which raises `BackendUnavailable` with one message naming what is missing (CuPy,
a working CuPy import, or a GPU/driver) and how to fix it.

Arrays live on the GPU given by their `cupy.ndarray.device`; `asarray(..., device=autodiff.device("cuda:1"))`
places data on GPU 1. Every kernel slot of `base.Backend` works here through `xp = cupy`; the slots below
are overridden with fused kernels from `cuda_kernels.py` for float32/float64 (other dtypes, e.g. float16,
take the generic path, which CuPy runs with its own float16 ufuncs and cuBLAS). Nothing here synchronises
with the host except `to_numpy` and `synchronize`, which exist to do so.
"""
from __future__ import annotations

import contextlib
import importlib.util

import numpy as np

from .base import Backend

INSTALL_HINT = ("install the CuPy wheel matching your NVIDIA driver's CUDA version: "
                "pip install 'autodiff[cuda13]' (CUDA 13.x) or pip install 'autodiff[cuda12]' (CUDA 12.x)")

_NULL = contextlib.nullcontext()


def _unavailable(msg):
    from . import BackendUnavailable
    return BackendUnavailable(msg)


def _cupy_installed() -> bool:
    try:
        return importlib.util.find_spec("cupy") is not None
    except (ValueError, ImportError):  # sys.modules['cupy'] is None or a broken parent
        return False


def import_cupy():
    """Import CuPy or raise BackendUnavailable saying whether it is missing or broken."""
    try:
        import cupy
    except ImportError as e:
        if not _cupy_installed():
            raise _unavailable(f"CUDA was requested but CuPy is not installed; {INSTALL_HINT}") from None
        raise _unavailable(f"CUDA was requested but CuPy is installed and fails to import "
                           f"({type(e).__name__}: {e}); reinstall it for your CUDA version: "
                           f"{INSTALL_HINT}") from None
    return cupy


def gpu_count(cupy) -> int:
    """Number of visible GPUs, or BackendUnavailable carrying CuPy's error text (no driver, no device)."""
    try:
        n = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as e:  # noqa: BLE001 - CUDARuntimeError and friends; report CuPy's own words
        raise _unavailable(
            f"CUDA was requested but CuPy {getattr(cupy, '__version__', '?')} cannot use a GPU: "
            f"{type(e).__name__}: {e}. Check that an NVIDIA GPU and driver are present (nvidia-smi) and "
            f"that the CuPy wheel matches the driver's CUDA version, or use device='cpu'") from None
    if n <= 0:
        raise _unavailable("CUDA was requested but no CUDA GPU is visible (cudaGetDeviceCount() == 0); "
                           "check CUDA_VISIBLE_DEVICES and the NVIDIA driver, or use device='cpu'")
    return n


def load_cupy_backend():
    """The CuPy backend, or BackendUnavailable with one message saying what is missing and how to fix it."""
    cupy = import_cupy()
    n = gpu_count(cupy)
    return CupyBackend(cupy, n)


class CupyBackend(Backend):
    name = "cupy"
    device_type = "cuda"

    def __init__(self, cupy, device_count=1):
        super().__init__()
        from . import cuda_kernels
        self.xp = cupy
        self.array_types = (cupy.ndarray,)
        self.device_count = device_count
        self.k = cuda_kernels
        self._rngs: dict = {}
        self._seed = None
        self._dev_str = {}
        self._bf16_ok = None

    # ------------------------------------------------------------------ devices
    def _ctx(self, device):
        """Context that makes `device` (an autodiff.device or None) the current GPU."""
        if device is None or getattr(device, "index", None) is None:
            return _NULL
        idx = device.index
        if idx >= self.device_count:
            raise RuntimeError(f"CUDA error: invalid device ordinal: cuda:{idx} requested but "
                               f"{self.device_count} GPU(s) are visible")
        return self.xp.cuda.Device(idx)

    def device_of(self, a):
        i = a.device.id
        s = self._dev_str.get(i)
        if s is None:
            s = self._dev_str[i] = f"cuda:{i}"
        return s

    def synchronize(self, device=None):
        """Wait for every kernel queued on the device (all streams), like torch.cuda.synchronize."""
        with self._ctx(device):
            self.xp.cuda.Device().synchronize()

    # ------------------------------------------------------------------ arrays
    def _check_dtype(self, dtype):
        if dtype is not None and getattr(dtype, "name", None) == "bfloat16":
            if self._bf16_ok is None:
                try:
                    z = self.xp.zeros(2, dtype=dtype)
                    (z + z).sum()
                    self._bf16_ok = True
                except Exception as e:  # noqa: BLE001
                    self._bf16_ok = f"{type(e).__name__}: {e}"
            if self._bf16_ok is not True:
                raise TypeError(f"bfloat16 is not supported on CUDA by CuPy {self.xp.__version__} "
                                f"({self._bf16_ok}); use float16 or float32 on the GPU")

    def asarray(self, data, dtype=None, device=None):
        cp = self.xp
        if isinstance(data, cp.ndarray):
            if device is not None and device.index is not None and data.device.id != device.index:
                with self._ctx(device):
                    data = data.copy()  # peer copy onto the current (target) device
            if dtype is None or data.dtype == dtype:
                return data
            self._check_dtype(dtype)
            with data.device:
                return data.astype(dtype)
        self._check_dtype(dtype if dtype is not None else getattr(data, "dtype", None))
        with self._ctx(device):
            return cp.asarray(data, dtype=dtype)

    def to_numpy(self, a):
        return a.get()  # the one deliberate device-to-host copy

    def full(self, shape, value, dtype, device=None):
        self._check_dtype(dtype)
        with self._ctx(device):
            return self.xp.full(shape, value, dtype=dtype)

    # ------------------------------------------------------------------ random numbers (one generator per GPU)
    @property
    def rng(self):
        i = self.xp.cuda.runtime.getDevice()
        g = self._rngs.get(i)
        if g is None:
            g = self._rngs[i] = self.xp.random.default_rng(self._seed)
        return g

    def manual_seed(self, seed):
        """Seed the generator of every GPU (each is re-created lazily on its device)."""
        self._seed = int(seed)
        self._rngs.clear()

    def random(self, kind, shape, dtype, device=None, low=0, high=None):
        with self._ctx(device):
            if kind == "permutation":
                # CuPy's Generator has no permutation: the argsort of uniform keys is a uniform permutation.
                return self.rng.random((shape[0],)).argsort().astype(dtype, copy=False)
            return super().random(kind, shape, dtype, device, low, high)

    # ------------------------------------------------------------------ math kernels
    def erf(self, x):
        from cupyx.scipy.special import erf
        return erf(x).astype(x.dtype, copy=False)

    def gelu(self, x, approximate="none"):
        """Fused GELU forward (not a base slot yet: `ops.elementwise.Gelu` composes it with erf)."""
        if self.k.fusable(x):
            return self.k.gelu(x, approximate)
        xp = self.xp
        if approximate == "tanh":
            return (0.5 * x * (1 + xp.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))).astype(x.dtype)
        return (0.5 * x * (1 + self.erf(x * 0.7071067811865476))).astype(x.dtype)

    def silu(self, x):
        """Fused x * sigmoid(x) (not a base slot yet)."""
        if self.k.fusable(x):
            return self.k.silu(x)
        return (x / (1 + self.xp.exp(-x))).astype(x.dtype)

    # ------------------------------------------------------------------ indexing kernels
    def _device_index(self, index):
        cp = self.xp
        if isinstance(index, tuple):
            return tuple(cp.asarray(i) if isinstance(i, (np.ndarray, list)) else i for i in index)
        if isinstance(index, (np.ndarray, list)):
            return cp.asarray(index)
        return index

    def index_add(self, shape, dtype, index, values):
        cp = self.xp
        out = cp.zeros(shape, dtype=dtype)
        index = self._device_index(index)
        if hasattr(cp.add, "at"):
            cp.add.at(out, index, values)
        else:  # CuPy < 11
            import cupyx
            cupyx.scatter_add(out, index, values)
        return out

    # ------------------------------------------------------------------ convolution and pooling
    def im2col(self, x, kh, kw, stride, padding, dilation):
        if self.k.fusable(x):
            return self.k.im2col(x, kh, kw, stride, padding, dilation)
        return super().im2col(x, kh, kw, stride, padding, dilation)

    def col2im(self, cols, x_shape, kh, kw, stride, padding, dilation):
        if self.k.fusable(cols):
            return self.k.col2im(cols, x_shape, kh, kw, stride, padding, dilation)
        return super().col2im(cols, x_shape, kh, kw, stride, padding, dilation)

    def max_pool2d(self, x, kernel, stride, padding, dilation, ceil_mode):
        if self.k.fusable(x):
            return self.k.max_pool2d_with_indices(x, tuple(kernel), tuple(stride), tuple(padding),
                                                  tuple(dilation), ceil_mode)
        return super().max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)

    def max_pool2d_backward(self, g, indices, x_shape, overlapping=True):
        if self.k.fusable(g):
            return self.k.max_pool2d_backward(g, indices, tuple(x_shape))
        return super().max_pool2d_backward(g, indices, x_shape, overlapping)

    # ------------------------------------------------------------------ softmax over the last axis
    def _row_fusable(self, x, axis):
        return (x.ndim >= 1 and axis in (-1, x.ndim - 1) and x.shape[-1] > 0 and x.size > 0
                and self.k.fusable(x))

    def softmax(self, x, axis):
        if self._row_fusable(x, axis):
            return self.k.softmax_rows(x, log=False)
        return super().softmax(x, axis)

    def log_softmax(self, x, axis):
        if self._row_fusable(x, axis):
            return self.k.softmax_rows(x, log=True)
        return super().log_softmax(x, axis)

    # ------------------------------------------------------------------ fused losses
    def softmax_cross_entropy(self, logits, target):
        if logits.ndim == 2 and logits.shape[1] > 0 and self.k.fusable(logits):
            return self.k.softmax_cross_entropy(logits, target)
        return super().softmax_cross_entropy(logits, target)

    def softmax_cross_entropy_backward(self, probs, target, grad_rows):
        if probs.ndim == 2 and self.k.fusable(probs):
            return self.k.softmax_cross_entropy_backward(probs, target, grad_rows)
        return super().softmax_cross_entropy_backward(probs, target, grad_rows)

    # ------------------------------------------------------------------ optimizer update rules
    def sgd_step_(self, p, g, buf, lr, momentum, dampening, nesterov, weight_decay, maximize, first):
        arrays = (p, g, buf) if momentum else (p, g)
        if self.k.fusable(*arrays) and _plain_numbers(lr, momentum, dampening, weight_decay):
            return self.k.sgd_step_(p, g, buf, lr, momentum, dampening, nesterov, weight_decay, maximize, first)
        return super().sgd_step_(p, g, buf, lr, momentum, dampening, nesterov, weight_decay, maximize, first)

    def adam_step_(self, p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
                   decoupled):
        arrays = (p, g, m, v, vmax) if amsgrad else (p, g, m, v)
        if self.k.fusable(*arrays) and _plain_numbers(step, lr, beta1, beta2, eps, weight_decay):
            return self.k.adam_step_(p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, amsgrad,
                                     maximize, decoupled)
        return super().adam_step_(p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, amsgrad,
                                  maximize, decoupled)


def _plain_numbers(*xs):
    """Hyper-parameters the fused kernels take as host scalars (tensor-valued ones take the generic path)."""
    return all(isinstance(x, (int, float, np.integer, np.floating)) for x in xs)
