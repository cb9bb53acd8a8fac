"""Fused CUDA kernels for the CuPy backend.

Every kernel here is compiled on first use (CuPy compiles and caches to disk with NVRTC) and cached in
this module, so importing it costs nothing. Each has a NumPy reference: the slot of the same name on
`autodiff.backends.base.Backend`, which `tests/backends/test_cuda_kernels.py` compares it with on
random inputs of several shapes, contiguous and not.

Kernels handle float32 and float64 (and their index dtypes); callers fall back to the xp-generic slot for
other dtypes (float16 goes through CuPy's own ufuncs, which accumulate in float32 where CuPy does).
None of them synchronises with the host: every size and parameter is a Python number known on the host,
and out-of-range class indices produce NaN instead of a host-side check.

This module imports cupy at import time; only `cupy_backend.py` imports it, after CuPy has loaded.
"""
from __future__ import annotations

import math

import cupy

from .base import Backend

pool_out_size = Backend.pool_output_size  # PyTorch's pooling output size, shared with the reference

FUSED_DTYPES = ("float32", "float64")

_cache: dict = {}


def _cached(key, build):
    k = _cache.get(key)
    if k is None:
        k = _cache[key] = build()
    return k


def fusable(*arrays) -> bool:
    """True when every array is float32, or every array is float64 (the dtypes the kernels take)."""
    name = arrays[0].dtype.name
    if name not in FUSED_DTYPES:
        return False
    return all(a.dtype.name == name for a in arrays)


# ---------------------------------------------------------------------------------------------------------
# softmax + cross-entropy (one block per row; block reductions with warp shuffles)
# ---------------------------------------------------------------------------------------------------------
_SCE_SOURCE = r"""
template<typename T> __device__ __forceinline__ T ad_max(T a, T b) { return (a > b || a != a) ? a : b; }

template<typename T> __device__ __forceinline__ T warp_max(T v) {
    for (int o = 16; o > 0; o >>= 1) v = ad_max(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

template<typename T> __device__ __forceinline__ T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// blockDim.x is a multiple of 32 and at most 1024; sh has 32 slots.
template<typename T> __device__ T block_max(T v, T* sh) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = (lane < nw) ? sh[lane] : sh[0];
        v = warp_max(v);
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}

template<typename T> __device__ T block_sum(T v, T* sh) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = (lane < nw) ? sh[lane] : (T)0;
        v = warp_sum(v);
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}

// loss[r] = logsumexp(x[r]) - x[r, t[r]]; probs[r] = softmax(x[r]). x is C-contiguous (N, C), C >= 1.
template<typename T>
__global__ void ad_sce_fwd(const T* __restrict__ x, const long long* __restrict__ t,
                           T* __restrict__ loss, T* __restrict__ probs, const long long C) {
    __shared__ T sh[32];
    const long long row = blockIdx.x;
    const T* xr = x + row * C;
    T* pr = probs + row * C;
    T m = xr[0];
    for (long long j = threadIdx.x; j < C; j += blockDim.x) m = ad_max(m, xr[j]);
    m = block_max(m, sh);
    T s = 0;
    for (long long j = threadIdx.x; j < C; j += blockDim.x) {
        T e = exp(xr[j] - m);
        pr[j] = e;
        s += e;
    }
    s = block_sum(s, sh);
    const T inv = (T)1 / s;
    for (long long j = threadIdx.x; j < C; j += blockDim.x) pr[j] *= inv;
    if (threadIdx.x == 0) {
        const long long tt = t[row];
        loss[row] = (tt >= 0 && tt < C) ? (log(s) + m - xr[tt]) : (T)__int_as_float(0x7fc00000);  // NaN (no math header needed)
    }
}

// y[r] = softmax(x[r]) or log_softmax(x[r]) over the last axis; x is C-contiguous (rows, C), C >= 1.
template<typename T>
__global__ void ad_softmax_rows(const T* __restrict__ x, T* __restrict__ y, const long long C, const int logsm) {
    __shared__ T sh[32];
    const long long row = blockIdx.x;
    const T* xr = x + row * C;
    T* yr = y + row * C;
    T m = xr[0];
    for (long long j = threadIdx.x; j < C; j += blockDim.x) m = ad_max(m, xr[j]);
    m = block_max(m, sh);
    T s = 0;
    for (long long j = threadIdx.x; j < C; j += blockDim.x) s += exp(xr[j] - m);
    s = block_sum(s, sh);
    if (logsm) {
        const T lse = log(s) + m;
        for (long long j = threadIdx.x; j < C; j += blockDim.x) yr[j] = xr[j] - lse;
    } else {
        const T inv = (T)1 / s;
        for (long long j = threadIdx.x; j < C; j += blockDim.x) yr[j] = exp(xr[j] - m) * inv;
    }
}
"""

_ROW_KERNELS = ("ad_sce_fwd<float>", "ad_sce_fwd<double>", "ad_softmax_rows<float>", "ad_softmax_rows<double>")


def _sce_module():
    return cupy.RawModule(code=_SCE_SOURCE, name_expressions=_ROW_KERNELS)


def softmax_rows(x, log=False):
    """Softmax (or log-softmax) over the last axis in one kernel launch (one block per row).
    Reference: `Backend.softmax` / `Backend.log_softmax` with axis=-1."""
    mod = _cached("sce", _sce_module)
    xc = cupy.ascontiguousarray(x)
    y = cupy.empty(xc.shape, dtype=xc.dtype)
    c = xc.shape[-1]
    if y.size == 0:
        return y
    name = "ad_softmax_rows<float>" if xc.dtype == cupy.float32 else "ad_softmax_rows<double>"
    mod.get_function(name)((xc.size // c,), (_threads_for(c),), (xc, y, cupy.int64(c), cupy.int32(1 if log else 0)))
    return y


def _threads_for(c):
    t = 32
    while t < c and t < 256:
        t *= 2
    return t


def softmax_cross_entropy(logits, target):
    """Fused row-wise softmax + cross-entropy: one kernel launch for loss rows (N,) and probs (N, C).

    Reference: `Backend.softmax_cross_entropy`. `target` holds class indices; an index outside [0, C)
    gives a NaN loss for that row (checking on the host would synchronise).
    """
    mod = _cached("sce", _sce_module)
    x = cupy.ascontiguousarray(logits)
    t = cupy.ascontiguousarray(target, dtype=cupy.int64)
    n, c = x.shape
    loss = cupy.empty((n,), dtype=x.dtype)
    probs = cupy.empty((n, c), dtype=x.dtype)
    if n == 0:
        return loss, probs
    name = "ad_sce_fwd<float>" if x.dtype == cupy.float32 else "ad_sce_fwd<double>"
    kern = mod.get_function(name)
    kern((n,), (_threads_for(c),), (x, t, loss, probs, cupy.int64(c)))
    return loss, probs


def _sce_bwd_kernel():
    return cupy.ElementwiseKernel(
        "raw T p, raw int64 t, raw T g, int64 C", "T out",
        """
        const long long r = i / C;
        const long long j = i - r * C;
        out = (p[i] - (j == t[r] ? (T)1 : (T)0)) * g[r];
        """,
        "ad_sce_bwd")


def softmax_cross_entropy_backward(probs, target, grad_rows):
    """(probs - onehot(target)) * grad_rows[:, None] in one kernel. Reference:
    `Backend.softmax_cross_entropy_backward`."""
    p = cupy.ascontiguousarray(probs)
    t = cupy.ascontiguousarray(target, dtype=cupy.int64)
    g = cupy.ascontiguousarray(grad_rows, dtype=p.dtype)
    out = cupy.empty_like(p)
    if p.size:
        _cached("sce_bwd", _sce_bwd_kernel)(p.ravel(), t, g, p.shape[1], out)
    return out


# ---------------------------------------------------------------------------------------------------------
# optimizer update rules: one elementwise kernel per parameter and step
# ---------------------------------------------------------------------------------------------------------
def _sgd_plain_kernel():
    return cupy.ElementwiseKernel(
        "T g, T lr, T sign, T wd", "T p",
        "p = p - lr * (sign * g + wd * p);",
        "ad_sgd_plain")


def _sgd_momentum_kernel():
    return cupy.ElementwiseKernel(
        "T g, T lr, T sign, T wd, T momentum, T dampening, int32 nesterov, int32 first", "T p, T buf",
        """
        const T d = sign * g + wd * p;
        const T b = first ? d : momentum * buf + ((T)1 - dampening) * d;
        buf = b;
        p = p - lr * (nesterov ? d + momentum * b : b);
        """,
        "ad_sgd_momentum")


def sgd_step_(p, g, buf, lr, momentum, dampening, nesterov, weight_decay, maximize, first):
    """PyTorch SGD in one kernel, in place on p (and buf). Reference: `Backend.sgd_step_`.

    Differs from the reference only by rounding: `weight_decay * p` is added to the gradient in the
    same expression rather than in a separate array."""
    sign = -1.0 if maximize else 1.0
    if momentum:
        _cached("sgd_m", _sgd_momentum_kernel)(g, lr, sign, weight_decay, momentum, dampening,
                                               int(bool(nesterov)), int(bool(first)), p, buf)
    else:
        _cached("sgd", _sgd_plain_kernel)(g, lr, sign, weight_decay, p)


_ADAM_BODY = """
    T d = sign * g;
    if (wd != (T)0) {
        if (decoupled) p = p * ((T)1 - lr * wd);
        else d = d + wd * p;
    }
    const T mm = beta1 * m + ((T)1 - beta1) * d;
    const T vv = beta2 * v + ((T)1 - beta2) * d * d;
    m = mm;
    v = vv;
    %s
    p = p - step_size * (mm / (sqrt(den) / bc2_sqrt + eps));
"""


def _adam_kernel():
    return cupy.ElementwiseKernel(
        "T g, T lr, T beta1, T beta2, T eps, T wd, T sign, T step_size, T bc2_sqrt, int32 decoupled",
        "T p, T m, T v",
        _ADAM_BODY % "const T den = vv;",
        "ad_adam")


def _adam_amsgrad_kernel():
    return cupy.ElementwiseKernel(
        "T g, T lr, T beta1, T beta2, T eps, T wd, T sign, T step_size, T bc2_sqrt, int32 decoupled",
        "T p, T m, T v, T vmax",
        _ADAM_BODY % "const T den = (vmax > vv || vmax != vmax) ? vmax : vv; vmax = den;",
        "ad_adam_amsgrad")


def adam_step_(p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled):
    """PyTorch Adam / AdamW in one kernel, in place on p, m, v (and vmax). Reference: `Backend.adam_step_`.

    `step` is the host-side step count, so the bias corrections are host scalars (no sync)."""
    bc1 = 1.0 - beta1 ** step
    bc2_sqrt = math.sqrt(1.0 - beta2 ** step)
    args = (g, lr, beta1, beta2, eps, weight_decay, -1.0 if maximize else 1.0, lr / bc1, bc2_sqrt,
            int(bool(decoupled)))
    if amsgrad:
        _cached("adam_ams", _adam_amsgrad_kernel)(*args, p, m, v, vmax)
    else:
        _cached("adam", _adam_kernel)(*args, p, m, v)


# ---------------------------------------------------------------------------------------------------------
# activations (forward in one kernel; the backward of the ops stays composed of Tensor ops)
# ---------------------------------------------------------------------------------------------------------
def _gelu_kernel():
    return cupy.ElementwiseKernel("T x", "T y", "y = (T)0.5 * x * ((T)1 + erf(x * (T)0.7071067811865476));",
                                  "ad_gelu")


def _gelu_tanh_kernel():
    return cupy.ElementwiseKernel(
        "T x", "T y",
        "y = (T)0.5 * x * ((T)1 + tanh((T)0.7978845608028654 * (x + (T)0.044715 * x * x * x)));",
        "ad_gelu_tanh")


def _silu_kernel():
    return cupy.ElementwiseKernel("T x", "T y", "y = x / ((T)1 + exp(-x));", "ad_silu")


def gelu(x, approximate="none"):
    """GELU forward, exact (erf) or tanh approximation, in one kernel. Reference: `reference_gelu`."""
    if approximate == "tanh":
        return _cached("gelu_tanh", _gelu_tanh_kernel)(x)
    return _cached("gelu", _gelu_kernel)(x)


def silu(x):
    """x * sigmoid(x) in one kernel. Reference: `reference_silu`."""
    return _cached("silu", _silu_kernel)(x)


def _bias_act_kernel(act):
    expr = {"relu": "y = v > (T)0 ? v : (T)0;",
            "gelu": "y = (T)0.5 * v * ((T)1 + erf(v * (T)0.7071067811865476));",
            "silu": "y = v / ((T)1 + exp(-v));",
            "none": "y = v;"}[act]
    return lambda: cupy.ElementwiseKernel("T x, T b", "T y", "const T v = x + b; " + expr, f"ad_bias_{act}")


def bias_act(x, b, act):
    """act(x + b) with b broadcast along the last axis, in one kernel ('relu', 'gelu', 'silu', 'none')."""
    return _cached(("bias", act), _bias_act_kernel(act))(x, b)


# ---------------------------------------------------------------------------------------------------------
# im2col / col2im (NCHW): one gather kernel each, no atomics
# ---------------------------------------------------------------------------------------------------------
_CONV_PARAMS = ("int64 C, int64 H, int64 W, int64 KH, int64 KW, int64 OH, int64 OW, int64 SH, int64 SW, "
                "int64 PH, int64 PW, int64 DH, int64 DW")


def _im2col_kernel():
    return cupy.ElementwiseKernel(
        "raw T x, " + _CONV_PARAMS, "T col",
        """
        long long r = i;
        const long long ox = r % OW; r /= OW;
        const long long oy = r % OH; r /= OH;
        const long long kj = r % KW; r /= KW;
        const long long ki = r % KH; r /= KH;
        const long long c = r % C;
        const long long n = r / C;
        const long long iy = oy * SH - PH + ki * DH;
        const long long ix = ox * SW - PW + kj * DW;
        col = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? x[((n * C + c) * H + iy) * W + ix] : (T)0;
        """,
        "ad_im2col")


def _col2im_kernel():
    return cupy.ElementwiseKernel(
        "raw T col, " + _CONV_PARAMS, "T img",
        """
        long long r = i;
        const long long xx = r % W; r /= W;
        const long long y = r % H; r /= H;
        const long long c = r % C;
        const long long n = r / C;
        T acc = (T)0;
        for (long long ki = 0; ki < KH; ++ki) {
            const long long ty = y + PH - ki * DH;
            if (ty < 0 || ty % SH != 0) continue;
            const long long oy = ty / SH;
            if (oy >= OH) continue;
            for (long long kj = 0; kj < KW; ++kj) {
                const long long tx = xx + PW - kj * DW;
                if (tx < 0 || tx % SW != 0) continue;
                const long long ox = tx / SW;
                if (ox >= OW) continue;
                acc += col[((((n * C + c) * KH + ki) * KW + kj) * OH + oy) * OW + ox];
            }
        }
        img = acc;
        """,
        "ad_col2im")


def im2col(x, kh, kw, stride, padding, dilation):
    """x (N, C, H, W) -> cols (N, C, kh, kw, OH, OW) in one kernel. Reference: `Backend.im2col`."""
    x = cupy.ascontiguousarray(x)
    n, c, h, w = x.shape
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cols = cupy.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    if cols.size:
        _cached("im2col", _im2col_kernel)(x.ravel(), c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, cols)
    return cols


def col2im(cols, x_shape, kh, kw, stride, padding, dilation):
    """Adjoint of im2col, (N, C, kh, kw, OH, OW) -> (N, C, H, W), one thread per image element summing
    its taps (no atomics, deterministic). Reference: `Backend.col2im`."""
    cols = cupy.ascontiguousarray(cols)
    n, c, h, w = x_shape
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    oh, ow = cols.shape[4], cols.shape[5]
    img = cupy.empty((n, c, h, w), dtype=cols.dtype)
    if img.size:
        _cached("col2im", _col2im_kernel)(cols.ravel(), c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, img)
    return img


# ---------------------------------------------------------------------------------------------------------
# max-pool 2d with argmax indices (NCHW); indices are flat positions in the H*W plane, as PyTorch's
# ---------------------------------------------------------------------------------------------------------
def _max_pool_kernel():
    return cupy.ElementwiseKernel(
        "raw T x, " + _CONV_PARAMS, "T out, int64 idx",
        """
        long long r = i;
        const long long ox = r % OW; r /= OW;
        const long long oy = r % OH; r /= OH;
        const long long c = r % C;
        const long long n = r / C;
        const long long base = (n * C + c) * H * W;
        T best = (T)0;
        long long bi = -1;
        for (long long ki = 0; ki < KH; ++ki) {
            const long long iy = oy * SH - PH + ki * DH;
            if (iy < 0 || iy >= H) continue;
            for (long long kj = 0; kj < KW; ++kj) {
                const long long ix = ox * SW - PW + kj * DW;
                if (ix < 0 || ix >= W) continue;
                const T v = x[base + iy * W + ix];
                if (bi < 0 || v > best || v != v) { best = v; bi = iy * W + ix; if (v != v) { ki = KH; break; } }
            }
        }
        out = best;
        idx = bi;
        """,
        "ad_max_pool2d")


def max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode=False):
    """Max over each window and the flat H*W index of the (first) maximum, one thread per output.

    NaN wins (as in PyTorch). Padding is implicit -inf. Reference: `reference_max_pool2d_with_indices`."""
    x = cupy.ascontiguousarray(x)
    n, c, h, w = x.shape
    kh, kw = kernel_size
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    oh, ow = pool_out_size(h, kh, sh, ph, dh, ceil_mode), pool_out_size(w, kw, sw, pw, dw, ceil_mode)
    out = cupy.empty((n, c, oh, ow), dtype=x.dtype)
    idx = cupy.empty((n, c, oh, ow), dtype=cupy.int64)
    if out.size:
        _cached("maxpool", _max_pool_kernel)(x.ravel(), c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, out, idx)
    return out, idx


def _max_pool_bwd_kernel():
    # One thread per input element would need the inverse map; a scatter with atomicAdd handles
    # overlapping windows (stride < kernel) exactly like PyTorch's CUDA kernel.
    return cupy.ElementwiseKernel(
        "T g, int64 idx, int64 HW, int64 OHW", "raw T gx",
        "if (idx >= 0) atomicAdd(&gx[(i / OHW) * HW + idx], g);",
        "ad_max_pool2d_bwd")


def max_pool2d_backward(grad, indices, x_shape):
    """Scatter `grad` (N, C, OH, OW) to the argmax positions of an (N, C, H, W) zero array."""
    n, c, h, w = x_shape
    gx = cupy.zeros((n, c, h, w), dtype=grad.dtype)
    if grad.size:
        oh, ow = grad.shape[2], grad.shape[3]
        _cached("maxpool_bwd", _max_pool_bwd_kernel)(grad, indices, h * w, oh * ow, gx.ravel())
    return gx


# ---------------------------------------------------------------------------------------------------------
# NumPy references of the kernels that have no slot on base.Backend (the others use the base slots)
# ---------------------------------------------------------------------------------------------------------
def reference_gelu(x, approximate="none"):
    import numpy as np
    if approximate == "tanh":
        return (0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))).astype(x.dtype)
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return (0.5 * x * (1 + erf(x.astype(np.float64) / math.sqrt(2)))).astype(x.dtype)


def reference_silu(x):
    import numpy as np
    return (x / (1 + np.exp(-x))).astype(x.dtype)


def reference_max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode=False):
    import numpy as np
    n, c, h, w = x.shape
    kh, kw = kernel_size
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    oh, ow = pool_out_size(h, kh, sh, ph, dh, ceil_mode), pool_out_size(w, kw, sw, pw, dw, ceil_mode)
    out = np.empty((n, c, oh, ow), dtype=x.dtype)
    idx = np.empty((n, c, oh, ow), dtype=np.int64)
    for oy in range(oh):
        for ox in range(ow):
            best = np.full((n, c), -np.inf)
            bi = np.full((n, c), -1, dtype=np.int64)
            for ki in range(kh):
                iy = oy * sh - ph + ki * dh
                if not 0 <= iy < h:
                    continue
                for kj in range(kw):
                    ix = ox * sw - pw + kj * dw
                    if not 0 <= ix < w:
                        continue
                    v = x[:, :, iy, ix]
                    take = (v > best) | (bi < 0)
                    best = np.where(take, v, best)
                    bi = np.where(take, iy * w + ix, bi)
            out[:, :, oy, ox] = best
            idx[:, :, oy, ox] = bi
    return out, idx
