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
        cols = xp.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
        for i in range(kh):
            hi = i * dh
            for j in range(kw):
                wj = j * dw
                cols[:, :, i, j] = x[:, :, hi:hi + sh * (oh - 1) + 1:sh, wj:wj + sw * (ow - 1) + 1:sw]
        return cols

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
        logp_t = xp.take_along_axis(z, target[:, None], axis=1)[:, 0] - xp.log(s[:, 0])
        return -logp_t, e / s

    def softmax_cross_entropy_backward(self, probs, target, grad_rows):
        """d loss / d logits for softmax_cross_entropy: (probs - onehot(target)) * grad_rows[:, None]."""
        xp = self.xp
        g = probs.copy()
        g[xp.arange(g.shape[0]), target] -= 1
        g *= grad_rows[:, None]
        return g

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
