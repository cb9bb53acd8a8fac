"""The numba CPU backend: NumPy arrays, with compiled kernels where NumPy needs many passes or slow
primitives: scatter-add (indexing / embedding backward), im2col/col2im, max/avg pooling forward and
backward, fused softmax-cross-entropy forward and backward, softmax / log-softmax over the last axis
(large inputs), erf (exact GELU), the SGD and Adam/AdamW updates, and the conv2d weight gradient as
one batched GEMM. Convolution GEMMs, layer norm and everything else run NumPy's code (see
bench/RESULTS.md for what was measured and why).

Each override keeps the signature and meaning of the `base.Backend` slot it replaces and falls back
to that reference for cases its kernel does not handle (generic advanced-index tuples, exotic
dtypes, non-contiguous in-place targets). The kernels themselves are in numba_kernels.py.

Returned arrays own their memory (`a.base is None`, never a reshaped view of a work buffer): the
engine copies a gradient that is a view before storing it in `.grad`, which for a 5 MB embedding
table gradient costs more than the scatter-add itself.

Select it with `autodiff.set_backend("numba")` or AUTODIFF_BACKEND=numba. Threads follow
`numba.set_num_threads` / NUMBA_NUM_THREADS. The first call of each kernel per dtype compiles it
(or loads it from numba's on-disk cache); the benchmark reports that time separately.
"""
from __future__ import annotations

import os
import threading

# numba's OpenMP thread pool spins after each parallel kernel by default; on a machine with few
# cores that spinning steals the CPU from the NumPy/BLAS calls running between kernels (measured:
# cross-entropy forward 9.4 ms instead of 5.0 ms on 2 cores). Passive waiting fixes it; set before
# the OpenMP runtime loads (first parallel kernel call). An explicit user setting wins. Side effect:
# an OpenMP library loaded later in the process (e.g. PyTorch's, if torch is imported after this
# module) also sees it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402
import numpy as np  # noqa: E402

from . import numba_kernels as K  # noqa: E402
from .numpy_backend import NumpyBackend  # noqa: E402

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _c(a):
    return np.ascontiguousarray(a)


def _flat_inplace(a):
    """A 1-D view of a C-contiguous array (writes reach `a`), or None if `a` cannot be viewed so."""
    if a is None or not isinstance(a, np.ndarray) or not a.flags.c_contiguous or not a.flags.writeable:
        return None
    return a.reshape(-1)


class NumbaBackend(NumpyBackend):
    name = "numba"
    device_type = "cpu"

    # ------------------------------------------------------------------ math kernels
    def erf(self, x):
        if x.dtype not in _FLOATS:
            return super().erf(x)
        xc = _c(x).reshape(-1)
        res = np.empty(x.shape, dtype=x.dtype)
        (K.erf_parallel if xc.size >= K.PARALLEL_MIN // 8 else K.erf_serial)(xc, res.reshape(-1))
        return res

    # ------------------------------------------------------------------ indexing kernels
    def index_add(self, shape, dtype, index, values):
        """Accelerates the common case: one integer index array selecting along axis 0 (the backward
        of `x[idx]`, index_select and embedding). Other index tuples use the NumPy reference."""
        idx = index
        if isinstance(idx, tuple) and len(idx) == 1:
            idx = idx[0]
        dtype = np.dtype(dtype)
        if (not isinstance(idx, np.ndarray) or idx.dtype.kind not in "iu" or dtype not in _FLOATS
                or not isinstance(values, np.ndarray) or len(shape) < 1
                or values.shape != idx.shape + tuple(shape[1:])):
            return super().index_add(shape, dtype, index, values)
        rows = int(shape[0])
        d = 1
        for s in shape[1:]:
            d *= int(s)
        flat_idx, bad = K.normalize_index(_c(idx.reshape(-1)).astype(np.int64, copy=False), rows)
        if bad:
            raise IndexError(f"index_add: index out of range for dimension 0 of size {rows}")
        vals = _c(values.astype(dtype, copy=False)).reshape(flat_idx.shape[0], d)
        res = np.zeros(tuple(shape), dtype=dtype)
        out = res.reshape(rows, d)
        if flat_idx.shape[0] * d >= K.PARALLEL_MIN:
            K.index_add_rows_parallel(out, flat_idx, vals, numba.get_num_threads())
        else:
            K.index_add_rows_serial(out, flat_idx, vals)
        return res

    def embedding_backward(self, grad, indices, num_embeddings):
        d = grad.shape[-1]
        return self.index_add((num_embeddings, d), grad.dtype, indices.reshape(-1), grad.reshape(-1, d))

    # ------------------------------------------------------------------ convolution kernels (NCHW)
    def im2col(self, x, kh, kw, stride, padding, dilation):
        if x.dtype not in _FLOATS or x.ndim != 4:
            return super().im2col(x, kh, kw, stride, padding, dilation)
        sh, sw = stride
        ph, pw = padding
        dh, dw = dilation
        n, c, h, w = x.shape
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        cols = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
        self._im2col_into(_c(x), kh, kw, stride, padding, dilation, cols)
        return cols

    @staticmethod
    def _im2col_into(x, kh, kw, stride, padding, dilation, cols):
        """The im2col kernel for C-contiguous x into cols (N, C, kh, kw, OH, OW)."""
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        if sw == 1 and cols.size:
            K.im2col_w1(x, kh, kw, sh, ph, pw, dh, dw, cols, numba.get_num_threads())
        else:
            K.im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, cols)

    def col2im(self, cols, x_shape, kh, kw, stride, padding, dilation):
        sh, sw = stride
        ph, pw = padding
        dh, dw = dilation
        n, c = int(x_shape[0]), int(x_shape[1])
        # OH, OW come from cols (as in the base); the leading dims must match or the kernel would read
        # outside cols, so a mismatch goes to the base, which raises
        if cols.dtype not in _FLOATS or cols.ndim != 6 or cols.shape[:4] != (n, c, kh, kw) or len(x_shape) != 4:
            return super().col2im(cols, x_shape, kh, kw, stride, padding, dilation)
        out = np.empty(tuple(int(s) for s in x_shape), dtype=cols.dtype)
        h, w = out.shape[2], out.shape[3]
        if (sh == 1 and sw == 1 and out.size and cols.shape[4] == h + 2 * ph - dh * (kh - 1)
                and cols.shape[5] == w + 2 * pw - dw * (kw - 1)):  # the geometry col2im_s1 assumes
            K.col2im_s1(_c(cols), kh, kw, ph, pw, dh, dw, out, numba.get_num_threads())
        else:
            K.col2im(_c(cols), kh, kw, sh, sw, ph, pw, dh, dw, out)
        return out

    # ------------------------------------------------------------------ fused losses
    def softmax_cross_entropy(self, logits, target):
        if (logits.dtype not in _FLOATS or logits.ndim != 2 or logits.shape[1] == 0 or target.dtype.kind not in "iu"
                or target.shape != logits.shape[:1]):
            return super().softmax_cross_entropy(logits, target)
        lg = _c(logits)
        t = _c(target).astype(np.int64, copy=False)
        n, c = lg.shape
        loss = np.empty(n, dtype=lg.dtype)
        probs = np.empty_like(lg)
        if n * c >= K.PARALLEL_MIN:  # two parallel passes around NumPy's vectorised exp
            m = np.empty(n, dtype=lg.dtype)
            K.xent_shift_parallel(lg, m, probs)
            np.exp(probs, out=probs)
            bad = K.xent_finish_parallel(lg, t, m, probs, loss)
        else:  # one serial pass: small problems are dominated by per-call overhead
            bad = K.softmax_xent_serial(lg, t, loss, probs)
        if bad:
            raise IndexError(f"softmax_cross_entropy: target index out of range for {c} classes")
        return loss, probs

    def softmax_cross_entropy_backward(self, probs, target, grad_rows):
        if (probs.dtype not in _FLOATS or probs.ndim != 2 or target.dtype.kind not in "iu"
                or target.shape != probs.shape[:1] or probs.shape[1] == 0):
            return super().softmax_cross_entropy_backward(probs, target, grad_rows)
        pr = _c(probs)
        t = _c(target).astype(np.int64, copy=False)
        gr = _c(np.broadcast_to(np.asarray(grad_rows, dtype=pr.dtype), (pr.shape[0],)))
        out = np.empty_like(pr)
        kern = K.softmax_xent_backward_parallel if pr.size >= K.PARALLEL_MIN else K.softmax_xent_backward_serial
        kern(pr, t, gr, out)
        return out

    # ------------------------------------------------------------------ softmax / log-softmax (last axis)
    # Large inputs only: numba passes (row max + shift, row sum + scale) around NumPy's SIMD exp, 3
    # passes instead of NumPy's 5 with temporaries. Small inputs and other axes use the NumPy reference.
    def _rows(self, x, axis):
        if x.dtype not in _FLOATS or x.ndim == 0 or x.size < K.PARALLEL_MIN or x.shape[-1] == 0:
            return None
        if axis < 0:
            axis += x.ndim
        if axis != x.ndim - 1:
            return None
        return _c(x).reshape(-1, x.shape[-1])

    def softmax(self, x, axis):
        rows = self._rows(x, axis)
        if rows is None:
            return super().softmax(x, axis)
        out = np.empty(x.shape, dtype=x.dtype)
        o2 = out.reshape(rows.shape)
        K.xent_shift_parallel(rows, np.empty(rows.shape[0], dtype=x.dtype), o2)
        np.exp(o2, out=o2)
        K.softmax_finish_parallel(o2)
        return out

    def log_softmax(self, x, axis):
        rows = self._rows(x, axis)
        if rows is None:
            return super().log_softmax(x, axis)
        out = np.empty(x.shape, dtype=x.dtype)
        o2 = out.reshape(rows.shape)
        K.xent_shift_parallel(rows, np.empty(rows.shape[0], dtype=x.dtype), o2)
        K.log_softmax_finish_parallel(o2, np.exp(o2))
        return out

    # ------------------------------------------------------------------ optimizer update rules (in place)
    def sgd_step_(self, p, g, buf, lr, momentum, dampening, nesterov, weight_decay, maximize, first):
        pf = _flat_inplace(p)
        bf = _flat_inplace(buf) if momentum else None
        if (pf is None or p.dtype not in _FLOATS or (momentum and bf is None) or g.shape != p.shape
                or (bf is not None and buf.shape != p.shape)):
            return super().sgd_step_(p, g, buf, lr, momentum, dampening, nesterov, weight_decay, maximize, first)
        ty = p.dtype.type
        gf = _c(g).astype(p.dtype, copy=False).reshape(-1)
        if bf is None:
            bf = pf[:0]
        kern = K.sgd_parallel if pf.shape[0] >= K.PARALLEL_MIN else K.sgd_serial
        kern(pf, gf, bf, ty(lr), ty(momentum), ty(1 - dampening), bool(nesterov), ty(weight_decay),
             bool(maximize), bool(first))

    def adam_step_(self, p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
                   decoupled):
        pf, mf, vf = _flat_inplace(p), _flat_inplace(m), _flat_inplace(v)
        vmf = _flat_inplace(vmax) if amsgrad else None
        if (pf is None or mf is None or vf is None or (amsgrad and vmf is None) or p.dtype not in _FLOATS
                or m.dtype != p.dtype or v.dtype != p.dtype or (amsgrad and vmax.dtype != p.dtype)
                or g.shape != p.shape or m.shape != p.shape or v.shape != p.shape
                or (amsgrad and vmax.shape != p.shape)):
            return super().adam_step_(p, g, m, v, vmax, step, lr, beta1, beta2, eps, weight_decay, amsgrad,
                                      maximize, decoupled)
        ty = p.dtype.type
        gf = _c(g).astype(p.dtype, copy=False).reshape(-1)
        if vmf is None:
            vmf = pf[:0]
        bc1 = 1 - beta1 ** step
        bc2 = 1 - beta2 ** step
        kern = K.adam_parallel if pf.shape[0] >= K.PARALLEL_MIN else K.adam_serial
        kern(pf, gf, mf, vf, vmf, ty(beta1), ty(1 - beta1), ty(beta2), ty(1 - beta2), ty(eps), ty(bc2 ** 0.5),
             ty(lr / bc1), ty(weight_decay), ty(1 - lr * weight_decay), bool(amsgrad), bool(maximize),
             bool(decoupled))

    # ------------------------------------------------------------------ convolution and pooling (NCHW)
    # Convolution is im2col + BLAS GEMM as in the base slots, but over chunks of the batch whose im2col
    # matrix fits in the L2 cache (_CONV_CHUNK_BYTES): each chunk's cols are written by the numba
    # kernel and read by the GEMM while still in cache, instead of a whole-batch matrix (3.6 MB for
    # x (64, 8, 14, 14), 3x3) that goes out to L3/DRAM and back, twice as slow to write (a 3.6 MB copy
    # takes 12x the time of a 0.9 MB one on the benchmark machine). The forward does not keep cols
    # (returns None); the weight gradient recomputes them chunk by chunk, which costs about what
    # reading a saved whole-batch matrix back from memory does, keeps no 9x-the-input buffer alive
    # between forward and backward, and makes no fresh multi-MB allocation per step (their page
    # faults cost more than the convolution itself in a plain training loop: 1.7k faults, +1.5 ms per
    # step on the benchmark shape). The chunk work buffers are cached per thread (_scratch).
    # A direct numba convolution was measured 3-15x slower than the GEMM path on LeNet-sized layers
    # (numba does not vectorise its inner loops well without fastmath), so it is not used.
    _CONV_CHUNK_BYTES = 1 << 19
    _SCRATCH_MAX_BYTES = 1 << 23  # larger work buffers are allocated per call, not kept

    def _scratch(self, slot, shape, dtype):
        """An uninitialised work array of `shape`, reusing this thread's cached buffer for `slot`."""
        size = 1
        for s in shape:
            size *= int(s)
        dtype = np.dtype(dtype)
        nbytes = size * dtype.itemsize
        if nbytes > self._SCRATCH_MAX_BYTES:
            return np.empty(shape, dtype=dtype)
        tl = self.__dict__.get("_tls")
        if tl is None:
            tl = self.__dict__.setdefault("_tls", threading.local())
        cache = getattr(tl, "bufs", None)
        if cache is None:
            cache = tl.bufs = {}
        buf = cache.get(slot)
        if buf is None or buf.nbytes < nbytes:
            buf = cache[slot] = np.empty(max(nbytes, 1 << 16), dtype=np.uint8)
        return buf[:nbytes].view(dtype).reshape(shape)

    def _conv_ok(self, x, w, stride, padding, dilation, groups):
        """Shapes and dtypes the chunked path handles (others go to the base slots, which also raise
        the errors)."""
        if (not isinstance(x, np.ndarray) or not isinstance(w, np.ndarray) or x.ndim != 4 or w.ndim != 4
                or x.dtype not in _FLOATS or w.dtype != x.dtype or groups < 1 or w.shape[0] % groups
                or x.shape[1] != w.shape[1] * groups or x.shape[0] == 0):
            return None
        n, c, h, wd = x.shape
        o, cg, kh, kw = w.shape
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        if oh <= 0 or ow <= 0 or c == 0 or o == 0 or kh * kw == 0:
            return None
        per_sample = c * kh * kw * oh * ow * x.itemsize
        chunk = max(1, min(n, self._CONV_CHUNK_BYTES // max(per_sample, 1)))
        return oh, ow, chunk

    def _g_chunks(self, g, B, groups, og, L):
        """f(s, e): samples s..e of the output gradient g (N, O, OH, OW) as a C-contiguous
        (e - s, groups, O/groups, OH*OW) array: a view of g when g is C-contiguous, else a copy into a
        work buffer made chunk by chunk (a gradient broadcast from sum() has all strides 0; NumPy's
        matmul would take its slow non-BLAS loop on it, and a whole copy is one more big allocation)."""
        if g.flags.c_contiguous:
            g4 = g.reshape(g.shape[0], groups, og, L)
            return lambda s, e: g4[s:e]
        work = self._scratch("gchunk", (B,) + g.shape[1:], g.dtype)

        def chunk(s, e):
            part = work[:e - s]
            np.copyto(part, g[s:e])
            return part.reshape(e - s, groups, og, L)
        return chunk

    def _im2col_fn(self, kh, kw, stride, padding, dilation):
        """f(x_chunk, cols_out): the im2col kernel with its fixed arguments bound (once per slot call)."""
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        if sw == 1:
            nt = numba.get_num_threads()
            kern = K.im2col_w1
            return lambda xc, out: kern(xc, kh, kw, sh, ph, pw, dh, dw, out, nt)
        kern = K.im2col
        return lambda xc, out: kern(xc, kh, kw, sh, sw, ph, pw, dh, dw, out)

    def conv2d(self, x, w, b, stride, padding, dilation, groups):
        geo = self._conv_ok(x, w, stride, padding, dilation, groups)
        if geo is None or (b is not None and (not isinstance(b, np.ndarray) or b.shape != (w.shape[0],))):
            return super().conv2d(x, w, b, stride, padding, dilation, groups)
        oh, ow, B = geo
        n, c = x.shape[:2]
        o, cg, kh, kw = w.shape
        L = oh * ow
        ckk = cg * kh * kw
        og = o // groups
        xc = _c(x)
        wg = _c(w).reshape(groups, og, ckk)
        y = np.empty((n, o, oh, ow), dtype=x.dtype)
        y3 = y.reshape(n, groups, og, L)
        b3 = None if b is None else b.astype(x.dtype, copy=False).reshape(groups, og, 1)
        im2col = self._im2col_fn(kh, kw, stride, padding, dilation)
        work = self._scratch("cols", (B, c, kh, kw, oh, ow), x.dtype)
        for s in range(0, n, B):
            e = min(n, s + B)
            cols = work[:e - s]
            im2col(xc[s:e], cols)
            ys = y3[s:e]
            np.matmul(wg, cols.reshape(e - s, groups, ckk, L), out=ys)
            if b3 is not None:  # while the chunk is in cache
                ys += b3
        return y, None

    def conv2d_input_grad(self, g, w, x_shape, stride, padding, dilation, groups):
        x_shape = tuple(int(s) for s in x_shape)
        if len(x_shape) != 4 or not isinstance(g, np.ndarray) or not isinstance(w, np.ndarray):
            return super().conv2d_input_grad(g, w, x_shape, stride, padding, dilation, groups)
        gx = np.empty(x_shape, dtype=g.dtype)  # the result; also carries the shape for the checks
        geo = self._conv_ok(gx, w, stride, padding, dilation, groups)
        if geo is None or g.shape != (x_shape[0], w.shape[0], geo[0], geo[1]):
            return super().conv2d_input_grad(g, w, x_shape, stride, padding, dilation, groups)
        oh, ow, B = geo
        n, c = x_shape[:2]
        o, cg, kh, kw = w.shape
        L = oh * ow
        ckk = cg * kh * kw
        og = o // groups
        gchunk = self._g_chunks(g, B, groups, og, L)
        wt = _c(w).reshape(groups, og, ckk).transpose(0, 2, 1)
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        work = self._scratch("gcols", (B, groups, ckk, L), g.dtype)
        nt = numba.get_num_threads()
        for s in range(0, n, B):
            e = min(n, s + B)
            gcols = work[:e - s]
            np.matmul(wt, gchunk(s, e), out=gcols)
            gcols = gcols.reshape(e - s, c, kh, kw, oh, ow)
            if sh == 1 and sw == 1:
                K.col2im_s1(gcols, kh, kw, ph, pw, dh, dw, gx[s:e], nt)
            else:
                K.col2im(gcols, kh, kw, sh, sw, ph, pw, dh, dw, gx[s:e])
        return gx

    def conv2d_weight_grad(self, x, g, w_shape, stride, padding, dilation, groups, cols=None):
        """As the base slot; without `cols` (what this backend's conv2d returns) the im2col matrix is
        recomputed chunk by chunk (see above), each sample's GEMM written into one (N, O, C/groups*kh*kw)
        work array (accumulated per chunk if that would be large) and summed over the batch."""
        w_shape = tuple(int(s) for s in w_shape)
        geo = None
        if (cols is None and len(w_shape) == 4 and isinstance(g, np.ndarray) and isinstance(x, np.ndarray)
                and g.dtype == x.dtype):
            geo = self._conv_ok(x, np.empty(w_shape, dtype=g.dtype), stride, padding, dilation, groups)
        if geo is None or g.shape != (x.shape[0], w_shape[0], geo[0], geo[1]):
            if cols is None and groups == 1 and isinstance(g, np.ndarray) and g.dtype in _FLOATS and g.ndim == 4:
                cols = self.im2col(x, w_shape[2], w_shape[3], stride, padding, dilation)
            if cols is not None and groups == 1 and g.dtype in _FLOATS and g.ndim == 4:
                # one batched GEMM against the transposed view of cols, then a sum over the batch
                # (no transposed copy of the whole im2col matrix, as tensordot would make)
                o, cg, kh, kw = w_shape
                n = g.shape[0]
                cols = cols.reshape(n, cg * kh * kw, -1)
                gw = np.matmul(g.reshape(n, o, -1), cols.transpose(0, 2, 1))
                return gw.reshape((n,) + w_shape).sum(axis=0)
            return super().conv2d_weight_grad(x, g, w_shape, stride, padding, dilation, groups, cols)
        oh, ow, B = geo
        n, c = x.shape[:2]
        o, cg, kh, kw = w_shape
        L = oh * ow
        ckk = cg * kh * kw
        og = o // groups
        xc = _c(x)
        gchunk = self._g_chunks(g, B, groups, og, L)
        gw = np.empty(w_shape, dtype=g.dtype)
        gw3 = gw.reshape(groups, og, ckk)
        im2col = self._im2col_fn(kh, kw, stride, padding, dilation)
        work = self._scratch("cols", (B, c, kh, kw, oh, ow), x.dtype)
        whole = n * o * ckk * g.itemsize <= self._SCRATCH_MAX_BYTES
        parts = self._scratch("wpart", (n if whole else B, groups, og, ckk), g.dtype)
        if not whole:
            gw3[...] = 0
        for s in range(0, n, B):
            e = min(n, s + B)
            cols = work[:e - s]
            im2col(xc[s:e], cols)
            part = parts[s:e] if whole else parts[:e - s]
            np.matmul(gchunk(s, e), cols.reshape(e - s, groups, ckk, L).transpose(0, 1, 3, 2), out=part)
            if not whole:
                gw3 += part.sum(axis=0)
        if whole:
            np.sum(parts, axis=0, out=gw3)
        return gw

    def max_pool2d(self, x, kernel, stride, padding, dilation, ceil_mode):
        if x.dtype not in _FLOATS or x.ndim != 4:
            return super().max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
        oh = self.pool_output_size(h, kh, sh, ph, dh, ceil_mode)
        ow = self.pool_output_size(w, kw, sw, pw, dw, ceil_mode)
        out = np.empty((n, c, oh, ow), dtype=x.dtype)
        idx = np.empty((n, c, oh, ow), dtype=np.int64)
        if ph == 0 and pw == 0 and (oh - 1) * sh + dh * (kh - 1) < h and (ow - 1) * sw + dw * (kw - 1) < w:
            K.max_pool2d_interior(_c(x), kh, kw, sh, sw, dh, dw, out, idx)
        else:
            K.max_pool2d(_c(x), kh, kw, sh, sw, ph, pw, dh, dw, out, idx)
        return out, idx

    def max_pool2d_backward(self, g, indices, x_shape, overlapping=True):
        if g.dtype not in _FLOATS or g.ndim != 4 or indices.shape != g.shape:
            return super().max_pool2d_backward(g, indices, x_shape, overlapping)
        n, c, h, w = (int(s) for s in x_shape)
        if g.shape[:2] != (n, c):
            return super().max_pool2d_backward(g, indices, x_shape, overlapping)
        gx = np.empty((n, c, h, w), dtype=g.dtype)
        bad = K.max_pool2d_backward(_c(g).reshape(n, c, -1),
                                    _c(indices).astype(np.int64, copy=False).reshape(n, c, -1), gx.reshape(n, c, h * w))
        if bad:
            raise IndexError(f"max_pool2d_backward: {bad} indices outside [0, {h * w}) for an output plane of "
                             f"{h}x{w}")
        return gx

    def _avg_div(self, x_shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override, dtype):
        h, w = x_shape[2], x_shape[3]
        oh = self.pool_output_size(h, kernel[0], stride[0], padding[0], 1, ceil_mode)
        ow = self.pool_output_size(w, kernel[1], stride[1], padding[1], 1, ceil_mode)
        if divisor_override:
            return np.full((oh, ow), divisor_override, dtype=dtype)
        return _c(self._avg_divisor(tuple(x_shape), kernel, stride, padding, ceil_mode, count_include_pad,
                                    dtype)).astype(dtype, copy=False)

    def avg_pool2d(self, x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
        if x.dtype not in _FLOATS or x.ndim != 4:
            return super().avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
        div = self._avg_div(x.shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override,
                            x.dtype)
        out = np.empty(x.shape[:2] + div.shape, dtype=x.dtype)
        K.avg_pool2d(_c(x), kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1], div, out)
        return out

    def avg_pool2d_backward(self, g, x_shape, kernel, stride, padding, ceil_mode, count_include_pad,
                            divisor_override):
        if g.dtype not in _FLOATS or g.ndim != 4:
            return super().avg_pool2d_backward(g, x_shape, kernel, stride, padding, ceil_mode, count_include_pad,
                                               divisor_override)
        div = self._avg_div(x_shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override,
                            g.dtype)
        if g.shape[2:] != div.shape or tuple(g.shape[:2]) != tuple(x_shape[:2]):
            return super().avg_pool2d_backward(g, x_shape, kernel, stride, padding, ceil_mode, count_include_pad,
                                               divisor_override)
        gx = np.empty(tuple(int(s) for s in x_shape), dtype=g.dtype)
        K.avg_pool2d_backward(_c(g), kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1], div, gx)
        return gx
