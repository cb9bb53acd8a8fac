"""autodiff: reverse-mode automatic differentiation on NumPy, numba and CuPy backends.

Public API only. `import autodiff` never imports CuPy; CUDA loads on first use.
"""
# ruff: noqa: F401
import math as _math

import numpy as _np

from . import dtypes as _dtypes
from .autograd import Function, backward, enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled
from .backends import BackendUnavailable, get_cpu_backend, set_backend
from .device import device, get_default_device, set_default_device
from .dtypes import (bool_ as bool, double, float16, float32, float64, get_default_dtype, half, int8, int16,
                     int32, int64, long, set_default_dtype, short, uint8)
from .tensor import Size, Tensor
from .ops.creation import (arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like, linspace,
                           logspace, manual_seed, normal, ones, ones_like, rand, rand_like, randint, randint_like,
                           randn, randn_like, randperm, seed, tensor, zeros, zeros_like)
from .ops.elementwise import (abs, add, allclose, ceil, clamp, clip, cos, div, elu, eq, equal, erf, exp, expm1,
                              floor, floor_divide, ge, gelu, gt, isfinite, isinf, isnan, le, leaky_relu, log,
                              log1p, logical_and, logical_not, logical_or, logical_xor, lt, maximum, minimum, mul,
                              ne, neg, nonzero, pow, reciprocal, relu, remainder, round, rsqrt, sigmoid, sign,
                              silu, sin, softplus, sqrt, square, sub, tanh, trunc, where)
from .ops.reduction import (all, amax, amin, any, argmax, argmin, cumsum, logsumexp, max, mean, min, norm, prod,
                            std, std_mean, sum, var, var_mean)
from .ops.shape import (broadcast_to, cat, chunk, clone, concat, concatenate, contiguous, flatten, flip, meshgrid,
                        movedim, narrow, pad, permute, repeat, reshape, split, squeeze, stack, swapaxes, t, tile,
                        transpose, unbind, unflatten, unsqueeze)
from .ops.linalg import bmm, dot, einsum, inner, matmul, mm, mv, outer
from .ops.indexing import gather, index_select, masked_fill, scatter_add, take_along_dim, tril, triu
from .ops.reduction import argsort, sort, topk
from .ops.elementwise import isclose
from .ops.elementwise import (absolute, acos, addcdiv, addcmul, arctan2, asin, atan, atan2, clamp_max, clamp_min,
                              cosh, divide, erfc, exp2, float_power, fmod, frac, greater, greater_equal, heaviside,
                              hypot, isneginf, isposinf, lerp, less, less_equal, log2, log10, logaddexp, multiply,
                              nan_to_num, negative, not_equal, signbit, sinh, subtract, tan, true_divide, xlogy)
from .ops.reduction import count_nonzero, cumprod, dist, kthvalue, median, nanmean, nansum, unique
from .ops.shape import (atleast_1d, atleast_2d, atleast_3d, broadcast_tensors, column_stack, diff, dstack, fliplr,
                        flipud, hsplit, hstack, kron, moveaxis, repeat_interleave, roll, rot90, row_stack, select,
                        swapdims, tensor_split, tensordot, vsplit, vstack)
from .ops.indexing import (diag, diagonal, index_add, index_copy, index_fill, index_put, masked_select, scatter, take,
                           trace)
from .ops.nn import log_softmax, softmax  # noqa: E402  (torch.softmax / torch.log_softmax)
from .ops.elementwise import arccos, arcsin, arctan, deg2rad, logit, rad2deg, sgn, sinc
from .ops.reduction import aminmax, bincount, bucketize, cummax, cummin, histc, msort, searchsorted
from .ops.linalg import addmm, baddbmm, cdist, linalg
from .ops.shape import ravel
from .ops.elementwise import nonzero as argwhere
from .ops.elementwise import (bitwise_and, bitwise_left_shift, bitwise_not, bitwise_or, bitwise_right_shift,
                              bitwise_xor)
from .ops.creation import tril_indices, triu_indices
from .tensor import set_printoptions
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .serialization import load, save
from . import amp  # noqa: E402
from .amp import autocast  # noqa: E402  (torch.autocast)
from . import cuda  # noqa: E402  (the torch.cuda-like namespace; imports no CuPy)
from .checkpoint import checkpoint  # noqa: E402
from .anomaly import detect_anomaly, is_anomaly_enabled, set_detect_anomaly  # noqa: E402

dtype = type(float32)
__version__ = "0.1.0"


def is_tensor(x):
    return isinstance(x, Tensor)


def is_floating_point(x):
    return x.is_floating_point()


def numel(x):
    return x.numel()


def is_nonzero(x):
    if x.numel() != 1:
        raise RuntimeError(f"is_nonzero: a tensor with {x.numel()} elements cannot be converted to a Python bool")
    return x.__bool__()  # (`bool` is the dtype here)


def inference_mode(mode=True):
    """As torch.inference_mode: no gradient recording (a no_grad context/decorator) when mode is True."""
    import contextlib
    return no_grad() if mode else contextlib.nullcontext()


def promote_types(type1, type2):
    """PyTorch's promotion of two dtypes."""
    return _dtypes.result_type((_dtypes.normalize_dtype(type1), 1), (_dtypes.normalize_dtype(type2), 1))


def result_type(tensor1, tensor2):
    """dtype of an arithmetic op on the two (tensors or Python scalars), as torch.result_type."""
    if isinstance(tensor1, Tensor) and isinstance(tensor2, Tensor):
        return _dtypes.result_type((tensor1.dtype, tensor1.ndim), (tensor2.dtype, tensor2.ndim))
    if isinstance(tensor1, Tensor):
        return _dtypes.scalar_result_dtype(tensor1.dtype, tensor2)
    if isinstance(tensor2, Tensor):
        return _dtypes.scalar_result_dtype(tensor2.dtype, tensor1)
    return tensor((tensor1, tensor2)).dtype


def can_cast(from_, to):
    """False where PyTorch refuses a cast in in-place ops (to a lower category: float to int, int to bool)."""
    from .ops.inplace import _castable
    return _castable(_dtypes.normalize_dtype(from_), _dtypes.normalize_dtype(to))


finfo = _np.finfo
iinfo = _np.iinfo
inf, nan, e, pi = _math.inf, _math.nan, _math.e, _math.pi
newaxis = None
int = int32  # noqa: A001  (torch.int is int32)
float = float32  # noqa: A001  (torch.float is float32)


def __getattr__(name):
    """Subpackages load on first use (PEP 562), so `autodiff.data.DataLoader` works after a plain
    `import autodiff` without making that import slower."""
    if name in ("data", "utils", "distributed"):
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'autodiff' has no attribute {name!r}")
