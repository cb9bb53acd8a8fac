"""The backend interface and its xp-generic reference kernels.

A backend bundles an array module (`xp`: numpy or cupy) with named kernel slots. Every slot is
implemented here once against `self.xp`, so NumPy and CuPy get a working version for free; a backend
subclass overrides only the slots it makes faster (numba loops, CUDA kernels). Op code calls
`backend.<slot>(...)` and never branches on the backend's name.

Kernel contract: kernels take and return backend arrays (never Tensors), do not modify their inputs
unless the name ends in `_` (in-place), and never synchronise with the host.
"""
from __future__ import annotations

import numpy as np


class Backend:
    name = "base"
    device_type = "cpu"
    xp = np

    def __init__(self):
        self._rng = None

    # ------------------------------------------------------------------ arrays and devices
    array_types: tuple = (np.ndarray,)

    def asarray(self, data, dtype=None, device=None):
        """`data` (array of any backend, nested lists, scalars) as this backend's array; `device`
        (an autodiff.device) picks the GPU on multi-device backends and is ignored on the CPU."""
        if hasattr(data, "__cuda_array_interface__") and not isinstance(data, self.array_types):
            data = data.get()  # a CuPy array moving to the host
        return self.xp.asarray(data, dtype=dtype)

    def to_numpy(self, a):
        return np.asarray(a)

    def device_of(self, a):
        """The device string of array `a` ("cpu" or "cuda:N")."""
        return "cpu"

    def synchronize(self):
        pass

    @property
    def rng(self):
        if self._rng is None:
            self._rng = self.xp.random.default_rng()
        return self._rng

    def manual_seed(self, seed):
        self._rng = self.xp.random.default_rng(seed)

    def full(self, shape, value, dtype, device=None):
        return self.xp.full(shape, value, dtype=dtype)

    def random(self, kind, shape, dtype, device=None, low=0, high=None):
        """'uniform' [0, 1), 'normal', 'integers' [low, high) or 'permutation' of shape[0], from the
        backend's generator (seeded by manual_seed)."""
        rng = self.rng
        if kind == "uniform":
            return rng.random(shape, dtype=dtype if dtype in (np.float32, np.float64) else np.float64).astype(
                dtype, copy=False)
        if kind == "normal":
            return rng.standard_normal(shape, dtype=dtype if dtype in (np.float32, np.float64) else
                                       np.float64).astype(dtype, copy=False)
        if kind == "integers":
            return rng.integers(low, high, size=shape, dtype=np.int64).astype(dtype, copy=False)
        if kind == "permutation":
            return rng.permutation(shape[0]).astype(dtype, copy=False)
        raise ValueError(f"random: unknown kind {kind!r}")

    # ------------------------------------------------------------------ math kernels
    def erf(self, x):
        """The error function, to double precision (used by exact GELU)."""
        try:
            from scipy.special import erf
            return erf(x).astype(x.dtype, copy=False)
        except ImportError:
            import math
            return np.vectorize(math.erf, otypes=[x.dtype])(x)

    def gelu(self, x, approximate="none"):
        """GELU forward, exact (erf) or tanh approximation; one fused kernel on CUDA."""
        if approximate == "tanh":
            inner = 0.7978845608028654 * (x + 0.044715 * x * x * x)
            return (0.5 * x * (1 + self.xp.tanh(inner))).astype(x.dtype, copy=False)
        return (0.5 * x * (1 + self.erf(x * 0.7071067811865476))).astype(x.dtype, copy=False)

    def silu(self, x):
        """x * sigmoid(x), with exp of non-positive numbers only (stable); one fused kernel on CUDA."""
        xp = self.xp
        e = xp.exp(-xp.abs(x))
        s = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return (x * s).astype(x.dtype, copy=False)

    # ------------------------------------------------------------------ indexing kernels
    def index_add(self, shape, dtype, index, values):
        """Zeros of `shape` with `values` accumulated at `index` (repeated indices add up).

        The backward of advanced indexing and of embedding lookups.
        """
        xp = self.xp
        out = xp.zeros(shape, dtype=dtype)
        xp.add.at(out, index, values)
        return out

    def embedding_backward(self, grad, indices, num_embeddings):
        """Sum rows of `grad` (…, D) into a (num_embeddings, D) table at `indices` (…)."""
        d = grad.shape[-1]
        return self.index_add((num_embeddings, d), grad.dtype, indices.reshape(-1), grad.reshape(-1, d))

    # ------------------------------------------------------------------ convolution kernels (NCHW)
    def im2col(self, x, kh, kw, stride, padding, dilation):
        """x (N, C, H, W) -> cols (N, C, kh, kw, OH, OW); padding is applied with zeros."""
        xp = self.xp
        sh, sw = stride
        ph, pw = padding
        dh, dw = dilation
        n, c, h, w = x.shape
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        if ph or pw:
            x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        else:
            x = xp.ascontiguousarray(x)
        # one copy out of a strided window view (no Python loop over the kernel)
        s0, s1, s2, s3 = x.strides
        view = xp.lib.stride_tricks.as_strided(x, (n, c, kh, kw, oh, ow),
                                               (s0, s1, s2 * dh, s3 * dw, s2 * sh, s3 * sw))
        return xp.ascontiguousarray(view)

    def col2im(self, cols, x_shape, kh, kw, stride, padding, dilation):
        """Adjoint of im2col: cols (N, C, kh, kw, OH, OW) summed back into (N, C, H, W)."""
        xp = self.xp
        sh, sw = stride
        ph, pw = padding
        dh, dw = dilation
        n, c, h, w = x_shape
        oh, ow = cols.shape[4], cols.shape[5]
        xpad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
        for i in range(kh):
            hi = i * dh
            for j in range(kw):
                wj = j * dw
                xpad[:, :, hi:hi + sh * (oh - 1) + 1:sh, wj:wj + sw * (ow - 1) + 1:sw] += cols[:, :, i, j]
        if ph or pw:
            return xpad[:, :, ph:ph + h, pw:pw + w]
        return xpad

    # ------------------------------------------------------------------ fused losses
    def softmax_cross_entropy(self, logits, target):
        """Row-wise cross-entropy of logits (N, C) with class indices target (N,).

        Returns (loss per row (N,), softmax probabilities (N, C)) computed with log-sum-exp so that
        logits of +-1e4 stay finite. The probabilities are what backward needs.
        """
        xp = self.xp
        m = logits.max(axis=1, keepdims=True)
        z = logits - m
        e = xp.exp(z)
        s = e.sum(axis=1, keepdims=True)
        logp_t = z[xp.arange(z.shape[0]), target] - xp.log(s[:, 0])
        e /= s
        return -logp_t, e

    def softmax_cross_entropy_backward(self, probs, target, grad_rows):
        """d loss / d logits for softmax_cross_entropy: (probs - onehot(target)) * grad_rows[:, None]."""
        xp = self.xp
        g = probs.copy()
        g[xp.arange(g.shape[0]), target] -= 1
        g *= grad_rows[:, None]
        return g

    # ------------------------------------------------------------------ nn kernels (softmax, conv, pooling)
    def softmax(self, x, axis):
        """Max-shifted softmax along `axis`."""
        e = self.xp.exp(x - x.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
        return e

    def log_softmax(self, x, axis):
        """x - logsumexp(x) along `axis`, stable for logits of any magnitude."""
        z = x - x.max(axis=axis, keepdims=True)
        z -= self.xp.log(self.xp.exp(z).sum(axis=axis, keepdims=True))
        return z

    def conv2d(self, x, w, b, stride, padding, dilation, groups):
        """Cross-correlation of x (N, C, H, W) with w (O, C/groups, kh, kw) (+ bias (O,)), symmetric zero
        padding (ph, pw). Returns (y (N, O, OH, OW), cols) where cols is the im2col matrix (N, C*kh*kw,
        OH*OW) that conv2d_weight_grad may reuse (or None)."""
        xp = self.xp
        n, c = x.shape[:2]
        o, cg, kh, kw = w.shape
        cols = self.im2col(x, kh, kw, stride, padding, dilation)
        oh, ow = cols.shape[4], cols.shape[5]
        L = oh * ow
        if groups == 1:
            cols = cols.reshape(n, c * kh * kw, L)
            y = xp.matmul(w.reshape(o, -1), cols)
        else:
            cols = cols.reshape(n, groups, cg * kh * kw, L)
            y = xp.matmul(w.reshape(groups, o // groups, -1), cols)
        y = y.reshape(n, o, oh, ow)
        if b is not None:
            y += b.reshape(1, o, 1, 1)
        return y, cols

    def conv2d_input_grad(self, g, w, x_shape, stride, padding, dilation, groups):
        """Adjoint of conv2d in x: g (N, O, OH, OW) -> (N, C, H, W) (also transposed convolution)."""
        xp = self.xp
        n, o, oh, ow = g.shape
        _, cg, kh, kw = w.shape
        c = x_shape[1]
        if groups == 1:
            gcols = xp.matmul(w.reshape(o, -1).T, g.reshape(n, o, oh * ow))
        else:
            wg = w.reshape(groups, o // groups, -1).transpose(0, 2, 1)
            gcols = xp.matmul(wg, g.reshape(n, groups, o // groups, oh * ow))
        gcols = gcols.reshape(n, c, kh, kw, oh, ow)
        return self.col2im(gcols, x_shape, kh, kw, stride, padding, dilation)

    def conv2d_weight_grad(self, x, g, w_shape, stride, padding, dilation, groups, cols=None):
        """Adjoint of conv2d in w: sum over the batch of g x cols^T -> (O, C/groups, kh, kw). `cols` is the
        matrix conv2d returned for this x (recomputed when None)."""
        xp = self.xp
        o, cg, kh, kw = w_shape
        n, _, oh, ow = g.shape
        L = oh * ow
        if cols is None:
            cols = self.im2col(x, kh, kw, stride, padding, dilation)
        if groups == 1:
            cols = cols.reshape(n, cg * kh * kw, L)
            # N small GEMMs and a sum beat one tensordot here (no transposed copies of cols)
            gw = xp.matmul(g.reshape(n, o, L), cols.transpose(0, 2, 1)).sum(axis=0)
        else:
            og = o // groups
            cols = cols.reshape(n, groups, cg * kh * kw, L).transpose(1, 0, 3, 2).reshape(groups, n * L, -1)
            g4 = g.reshape(n, groups, og, L).transpose(1, 2, 0, 3).reshape(groups, og, n * L)
            gw = xp.matmul(g4, cols)
        return gw.reshape(w_shape)

    @staticmethod
    def pool_output_size(size, k, s, p, d, ceil_mode):
        """PyTorch's pooling_output_shape for one spatial dimension."""
        num = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
        out = num // s + 1
        if ceil_mode and (out - 1) * s >= size + p:
            out -= 1
        return out

    def _pool_pad(self, x, kernel, stride, padding, dilation, ceil_mode, value):
        """Pad x (N, C, H, W) with `value` so that every pooling window lies inside; returns (xpad, OH, OW)."""
        h, w = x.shape[2:]
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
        oh = self.pool_output_size(h, kh, sh, ph, dh, ceil_mode)
        ow = self.pool_output_size(w, kw, sw, pw, dw, ceil_mode)
        rh = max((oh - 1) * sh + dh * (kh - 1) + 1 - h - ph, 0)
        rw = max((ow - 1) * sw + dw * (kw - 1) + 1 - w - pw, 0)
        if ph or pw or rh or rw:
            x = self.xp.pad(x, ((0, 0), (0, 0), (ph, rh), (pw, rw)), constant_values=value)
        return x, oh, ow

    @staticmethod
    def _tiled(x, kernel, stride, padding, dilation):
        """Windows tile the input exactly (kernel == stride, no padding/dilation, divisible sizes)."""
        return (tuple(kernel) == tuple(stride) and not any(padding) and tuple(dilation) == (1, 1)
                and x.shape[2] % kernel[0] == 0 and x.shape[3] % kernel[1] == 0)

    def max_pool2d(self, x, kernel, stride, padding, dilation, ceil_mode):
        """Max pooling of x (N, C, H, W). Returns (out (N, C, OH, OW), indices) with indices the flat
        position of each maximum in its (H, W) plane, as PyTorch's return_indices (first maximum wins)."""
        xp = self.xp
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
        if self._tiled(x, kernel, stride, padding, dilation):
            oh, ow = h // kh, w // kw
            xr = x.reshape(n, c, oh, kh, ow, kw)
            if kh == 2 and kw == 2:  # the common 2x2/2 case without a window copy
                a, b2, c2, d2 = xr[:, :, :, 0, :, 0], xr[:, :, :, 0, :, 1], xr[:, :, :, 1, :, 0], xr[:, :, :, 1, :, 1]
                m01 = xp.maximum(a, b2)
                m23 = xp.maximum(c2, d2)
                out = xp.maximum(m01, m23)
                # local argmax 0..3 (first maximum wins) in uint8, then flat index = window corner + offset
                top = (b2 > a).astype(xp.uint8)
                bot = (d2 > c2).astype(xp.uint8) + xp.uint8(2)
                k = xp.where(m23 > m01, bot, top)
                off = xp.asarray([0, 1, w, w + 1], dtype=xp.int64)
                corner = (xp.arange(oh, dtype=xp.int64) * (2 * w)).reshape(oh, 1) + xp.arange(ow, dtype=xp.int64) * 2
                return out, off[k] + corner
            else:
                win = xr.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, oh, ow, kh * kw)
                k = win.argmax(axis=-1)
                out = xp.take_along_axis(win, k[..., None], axis=-1)[..., 0]
            rows = xp.arange(oh).reshape(oh, 1) * kh + k // kw
            cols = xp.arange(ow) * kw + k % kw
            return out, (rows * w + cols).astype(xp.int64, copy=False)
        neg = -xp.inf if x.dtype.kind == "f" else xp.iinfo(x.dtype).min
        xpad, oh, ow = self._pool_pad(x, kernel, stride, padding, dilation, ceil_mode, neg)
        win = self.im2col(xpad, kh, kw, stride, (0, 0), dilation)[:, :, :, :, :oh, :ow]
        win = win.reshape(n, c, kh * kw, oh, ow)
        k = win.argmax(axis=2)
        out = xp.take_along_axis(win, k[:, :, None], axis=2)[:, :, 0]
        rows = xp.arange(oh).reshape(oh, 1) * sh - ph + (k // kw) * dh
        cols = xp.arange(ow) * sw - pw + (k % kw) * dw
        return out, (rows * w + cols).astype(xp.int64, copy=False)

    def max_pool2d_backward(self, g, indices, x_shape, overlapping=True):
        """Route g (N, C, OH, OW) to the maxima: zeros(x_shape) with g added at `indices` (flat in H*W).
        With overlapping=False (no two windows share an input) a plain scatter is used."""
        xp = self.xp
        n, c, h, w = x_shape
        nc = n * c
        g2 = g.reshape(nc, -1)
        idx = indices.reshape(nc, -1)
        if not overlapping:
            out = xp.zeros((nc, h * w), dtype=g.dtype)
            out[xp.arange(nc)[:, None], idx] = g2
            return out.reshape(x_shape)
        flat = (idx + (xp.arange(nc) * (h * w))[:, None]).reshape(-1)
        return self.index_add((nc * h * w,), g.dtype, flat, g2.reshape(-1)).reshape(x_shape)

    def _avg_divisor(self, x_shape, kernel, stride, padding, ceil_mode, count_include_pad, dtype):
        """Per-window divisor (OH, OW) of PyTorch's avg_pool2d."""
        xp = self.xp
        h, w = x_shape[2:]
        ph, pw = padding
        ones = xp.ones((1, 1, h, w), dtype=dtype)
        if count_include_pad:
            ones = xp.pad(ones, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=1)
            oh = self.pool_output_size(h, kernel[0], stride[0], ph, 1, ceil_mode)
            ow = self.pool_output_size(w, kernel[1], stride[1], pw, 1, ceil_mode)
            rh = max((oh - 1) * stride[0] + kernel[0] - ones.shape[2], 0)
            rw = max((ow - 1) * stride[1] + kernel[1] - ones.shape[3], 0)
            ones = xp.pad(ones, ((0, 0), (0, 0), (0, rh), (0, rw)))
        else:
            ones, oh, ow = self._pool_pad(ones, kernel, stride, padding, (1, 1), ceil_mode, 0)
        win = self.im2col(ones, kernel[0], kernel[1], stride, (0, 0), (1, 1))[0, 0, :, :, :oh, :ow]
        return win.sum(axis=(0, 1))

    def avg_pool2d(self, x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
        """Average pooling of x (N, C, H, W) with PyTorch's divisor rules."""
        n, c, h, w = x.shape
        kh, kw = kernel
        if self._tiled(x, kernel, stride, padding, (1, 1)) and not divisor_override:
            return x.reshape(n, c, h // kh, kh, w // kw, kw).mean(axis=(3, 5))
        xpad, oh, ow = self._pool_pad(x, kernel, stride, padding, (1, 1), ceil_mode, 0)
        s = self.im2col(xpad, kh, kw, stride, (0, 0), (1, 1))[:, :, :, :, :oh, :ow].sum(axis=(2, 3))
        if divisor_override:
            return s / x.dtype.type(divisor_override)
        return s / self._avg_divisor(x.shape, kernel, stride, padding, ceil_mode, count_include_pad, x.dtype)

    def avg_pool2d_backward(self, g, x_shape, kernel, stride, padding, ceil_mode, count_include_pad,
                            divisor_override):
        """Adjoint of avg_pool2d: each output's gradient spread evenly over its window."""
        xp = self.xp
        n, c, h, w = x_shape
        kh, kw = kernel
        sh, sw = stride
        ph, pw = padding
        oh, ow = g.shape[2:]
        if self._tiled(xp.empty((0, 0, h, w)), kernel, stride, padding, (1, 1)) and not divisor_override:
            gx = xp.broadcast_to((g / (kh * kw))[:, :, :, None, :, None], (n, c, oh, kh, ow, kw))
            return gx.reshape(x_shape)
        if divisor_override:
            gd = g / g.dtype.type(divisor_override)
        else:
            gd = g / self._avg_divisor(x_shape, kernel, stride, padding, ceil_mode, count_include_pad, g.dtype)
        hp = max((oh - 1) * sh + kh, h + 2 * ph)
        wp = max((ow - 1) * sw + kw, w + 2 * pw)
        cols = xp.broadcast_to(gd[:, :, None, None], (n, c, kh, kw, oh, ow))
        gpad = self.col2im(xp.ascontiguousarray(cols), (n, c, hp, wp), kh, kw, stride, (0, 0), (1, 1))
        return gpad[:, :, ph:ph + h, pw:pw + w]

    # ------------------------------------------------------------------ optimizer update rules (in place)
    def sgd_step_(self, p, g, buf, lr, momentum, dampening, nesterov, weight_decay, maximize, first):
        """One PyTorch SGD update of parameter array p with gradient g; buf is the momentum buffer
        (ignored when momentum == 0). `first` marks the first step (buffer initialised to g)."""
        if maximize:
            g = -g
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            if first:
                buf[...] = g
            else:
                buf *= momentum
                buf += (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p -= lr * g

    def adam_step_(self, p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
                   decoupled):
        """One PyTorch Adam (decoupled=False) or AdamW (decoupled=True) update, in place on p, m, v, vmax."""
        xp = self.xp
        if maximize:
            g = -g
        if weight_decay:
            if decoupled:
                p *= 1 - lr * weight_decay
            else:
                g = g + weight_decay * p
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        bc1 = 1 - beta1 ** step
        bc2 = 1 - beta2 ** step
        if amsgrad:
            xp.maximum(vmax, v, out=vmax)
            denom = xp.sqrt(vmax) / (bc2 ** 0.5) + eps
        else:
            denom = xp.sqrt(v) / (bc2 ** 0.5) + eps
        p -= (lr / bc1) * (m / denom)
