"""Neural-network primitives: linear, softmax / log_softmax, fused softmax-cross-entropy, convolution
(forward, input-gradient and weight-gradient as three mutually differentiable bilinear primitives),
max / average pooling, batch / layer normalisation and embedding lookup.

These are primitives (not composites of Tensor ops) for speed or numerical stability; each says why.
Every forward runs on raw backend arrays through `ctx.backend` kernel slots. Every backward has two
paths: when the engine runs it under no-grad (ordinary `loss.backward()`), it works on raw arrays with
the backend kernels and wraps the result once; under `create_graph=True` it is written with Tensor
ops (themselves differentiable), so higher-order gradients are right.
"""
from __future__ import annotations

import numpy as np

from .. import amp as _amp
from ..autograd import Function, _mode, _new_tensor


def _raw():
    """True when backward may work on raw arrays (no graph of the backward is being recorded)."""
    return not _mode.enabled


def _w(a):
    return _new_tensor(a)


# ============================================================================ linear
class Linear(Function):
    """y = x @ W.T + b for x (..., in), W (out, in), b (out,). One node instead of three (transpose,
    matmul, add): the MLP step is dominated by per-node overhead at small batch."""
    save_inputs = (0, 1)

    @staticmethod
    def forward(ctx, x, w, b=None):
        if x.ndim == 2:
            out = x @ w.T
        else:
            out = (x.reshape(-1, x.shape[-1]) @ w.T).reshape(x.shape[:-1] + (w.shape[0],))
        if b is not None:
            out += b
        return out

    @staticmethod
    def backward(ctx, g):
        saved = ctx.saved  # saved_tensors' checks inlined (hot path); the property raises if they fail
        if saved is None or saved[0]._vc[0] != ctx.saved_versions[0] or saved[1]._vc[0] != ctx.saved_versions[1]:
            saved = ctx.saved_tensors
        x, w = saved
        e = ctx.edges
        gx = gw = gb = None
        if not _mode.enabled:  # (inlined _raw() and _w(): this runs once per layer per step)
            gd = g.data
            g2 = gd if gd.ndim == 2 else gd.reshape(-1, gd.shape[-1])
            if e[0] is not None:
                gx = _new_tensor(gd @ w.data)
            if e[1] is not None:
                xd = x.data
                x2 = xd if xd.ndim == 2 else xd.reshape(-1, xd.shape[-1])
                gw = _new_tensor(g2.T @ x2)
            if len(e) > 2 and e[2] is not None:
                gb = _new_tensor(g2.sum(axis=0))
        else:
            g2 = g.reshape(-1, g.shape[-1])
            if e[0] is not None:
                gx = g.matmul(w)
            if e[1] is not None:
                gw = g2.t().matmul(x.reshape(-1, x.shape[-1]))
            if len(e) > 2 and e[2] is not None:
                gb = g2.sum(0)
        return gx, gw, gb


def linear(x, weight, bias=None, name="linear"):
    """F.linear(input, weight, bias=None) with a shape check naming the op."""
    if x.data.ndim == 0 or x.data.shape[-1] != weight.data.shape[-1]:
        raise RuntimeError(f"{name}: input has {x.data.shape[-1] if x.data.ndim else 0} features (shape "
                           f"{tuple(x.shape)}), expected {weight.data.shape[-1]} (weight shape "
                           f"{tuple(weight.shape)})")
    if _amp._active:  # autocast (autodiff/amp.py): low-precision operands
        x, weight, bias = _amp.autocast_operands(x, weight, bias)
    x, weight, bias = _same_float(name, x, weight, bias)
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)


def _same_float(name, *ts):
    """Check that the given tensors (None skipped) share one floating dtype and one device."""
    first = next(t for t in ts if t is not None)
    dt, ty = first.data.dtype, type(first.data)
    for t in ts:
        if t is None:
            continue
        if type(t.data) is not ty:
            raise RuntimeError(f"{name}: expected all tensors on the same device, got "
                               + ", ".join(str(u.device) for u in ts if u is not None))
        if t.data.dtype != dt:
            raise RuntimeError(f"{name}: expected all tensors to have the same dtype, got "
                               + ", ".join(str(u.dtype) for u in ts if u is not None))
    if dt.kind != "f":
        raise RuntimeError(f"{name}: expected floating point tensors, got {dt}")
    return ts


# ============================================================================ softmax family
def _axis(dim, ndim, name):
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{name}: dimension {dim} out of range for a tensor of {ndim} dimensions")
    return dim % n


class Softmax(Function):
    """Numerically stable softmax along `axis` (max-shifted)."""
    save_output = True

    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        return ctx.backend.softmax(x, axis)

    @staticmethod
    def backward(ctx, g):
        y = ctx.output()
        if _raw():
            yd, gd = y.data, g.data
            gy = gd * yd
            return _w(gy - yd * gy.sum(axis=ctx.axis, keepdims=True))
        gy = g * y
        return gy - y * gy.sum(ctx.axis, keepdim=True)


class LogSoftmax(Function):
    """log(softmax(x)) as x - logsumexp(x) (stable for logits of any size)."""
    save_output = True

    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        return ctx.backend.log_softmax(x, axis)

    @staticmethod
    def backward(ctx, g):
        y = ctx.output()
        if _raw():
            xp = ctx.backend.xp
            gd = g.data
            return _w(gd - xp.exp(y.data) * gd.sum(axis=ctx.axis, keepdims=True))
        return g - y.exp() * g.sum(ctx.axis, keepdim=True)


def _implicit_dim(ndim):
    return 0 if ndim in (0, 1, 3) else 1


def _softmax_like(fn, name, x, dim, dtype):
    """The front end shared by softmax and log_softmax (fn: the Function, name: for the messages)."""
    if dtype is not None:
        x = x.to(dtype)
    if dim is None:
        dim = _implicit_dim(x.data.ndim)
    if x.data.dtype.kind != "f":
        raise RuntimeError(f"{name}: expected a floating point input, got {x.data.dtype}")
    if _amp._active:  # autocast: softmax / log_softmax run in float32
        x, = _amp.autocast_float32(x)
    if x.data.ndim == 0:
        return fn.apply(x.reshape(1), axis=0).reshape(())
    return fn.apply(x, axis=_axis(dim, x.data.ndim, name))


def softmax(x, dim=None, dtype=None):
    return _softmax_like(Softmax, "softmax", x, dim, dtype)


def log_softmax(x, dim=None, dtype=None):
    return _softmax_like(LogSoftmax, "log_softmax", x, dim, dtype)


# ============================================================================ fused cross-entropy
class SoftmaxCrossEntropy(Function):
    """Cross-entropy -log softmax(z)[t] of logits z (N, C) with class indices t (N,): one fused, stable op
    (log-sum-exp). reduction 'none' gives the (N,) rows; 'mean' / 'sum' reduce inside the op (one node
    instead of three on the hot path). Backward is (softmax(z) - onehot(t)) * g without re-running softmax."""
    save_inputs = (0,)

    @staticmethod
    def forward(ctx, z, target, reduction="none"):
        ctx.target, ctx.reduction = target, reduction
        loss, probs = ctx.backend.softmax_cross_entropy(z, target)
        ctx.probs = probs
        if reduction == "mean":
            n = loss.shape[0]  # sum / n is what ndarray.mean computes, without its Python wrapper
            return loss.sum() / n if n else ctx.backend.xp.full((), float("nan"), dtype=loss.dtype)
        if reduction == "sum":
            return loss.sum()
        return loss

    @staticmethod
    def backward(ctx, g):
        n = ctx.target.shape[0]
        red = ctx.reduction
        if not _mode.enabled:  # (_raw() inlined: once per step)
            gd = g.data
            if red != "none":  # the (n,) row gradients, filled (broadcast_to is a slow Python wrapper)
                rows = ctx.backend.xp.empty((n,), dtype=gd.dtype)
                rows[...] = gd * (1.0 / n if n else float("nan")) if red == "mean" else gd  # n = 0: PyTorch's nan
                gd = rows
            return _w(ctx.backend.softmax_cross_entropy_backward(ctx.probs, ctx.target, gd))
        (z,) = ctx.saved_tensors
        xp = ctx.backend.xp
        onehot = _w(xp.eye(z.data.shape[1], dtype=z.data.dtype)[ctx.target])
        if red == "none":
            return (softmax(z, 1) - onehot) * g.unsqueeze(1)
        return (softmax(z, 1) - onehot) * (g * (1.0 / n) if red == "mean" else g)


class SoftTargetCrossEntropy(Function):
    """Per-row -sum_c q[n, c] * log softmax(z)[n, c] for a target distribution q (N, C) (probability
    targets, label smoothing, class weights, ignored rows all reduce to some q). Fused and stable."""
    save_inputs = (0, 1)

    @staticmethod
    def forward(ctx, z, q):
        logp = ctx.backend.log_softmax(z, 1)
        ctx.logp = logp
        return -(q * logp).sum(axis=1)

    @staticmethod
    def backward(ctx, g):
        z, q = ctx.saved_tensors
        e = ctx.edges
        gz = gq = None
        if _raw():
            xp = ctx.backend.xp
            logp, qd, gd = ctx.logp, q.data, g.data[:, None]
            if e[0] is not None:
                gz = _w((xp.exp(logp) * qd.sum(axis=1, keepdims=True) - qd) * gd)
            if e[1] is not None:
                gq = _w(-logp * gd)
            return gz, gq
        gu = g.unsqueeze(1)
        if e[0] is not None:
            gz = (softmax(z, 1) * q.sum(1, keepdim=True) - q) * gu
        if e[1] is not None:
            gq = -log_softmax(z, 1) * gu
        return gz, gq


# ============================================================================ binary cross-entropy
class BinaryCrossEntropy(Function):
    """-(t log x + (1 - t) log(1 - x)) elementwise with the logs clamped at -100 (PyTorch): a primitive so
    that x = 0 or 1 gives finite values and the gradient (x - t) / max(x (1 - x), 1e-12)."""
    save_inputs = (0, 1)

    @staticmethod
    def forward(ctx, x, t):
        xp = ctx.backend.xp
        with np.errstate(divide="ignore", invalid="ignore"):
            lx = xp.maximum(xp.log(x), -100)
            l1x = xp.maximum(xp.log1p(-x), -100)
        return -(t * lx + (1 - t) * l1x)

    @staticmethod
    def backward(ctx, g):
        x, t = ctx.saved_tensors
        e = ctx.edges
        gx = gt = None
        if _raw():
            xp = ctx.backend.xp
            xd, td, gd = x.data, t.data, g.data
            if e[0] is not None:
                gx = _w(gd * (xd - td) / xp.maximum(xd * (1 - xd), 1e-12))
            if e[1] is not None:
                with np.errstate(divide="ignore", invalid="ignore"):
                    gt = _w(gd * (xp.maximum(xp.log1p(-xd), -100) - xp.maximum(xp.log(xd), -100)))
            return gx, gt
        if e[0] is not None:
            gx = g * (x - t) / (x * (1 - x)).clamp(min=1e-12)
        if e[1] is not None:
            gt = g * ((1 - x).log().clamp(min=-100) - x.log().clamp(min=-100))
        return gx, gt


# ============================================================================ convolution
# y = conv(x, w) is bilinear; its two adjoints are primitives too, so every backward is again made of
# these three ops and create_graph works to any order:
#   Conv2d(x, w)          -> y          grads: x: ConvInputGrad(g, w),  w: ConvWeightGrad(x, g)
#   ConvInputGrad(g, w)   -> x-shaped   grads: g: Conv2d(gz, w),        w: ConvWeightGrad(gz, g)
#   ConvWeightGrad(x, g)  -> w-shaped   grads: x: ConvInputGrad(g, gz), g: Conv2d(x, gz)
class Conv2d(Function):
    """2-D cross-correlation (NCHW) with symmetric zero padding, stride, dilation and groups, through the
    backend's conv2d slot (im2col + one batched GEMM in the reference). Optional bias as input 2."""
    save_inputs = (0, 1)

    @staticmethod
    def forward(ctx, x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
        ctx.p = (stride, padding, dilation, groups)
        y, cols = ctx.backend.conv2d(x, w, b, stride, padding, dilation, groups)
        ctx.cols = cols
        return y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        e = ctx.edges
        p = ctx.p
        gx = gw = gb = None
        if _raw():
            bk = ctx.backend
            gd = g.data
            if e[0] is not None:
                gx = _w(bk.conv2d_input_grad(gd, w.data, x.data.shape, *p))
            if e[1] is not None:
                gw = _w(bk.conv2d_weight_grad(x.data, gd, w.data.shape, *p, cols=ctx.cols))
            if len(e) > 2 and e[2] is not None:
                gb = _w(gd.sum(axis=(0, 2, 3)))
            ctx.cols = None
            return gx, gw, gb
        if e[0] is not None:
            gx = ConvInputGrad.apply(g, w, x_shape=x.data.shape, p=p)
        if e[1] is not None:
            gw = ConvWeightGrad.apply(x, g, w_shape=w.data.shape, p=p)
        if len(e) > 2 and e[2] is not None:
            gb = g.sum((0, 2, 3))
        return gx, gw, gb


class ConvInputGrad(Function):
    """The adjoint of Conv2d in its input (= transposed convolution): g (N, O, OH, OW), w -> (N, C, H, W)."""
    save_inputs = (0, 1)

    @staticmethod
    def forward(ctx, g, w, x_shape, p):
        ctx.p = p
        return ctx.backend.conv2d_input_grad(g, w, tuple(x_shape), *p)

    @staticmethod
    def backward(ctx, gz):
        g, w = ctx.saved_tensors
        e = ctx.edges
        p = ctx.p
        gg = gw = None
        if e[0] is not None:
            gg = _conv_nobias(gz, w, p)
        if e[1] is not None:
            gw = ConvWeightGrad.apply(gz, g, w_shape=w.data.shape, p=p)
        return gg, gw


class ConvWeightGrad(Function):
    """The adjoint of Conv2d in its weight: x, g -> (O, C/groups, kh, kw)."""
    save_inputs = (0, 1)

    @staticmethod
    def forward(ctx, x, g, w_shape, p):
        ctx.p = p
        return ctx.backend.conv2d_weight_grad(x, g, tuple(w_shape), *p)

    @staticmethod
    def backward(ctx, gz):
        x, g = ctx.saved_tensors
        e = ctx.edges
        p = ctx.p
        gx = gg = None
        if e[0] is not None:
            gx = ConvInputGrad.apply(g, gz, x_shape=x.data.shape, p=p)
        if e[1] is not None:
            gg = _conv_nobias(x, gz, p)
        return gx, gg


def _conv_nobias(x, w, p):
    stride, padding, dilation, groups = p
    return Conv2d.apply(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)


def _pair(v, name, n=2):
    if isinstance(v, (tuple, list)):
        if len(v) != n:
            raise ValueError(f"{name}: expected an int or a tuple of {n} ints, got {v!r}")
        return tuple(int(a) for a in v)
    return (int(v),) * n


def _conv_same_pad(kernel, dilation):
    tot = [d * (k - 1) for k, d in zip(kernel, dilation)]
    return [(t // 2, t - t // 2) for t in tot]


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, name="conv2d"):
    """F.conv2d: input (N, C, H, W) or (C, H, W), weight (O, C/groups, kh, kw); padding an int, a pair,
    'valid' or 'same' (stride 1 only; asymmetric when the total is odd, extra on the right, as PyTorch)."""
    if input.data.ndim not in (3, 4):
        raise RuntimeError(f"{name}: expected a 3-D (unbatched) or 4-D (batched) input, got shape {tuple(input.shape)}")
    if weight.data.ndim != 4:
        raise RuntimeError(f"{name}: expected a 4-D weight (out_channels, in_channels/groups, kh, kw), got shape "
                           f"{tuple(weight.shape)}")
    unbatched = input.data.ndim == 3
    if unbatched:
        input = input.unsqueeze(0)
    stride, dilation = _pair(stride, name), _pair(dilation, name)
    o, cg, kh, kw = weight.data.shape
    c = input.data.shape[1]
    if groups < 1 or o % groups:
        raise RuntimeError(f"{name}: out_channels ({o}) must be divisible by groups ({groups})")
    if cg * groups != c:
        raise RuntimeError(f"{name}: input has {c} channels (shape {tuple(input.shape)}) but weight of shape "
                           f"{tuple(weight.shape)} with groups={groups} expects {cg * groups} channels")
    if any(s < 1 for s in stride) or any(d < 1 for d in dilation):
        raise RuntimeError(f"{name}: stride and dilation must be positive, got stride={stride}, dilation={dilation}")
    if bias is not None and tuple(bias.data.shape) != (o,):
        raise RuntimeError(f"{name}: bias of shape {tuple(bias.shape)} does not match out_channels {o}")
    if _amp._active:  # autocast (autodiff/amp.py): low-precision operands
        input, weight, bias = _amp.autocast_operands(input, weight, bias)
    input, weight, bias = _same_float(name, input, weight, bias)
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise RuntimeError(f"{name}: padding='same' is not supported for strided convolutions")
            pads = _conv_same_pad((kh, kw), dilation)
            if any(lo != hi for lo, hi in pads):
                from .shape import pad as _pad
                input = _pad(input, (0, pads[1][1] - pads[1][0], 0, pads[0][1] - pads[0][0]))
            padding = (pads[0][0], pads[1][0])
        else:
            raise ValueError(f"{name}: invalid padding string {padding!r}, should be 'valid' or 'same'")
    padding = _pair(padding, name)
    if any(p < 0 for p in padding):
        raise RuntimeError(f"{name}: negative padding {padding}")
    h, w = input.data.shape[2:]
    if h + 2 * padding[0] < dilation[0] * (kh - 1) + 1 or w + 2 * padding[1] < dilation[1] * (kw - 1) + 1:
        raise RuntimeError(f"{name}: input spatial size ({h}, {w}) with padding {padding} is smaller than the "
                           f"(dilated) kernel size ({dilation[0] * (kh - 1) + 1}, {dilation[1] * (kw - 1) + 1})")
    kw_ = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    out = Conv2d.apply(input, weight, **kw_) if bias is None else Conv2d.apply(input, weight, bias, **kw_)
    return out.squeeze(0) if unbatched else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """F.conv1d via conv2d on a height-1 image: input (N, C, L) or (C, L), weight (O, C/groups, k)."""
    if input.data.ndim not in (2, 3):
        raise RuntimeError(f"conv1d: expected a 2-D (unbatched) or 3-D (batched) input, got shape {tuple(input.shape)}")
    if weight.data.ndim != 3:
        raise RuntimeError(f"conv1d: expected a 3-D weight (out_channels, in_channels/groups, k), got shape "
                           f"{tuple(weight.shape)}")
    pad = padding if isinstance(padding, str) else (0, _pair(padding, "conv1d", 1)[0])
    out = conv2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, _pair(stride, "conv1d", 1)[0]), pad,
                 (1, _pair(dilation, "conv1d", 1)[0]), groups, name="conv1d")
    return out.squeeze(-2)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                     output_size=None, name="conv_transpose2d"):
    """F.conv_transpose2d: the adjoint of conv2d in its input. weight (C_in, C_out/groups, kh, kw);
    output size (H - 1) s - 2 p + d (k - 1) + output_padding + 1."""
    if input.data.ndim not in (3, 4):
        raise RuntimeError(f"{name}: expected a 3-D or 4-D input, got shape {tuple(input.shape)}")
    if weight.data.ndim != 4:
        raise RuntimeError(f"{name}: expected a 4-D weight, got shape {tuple(weight.shape)}")
    unbatched = input.data.ndim == 3
    if unbatched:
        input = input.unsqueeze(0)
    stride, padding = _pair(stride, name), _pair(padding, name)
    dilation, output_padding = _pair(dilation, name), _pair(output_padding, name)
    cin, coutg, kh, kw = weight.data.shape
    n, c, h, w = input.data.shape
    if c != cin:
        raise RuntimeError(f"{name}: input has {c} channels (shape {tuple(input.shape)}) but weight of shape "
                           f"{tuple(weight.shape)} expects {cin}")
    if cin % groups:
        raise RuntimeError(f"{name}: in_channels ({cin}) must be divisible by groups ({groups})")
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= s and op >= d:
            raise RuntimeError(f"{name}: output_padding {output_padding} must be smaller than stride {stride} or "
                               f"dilation {dilation}")
    input, weight, bias = _same_float(name, input, weight, bias)
    oh = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    ow = (w - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    if output_size is not None:
        os_ = tuple(output_size)[-2:]
        if os_[0] < oh - output_padding[0] or os_[1] < ow - output_padding[1] or \
                os_[0] >= oh - output_padding[0] + stride[0] or os_[1] >= ow - output_padding[1] + stride[1]:
            raise RuntimeError(f"{name}: requested output_size {os_} is not reachable from input {tuple(input.shape)}")
        oh, ow = os_
    if oh <= 0 or ow <= 0:
        raise RuntimeError(f"{name}: computed output size ({oh}, {ow}) is too small")
    out = ConvInputGrad.apply(input, weight, x_shape=(n, coutg * groups, oh, ow),
                              p=(stride, padding, dilation, groups))
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    one = lambda v: (1, _pair(v, "conv_transpose1d", 1)[0])  # noqa: E731
    return conv_transpose2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, one(stride), (0, _pair(padding, "c", 1)[0]),
                            (0, _pair(output_padding, "c", 1)[0]), groups, one(dilation),
                            name="conv_transpose1d").squeeze(-2)


class Unfold(Function):
    """F.unfold (im2col): (N, C, H, W) -> (N, C*kh*kw, L)."""

    @staticmethod
    def forward(ctx, x, k, p):
        ctx.k, ctx.p, ctx.x_shape = k, p, x.shape
        cols = ctx.backend.im2col(x, k[0], k[1], p[0], p[1], p[2])
        return cols.reshape(x.shape[0], -1, cols.shape[4] * cols.shape[5])

    @staticmethod
    def backward(ctx, g):
        return Fold.apply(g, x_shape=ctx.x_shape, k=ctx.k, p=ctx.p)


class Fold(Function):
    """F.fold (col2im), the adjoint of Unfold: (N, C*kh*kw, L) summed into (N, C, H, W)."""

    @staticmethod
    def forward(ctx, cols, x_shape, k, p):
        ctx.k, ctx.p = k, p
        n, c, h, w = x_shape
        (sh, sw), (ph, pw), (dh, dw) = p
        oh = (h + 2 * ph - dh * (k[0] - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (k[1] - 1) - 1) // sw + 1
        c6 = cols.reshape(n, c, k[0], k[1], oh, ow)
        return ctx.backend.col2im(c6, tuple(x_shape), k[0], k[1], *p)

    @staticmethod
    def backward(ctx, g):
        return Unfold.apply(g, k=ctx.k, p=ctx.p)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    k = _pair(kernel_size, "unfold")
    return Unfold.apply(input, k=k, p=(_pair(stride, "unfold"), _pair(padding, "unfold"), _pair(dilation, "unfold")))


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    k = _pair(kernel_size, "fold")
    h, w = _pair(output_size, "fold")
    n, ck = input.data.shape[:2]
    c = ck // (k[0] * k[1])
    return Fold.apply(input, x_shape=(n, c, h, w), k=k,
                      p=(_pair(stride, "fold"), _pair(padding, "fold"), _pair(dilation, "fold")))


# ============================================================================ pooling
class MaxPool2d(Function):
    """Max pooling through the backend's max_pool2d slot (2x2/2 fast path without window copies); the
    gradient goes to the first maximum of each window, as PyTorch."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, ceil_mode):
        out, idx = ctx.backend.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
        ctx.idx, ctx.x_shape = idx, x.shape
        ctx.overlap = any(s < d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dilation))
        return out

    @staticmethod
    def backward(ctx, g):
        if _raw():
            return _w(ctx.backend.max_pool2d_backward(g.data, ctx.idx, ctx.x_shape, ctx.overlap))
        return MaxPoolScatter.apply(g, idx=ctx.idx, x_shape=ctx.x_shape, overlap=ctx.overlap)


class MaxPoolScatter(Function):
    """zeros(x_shape) with g added at the flat (H*W) positions idx: max-pool backward and max_unpool2d."""

    @staticmethod
    def forward(ctx, g, idx, x_shape, overlap):
        ctx.idx, ctx.g_shape = idx, g.shape
        return ctx.backend.max_pool2d_backward(g, idx, tuple(x_shape), overlap)

    @staticmethod
    def backward(ctx, gz):
        from .indexing import Gather
        n, c = ctx.g_shape[:2]
        return Gather.apply(gz.reshape(n, c, -1), index=ctx.idx.reshape(n, c, -1), axis=2).reshape(ctx.g_shape)


class MaxUnpool2dOp(Function):
    """max_unpool2d: zeros (N, C, oh, ow) with each input value WRITTEN (not added) at its flat index, as
    PyTorch (overlapping pooling windows can repeat an index; the values there are equal). The backward
    gathers the output gradient at the indices."""

    @staticmethod
    def forward(ctx, x, idx, out_hw):
        xp = ctx.backend.xp
        n, c = x.shape[:2]
        ctx.idx, ctx.x_shape = idx, x.shape
        out = xp.zeros((n * c, out_hw[0] * out_hw[1]), dtype=x.dtype)
        rows = xp.arange(n * c).reshape(-1, 1)
        out[rows, idx.reshape(n * c, -1)] = x.reshape(n * c, -1)
        return out.reshape(n, c, out_hw[0], out_hw[1])

    @staticmethod
    def backward(ctx, gz):
        from .indexing import Gather
        n, c = ctx.x_shape[:2]
        return Gather.apply(gz.reshape(n, c, -1), index=ctx.idx.reshape(n, c, -1), axis=2).reshape(ctx.x_shape)


def _pool_args(name, x, kernel_size, stride, padding, dilation, ceil_mode=False):
    if x.data.ndim not in (3, 4):
        raise RuntimeError(f"{name}: expected a 3-D or 4-D input, got shape {tuple(x.shape)}")
    k = _pair(kernel_size, name)
    s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else _pair(stride, name)
    p, d = _pair(padding, name), _pair(dilation, name)
    if any(v <= 0 for v in k + s + d):
        raise RuntimeError(f"{name}: kernel_size {k}, stride {s} and dilation {d} must be positive")
    for pi, ki, di in zip(p, k, d):
        if pi < 0 or pi > (di * (ki - 1) + 1) // 2:
            raise RuntimeError(f"{name}: pad should be at most half of effective kernel size, but got pad={p}, "
                               f"kernel_size={k} and dilation={d}")
    h, w = x.data.shape[-2:]
    from ..backends.base import Backend
    oh = Backend.pool_output_size(h, k[0], s[0], p[0], d[0], ceil_mode)
    ow = Backend.pool_output_size(w, k[1], s[1], p[1], d[1], ceil_mode)
    if oh < 1 or ow < 1:
        raise RuntimeError(f"{name}: output size ({oh}, {ow}) is too small for input of shape {tuple(x.shape)} with "
                           f"kernel_size={k}, stride={s}, padding={p}, dilation={d}")
    return k, s, p, d


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """F.max_pool2d on (N, C, H, W) or (C, H, W); stride defaults to kernel_size. With return_indices also
    the flat index of each maximum in its (H, W) plane (int64), as PyTorch."""
    k, s, p, d = _pool_args("max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode)
    unbatched = input.data.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    out = MaxPool2d.apply(x, kernel=k, stride=s, padding=p, dilation=d, ceil_mode=bool(ceil_mode))
    if unbatched:
        out = out.squeeze(0)
    if return_indices:
        ctx = out.grad_fn if not unbatched else None
        # indices are recomputed only when asked for (a cheap second pass is avoided when recorded)
        if ctx is not None and isinstance(ctx, MaxPool2d):
            idx = ctx.idx
        else:
            from .. import backends
            idx = backends._by_array_type[type(x.data)].max_pool2d(x.data, k, s, p, d, bool(ceil_mode))[1]
            if unbatched:
                idx = idx[0]
        return out, _new_tensor(idx)
    return out


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    one = lambda v: (1, _pair(v, "max_pool1d", 1)[0])  # noqa: E731
    r = max_pool2d(input.unsqueeze(-2), one(kernel_size), one(stride) if stride is not None else None,
                   (0, _pair(padding, "max_pool1d", 1)[0]), one(dilation), ceil_mode, return_indices)
    if return_indices:
        return r[0].squeeze(-2), _new_tensor(r[1].data.squeeze(-2))
    return r.squeeze(-2)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    k = _pair(kernel_size, "max_unpool2d")
    s = k if stride is None else _pair(stride, "max_unpool2d")
    p = _pair(padding, "max_unpool2d")
    unbatched = input.data.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    idx = indices.data if hasattr(indices, "data") else indices
    if unbatched:
        idx = idx[None]
    n, c, h, w = x.data.shape
    if output_size is None:
        oh, ow = (h - 1) * s[0] - 2 * p[0] + k[0], (w - 1) * s[1] - 2 * p[1] + k[1]
    else:
        oh, ow = tuple(output_size)[-2:]
    if tuple(idx.shape) != (n, c, h, w):
        raise RuntimeError(f"max_unpool2d: indices of shape {tuple(idx.shape)} do not match input {tuple(x.shape)}")
    out = MaxUnpool2dOp.apply(x, idx=idx, out_hw=(int(oh), int(ow)))
    return out.squeeze(0) if unbatched else out


class AvgPool2d(Function):
    """Average pooling through the backend's avg_pool2d slot; PyTorch's divisor rules."""

    @staticmethod
    def forward(ctx, x, args):
        ctx.args, ctx.x_shape = args, x.shape
        return ctx.backend.avg_pool2d(x, *args)

    @staticmethod
    def backward(ctx, g):
        if _raw():
            return _w(ctx.backend.avg_pool2d_backward(g.data, ctx.x_shape, *ctx.args))
        return AvgPool2dBackward.apply(g, x_shape=ctx.x_shape, args=ctx.args)


class AvgPool2dBackward(Function):
    """The adjoint of AvgPool2d (linear; its own adjoint is AvgPool2d)."""

    @staticmethod
    def forward(ctx, g, x_shape, args):
        ctx.args = args
        return ctx.backend.avg_pool2d_backward(g, tuple(x_shape), *args)

    @staticmethod
    def backward(ctx, gz):
        return AvgPool2d.apply(gz, args=ctx.args)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    k, s, p, _ = _pool_args("avg_pool2d", input, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("avg_pool2d: divisor must be not zero")
    unbatched = input.data.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    if x.data.dtype.kind != "f":
        raise RuntimeError(f"avg_pool2d: expected a floating point input, got {x.dtype}")
    out = AvgPool2d.apply(x, args=(k, s, p, bool(ceil_mode), bool(count_include_pad), divisor_override))
    return out.squeeze(0) if unbatched else out


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    one = lambda v: (1, _pair(v, "avg_pool1d", 1)[0])  # noqa: E731
    return avg_pool2d(input.unsqueeze(-2), one(kernel_size), one(stride) if stride is not None else None,
                      (0, _pair(padding, "avg_pool1d", 1)[0]), ceil_mode, count_include_pad).squeeze(-2)


def _adaptive_matrix(xp, n_in, n_out, dtype):
    """(n_out, n_in) averaging matrix of PyTorch's adaptive pooling windows [floor(i n/o), ceil((i+1) n/o))."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        a = (i * n_in) // n_out
        b = -((-(i + 1) * n_in) // n_out)
        m[i, a:b] = 1.0 / (b - a)
    return xp.asarray(m, dtype=dtype)


def _adaptive_size(output_size, h, w, name):
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"{name}: output_size must be an int or a pair, got {output_size!r}")
        oh, ow = output_size
    else:
        oh = ow = output_size
    return (h if oh is None else int(oh)), (w if ow is None else int(ow))


def adaptive_avg_pool2d(input, output_size):
    """Adaptive average pooling: average pooling when the sizes divide, otherwise two matmuls with the
    (constant) window-averaging matrices (exactly PyTorch's overlapping windows)."""
    if input.data.ndim not in (3, 4):
        raise RuntimeError(f"adaptive_avg_pool2d: expected a 3-D or 4-D input, got shape {tuple(input.shape)}")
    h, w = input.data.shape[-2:]
    oh, ow = _adaptive_size(output_size, h, w, "adaptive_avg_pool2d")
    if oh < 1 or ow < 1:
        raise RuntimeError(f"adaptive_avg_pool2d: output_size must be positive, got {(oh, ow)}")
    if h % oh == 0 and w % ow == 0:
        return avg_pool2d(input, (h // oh, w // ow))
    from .. import backends
    xp = backends._by_array_type[type(input.data)].xp
    ph = _new_tensor(_adaptive_matrix(xp, h, oh, input.data.dtype))
    pw = _new_tensor(_adaptive_matrix(xp, w, ow, input.data.dtype).T.copy())
    return ph.matmul(input).matmul(pw)


def adaptive_avg_pool1d(input, output_size):
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, output_size)).squeeze(-2)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Adaptive max pooling (max pooling when the sizes divide; otherwise per-window amax, slower)."""
    h, w = input.data.shape[-2:]
    oh, ow = _adaptive_size(output_size, h, w, "adaptive_max_pool2d")
    if h % oh == 0 and w % ow == 0:
        return max_pool2d(input, (h // oh, w // ow), return_indices=return_indices)
    # overlapping windows: the flat (H*W) index of each window's first maximum (device ops, no host sync),
    # then a gather (whose backward scatters to the argmax only, as PyTorch)
    from .indexing import Gather
    xd = input.data
    xp = _xp_of(xd)
    lead = xd.shape[:-2]
    flat = xd.reshape((-1, h, w))
    idx = xp.empty((flat.shape[0], oh, ow), dtype=xp.int64)
    for i in range(oh):
        a, b = (i * h) // oh, -((-(i + 1) * h) // oh)
        for j in range(ow):
            c, d = (j * w) // ow, -((-(j + 1) * w) // ow)
            win = flat[:, a:b, c:d].reshape(flat.shape[0], -1)
            k = xp.argmax(win, axis=1)
            idx[:, i, j] = (a + k // (d - c)) * w + c + k % (d - c)
    out = Gather.apply(input.reshape(flat.shape[0], h * w), index=idx.reshape(flat.shape[0], -1), axis=1)
    out = out.reshape(*lead, oh, ow)
    if return_indices:
        return out, _new_tensor(idx.reshape(lead + (oh, ow)))
    return out


def _xp_of(arr):
    from .. import backends
    return backends._by_array_type[type(arr)].xp


# ============================================================================ normalisation
class Normalize(Function):
    """y = (x - mean) * rsqrt(var + eps) * w + b with mean/var over `axes` (given, computed by the caller
    from x) and w, b broadcastable to x. One node for batch/layer/group norm; backward uses the standard
    closed form (recomputed from x with Tensor ops under create_graph)."""
    save_inputs = (0, 1)

    @staticmethod
    def forward(ctx, x, w, b, mean, var, axes, eps):
        xp = ctx.backend.xp
        invstd = 1.0 / xp.sqrt(var + eps)
        xhat = (x - mean) * invstd
        ctx.xhat, ctx.invstd, ctx.axes, ctx.eps = xhat, invstd, axes, eps
        return xhat * w + b

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        e = ctx.edges
        axes = ctx.axes
        gx = gw = gb = None
        if _raw():
            xhat, invstd, gd = ctx.xhat, ctx.invstd, g.data
            if e[0] is not None:
                gh = gd * w.data
                gx = _w(invstd * (gh - gh.mean(axis=axes, keepdims=True)
                                  - xhat * (gh * xhat).mean(axis=axes, keepdims=True)))
            if e[1] is not None:
                gw = _w(gd * xhat)
            if e[2] is not None:
                gb = g
            return gx, gw, gb
        mean = x.mean(axes, keepdim=True)
        xc = x - mean
        invstd = ((xc * xc).mean(axes, keepdim=True) + ctx.eps).rsqrt()
        xhat = xc * invstd
        if e[0] is not None:
            gh = g * w
            gx = invstd * (gh - gh.mean(axes, keepdim=True) - xhat * (gh * xhat).mean(axes, keepdim=True))
        if e[1] is not None:
            gw = g * xhat
        if e[2] is not None:
            gb = g
        return gx, gw, gb


def _affine_or_const(t, shape, x, value):
    if t is None:
        from .. import backends
        xp = backends._by_array_type[type(x.data)].xp
        return _new_tensor(xp.full((1,) * len(shape), value, dtype=x.data.dtype))
    return t.reshape(shape) if tuple(t.shape) != tuple(shape) else t


def _normalize(x, w, b, axes, eps, wshape, mean=None, var=None):
    xd = x.data
    if mean is None:
        mean = xd.mean(axis=axes, keepdims=True)
        var = xd.var(axis=axes, keepdims=True)
    return Normalize.apply(x, _affine_or_const(w, wshape, x, 1.0), _affine_or_const(b, wshape, x, 0.0),
                           mean=mean, var=var, axes=axes, eps=eps)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """F.batch_norm over (N, C, ...): batch statistics in training (running stats updated in place with the
    unbiased variance, as PyTorch), running statistics in eval."""
    if input.data.ndim < 2:
        raise ValueError(f"batch_norm: expected an input of at least 2 dimensions (N, C, ...), got shape "
                         f"{tuple(input.shape)}")
    c = input.data.shape[1]
    for nm, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and tuple(t.shape) != (c,):
            raise RuntimeError(f"batch_norm: {nm} of shape {tuple(t.shape)} does not match the {c} channels of input "
                               f"of shape {tuple(input.shape)}")
    nd = input.data.ndim
    axes = (0,) + tuple(range(2, nd))
    wshape = (1, c) + (1,) * (nd - 2)
    if training or running_mean is None:
        count = input.data.size // c
        if training and count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input of shape "
                             f"{tuple(input.shape)}")
        xd = input.data
        mean = xd.mean(axis=axes, keepdims=True)
        var = xd.var(axis=axes, keepdims=True)
        if training and running_mean is not None:
            m = momentum if momentum is not None else 0.1
            rm, rv = running_mean.data, running_var.data
            rm *= 1 - m
            rm += m * mean.reshape(c).astype(rm.dtype, copy=False)
            rv *= 1 - m
            rv += (m * count / max(count - 1, 1)) * var.reshape(c).astype(rv.dtype, copy=False)
            running_mean._vc[0] += 1
            running_var._vc[0] += 1
        return _normalize(input, weight, bias, axes, eps, wshape, mean, var)
    # eval: y = x * scale + shift with per-channel scale = w / sqrt(rv + eps), shift = b - rm * scale
    from .. import backends
    xp = backends._by_array_type[type(input.data)].xp
    inv = _new_tensor((1.0 / xp.sqrt(running_var.data + eps)).astype(input.data.dtype, copy=False))
    rm = _new_tensor(running_mean.data.astype(input.data.dtype, copy=False))
    scale = inv if weight is None else weight * inv
    shift = -rm * scale if bias is None else bias - rm * scale
    return input * scale.reshape(wshape) + shift.reshape(wshape)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """F.layer_norm over the trailing dimensions `normalized_shape`."""
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[-len(ns):]) != ns or input.data.ndim < len(ns):
        raise RuntimeError(f"layer_norm: input of shape {tuple(input.shape)} does not end with normalized_shape "
                           f"{ns}")
    for nm, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != ns:
            raise RuntimeError(f"layer_norm: {nm} of shape {tuple(t.shape)} does not match normalized_shape {ns}")
    axes = tuple(range(input.data.ndim - len(ns), input.data.ndim))
    return _normalize(input, weight, bias, axes, eps, ns)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """F.group_norm: statistics per (sample, group of C/num_groups channels), then a per-channel affine."""
    n, c = input.data.shape[:2]
    if c % num_groups:
        raise RuntimeError(f"group_norm: num_channels ({c}) must be divisible by num_groups ({num_groups})")
    x = input.reshape(n, num_groups, -1)
    y = _normalize(x, None, None, (2,), eps, (1, 1, 1)).reshape(input.shape)
    shape = (1, c) + (1,) * (input.data.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """F.instance_norm: per-(sample, channel) statistics over the spatial dimensions."""
    n, c = input.data.shape[:2]
    if not use_input_stats and running_mean is not None:
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    axes = tuple(range(2, input.data.ndim))
    if running_mean is not None:
        xd = input.data
        count = xd[0, 0].size
        m = xd.mean(axis=axes).mean(axis=0)
        v = xd.var(axis=axes).mean(axis=0) * count / max(count - 1, 1)
        running_mean.data[...] = (1 - momentum) * running_mean.data + momentum * m
        running_var.data[...] = (1 - momentum) * running_var.data + momentum * v
    y = _normalize(input, None, None, axes, eps, (1,) * input.data.ndim)
    shape = (1, c) + (1,) * (input.data.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def rms_norm(input, normalized_shape, weight=None, eps=None):
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    axes = tuple(range(input.data.ndim - len(ns), input.data.ndim))
    if eps is None:
        eps = float(np.finfo(input.data.dtype).eps)
    y = input * ((input * input).mean(axes, keepdim=True) + eps).rsqrt()
    return y * weight if weight is not None else y


# ============================================================================ embedding
class Embedding(Function):
    """weight[indices]; backward accumulates rows with the backend's embedding_backward slot (row
    padding_idx gets no gradient)."""

    @staticmethod
    def forward(ctx, w, indices, padding_idx, scale_grad_by_freq):
        ctx.indices, ctx.num, ctx.pad, ctx.freq = indices, w.shape[0], padding_idx, scale_grad_by_freq
        return w[indices]

    @staticmethod
    def backward(ctx, g):
        if _raw():
            return _w(_embedding_grad(ctx.backend, g.data, ctx.indices, ctx.num, ctx.pad, ctx.freq))
        return EmbeddingGrad.apply(g, indices=ctx.indices, num=ctx.num, padding_idx=ctx.pad, freq=ctx.freq)


def _embedding_grad(bk, g, indices, num, pad, freq):
    if freq:
        xp = bk.xp
        counts = xp.bincount(indices.reshape(-1), minlength=num)
        g = g / counts[indices][..., None].astype(g.dtype)
    gw = bk.embedding_backward(g, indices, num)
    if pad is not None:
        gw[pad] = 0
    return gw


class EmbeddingGrad(Function):
    @staticmethod
    def forward(ctx, g, indices, num, padding_idx, freq):
        ctx.indices, ctx.pad, ctx.freq = indices, padding_idx, freq
        return _embedding_grad(ctx.backend, g, indices, num, padding_idx, freq)

    @staticmethod
    def backward(ctx, gz):
        if ctx.pad is not None or ctx.freq:
            raise NotImplementedError("embedding: double backward with padding_idx or scale_grad_by_freq")
        return Embedding.apply(gz, indices=ctx.indices, padding_idx=None, scale_grad_by_freq=False)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False):
    idx = input.data if hasattr(input, "data") else input
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"embedding: indices must be an integer tensor (int64), got {idx.dtype}")
    num = weight.data.shape[0]
    if type(idx) is np.ndarray and idx.size and (idx.min() < 0 or idx.max() >= num):
        raise IndexError(f"embedding: index out of range: indices must be in [0, {num - 1}] for an embedding "
                         f"table of {num} rows, got values in [{int(idx.min())}, {int(idx.max())}]")
    if type(idx) is not type(weight.data):
        raise RuntimeError(f"embedding: indices are on {input.device} but weight is on {weight.device}")
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ValueError(f"embedding: padding_idx {padding_idx} must be within num_embeddings ({num})")
        padding_idx %= num
    if max_norm is not None:
        from .. import backends
        xp = backends._by_array_type[type(weight.data)].xp
        rows = xp.unique(idx.reshape(-1))
        wd = weight.data
        norms = (xp.abs(wd[rows]) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
        scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(wd.dtype)
        wd[rows] *= scale[:, None]
        weight._vc[0] += 1
    return Embedding.apply(weight, indices=idx, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq)
