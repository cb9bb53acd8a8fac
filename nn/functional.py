"""nn.functional: the functional form of every layer, activation and loss (PyTorch's names and signatures).

Losses and activations that are not primitives of their own are composites of differentiable Tensor
ops. Where PyTorch and NumPy differ, PyTorch is followed.
"""
from __future__ import annotations

import math

import numpy as np

import autodiff
from autodiff import amp as _amp
from autodiff import autograd
from autodiff.autograd import _new_tensor
from autodiff.backends import backend_of
from autodiff.ops import elementwise as E
from autodiff.ops.indexing import Gather
from autodiff.ops import nn as N
from autodiff.ops.shape import pad as _pad
from autodiff.tensor import Tensor



def pad(input, pad, mode="constant", value=None):
    """F.pad: `pad` lists (before, after) amounts starting from the last dimension; modes 'constant'
    (value, default 0), 'reflect', 'replicate', 'circular'."""
    if mode == "constant":
        return _pad(input, pad, mode, 0.0 if value is None else value)
    return _pad(input, pad, mode)


def _xp(t):
    return backend_of(t.data).xp


def _on_cpu(t):
    return type(t.data) is np.ndarray  # exact type: device arrays (even ndarray subclasses) never sync


def _check_tensor(x, name, what="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: {what} must be a Tensor, got {type(x).__name__}")


# ============================================================================ linear
def linear(input, weight, bias=None):
    """y = input @ weight.T + bias (weight of shape (out_features, in_features))."""
    _check_tensor(input, "linear")
    return N.linear(input, weight, bias)


def bilinear(input1, input2, weight, bias=None):
    """y[..., k] = input1 @ weight[k] @ input2 + bias[k]."""
    out = autodiff.einsum("...i,kij,...j->...k", input1, weight, input2)
    return out + bias if bias is not None else out


# ============================================================================ activations
def _maybe_inplace(x, out, inplace):
    """inplace=True writes the result into x when no graph is being recorded through x; otherwise (as the
    result must stay differentiable) the out-of-place result is returned."""
    if inplace and not (autograd._mode.enabled and x.requires_grad):
        x.data[...] = out.data
        x._vc[0] += 1
        return x
    return out


def relu(input, inplace=False):
    return _maybe_inplace(input, E.relu(input), inplace)


def relu_(input):
    return relu(input, inplace=True)


def relu6(input, inplace=False):
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _maybe_inplace(input, E.leaky_relu(input, negative_slope), inplace)


def elu(input, alpha=1.0, inplace=False):
    return _maybe_inplace(input, E.elu(input, alpha), inplace)


def selu(input, inplace=False):
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    return _maybe_inplace(input, E.elu(input, alpha) * scale, inplace)


def celu(input, alpha=1.0, inplace=False):
    return _maybe_inplace(input, E.elu(input / alpha, 1.0) * alpha, inplace)


def gelu(input, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return E.gelu(input, approximate)


def silu(input, inplace=False):
    return _maybe_inplace(input, E.silu(input), inplace)


def mish(input, inplace=False):
    return _maybe_inplace(input, input * E.tanh(E.softplus(input)), inplace)


def sigmoid(input):
    return E.sigmoid(input)


def tanh(input):
    return E.tanh(input)


def softplus(input, beta=1.0, threshold=20.0):
    return E.softplus(input, beta, threshold)


def softsign(input):
    return input / (E.abs(input) + 1)


def logsigmoid(input):
    return -E.softplus(-input)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    return _maybe_inplace(input, E.clamp(input, min_val, max_val), inplace)


def hardsigmoid(input, inplace=False):
    return _maybe_inplace(input, E.clamp(input / 6 + 0.5, 0.0, 1.0), inplace)


def hardswish(input, inplace=False):
    return _maybe_inplace(input, input * E.clamp(input / 6 + 0.5, 0.0, 1.0), inplace)


def glu(input, dim=-1):
    a, b = input.chunk(2, dim)
    return a * E.sigmoid(b)


def prelu(input, weight):
    w = weight
    if input.ndim >= 2 and weight.numel() > 1:
        w = weight.reshape((1, -1) + (1,) * (input.ndim - 2))
    return E.where(input > 0, input, w * input)


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    return N.softmax(input, dim, dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    return N.log_softmax(input, dim, dtype)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    return N.softmax(-input, dim, dtype)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """input / max(||input||_p along dim, eps) (written into `out` when given)."""
    n = autodiff.norm(input, p, dim, keepdim=True)  # zero gradient at a zero vector, as torch.norm
    res = input / E.clamp(n, min=eps)
    if out is not None:
        out.copy_(res)
        return out
    return res


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum(x1 / max(||x1||, eps) * x2 / max(||x2||, eps)) over dim, as PyTorch (the clamp does not block the
    norm's gradient; a zero vector gets the norm's zero gradient)."""
    def unit(x):
        n = autodiff.norm(x, 2, dim, keepdim=True)
        nd = n.detach()
        return x / (n + (E.clamp(nd, min=eps) - nd))
    return (unit(x1) * unit(x2)).sum(dim)


# ============================================================================ dropout
def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1 / (1 - p) (identity when not training)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _maybe_inplace(input, E.mul_const(input, _xp(input).zeros((), dtype=input.dtype)), inplace)
    keep = autodiff.rand(*input.shape, dtype=input.dtype, device=input.device).data
    mask = (keep >= p).astype(input.dtype) * input.dtype.type(1.0 / (1.0 - p))
    return _maybe_inplace(input, E.mul_const(input, mask), inplace)


def _feature_dropout(input, p, training, inplace, name, nd):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"{name}: dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    batched = input.ndim == nd + 2
    shape = tuple(input.shape[:2]) + (1,) * nd if batched else (input.shape[0],) + (1,) * nd
    keep = autodiff.rand(*shape, dtype=input.dtype, device=input.device).data
    mask = (keep >= p).astype(input.dtype) * (input.dtype.type(1.0 / (1.0 - p)) if p < 1 else 0)
    return _maybe_inplace(input, E.mul_const(input, mask), inplace)


def dropout1d(input, p=0.5, training=True, inplace=False):
    return _feature_dropout(input, p, training, inplace, "dropout1d", 1)


def dropout2d(input, p=0.5, training=True, inplace=False):
    return _feature_dropout(input, p, training, inplace, "dropout2d", 2)


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    if not training or p == 0.0:
        return input
    alpha = -1.7580993408473766
    keep = (autodiff.rand(*input.shape, dtype=input.dtype, device=input.device).data >= p).astype(input.dtype)
    a = (1 - p + alpha ** 2 * p * (1 - p)) ** -0.5 if p < 1 else 0.0
    b = -a * alpha * p
    out = E.mul_const(input, keep * a) + _new_tensor((1 - keep) * (a * alpha) + b)
    return _maybe_inplace(input, out, inplace)


# ============================================================================ one_hot / embedding
def one_hot(tensor, num_classes=-1):
    """int64 one-hot encoding with a new last dimension of size num_classes (max + 1 when -1)."""
    _check_tensor(tensor, "one_hot")
    if tensor.dtype.kind not in "iu":
        raise RuntimeError(f"one_hot: class values must be an integer tensor (int64), got {tensor.dtype}")
    xp = _xp(tensor)
    idx = tensor.data
    if num_classes == -1:
        num_classes = int(idx.max()) + 1 if idx.size else 0
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num_classes):
        raise RuntimeError(f"one_hot: class values must be in [0, {num_classes}), got values in "
                           f"[{int(idx.min())}, {int(idx.max())}]")
    out = (idx[..., None] == xp.arange(num_classes)).astype(np.int64)
    return _new_tensor(out)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Rows of `weight` at integer `input`; the gradient of row padding_idx stays zero."""
    return N.embedding(input, weight, padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
                       scale_grad_by_freq=scale_grad_by_freq)


# ============================================================================ convolution and pooling
conv1d = N.conv1d
conv2d = N.conv2d
conv_transpose1d = N.conv_transpose1d
conv_transpose2d = N.conv_transpose2d
max_pool1d = N.max_pool1d
max_pool2d = N.max_pool2d
avg_pool1d = N.avg_pool1d
avg_pool2d = N.avg_pool2d
adaptive_avg_pool1d = N.adaptive_avg_pool1d
adaptive_avg_pool2d = N.adaptive_avg_pool2d
adaptive_max_pool2d = N.adaptive_max_pool2d
max_unpool2d = N.max_unpool2d
unfold = N.unfold
fold = N.fold


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return N.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def pixel_shuffle(input, upscale_factor):
    n, c, h, w = input.shape
    r = upscale_factor
    x = input.reshape(n, c // (r * r), r, r, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(n, c // (r * r), h * r, w * r)


def _cubic_w(t, a):
    """Keys' cubic convolution weights for the 4 taps at offsets -1, 0, 1, 2 (t in [0, 1))."""
    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _aa_filter(x, mode):
    x = np.abs(x)
    if mode == "bilinear":
        return np.where(x < 1.0, 1.0 - x, 0.0)
    a = -0.5  # PyTorch's antialiased bicubic uses a = -0.5 (as PIL)
    return np.where(x <= 1.0, ((a + 2) * x - (a + 3)) * x * x + 1,
                    np.where(x < 2.0, (((x - 5) * x + 8) * x - 4) * a, 0.0))


def _interp_matrix(n_in, n_out, mode, align_corners, scale, antialias=False):
    """(n_out, n_in) matrix M with out = M @ in along one axis, for PyTorch's 'nearest', 'nearest-exact',
    '(bi)linear', 'bicubic' and 'area' source-index rules (and the antialiased bilinear / bicubic filters).
    `scale` is in/out, or 1/scale_factor when a scale factor was given."""
    m = np.zeros((n_out, n_in))
    dst = np.arange(n_out, dtype=np.float64)
    rows = np.arange(n_out)
    if mode == "nearest":
        src = np.minimum(np.floor(dst * scale).astype(np.int64), n_in - 1)
        m[rows, src] = 1.0
        return m
    if mode == "nearest-exact":
        src = np.minimum(np.floor((dst + 0.5) * scale).astype(np.int64), n_in - 1)
        m[rows, src] = 1.0
        return m
    if mode == "area":  # adaptive average pooling windows
        for i in range(n_out):
            lo, hi = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
            m[i, lo:hi] = 1.0 / (hi - lo)
        return m
    if align_corners:
        scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    if antialias and mode in ("bilinear", "bicubic") and scale >= 1.0:  # downsampling: widened filter
        support = (2.0 if mode == "bilinear" else 4.0) * 0.5 * scale
        for i in range(n_out):
            center = scale * (i + 0.5)
            xmin = max(int(center - support + 0.5), 0)
            xmax = min(int(center + support + 0.5), n_in)
            j = np.arange(xmin, xmax)
            w = _aa_filter((j - center + 0.5) / scale, mode)
            tot = w.sum()
            m[i, xmin:xmax] = w / tot if tot != 0 else w
        return m
    if align_corners:
        src = dst * scale
    elif mode == "bicubic":
        src = (dst + 0.5) * scale - 0.5  # not clamped at 0 for cubic, as PyTorch
    else:
        src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    if mode == "bicubic":
        i0 = np.floor(src).astype(np.int64)
        ws = _cubic_w(src - i0, -0.75)
        for k, w in zip(range(-1, 3), ws):
            np.add.at(m, (rows, np.clip(i0 + k, 0, n_in - 1)), w)
        return m
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    np.add.at(m, (rows, i0), 1 - lam)
    np.add.at(m, (rows, i1), lam)
    return m


_INTERP_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """F.interpolate for 'nearest', 'nearest-exact', 'area' (3-D, 4-D or 5-D input), 'linear' (3-D),
    'bilinear' / 'bicubic' (4-D, optionally antialiased) and 'trilinear' (5-D), with PyTorch's source-index
    rules (align_corners, scale_factor, recompute_scale_factor). Written as products with constant
    interpolation matrices along each spatial axis (the modes are separable), so it is differentiable
    through matmul."""
    _check_tensor(input, "interpolate")
    nsp = input.ndim - 2
    if nsp not in (1, 2, 3):
        raise NotImplementedError(f"interpolate: 3-D, 4-D or 5-D inputs are supported, got shape "
                                  f"{tuple(input.shape)}")
    modes = ("nearest", "nearest-exact", "area", "linear", "bilinear", "bicubic", "trilinear")
    if mode not in modes:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported (use one of {modes})")
    if mode in _INTERP_DIMS and nsp != _INTERP_DIMS[mode]:
        raise ValueError(f"interpolate: mode {mode!r} expects a {_INTERP_DIMS[mode] + 2}-D input, got shape "
                         f"{tuple(input.shape)}")
    if mode not in _INTERP_DIMS and align_corners is not None:
        raise ValueError("interpolate: align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if antialias and mode not in ("bilinear", "bicubic"):
        raise ValueError(f"interpolate: anti-alias option is restricted to bilinear and bicubic modes, got {mode!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: exactly one of size or scale_factor must be given")
    in_sizes = input.shape[2:]
    if size is not None:
        out_sizes = (size,) * nsp if isinstance(size, int) else tuple(size)
        scales = [i / o for i, o in zip(in_sizes, out_sizes)]
    else:
        sf = (scale_factor,) * nsp if not isinstance(scale_factor, (tuple, list)) else tuple(scale_factor)
        out_sizes = tuple(int(math.floor(i * f)) for i, f in zip(in_sizes, sf))
        scales = [i / o for i, o in zip(in_sizes, out_sizes)] if recompute_scale_factor or mode == "area" \
            else [1.0 / f for f in sf]
    if len(out_sizes) != nsp or any(o <= 0 for o in out_sizes):
        raise ValueError(f"interpolate: invalid output size {out_sizes} for input of shape {tuple(input.shape)}")
    xp = _xp(input)
    out = input
    for ax, (i, o, s) in enumerate(zip(in_sizes, out_sizes, scales)):
        if i == o and mode in ("nearest", "nearest-exact", "area") and s == 1.0:
            continue
        mat = _new_tensor(xp.asarray(_interp_matrix(i, o, mode, bool(align_corners), s, antialias),
                                     dtype=input.dtype))
        d = 2 + ax
        moved = out.movedim(d, -1) if d != input.ndim - 1 else out
        res = moved.matmul(mat.t())  # (..., in) @ (in, out)
        out = res.movedim(-1, d) if d != input.ndim - 1 else res
    return out


# ============================================================================ normalisation
batch_norm = N.batch_norm
layer_norm = N.layer_norm
group_norm = N.group_norm
instance_norm = N.instance_norm
rms_norm = N.rms_norm


# ============================================================================ losses
def _reduction(size_average, reduce, reduction):
    """Map the legacy (size_average, reduce) pair to a reduction string, as PyTorch."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _reduce(loss, reduction, name):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{name}: {reduction!r} is not a valid value for reduction (use 'mean', 'sum' or 'none')")


def _check_same_shape(input, target, name):
    _check_tensor(input, name)
    if not isinstance(target, Tensor):
        target = autodiff.as_tensor(target, device=input.device)
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"{name}: target shape {tuple(target.shape)} differs from input shape "
                         f"{tuple(input.shape)}; they must match")
    if target.dtype != input.dtype and target.dtype.kind in "biu" and input.dtype.kind == "f":
        target = target.to(input.dtype)
    return target


def _check_reduction(reduction, name, extra=()):
    if reduction not in ("mean", "sum", "none") + tuple(extra):
        raise ValueError(f"{name}: {reduction!r} is not a valid value for reduction (use 'mean', 'sum' or "
                         f"'none')")


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "mse_loss")
    target = _check_same_shape(input, target, "mse_loss")
    d = input - target
    loss = d * d
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "mse_loss")


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "l1_loss")
    target = _check_same_shape(input, target, "l1_loss")
    loss = E.abs(input - target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "l1_loss")


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta)."""
    _check_reduction(reduction, "huber_loss")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    target = _check_same_shape(input, target, "huber_loss")
    d = input - target
    a = E.abs(d)
    loss = E.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "huber_loss")


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (beta = 0 gives the L1 loss)."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    target = _check_same_shape(input, target, "smooth_l1_loss")
    d = input - target
    a = E.abs(d)
    if beta == 0:
        loss = a
    else:
        loss = E.where(a < beta, (0.5 / beta) * d * d, a - 0.5 * beta)
    return _reduce(loss, reduction, "smooth_l1_loss")


def _class_layout(input, target, name):
    """Validate (input, class-index target) and flatten to (M, C) logits and (M,) targets.

    Returns (z2d, t1d_array, out_shape) where out_shape is the shape of a reduction='none' result."""
    _check_tensor(input, name)
    if not isinstance(target, Tensor):
        target = autodiff.as_tensor(target, device=input.device)
    if input.dtype.kind != "f":
        raise RuntimeError(f"{name}: expected a floating point input, got {input.dtype}")
    nd = input.ndim
    if nd == 0:
        raise ValueError(f"{name}: input must have at least 1 dimension (classes), got a 0-d tensor")
    if nd == 1:
        exp_t = ()
    else:
        exp_t = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != exp_t:
        raise ValueError(f"{name}: expected target of shape {exp_t} for input of shape {tuple(input.shape)} "
                         f"(class indices), got target of shape {tuple(target.shape)}")
    c = input.shape[1] if nd > 1 else input.shape[0]
    if nd == 1:
        z = input.reshape(1, c)
    elif nd == 2:
        z = input
    else:
        z = input.movedim(1, -1).reshape(-1, c)
    t = target.data.reshape(-1)
    if type(t) is not type(input.data):
        raise RuntimeError(f"{name}: input is on {input.device} but target is on {target.device}")
    return z, t, exp_t, c


def _check_class_range(t, c, ignore_index, name):
    """Class indices must lie in [0, C) (ignore_index excepted). Checked on the CPU only: on a GPU
    the check would synchronise with the host, so out-of-range indices are clipped there."""
    if type(t) is np.ndarray and t.size:
        bad = ((t < 0) | (t >= c)) & (t != ignore_index)
        if bad.any():
            v = t[bad][0]
            raise IndexError(f"{name}: target {int(v)} is out of bounds: class indices must be in [0, {c - 1}] "
                             f"(or ignore_index={ignore_index}) for input with {c} classes")


def _weight_array(weight, c, like, name):
    if weight is None:
        return None
    w = weight.data if isinstance(weight, Tensor) else backend_of(like.data).asarray(weight)
    if tuple(w.shape) != (c,):
        raise RuntimeError(f"{name}: weight should be a 1-D tensor of size {c} (number of classes), got shape "
                           f"{tuple(w.shape)}")
    return w.astype(like.dtype, copy=False)


# integer dtype -> the unsigned dtype of its size (cross_entropy's one-reduction class-range check)
_UNSIGNED = {np.dtype(a): np.dtype(b) for a, b in ((np.int64, np.uint64), (np.int32, np.uint32), (np.int16, np.uint16),
                                                   (np.int8, np.uint8), (np.uint64, np.uint64), (np.uint32, np.uint32),
                                                   (np.uint16, np.uint16), (np.uint8, np.uint8))}
_umax = np.maximum.reduce  # (ndarray.max is a Python wrapper around this)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Cross-entropy of logits `input` (C), (N, C) or (N, C, d1, ...) with class indices (int) or class
    probabilities (float, same shape as input). One fused, stable primitive (log-sum-exp): logits of
    +-1e4 give finite loss and gradients."""
    if (weight is None and label_smoothing == 0.0 and size_average is None and reduce is None
            and (reduction == "mean" or reduction == "sum") and input.__class__ is Tensor
            and target.__class__ is Tensor and not _amp._active):
        # The training hot path, decided without the general path's helpers: CPU (N, C) float logits,
        # (N,) integer class indices, no ignore_index inside [0, C). The class-range check is ONE
        # reduction: the targets viewed as unsigned make negatives huge, so max < C covers both ends.
        # Anything else (or a failing check, to raise its error) takes the general path below.
        d = input.data
        t = target.data
        if (d.__class__ is np.ndarray and t.__class__ is np.ndarray and d.ndim == 2 and t.ndim == 1
                and d.dtype.kind == "f"):
            n, c = d.shape
            ut = _UNSIGNED.get(t.dtype)
            if (ut is not None and t.shape[0] == n and n and not 0 <= ignore_index < c
                    and _umax(t.view(ut)) < c):
                if t.dtype != np.int64:
                    t = t.astype(np.int64)
                return N.SoftmaxCrossEntropy.apply(input, target=t, reduction=reduction)
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    _check_tensor(input, "cross_entropy")
    input, = autodiff.amp.autocast_float32(input)  # autocast: losses run in float32 (autodiff/amp.py)
    if not isinstance(target, Tensor):
        target = autodiff.as_tensor(target, device=input.device)
    if target.dtype.kind == "f":
        return _cross_entropy_probs(input, target, weight, reduction, label_smoothing)
    if target.dtype.kind not in "iu":
        raise RuntimeError(f"cross_entropy: target must hold class indices (integer) or class probabilities "
                           f"(float), got {target.dtype}")
    z, t, out_shape, c = _class_layout(input, target, "cross_entropy")
    xp = _xp(input)
    w = _weight_array(weight, c, input, "cross_entropy")
    on_cpu = type(t) is np.ndarray
    if on_cpu and t.size and 0 <= t.min() and t.max() < c and not 0 <= ignore_index < c:
        valid, has_ignored = None, False  # the common case, decided with two reductions
    else:
        _check_class_range(t, c, ignore_index, "cross_entropy")
        valid = t != ignore_index
        has_ignored = not on_cpu or bool(not valid.all())
    t_safe = xp.where(valid, t, 0) if has_ignored else t
    if type(t) is not np.ndarray:
        t_safe = xp.clip(t_safe, 0, c - 1)
    t_safe = t_safe.astype(np.int64, copy=False)
    if label_smoothing > 0:
        eps = label_smoothing
        q = xp.zeros((t_safe.shape[0], c), dtype=input.dtype)
        wt = w[t_safe] if w is not None else xp.ones(t_safe.shape, dtype=input.dtype)
        q[xp.arange(t_safe.shape[0]), t_safe] = (1 - eps) * wt
        q += (eps / c) * (w[None, :] if w is not None else 1)
        if has_ignored:
            q *= valid[:, None]
        rows = N.SoftTargetCrossEntropy.apply(z, _new_tensor(q))
    else:
        if w is None and not has_ignored and reduction != "none":  # the hot path: one fused node
            return N.SoftmaxCrossEntropy.apply(z, target=t_safe, reduction=reduction)
        rows = N.SoftmaxCrossEntropy.apply(z, target=t_safe)
        scale = None
        if w is not None:
            scale = w[t_safe]
        if has_ignored:
            scale = valid.astype(input.dtype) if scale is None else scale * valid
        if scale is not None:
            rows = E.mul_const(rows, scale)
    if reduction == "none":
        return rows.reshape(out_shape)
    if reduction == "sum":
        return rows.sum()
    if w is not None:
        denom = (w[t_safe] * valid).sum() if has_ignored else w[t_safe].sum()
        return _div_total(rows.sum(), denom, xp, input.dtype)
    if has_ignored:
        return _div_total(rows.sum(), valid.sum(), xp, input.dtype)
    return rows.mean()


def _div_total(total, denom, xp, dtype):
    """total / denom for the 'mean' of weighted / ignore_index losses. With every target ignored (denom 0)
    the value is nan and the gradient 0, as PyTorch; no host read."""
    d = xp.asarray(denom, dtype=dtype)
    nz = d != 0
    out = total / _new_tensor(xp.where(nz, d, xp.ones((), dtype=dtype)))
    return out + _new_tensor(xp.where(nz, xp.zeros((), dtype=dtype), xp.asarray(np.nan, dtype=dtype)))


def _cross_entropy_probs(input, target, weight, reduction, label_smoothing):
    if input.dtype.kind != "f":
        raise RuntimeError(f"cross_entropy: expected a floating point input, got {input.dtype}")
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"cross_entropy: probability targets must have the input's shape "
                         f"{tuple(input.shape)}, got {tuple(target.shape)}")
    nd = input.ndim
    c = input.shape[1] if nd > 1 else input.shape[0]
    if target.dtype != input.dtype:
        target = target.to(input.dtype)

    def flat(x):
        if nd == 1:
            return x.reshape(1, c)
        if nd == 2:
            return x
        return x.movedim(1, -1).reshape(-1, c)

    z, q = flat(input), flat(target)
    if label_smoothing > 0:
        q = q * (1 - label_smoothing) + label_smoothing / c
    w = _weight_array(weight, c, input, "cross_entropy")
    if w is not None:
        q = E.mul_const(q, w[None, :])
    rows = N.SoftTargetCrossEntropy.apply(z, q)
    if reduction == "none":
        if nd == 1:
            return rows.reshape(())
        return rows.reshape((input.shape[0],) + tuple(input.shape[2:]))
    return _reduce(rows, reduction, "cross_entropy")


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """Negative log-likelihood of log-probabilities `input` (C), (N, C) or (N, C, d1, ...) at integer class
    indices `target`."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "nll_loss")
    _check_tensor(input, "nll_loss")
    if not isinstance(target, Tensor):
        target = autodiff.as_tensor(target, device=input.device)
    if target.dtype.kind not in "iu":
        raise RuntimeError(f"nll_loss: expected target of an integer dtype (class indices, int64), got "
                           f"{target.dtype} with shape {tuple(target.shape)}; for probability targets use "
                           "cross_entropy")
    z, t, out_shape, c = _class_layout(input, target, "nll_loss")
    xp = _xp(input)
    _check_class_range(t, c, ignore_index, "nll_loss")
    w = _weight_array(weight, c, input, "nll_loss")
    valid = t != ignore_index
    t_safe = xp.clip(xp.where(valid, t, 0), 0, c - 1).astype(np.int64)
    picked = Gather.apply(z, index=t_safe[:, None], axis=1).reshape(-1)  # indices validated/clipped above
    scale = valid.astype(input.dtype)
    if w is not None:
        scale = scale * w[t_safe]
    rows = E.mul_const(picked, -scale)
    if reduction == "none":
        return rows.reshape(out_shape)
    if reduction == "sum":
        return rows.sum()
    return _div_total(rows.sum(), scale.sum(), xp, input.dtype)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-w (t log x + (1 - t) log(1 - x)) with the logs clamped at -100, as PyTorch."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "binary_cross_entropy")
    target = _check_same_shape(input, target, "binary_cross_entropy")
    if input.dtype.kind != "f":
        raise RuntimeError(f"binary_cross_entropy: expected a floating point input, got {input.dtype}")
    if _on_cpu(input) and input.data.size and (input.data.min() < 0 or input.data.max() > 1):
        raise RuntimeError("binary_cross_entropy: all elements of input should be between 0 and 1 "
                           "(use binary_cross_entropy_with_logits for logits)")
    loss = N.BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """(1 - t) x + (1 + (pos_weight - 1) t) softplus(-x): stable for logits of any size."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    target = _check_same_shape(input, target, "binary_cross_entropy_with_logits")
    sp = E.softplus(-input)
    if pos_weight is not None:
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * sp
    else:
        loss = (1 - target) * input + sp
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Pointwise KL divergence target * (log target - input) with input given as log-probabilities;
    reduction 'batchmean' divides the sum by the batch size (the mathematically correct KL)."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "kl_div", ("batchmean",))
    target = _check_same_shape(input, target, "kl_div")
    if log_target:
        loss = E.exp(target) * (target - input)
    else:
        pos = target > 0
        tlogt = target * E.log(E.where(pos, target, 1.0))  # xlogy: 0 where target == 0
        loss = tlogt - target * input
    if reduction == "batchmean":
        n = input.shape[0] if input.ndim else 1
        return loss.sum() / n
    return _reduce(loss, reduction, "kl_div")


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    target = _check_same_shape(input, target, "poisson_nll_loss")
    if log_input:
        loss = E.exp(input) - target * input
    else:
        loss = input - target * E.log(input + eps)
    if full:
        t = target.data
        xp = _xp(target)
        st = xp.where(t > 1, t * xp.log(xp.where(t > 1, t, 1)) - t + 0.5 * xp.log(2 * math.pi * xp.where(t > 1, t, 1)), 0)
        loss = loss + _new_tensor(st.astype(input.dtype))
    return _reduce(loss, reduction, "poisson_nll_loss")


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    cos = cosine_similarity(input1, input2, dim=-1)
    loss = E.where(target > 0, 1 - cos, E.clamp(cos - margin, min=0.0))
    return _reduce(loss, reduction, "cosine_embedding_loss")


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    loss = E.clamp(-target * (input1 - input2) + margin, min=0.0)
    return _reduce(loss, reduction, "margin_ranking_loss")


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    target = _check_same_shape(input, target, "soft_margin_loss")
    return _reduce(E.softplus(-target * input), reduction, "soft_margin_loss")


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """0.5 (log max(var, eps) + (input - target)^2 / max(var, eps)) (+ 0.5 log 2 pi with full); var may have
    the input's shape, one dimension less, or a last dimension of 1 (homoscedastic), as PyTorch."""
    _check_reduction(reduction, "gaussian_nll_loss")
    if not isinstance(var, Tensor):
        var = autodiff.as_tensor(var, dtype=input.dtype, device=input.device)
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1):
            raise ValueError(f"gaussian_nll_loss: var of shape {tuple(var.shape)} is not broadcastable to input "
                             f"{tuple(input.shape)}")
    v = E.clamp(var.detach(), min=eps) + (var - var.detach())  # clamped in value, gradient as var's
    loss = 0.5 * (E.log(v) + (input - target) ** 2 / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction, "gaussian_nll_loss")


# ============================================================================ attention
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """softmax(q k^T * scale + mask) v for q (..., L, E), k (..., S, E), v (..., S, Ev).

    attn_mask: boolean (True = take part in attention) or float (added to the scores), broadcastable to
    (..., L, S). is_causal masks the upper triangle (it may not be combined with attn_mask, as PyTorch).
    Rows whose every position is masked give NaN, as PyTorch's math kernel.
    """
    for nm, t in (("query", query), ("key", key), ("value", value)):
        _check_tensor(t, "scaled_dot_product_attention", nm)
    if query.shape[-1] != key.shape[-1]:
        raise RuntimeError(f"scaled_dot_product_attention: query embedding size {query.shape[-1]} (shape "
                           f"{tuple(query.shape)}) differs from key's {key.shape[-1]} (shape {tuple(key.shape)})")
    if key.shape[-2] != value.shape[-2]:
        raise RuntimeError(f"scaled_dot_product_attention: key length {key.shape[-2]} (shape {tuple(key.shape)}) "
                           f"differs from value length {value.shape[-2]} (shape {tuple(value.shape)})")
    if is_causal and attn_mask is not None:
        raise RuntimeError("scaled_dot_product_attention: attn_mask and is_causal cannot both be set")
    L, S = query.shape[-2], key.shape[-2]
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        rep = query.shape[-3] // key.shape[-3]
        key = key.repeat_interleave(rep, -3) if hasattr(key, "repeat_interleave") else \
            key.unsqueeze(-3).expand(*key.shape[:-2], rep, S, key.shape[-1]).reshape(
                *key.shape[:-3], key.shape[-3] * rep, S, key.shape[-1])
        value = value.unsqueeze(-3).expand(*value.shape[:-2], rep, S, value.shape[-1]).reshape(
            *value.shape[:-3], value.shape[-3] * rep, S, value.shape[-1])
    s = (1.0 / math.sqrt(query.shape[-1])) if scale is None else scale
    scores = query.matmul(key.transpose(-2, -1)) * s
    xp = _xp(query)
    if is_causal:
        allowed = xp.tril(xp.ones((L, S), dtype=bool))
        scores = scores.masked_fill(_new_tensor(~allowed), float("-inf"))
    if attn_mask is not None:
        m = attn_mask
        if not isinstance(m, Tensor):
            m = autodiff.as_tensor(m, device=query.device)
        if m.dtype == np.bool_:
            scores = scores.masked_fill(_new_tensor(~m.data), float("-inf"))
        else:
            scores = scores + m.to(scores.dtype)
    attn = softmax(scores, -1)
    if dropout_p > 0.0:
        attn = dropout(attn, dropout_p, True)
    return attn.matmul(value)


# ============================================================================ more activations
def threshold(input, threshold, value, inplace=False):
    """input where input > threshold, else value."""
    return _maybe_inplace(input, E.where(input > threshold, input, value), inplace)


def threshold_(input, threshold, value):
    return globals()["threshold"](input, threshold, value, inplace=True)


def hardshrink(input, lambd=0.5):
    """input where |input| > lambd, else 0."""
    return E.where(E.abs(input) > lambd, input, 0.0)


def softshrink(input, lambd=0.5):
    """input - lambd above lambd, input + lambd below -lambd, 0 between."""
    if lambd < 0:
        raise RuntimeError(f"softshrink: lambda must be greater or equal to 0, but found to be {lambd}")
    return E.where(input > lambd, input - lambd, E.where(input < -lambd, input + lambd, 0.0))


def tanhshrink(input):
    return input - E.tanh(input)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Randomized leaky ReLU: negative inputs times a slope drawn from U(lower, upper) per element while
    training; the fixed slope (lower + upper) / 2 otherwise."""
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)
    a = autodiff.rand(*input.shape, dtype=input.dtype, device=input.device).data * (upper - lower) + lower
    xp = _xp(input)
    slope = xp.where(input.data >= 0, xp.ones((), dtype=a.dtype), a).astype(input.dtype)
    return _maybe_inplace(input, E.mul_const(input, slope), inplace)


def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, dim=-1):
    """softmax((logits + Gumbel noise) / tau); hard=True returns the one-hot argmax in the forward and the
    soft sample's gradient (straight-through), as PyTorch."""
    u = autodiff.rand(*logits.shape, dtype=logits.dtype, device=logits.device).data
    xp = _xp(logits)
    tiny = float(np.finfo(np.dtype(logits.dtype)).tiny)
    g = -xp.log(-xp.log(xp.clip(u, tiny, None)))  # Exp(1) samples = -log(U); gumbels = -log(Exp(1))
    y = softmax((logits + _new_tensor(g.astype(logits.dtype))) / tau, dim)
    if not hard:
        return y
    idx = y.data.argmax(axis=dim)
    d = dim % y.ndim
    onehot = (xp.expand_dims(idx, d) == xp.arange(y.shape[d]).reshape((-1,) + (1,) * (y.ndim - d - 1)))
    return y - y.detach() + _new_tensor(onehot.astype(y.dtype))


# ============================================================================ distances and more losses
def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """|| x1 - x2 + eps ||_p over the last dimension, as PyTorch."""
    return autodiff.norm(x1 - x2 + eps, p, -1, keepdim=keepdim)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "triplet_margin_loss")
    if not (anchor.ndim == positive.ndim == negative.ndim):
        raise RuntimeError(f"triplet_margin_loss: anchor {tuple(anchor.shape)}, positive {tuple(positive.shape)} "
                           f"and negative {tuple(negative.shape)} must have the same number of dimensions")
    d_ap = pairwise_distance(anchor, positive, p, eps)
    d_an = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_an = autodiff.minimum(d_an, pairwise_distance(positive, negative, p, eps))
    return _reduce(E.clamp(margin + d_ap - d_an, min=0.0), reduction, "triplet_margin_loss")


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    """input where target == 1, max(0, margin - input) where target == -1 (summed where neither)."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "hinge_embedding_loss")
    if not isinstance(target, Tensor):
        target = autodiff.as_tensor(target, device=input.device)
    z = autodiff.zeros_like(input)
    loss = E.where(target != 1, E.clamp(margin - input, min=0.0), z) + E.where(target != -1, input, z)
    return _reduce(loss, reduction, "hinge_embedding_loss")


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                      reduction="mean"):
    """sum over i != y of max(0, margin - x[y] + x[i])^p (times weight[y]) / C, per sample."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "multi_margin_loss")
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: only p == 1 and p == 2 supported, got {p}")
    x = input if input.ndim == 2 else input.reshape(1, -1)
    n, c = x.shape
    t = target.reshape(-1)
    if tuple(t.shape) != (n,):
        raise ValueError(f"multi_margin_loss: target of shape {tuple(target.shape)} does not match input "
                         f"{tuple(input.shape)}")
    xy = Gather.apply(x, index=t.data.reshape(n, 1).astype(np.int64), axis=1)  # (n, 1)
    m = E.clamp(margin - xy + x, min=0.0)
    if p == 2:
        m = m * m
    if weight is not None:
        m = m * weight.reshape(-1)[t].reshape(n, 1)
    xp = _xp(input)
    not_y = (xp.arange(c).reshape(1, c) != t.data.reshape(n, 1)).astype(input.dtype)
    loss = E.mul_const(m, not_y).sum(1) / c
    if input.ndim < 2:
        loss = loss.reshape(())
    return _reduce(loss, reduction, "multi_margin_loss")


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-(y log sigmoid(x) + (1 - y) log sigmoid(-x)), averaged over classes, then reduced over samples."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "multilabel_soft_margin_loss")
    target = _check_same_shape(input, target, "multilabel_soft_margin_loss")
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    loss = loss.sum(-1) / input.shape[-1]
    return _reduce(loss, reduction, "multilabel_soft_margin_loss")


# ============================================================================ shuffles, pooling, normalisation
def pixel_unshuffle(input, downscale_factor):
    """(N, C, H r, W r) -> (N, C r^2, H, W), the inverse of pixel_shuffle."""
    r = downscale_factor
    *lead, c, hr, wr = input.shape
    if hr % r or wr % r:
        raise RuntimeError(f"pixel_unshuffle: height {hr} and width {wr} must be divisible by {r}")
    h, w = hr // r, wr // r
    x = input.reshape(-1, c, h, r, w, r).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(*lead, c * r * r, h, w)


def channel_shuffle(input, groups):
    n, c = input.shape[:2]
    if c % groups:
        raise RuntimeError(f"channel_shuffle: number of channels ({c}) must be divisible by groups ({groups})")
    rest = tuple(input.shape[2:])
    return input.reshape(n, groups, c // groups, *rest).transpose(1, 2).reshape(n, c, *rest)


def native_channel_shuffle(input, groups):
    return channel_shuffle(input, groups)


def dropout3d(input, p=0.5, training=True, inplace=False):
    return _feature_dropout(input, p, training, inplace, "dropout3d", 3)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Alpha dropout that drops whole channels (one draw per (N, C))."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"feature_alpha_dropout: dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    alpha = -1.7580993408473766
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    keep = (autodiff.rand(*shape, dtype=input.dtype, device=input.device).data >= p).astype(input.dtype)
    a = (1 - p + alpha ** 2 * p * (1 - p)) ** -0.5 if p < 1 else 0.0
    b = -a * alpha * p
    out = E.mul_const(input, keep * a) + _new_tensor((1 - keep) * (a * alpha) + b)
    return _maybe_inplace(input, out, inplace)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    os_ = output_size[0] if isinstance(output_size, (tuple, list)) else output_size
    r = adaptive_max_pool2d(input.unsqueeze(-2), (1, os_), return_indices)
    if return_indices:
        return r[0].squeeze(-2), _new_tensor(r[1].data.squeeze(-2))
    return r.squeeze(-2)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """input / (k + alpha / size * sum of squares over `size` neighbouring channels)^beta (zero padded), as
    PyTorch."""
    if input.ndim < 3:
        raise ValueError(f"local_response_norm: expected 3D or higher dimensional input, got shape "
                         f"{tuple(input.shape)}")
    if input.shape[1] == 0:
        return input
    c = input.shape[1]
    sq = input * input
    padded = sq.movedim(1, -1)
    padded = pad(padded, (size // 2, (size - 1) // 2))
    acc = None
    for j in range(size):
        part = padded.narrow(-1, j, c)
        acc = part if acc is None else acc + part
    div = (acc.movedim(-1, 1) * (alpha / size) + k) ** beta
    return input / div


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode="mean",
                  sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """Sums, means or maxima of bags of embedding rows, as PyTorch: a 2-D `input` holds one bag per row; a
    1-D `input` is cut into bags at `offsets`. per_sample_weights (mode 'sum' only) scale each row;
    padding_idx entries are left out (and not counted by 'mean'); empty bags give zeros."""
    _check_tensor(input, "embedding_bag")
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"embedding_bag: mode has to be one of sum, mean or max, got {mode!r}")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                                  f"supported for mode='sum' (got mode='{mode}'). Please open a feature request "
                                  "on GitHub.")
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError("embedding_bag: if input is 2D, then offsets has to be None, as input is treated is a "
                             "mini-batch of fixed length sequences.")
        b, n = input.shape
        bag = np.repeat(np.arange(b), n)
        flat = input.reshape(-1)
        if per_sample_weights is not None:
            per_sample_weights = per_sample_weights.reshape(-1)
    elif input.ndim == 1:
        if offsets is None:
            raise ValueError("embedding_bag: offsets has to be a 1D Tensor but got None")
        off = offsets.detach().cpu().numpy() if isinstance(offsets, Tensor) else np.asarray(offsets)
        off = off.astype(np.int64).reshape(-1)
        m = input.shape[0]
        if include_last_offset:
            off = off[:-1]
        b = off.size
        bounds = np.append(off, m)
        bag = np.repeat(np.arange(b), np.diff(bounds)) if b else np.zeros(0, np.int64)
        flat = input
    else:
        raise ValueError(f"embedding_bag: input has to be 1D or 2D Tensor, but got Tensor of dimension {input.ndim}")
    d = weight.shape[1]
    xp = _xp(weight)
    rows = embedding(flat, weight, None, max_norm, norm_type, scale_grad_by_freq)  # (M, D)
    m = rows.shape[0]
    keep = np.ones(m, dtype=bool)
    if padding_idx is not None:
        pi = padding_idx % weight.shape[0]
        keep = (flat.detach().cpu().numpy().reshape(-1) != pi)
    if mode == "max":
        outs = []
        for i in range(b):
            sel = np.nonzero((bag == i) & keep)[0]
            if sel.size:
                outs.append(rows[_new_tensor(xp.asarray(sel))].amax(0))
            else:
                outs.append(autodiff.zeros(d, dtype=weight.dtype, device=weight.device))
        return autodiff.stack(outs, 0) if outs else autodiff.zeros(0, d, dtype=weight.dtype, device=weight.device)
    a = np.zeros((b, m), dtype=np.dtype(weight.dtype))
    a[bag[keep], np.nonzero(keep)[0]] = 1.0
    if mode == "mean":
        cnt = a.sum(1, keepdims=True)
        a = a / np.maximum(cnt, 1)
    amat = _new_tensor(xp.asarray(a))
    if per_sample_weights is not None:
        amat = amat * per_sample_weights.reshape(1, m)
    return amat.matmul(rows)


# ============================================================================ 3-d convolution and pooling
def _triple(v, name):
    t = tuple(v) if isinstance(v, (tuple, list)) else (v,) * 3
    if len(t) != 3:
        raise ValueError(f"{name}: expected an int or a triple, got {v!r}")
    return tuple(int(a) for a in t)


def _batched5(input, name):
    _check_tensor(input, name)
    if input.ndim not in (4, 5):
        raise RuntimeError(f"{name}: expected a 4-D (unbatched) or 5-D (batched) input, got shape "
                           f"{tuple(input.shape)}")
    return (input.unsqueeze(0), True) if input.ndim == 4 else (input, False)


def _depth_slices(x, k, s, d, od):
    """For each kernel depth offset j: the input depth planes it meets, as (N * OD, C, H, W)."""
    n, c = x.shape[:2]
    out = []
    for j in range(k):
        a = j * d
        sl = x[:, :, a:a + (od - 1) * s + 1:s]  # (N, C, OD, H, W)
        out.append(sl.permute(0, 2, 1, 3, 4).reshape(n * od, c, x.shape[3], x.shape[4]))
    return out


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D convolution (N, C, D, H, W) as a sum over the kernel depth of 2-D convolutions of the depth
    planes (so it runs on every backend's conv2d kernels and is differentiable through them); PyTorch's
    stride / padding (int, triple, 'same', 'valid') / dilation / groups."""
    x, unb = _batched5(input, "conv3d")
    s, dl = _triple(stride, "conv3d"), _triple(dilation, "conv3d")
    k = tuple(weight.shape[2:])
    if isinstance(padding, str):
        if padding == "valid":
            pads = [(0, 0)] * 3
        elif padding == "same":
            if any(v != 1 for v in s):
                raise ValueError("conv3d: padding='same' is not supported for strided convolutions")
            pads = [((di * (ki - 1)) // 2, di * (ki - 1) - (di * (ki - 1)) // 2) for ki, di in zip(k, dl)]
        else:
            raise ValueError(f"conv3d: invalid padding string {padding!r}, should be one of 'valid', 'same'")
    else:
        pads = [(p, p) for p in _triple(padding, "conv3d")]
    if x.shape[1] != weight.shape[1] * groups:
        raise RuntimeError(f"conv3d: input of shape {tuple(input.shape)} has {x.shape[1]} channels, weight "
                           f"{tuple(weight.shape)} with groups={groups} expects {weight.shape[1] * groups}")
    if any(p for pr in pads for p in pr):
        x = pad(x, [v for pr in reversed(pads) for v in pr])
    n = x.shape[0]
    od = (x.shape[2] - dl[0] * (k[0] - 1) - 1) // s[0] + 1
    if od <= 0:
        raise RuntimeError(f"conv3d: input of shape {tuple(input.shape)} is too small for kernel {k}")
    out = None
    for j, xs in enumerate(_depth_slices(x, k[0], s[0], dl[0], od)):
        y = conv2d(xs, weight[:, :, j], None, s[1:], 0, dl[1:], groups)
        out = y if out is None else out + y
    o = out.shape[1]
    out = out.reshape(n, od, o, out.shape[2], out.shape[3]).permute(0, 2, 1, 3, 4)
    if bias is not None:
        out = out + bias.reshape(1, o, 1, 1, 1)
    return out.squeeze(0) if unb else out


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 3-D convolution: 2-D transposed convolutions of each input depth plane with each kernel
    depth slice, placed at depth i * stride + j * dilation - padding, as PyTorch."""
    x, unb = _batched5(input, "conv_transpose3d")
    s, p = _triple(stride, "conv_transpose3d"), _triple(padding, "conv_transpose3d")
    op, dl = _triple(output_padding, "conv_transpose3d"), _triple(dilation, "conv_transpose3d")
    n, c, din = x.shape[:3]
    kd = weight.shape[2]
    xs = x.permute(0, 2, 1, 3, 4).reshape(n * din, c, x.shape[3], x.shape[4])
    full_d = (din - 1) * s[0] + dl[0] * (kd - 1) + 1
    out_d = full_d - 2 * p[0] + op[0]
    total = None
    for j in range(kd):
        y = conv_transpose2d(xs, weight[:, :, j], None, s[1:], p[1:], op[1:], groups, dl[1:])
        o, oh, ow = y.shape[1:]
        y = y.reshape(n, din, o, oh, ow)
        if s[0] > 1:  # interleave stride-1 zero planes between the input planes
            z = autodiff.zeros(n, din, s[0] - 1, o, oh, ow, dtype=y.dtype, device=y.device)
            y = autodiff.cat([y.unsqueeze(2), z], 2).reshape(n, din * s[0], o, oh, ow)[:, :(din - 1) * s[0] + 1]
        lead = j * dl[0]
        tail = full_d + op[0] - lead - y.shape[1]
        y = pad(y.permute(0, 2, 3, 4, 1), (lead, tail)).permute(0, 4, 1, 2, 3)  # (N, full_d + op, O, OH, OW)
        total = y if total is None else total + y
    total = total[:, p[0]:p[0] + out_d].permute(0, 2, 1, 3, 4)
    if bias is not None:
        total = total + bias.reshape(1, -1, 1, 1, 1)
    return total.squeeze(0) if unb else total


def _pool3d_geometry(x, k, s, p, d, ceil_mode, name):
    from autodiff.backends.base import Backend
    out = []
    for i in range(3):
        if p[i] > (d[i] * (k[i] - 1) + 1) // 2:
            raise RuntimeError(f"{name}: pad should be at most half of effective kernel size, but got pad={p}, "
                               f"kernel_size={k} and dilation={d}")
        out.append(Backend.pool_output_size(x.shape[2 + i], k[i], s[i], p[i], d[i], ceil_mode))
    return out


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """3-D max pooling: the elementwise maximum over the kernel depth of 2-D max pools of the depth planes."""
    if return_indices:
        raise NotImplementedError("max_pool3d: return_indices is not supported")
    x, unb = _batched5(input, "max_pool3d")
    k = _triple(kernel_size, "max_pool3d")
    s = k if stride is None or stride == [] else _triple(stride, "max_pool3d")
    p, d = _triple(padding, "max_pool3d"), _triple(dilation, "max_pool3d")
    od, _, _ = _pool3d_geometry(x, k, s, p, d, ceil_mode, "max_pool3d")
    n, c = x.shape[:2]
    need = (od - 1) * s[0] + d[0] * (k[0] - 1) + 1
    lo, hi = p[0], max(need - x.shape[2] - p[0], 0)
    if lo or hi:  # depth padding with -inf (never the maximum)
        x = pad(x.movedim(2, -1), (lo, hi), value=float("-inf")).movedim(-1, 2)
    out = None
    for xs in _depth_slices(x, k[0], s[0], d[0], od):
        y = max_pool2d(xs, k[1:], s[1:], p[1:], d[1:], ceil_mode)
        out = y if out is None else autodiff.maximum(out, y)
    out = out.reshape(n, od, c, out.shape[2], out.shape[3]).permute(0, 2, 1, 3, 4)
    return out.squeeze(0) if unb else out


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """3-D average pooling with PyTorch's divisor rules (count_include_pad, ceil_mode, divisor_override),
    written as window sums (2-D sum pools over depth slices) divided by the per-window divisor."""
    x, unb = _batched5(input, "avg_pool3d")
    k = _triple(kernel_size, "avg_pool3d")
    s = k if stride is None or stride == [] else _triple(stride, "avg_pool3d")
    p = _triple(padding, "avg_pool3d")
    od, oh, ow = _pool3d_geometry(x, k, s, p, (1, 1, 1), ceil_mode, "avg_pool3d")
    n, c, D, H, W = x.shape
    need = [(o - 1) * si + ki for o, si, ki in zip((od, oh, ow), s, k)]
    pads = [(p[i], max(need[i] - (D, H, W)[i] - p[i], 0)) for i in range(3)]
    xp_ = pad(x, [v for pr in reversed(pads) for v in pr])
    out = None
    for xs in _depth_slices(xp_, k[0], s[0], 1, od):
        y = avg_pool2d(xs, k[1:], s[1:], 0, False, True, 1)  # divisor 1: window sums
        y = y[:, :, :oh, :ow]
        out = y if out is None else out + y
    out = out.reshape(n, od, c, oh, ow).permute(0, 2, 1, 3, 4)
    if divisor_override:
        div = np.full((od, oh, ow), float(divisor_override))
    else:
        def counts(size, o, ki, si, pi):
            st = np.arange(o) * si - pi
            en = np.minimum(st + ki, size + pi)
            if count_include_pad:
                return (en - st).astype(float)
            return (np.minimum(en, size) - np.maximum(st, 0)).astype(float)
        cd, ch, cw = (counts(sz, o, ki, si, pi) for sz, o, ki, si, pi in zip((D, H, W), (od, oh, ow), k, s, p))
        div = cd[:, None, None] * ch[None, :, None] * cw[None, None, :]
    out = out / _new_tensor(_xp(out).asarray(div, dtype=out.dtype))
    return out.squeeze(0) if unb else out


def adaptive_avg_pool3d(input, output_size):
    """Adaptive average pooling over (D, H, W) with PyTorch's windows (separable window averages)."""
    x, unb = _batched5(input, "adaptive_avg_pool3d")
    os_ = list(_triple(output_size, "adaptive_avg_pool3d") if not isinstance(output_size, (tuple, list))
               else output_size)
    size = [x.shape[2 + i] if os_[i] is None else int(os_[i]) for i in range(3)]
    out = interpolate(x, size=tuple(size), mode="area")
    return out.squeeze(0) if unb else out


def adaptive_max_pool3d(input, output_size, return_indices=False):
    if return_indices:
        raise NotImplementedError("adaptive_max_pool3d: return_indices is not supported")
    x, unb = _batched5(input, "adaptive_max_pool3d")
    os_ = list(output_size) if isinstance(output_size, (tuple, list)) else [output_size] * 3
    D, H, W = x.shape[2:]
    od = D if os_[0] is None else int(os_[0])
    planes = []
    for i in range(od):
        a, b = (i * D) // od, -((-(i + 1) * D) // od)
        planes.append(adaptive_max_pool2d(x[:, :, a:b].amax(2), tuple(os_[1:])))
    out = autodiff.stack(planes, 2)
    return out.squeeze(0) if unb else out


# ============================================================================ CTC
def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False):
    """Connectionist Temporal Classification loss, as PyTorch: log_probs (T, N, C) (or (T, C)) log-softmax
    outputs, targets (N, S) padded or 1-D concatenated, per-sample input / target lengths. The forward
    (alpha) recursion runs in log space with Tensor ops, so the gradient comes from autograd. 'mean' divides
    each loss by its target length, then averages; zero_infinity replaces impossible alignments' infinite
    losses (and their gradients) by zero. Like PyTorch's, the gradient with respect to log_probs is the one
    with respect to the logits of the log_softmax (true derivative + exp(log_probs))."""
    _check_reduction(reduction, "ctc_loss")
    _check_tensor(log_probs, "ctc_loss")
    unbatched = log_probs.ndim == 2
    lp = log_probs.unsqueeze(1) if unbatched else log_probs
    if lp.ndim != 3:
        raise RuntimeError(f"ctc_loss: log_probs must be (T, N, C) or (T, C), got shape {tuple(log_probs.shape)}")
    T, n, c = lp.shape

    def host(v):
        if isinstance(v, Tensor):
            v = v.detach().cpu().numpy()
        return np.asarray(v).astype(np.int64).reshape(-1)
    il, tl = host(input_lengths), host(target_lengths)
    if il.size != n or tl.size != n:
        raise RuntimeError(f"ctc_loss: expected {n} input and target lengths (log_probs {tuple(log_probs.shape)}), "
                           f"got {il.size} and {tl.size}")
    tg = host(targets) if not (isinstance(targets, Tensor) and targets.ndim == 2) else None
    if isinstance(targets, Tensor) and targets.ndim == 2 or (not isinstance(targets, Tensor)
                                                            and np.asarray(targets).ndim == 2):
        t2 = targets.detach().cpu().numpy() if isinstance(targets, Tensor) else np.asarray(targets)
        seqs = [t2[i, :tl[i]] for i in range(n)]
    else:
        if unbatched and tg.size == tl.sum() and n == 1:
            seqs = [tg]
        else:
            offs = np.concatenate([[0], np.cumsum(tl)])
            seqs = [tg[offs[i]:offs[i + 1]] for i in range(n)]
    if np.any(il > T) or np.any(il < 0):
        raise RuntimeError(f"ctc_loss: input_lengths must be in [0, {T}], got {il.tolist()}")
    L = 2 * max((len(s) for s in seqs), default=0) + 1
    ext = np.full((n, L), blank, dtype=np.int64)
    skip = np.zeros((n, L), dtype=bool)
    for i, s in enumerate(seqs):
        ext[i, 1:2 * len(s):2] = s
        for j in range(3, 2 * len(s) + 1, 2):
            skip[i, j] = s[(j - 1) // 2] != s[(j - 3) // 2]
    xp = _xp(log_probs)
    neg = -1e30
    dt = lp.dtype
    ext_d = xp.asarray(ext)
    valid = np.arange(L)[None, :] < (2 * tl[:, None] + 1)
    init = np.full((n, L), neg)
    init[:, 0] = 0.0
    init[:, 1] = np.where(tl > 0, 0.0, neg)
    init = np.where(valid, init, neg)

    def emit(t):
        return Gather.apply(lp[t], index=ext_d, axis=1)  # (N, L) log-probabilities of the extended labels

    alpha = emit(0) + _new_tensor(xp.asarray(init, dtype=dt))
    pad1 = _new_tensor(xp.full((n, 1), neg, dtype=dt))
    pad2 = _new_tensor(xp.full((n, 2), neg, dtype=dt))
    skip_d = xp.asarray(skip)
    neg_t = _new_tensor(xp.full((n, L), neg, dtype=dt))
    valid_d = xp.asarray(valid)
    for t in range(1, T):
        a1 = autodiff.cat([pad1, alpha[:, :-1]], 1) if L > 1 else pad1
        a2 = autodiff.cat([pad2, alpha[:, :-2]], 1)[:, :L] if L > 2 else neg_t
        a2 = E.where(_new_tensor(skip_d), a2, neg_t)
        new = autodiff.logsumexp(autodiff.stack([alpha, a1, a2], 0), 0) + emit(t)
        new = E.where(_new_tensor(valid_d), new, neg_t)
        live = _new_tensor(xp.asarray((t < il)[:, None]))
        alpha = E.where(live, new, alpha)
    last = 2 * tl
    end1 = Gather.apply(alpha, index=xp.asarray(last[:, None]), axis=1)
    end2 = Gather.apply(alpha, index=xp.asarray(np.maximum(last - 1, 0)[:, None]), axis=1)
    end2 = E.where(_new_tensor(xp.asarray((tl > 0)[:, None])), end2, _new_tensor(xp.full((n, 1), neg, dtype=dt)))
    ll = autodiff.logsumexp(autodiff.cat([end1, end2], 1), 1)  # (N,)
    loss = -ll
    # PyTorch's CTC backward returns exp(log_probs) + (the true derivative) for t < input_length: the
    # derivative with respect to the logits of a log_softmax producing log_probs. Adding this zero-valued
    # term reproduces it exactly (the gradient reaching logits through log_softmax is unchanged).
    p = E.exp(lp)
    tmask = _new_tensor(xp.asarray((np.arange(T)[:, None] < il[None, :])[:, :, None].astype(np.dtype(dt))))
    loss = loss + ((p - p.detach()) * tmask).sum((0, 2))
    impossible = ll.detach() < neg / 2  # no alignment: PyTorch's infinite loss
    if zero_infinity:
        loss = E.where(impossible, _new_tensor(xp.zeros(n, dtype=dt)), loss)
    else:
        loss = E.where(impossible, _new_tensor(xp.full(n, np.inf, dtype=dt)), loss)
    if reduction == "none":
        return loss.reshape(()) if unbatched else loss
    if reduction == "sum":
        return loss.sum()
    return (loss / _new_tensor(xp.asarray(np.maximum(tl, 1), dtype=dt))).mean()


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0, swap=False,
                                      reduction="mean"):
    """max(d(a, p) - d(a, n) + margin, 0) with a custom distance (pairwise_distance by default)."""
    _check_reduction(reduction, "triplet_margin_with_distance_loss")
    if margin <= 0:
        raise ValueError(f"triplet_margin_with_distance_loss: margin must be greater than 0, got {margin}")
    dist = distance_function if distance_function is not None else pairwise_distance
    d_ap, d_an = dist(anchor, positive), dist(anchor, negative)
    if swap:
        d_an = autodiff.minimum(d_an, dist(positive, negative))
    return _reduce(E.clamp(margin + d_ap - d_an, min=0.0), reduction, "triplet_margin_with_distance_loss")


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """sum over target classes j (the leading non-negative entries of target, up to the first -1) and
    non-target classes i of max(0, 1 - (x[j] - x[i])) / C, per sample, as PyTorch."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "multilabel_margin_loss")
    x = input if input.ndim == 2 else input.reshape(1, -1)
    n, c = x.shape
    t = target.detach().cpu().numpy() if isinstance(target, Tensor) else np.asarray(target)
    t = t.reshape(n, c).astype(np.int64)
    is_t = np.zeros((n, c), dtype=bool)
    pairs = np.zeros((n, c, c), dtype=np.dtype(input.dtype))  # pairs[s, j, i]: j a target, i a non-target
    for s in range(n):
        js = []
        for v in t[s]:
            if v < 0:
                break
            if v >= c:
                raise RuntimeError(f"multilabel_margin_loss: target {v} is out of bounds for {c} classes")
            js.append(v)
        is_t[s, js] = True
        for j in js:
            pairs[s, j] = 1.0
    pairs *= ~is_t[:, None, :]
    xp = _xp(input)
    m = E.clamp(1 - (x.unsqueeze(2) - x.unsqueeze(1)), min=0.0)  # (n, j, i): 1 - (x[j] - x[i])
    loss = E.mul_const(m, xp.asarray(pairs)).sum((1, 2)) / c
    if input.ndim < 2:
        loss = loss.reshape(())
    return _reduce(loss, reduction, "multilabel_margin_loss")


# ============================================================================ affine_grid / grid_sample
def affine_grid(theta, size, align_corners=None):
    """Sampling grid (N, H, W, 2) (or (N, D, H, W, 3)) of the affine maps theta (N, 2, 3) (or (N, 3, 4)) over
    the normalised [-1, 1] output coordinates, as PyTorch (align_corners=None means False)."""
    ac = bool(align_corners)
    size = tuple(size)
    if len(size) == 4:
        if tuple(theta.shape[1:]) != (2, 3) or theta.shape[0] != size[0]:
            raise ValueError(f"affine_grid: expected theta of shape ({size[0]}, 2, 3) for size {list(size)}, got "
                             f"{tuple(theta.shape)}")
        spatial = size[2:]
    elif len(size) == 5:
        if tuple(theta.shape[1:]) != (3, 4) or theta.shape[0] != size[0]:
            raise ValueError(f"affine_grid: expected theta of shape ({size[0]}, 3, 4) for size {list(size)}, got "
                             f"{tuple(theta.shape)}")
        spatial = size[2:]
    else:
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, got {list(size)}")

    def lin(n):
        if n <= 1:
            return np.zeros(max(n, 0))
        v = np.linspace(-1.0, 1.0, n)
        return v if ac else v * (n - 1) / n
    axes = [lin(n) for n in reversed(spatial)]  # x (W), y (H) [, z (D)]
    mesh = np.meshgrid(*reversed(axes), indexing="ij")  # in (D,) H, W order
    coords = [m for m in reversed(mesh)] + [np.ones_like(mesh[0])]
    base = np.stack(coords, -1).reshape(-1, len(coords))  # (P, k + 1)
    xp = _xp(theta)
    b = _new_tensor(xp.asarray(base, dtype=theta.dtype))
    grid = b.matmul(theta.transpose(1, 2))  # (N, P, k)
    return grid.reshape((size[0],) + tuple(spatial) + (len(spatial),))


def _grid_coord(g, size, padding_mode, align_corners):
    """Normalised coordinate Tensor -> pixel coordinate with PyTorch's unnormalisation and padding rules."""
    x = (g + 1) * ((size - 1) / 2) if align_corners else ((g + 1) * size - 1) / 2
    if padding_mode == "border":
        x = E.clamp(x, 0.0, float(size - 1))
    elif padding_mode == "reflection":
        lo2, hi2 = (0, 2 * (size - 1)) if align_corners else (-1, 2 * size - 1)
        if lo2 == hi2:
            x = x * 0
        else:
            mn, span = lo2 / 2, (hi2 - lo2) / 2
            a = E.abs(x - mn)
            xp = _xp(g)
            flips = xp.floor(a.data / span)
            even = (flips % 2) == 0
            sgn = xp.where(even, 1.0, -1.0).astype(a.dtype)
            off = xp.where(even, mn, span + mn).astype(a.dtype)
            x = E.mul_const(a - E.mul_const(a * 0 + 1, (flips * span).astype(a.dtype)), sgn) + _new_tensor(off)
        x = E.clamp(x, 0.0, float(size - 1))
    return x


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """Sample input (N, C, H, W) at grid (N, Ho, Wo, 2) normalised (x, y) locations, as PyTorch: modes
    'bilinear', 'nearest', 'bicubic'; padding 'zeros', 'border', 'reflection'. Differentiable with respect to
    the input and (bilinear, bicubic) the grid."""
    _check_tensor(input, "grid_sample")
    if input.ndim != 4 or grid.ndim != 4 or grid.shape[-1] != 2 or grid.shape[0] != input.shape[0]:
        raise RuntimeError(f"grid_sample: expected input (N, C, H, W) and grid (N, Ho, Wo, 2), got "
                           f"{tuple(input.shape)} and {tuple(grid.shape)}")
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', "
                         f"but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    ac = bool(align_corners)
    n, c, h, w = input.shape
    ho, wo = grid.shape[1:3]
    xp = _xp(input)
    flat = input.reshape(n, c, h * w)
    gx, gy = grid[..., 0].reshape(n, 1, ho * wo), grid[..., 1].reshape(n, 1, ho * wo)
    pm_coord = padding_mode if mode != "bicubic" else "zeros"
    ix, iy = _grid_coord(gx, w, pm_coord, ac), _grid_coord(gy, h, pm_coord, ac)

    def tap(xi, yi):
        """Input values at integer pixel arrays xi, yi (N, 1, P): zero outside (zeros padding)."""
        if mode == "bicubic" and padding_mode != "zeros":  # bounded taps: the padding applied to the tap
            xi = _tap_bound(xi, w, padding_mode, ac, xp)
            yi = _tap_bound(yi, h, padding_mode, ac, xp)
        ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        idx = (xp.clip(yi, 0, h - 1) * w + xp.clip(xi, 0, w - 1)).astype(np.int64)
        vals = Gather.apply(flat, index=xp.broadcast_to(idx, (n, c, ho * wo)), axis=2)
        return E.mul_const(vals, ok.astype(input.dtype))

    if mode == "nearest":  # the grid gets a zero gradient (not None), as PyTorch
        out = tap(xp.rint(ix.data), xp.rint(iy.data)) + (ix + iy) * 0
    elif mode == "bilinear":
        x0, y0 = xp.floor(ix.data), xp.floor(iy.data)
        tx, ty = ix - _new_tensor(x0), iy - _new_tensor(y0)
        out = (tap(x0, y0) * ((1 - tx) * (1 - ty)) + tap(x0 + 1, y0) * (tx * (1 - ty))
               + tap(x0, y0 + 1) * ((1 - tx) * ty) + tap(x0 + 1, y0 + 1) * (tx * ty))
    else:
        x0, y0 = xp.floor(ix.data), xp.floor(iy.data)
        tx, ty = ix - _new_tensor(x0), iy - _new_tensor(y0)
        wx, wy = _cubic_w_t(tx), _cubic_w_t(ty)
        out = None
        for a in range(4):
            row = None
            for b in range(4):
                v = tap(x0 - 1 + b, y0 - 1 + a) * wx[b]
                row = v if row is None else row + v
            row = row * wy[a]
            out = row if out is None else out + row
    return out.reshape(n, c, ho, wo)


def _cubic_w_t(t, a=-0.75):
    def near(x):
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _tap_bound(v, size, padding_mode, align_corners, xp):
    """Integer tap coordinates moved inside the input by the padding rule (bicubic's get_value_bounded)."""
    if padding_mode == "border":
        return xp.clip(v, 0, size - 1)
    lo2, hi2 = (0, 2 * (size - 1)) if align_corners else (-1, 2 * size - 1)
    if lo2 == hi2:
        return xp.zeros_like(v)
    mn, span = lo2 / 2, (hi2 - lo2) / 2
    a = xp.abs(v - mn)
    flips = xp.floor(a / span)
    extra = a - flips * span
    r = xp.where(flips % 2 == 0, extra + mn, span - extra + mn)
    return xp.clip(r, 0, size - 1)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Inverse of max_pool1d (values written at their indices, zeros elsewhere), as PyTorch."""
    one = (lambda v: v[0] if isinstance(v, (tuple, list)) else v)
    k = one(kernel_size)
    s = k if stride is None else one(stride)
    p = one(padding)
    size = None
    if output_size is not None:
        size = (1, list(output_size)[-1])
    idx = indices.unsqueeze(-2) if isinstance(indices, Tensor) else indices[..., None, :]
    out = max_unpool2d(input.unsqueeze(-2), idx, (1, k), (1, s), (0, p), size)
    return out.squeeze(-2)
