"""autodiff: reverse-mode automatic differentiation on NumPy, numba and CuPy backends.

Public API only. `import autodiff` never imports CuPy; CUDA loads on first use.
"""
# ruff: noqa: F401
from . import dtypes as _dtypes
from .autograd import Function, backward, enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled
from .backends import BackendUnavailable, get_cpu_backend, set_backend
from .device import device, get_default_device, set_default_device
from .dtypes import (bool_ as bool, double, float16, float32, float64, get_default_dtype, half, int8, int16,
                     int32, int64, long, set_default_dtype, short, uint8)
from .tensor import Tensor
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
from .ops.indexing import (diag, diagonal, index_add, index_copy, index_fill, masked_select, scatter, take, trace)
from .ops.nn import log_softmax, softmax  # noqa: E402  (torch.softmax / torch.log_softmax)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .serialization import load, save
from . import amp  # noqa: E402
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


int = int32  # noqa: A001  (torch.int is int32)
