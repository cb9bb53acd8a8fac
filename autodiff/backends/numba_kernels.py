"""numba kernels behind the numba backend's slots (see numba_backend.py for the slot wrappers).

Every kernel here is the compiled twin of a NumPy reference slot in `base.Backend` with the same
meaning; tests/backends/test_numba_kernels.py compares each pair on random inputs.

Conventions, chosen to keep the number of compiled signatures small (compile time is paid once per
signature and cached on disk with `cache=True`):
- array arguments are C-contiguous (the wrappers call `np.ascontiguousarray` or fall back to the
  NumPy slot), floating arrays are float32 or float64, index arrays are int64;
- float scalars are passed as the arrays' dtype (`dtype.type(x)`), so float32 arithmetic rounds like
  NumPy's float32 arithmetic (no silent float64 intermediates, no FMA: `fastmath=False`);
- large work runs in `parallel=True` kernels with `prange` (threads follow `numba.set_num_threads` /
  NUMBA_NUM_THREADS); small work runs in a serial twin, because waking the thread pool costs more
  than a few thousand flops.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_PAR = dict(cache=True, fastmath=False, parallel=True, nogil=True)
_SER = dict(cache=True, fastmath=False, nogil=True)

_U = np.uint64  # index cast: unsigned indices skip numba's negative-index wraparound (and vectorise)

# Below this many elements of work a serial kernel is used (thread-pool wake-up costs ~10-30 us).
PARALLEL_MIN = 1 << 15


# ----------------------------------------------------------------------------- index_add (scatter-add of rows)
@njit(**_SER)
def index_add_rows_serial(out, idx, vals):
    """out[idx[i], :] += vals[i, :] for each i (idx already normalised to [0, rows))."""
    d = vals.shape[1]
    for i in range(idx.shape[0]):
        r = idx[i]
        for j in range(d):
            out[r, j] += vals[i, j]


@njit(**_PAR)
def index_add_rows_parallel(out, idx, vals, nt):
    """As index_add_rows_serial; task t of nt owns the output rows r with r % nt == t, so no two
    threads ever write the same row (race-free without atomics) and repeated indices add up in order.
    nt is numba.get_num_threads() (passed in: reading it inside would make the kernel uncacheable)."""
    d = vals.shape[1]
    n = idx.shape[0]
    for t in prange(nt):
        for i in range(n):
            r = idx[i]
            if r % nt == t:
                for j in range(d):
                    out[r, j] += vals[i, j]


@njit(**_SER)
def normalize_index(idx, rows):
    """A copy of idx with negative indices wrapped; returns (copy, number of indices out of range)."""
    out = np.empty(idx.shape[0], dtype=np.int64)
    bad = 0
    for i in range(idx.shape[0]):
        r = idx[i]
        if r < 0:
            r += rows
        if r < 0 or r >= rows:
            bad += 1
            r = 0
        out[i] = r
    return out, bad


# ----------------------------------------------------------------------------- erf
@njit(**_PAR)
def erf_parallel(x, out):
    for i in prange(x.shape[0]):
        out[i] = math.erf(x[i])


@njit(**_SER)
def erf_serial(x, out):
    for i in range(x.shape[0]):
        out[i] = math.erf(x[i])


# ----------------------------------------------------------------------------- im2col / col2im (NCHW)
@njit(inline="always")
def _col_range(j, dw, pw, sw, w, ow):
    """Output columns xx whose input column xx*sw + off (off = j*dw - pw) lies in [0, w): [lo, hi)."""
    off = j * dw - pw
    lo = 0
    if off < 0:
        lo = (-off + sw - 1) // sw
    hi = 0
    if w - 1 - off >= 0:
        hi = (w - 1 - off) // sw + 1
    if hi > ow:
        hi = ow
    if lo > hi:
        lo = hi
    return lo, hi, off


@njit(**_PAR)
def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, cols):
    """x (N, C, H, W) -> cols (N, C, kh, kw, OH, OW), zero padding; one (n, c) plane per task.

    Both arrays are C-contiguous and addressed flat with unsigned indices: numba then skips its
    negative-index wraparound test and LLVM vectorises the copy (measured 2-3x faster than 2-D
    indexing, which was slower than NumPy's nine slice copies). The valid column range of each kernel
    offset is computed once, so the copy loop has no bounds tests."""
    n, c, h, w = x.shape
    oh, ow = cols.shape[4], cols.shape[5]
    xf = x.reshape(-1)
    cf = cols.reshape(-1)
    for nc in prange(n * c):
        xbase = nc * h * w
        for i in range(kh):
            for j in range(kw):
                lo, hi, off = _col_range(j, dw, pw, sw, w, ow)
                cbase = ((nc * kh + i) * kw + j) * oh * ow
                for y in range(oh):
                    iy = y * sh - ph + i * dh
                    d0 = cbase + y * ow
                    if iy < 0 or iy >= h:
                        for xx in range(ow):
                            cf[_U(d0 + xx)] = 0
                        continue
                    s0 = xbase + iy * w + off
                    for xx in range(lo):
                        cf[_U(d0 + xx)] = 0
                    for xx in range(lo, hi):
                        cf[_U(d0 + xx)] = xf[_U(s0 + xx * sw)]
                    for xx in range(hi, ow):
                        cf[_U(d0 + xx)] = 0


@njit(**_PAR)
def col2im(cols, kh, kw, sh, sw, ph, pw, dh, dw, out):
    """Adjoint of im2col: out (N, C, H, W) = sum of cols (N, C, kh, kw, OH, OW) back at their pixels.
    Each task owns one (n, c) output plane, so the accumulation is race-free. Flat unsigned indexing
    as in im2col."""
    n, c, h, w = out.shape
    oh, ow = cols.shape[4], cols.shape[5]
    of = out.reshape(-1)
    cf = cols.reshape(-1)
    for nc in prange(n * c):
        obase = nc * h * w
        for k in range(h * w):
            of[_U(obase + k)] = 0
        for i in range(kh):
            for j in range(kw):
                lo, hi, off = _col_range(j, dw, pw, sw, w, ow)
                cbase = ((nc * kh + i) * kw + j) * oh * ow
                for y in range(oh):
                    iy = y * sh - ph + i * dh
                    if iy < 0 or iy >= h:
                        continue
                    s0 = cbase + y * ow
                    d0 = obase + iy * w + off
                    for xx in range(lo, hi):
                        of[_U(d0 + xx * sw)] += cf[_U(s0 + xx)]


# ----------------------------------------------------------------------------- fused softmax + cross-entropy
@njit(inline="always")
def _row_max(row):
    """max of a 1-D row with 8 independent accumulators (no fastmath needed for ILP / SLP vectorising)."""
    c = row.shape[0]
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = row[0]
    j = 0
    while j + 8 <= c:
        m0 = max(m0, row[j])
        m1 = max(m1, row[j + 1])
        m2 = max(m2, row[j + 2])
        m3 = max(m3, row[j + 3])
        m4 = max(m4, row[j + 4])
        m5 = max(m5, row[j + 5])
        m6 = max(m6, row[j + 6])
        m7 = max(m7, row[j + 7])
        j += 8
    while j < c:
        m0 = max(m0, row[j])
        j += 1
    return max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))


@njit(inline="always")
def _row_sum(row):
    """float64 sum of a 1-D row with 8 independent accumulators."""
    c = row.shape[0]
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    j = 0
    while j + 8 <= c:
        s0 += row[j]
        s1 += row[j + 1]
        s2 += row[j + 2]
        s3 += row[j + 3]
        s4 += row[j + 4]
        s5 += row[j + 5]
        s6 += row[j + 6]
        s7 += row[j + 7]
        j += 8
    while j < c:
        s0 += row[j]
        j += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(**_PAR)
def xent_shift_parallel(logits, m, z):
    """Large-input path, pass 1: m = row max, z = logits - m[:, None]. NumPy's vectorised exp then runs
    in place on z (numba's scalar libm exp is several times slower than NumPy's SIMD exp)."""
    n, c = logits.shape
    for r in prange(n):
        row = logits[r]
        zr = z[r]
        mr = _row_max(row)
        m[r] = mr
        for j in range(c):
            zr[j] = row[j] - mr


@njit(**_PAR)
def xent_finish_parallel(logits, target, m, probs, loss):
    """Large-input path, pass 2: probs holds exp(z); normalise each row in place (its float64 sum is
    taken while the row is in cache) and write the loss; returns the number of targets outside [-C, C)."""
    n, c = logits.shape
    bad = 0
    for r in prange(n):
        pr = probs[r]
        s = _row_sum(pr)
        inv = 1 / s
        for j in range(c):
            pr[j] = pr[j] * inv
        t = target[r]
        if t < 0:
            t += c
        if t < 0 or t >= c:
            bad += 1
            loss[r] = np.nan
        else:
            loss[r] = math.log(s) - (logits[r, t] - m[r])
    return bad


@njit(**_PAR)
def softmax_finish_parallel(e):
    """Rows of e = exp(x - rowmax) divided in place by their (float64) sums: the softmax."""
    n, c = e.shape
    for r in prange(n):
        er = e[r]
        inv = 1 / _row_sum(er)
        for j in range(c):
            er[j] = er[j] * inv


@njit(**_PAR)
def log_softmax_finish_parallel(z, e):
    """z = x - rowmax, e = exp(z): z -= log(row sum of e) in place: the log-softmax."""
    n, c = z.shape
    for r in prange(n):
        zr = z[r]
        lse = math.log(_row_sum(e[r]))
        for j in range(c):
            zr[j] = zr[j] - lse


@njit(**_SER)
def softmax_xent_serial(logits, target, loss, probs):
    """Row-wise log-sum-exp cross-entropy in one pass per row (the small-input path); returns the
    number of targets outside [-C, C)."""
    n, c = logits.shape
    bad = 0
    for r in range(n):
        m = logits[r, 0]
        for j in range(1, c):
            if logits[r, j] > m:
                m = logits[r, j]
        s = 0.0
        for j in range(c):
            e = math.exp(logits[r, j] - m)
            probs[r, j] = e
            s += e
        inv = 1.0 / s
        for j in range(c):
            probs[r, j] = probs[r, j] * inv
        t = target[r]
        if t < 0:
            t += c
        if t < 0 or t >= c:
            bad += 1
            loss[r] = np.nan
        else:
            loss[r] = math.log(s) - (logits[r, t] - m)
    return bad


@njit(**_PAR)
def softmax_xent_backward_parallel(probs, target, grad_rows, out):
    n, c = probs.shape
    for r in prange(n):
        gr = grad_rows[r]
        t = target[r]
        if t < 0:
            t += c
        for j in range(c):
            out[r, j] = probs[r, j] * gr
        out[r, t] = (probs[r, t] - 1) * gr


@njit(**_SER)
def softmax_xent_backward_serial(probs, target, grad_rows, out):
    n, c = probs.shape
    for r in range(n):
        gr = grad_rows[r]
        t = target[r]
        if t < 0:
            t += c
        for j in range(c):
            out[r, j] = probs[r, j] * gr
        out[r, t] = (probs[r, t] - 1) * gr


# ----------------------------------------------------------------------------- optimizer update rules
# One pass per parameter instead of NumPy's chain of temporaries. Scalars come in the array dtype.
@njit(inline="always")
def _sgd_elem(p, g, buf, i, lr, momentum, one_m_damp, nesterov, weight_decay, maximize, first):
    gi = g[i]
    if maximize:
        gi = -gi
    if weight_decay != 0:
        gi = gi + weight_decay * p[i]
    if momentum != 0:
        if first:
            b = gi
        else:
            b = buf[i] * momentum + one_m_damp * gi
        buf[i] = b
        if nesterov:
            gi = gi + momentum * b
        else:
            gi = b
    p[i] = p[i] - lr * gi


@njit(**_PAR)
def sgd_parallel(p, g, buf, lr, momentum, one_m_damp, nesterov, weight_decay, maximize, first):
    for i in prange(p.shape[0]):
        _sgd_elem(p, g, buf, i, lr, momentum, one_m_damp, nesterov, weight_decay, maximize, first)


@njit(**_SER)
def sgd_serial(p, g, buf, lr, momentum, one_m_damp, nesterov, weight_decay, maximize, first):
    for i in range(p.shape[0]):
        _sgd_elem(p, g, buf, i, lr, momentum, one_m_damp, nesterov, weight_decay, maximize, first)


@njit(inline="always")
def _adam_elem(p, g, m, v, vmax, i, beta1, one_m_b1, beta2, one_m_b2, eps, sqrt_bc2, step_size, wd, decay_mul,
               amsgrad, maximize, decoupled):
    gi = g[i]
    if maximize:
        gi = -gi
    pi = p[i]
    if wd != 0:
        if decoupled:
            pi = pi * decay_mul
        else:
            gi = gi + wd * pi
    mi = m[i] * beta1 + one_m_b1 * gi
    vi = v[i] * beta2 + one_m_b2 * (gi * gi)
    m[i] = mi
    v[i] = vi
    if amsgrad:
        if vmax[i] > vi:
            vi = vmax[i]
        vmax[i] = vi
    denom = math.sqrt(vi) / sqrt_bc2 + eps
    p[i] = pi - step_size * (mi / denom)


@njit(**_PAR)
def adam_parallel(p, g, m, v, vmax, beta1, one_m_b1, beta2, one_m_b2, eps, sqrt_bc2, step_size, wd, decay_mul,
                  amsgrad, maximize, decoupled):
    for i in prange(p.shape[0]):
        _adam_elem(p, g, m, v, vmax, i, beta1, one_m_b1, beta2, one_m_b2, eps, sqrt_bc2, step_size, wd,
                   decay_mul, amsgrad, maximize, decoupled)


@njit(**_SER)
def adam_serial(p, g, m, v, vmax, beta1, one_m_b1, beta2, one_m_b2, eps, sqrt_bc2, step_size, wd, decay_mul,
                amsgrad, maximize, decoupled):
    for i in range(p.shape[0]):
        _adam_elem(p, g, m, v, vmax, i, beta1, one_m_b1, beta2, one_m_b2, eps, sqrt_bc2, step_size, wd,
                   decay_mul, amsgrad, maximize, decoupled)


# ----------------------------------------------------------------------------- max pooling (NCHW)
@njit(**_PAR)
def max_pool2d(x, kh, kw, sh, sw, ph, pw, dh, dw, out, idx):
    """out/idx (N, C, OH, OW): window maximum and its flat H*W position; padding never wins; the first
    maximum wins ties and the first NaN wins over numbers (NumPy argmax / PyTorch semantics)."""
    n, c, h, wd = x.shape
    oh, ow = out.shape[2], out.shape[3]
    for nc in prange(n * c):
        b = nc // c
        ch = nc % c
        xin = x[b, ch]
        for y in range(oh):
            for xx in range(ow):
                best = -np.inf
                bi = -1
                done = False
                for i in range(kh):
                    iy = y * sh - ph + i * dh
                    if iy < 0 or iy >= h:
                        continue
                    for j in range(kw):
                        ix = xx * sw - pw + j * dw
                        if ix < 0 or ix >= wd:
                            continue
                        v = xin[iy, ix]
                        if bi < 0 or v > best or v != v:
                            best = v
                            bi = iy * wd + ix
                            if v != v:
                                done = True
                                break
                    if done:
                        break
                out[b, ch, y, xx] = best
                idx[b, ch, y, xx] = bi


@njit(**_PAR)
def max_pool2d_interior(x, kh, kw, sh, sw, dh, dw, out, idx):
    """max_pool2d when every window lies inside the input (no padding, no ceil-mode overhang): no bounds
    tests, flat unsigned indexing. Same tie and NaN rules as max_pool2d."""
    n, c, h, wd = x.shape
    oh, ow = out.shape[2], out.shape[3]
    xf = x.reshape(-1)
    of = out.reshape(-1)
    idf = idx.reshape(-1)
    for nc in prange(n * c):
        xbase = nc * h * wd
        obase = nc * oh * ow
        for y in range(oh):
            y0 = y * sh
            for xx in range(ow):
                x0 = xx * sw
                bi = y0 * wd + x0
                best = xf[_U(xbase + bi)]
                if best == best:  # not NaN
                    stop = False
                    for i in range(kh):
                        r0 = (y0 + i * dh) * wd + x0
                        for j in range(kw):
                            v = xf[_U(xbase + r0 + j * dw)]
                            if not (v <= best):  # larger, or NaN
                                best = v
                                bi = r0 + j * dw
                                if v != v:
                                    stop = True
                                    break
                        if stop:
                            break
                of[_U(obase + y * ow + xx)] = best
                idf[_U(obase + y * ow + xx)] = bi


@njit(**_PAR)
def max_pool2d_backward(g, idx, gx):
    """gx (N, C, H*W) = g routed to the recorded maxima (accumulating where windows overlap); each
    task owns one (n, c) plane. Returns the number of indices outside [0, H*W) (skipped)."""
    n, c, hw = gx.shape
    bad = 0
    for nc in prange(n * c):
        b = nc // c
        ch = nc % c
        for k in range(hw):
            gx[b, ch, k] = 0
        gr = g[b, ch]
        ir = idx[b, ch]
        for k in range(gr.shape[0]):
            j = ir[k]
            if j < 0 or j >= hw:  # indices can come from the user (max_unpool2d)
                bad += 1
            else:
                gx[b, ch, j] += gr[k]
    return bad


# ----------------------------------------------------------------------------- average pooling (NCHW)
@njit(**_PAR)
def avg_pool2d(x, kh, kw, sh, sw, ph, pw, div, out):
    """out (N, C, OH, OW) = window sums of x over the part of each window inside the input (padding
    counts as zeros) divided by div (OH, OW), the per-window divisor of PyTorch's rules."""
    n, c, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    xf = x.reshape(-1)
    of = out.reshape(-1)
    df = div.reshape(-1)
    for nc in prange(n * c):
        xb = nc * h * w
        ob = nc * oh * ow
        for y in range(oh):
            y0 = y * sh - ph
            ylo = max(y0, 0)
            yhi = min(y0 + kh, h)
            for xx in range(ow):
                x0 = xx * sw - pw
                xlo = max(x0, 0)
                xhi = min(x0 + kw, w)
                s = 0.0
                for iy in range(ylo, yhi):
                    r = xb + iy * w
                    for ix in range(xlo, xhi):
                        s += xf[_U(r + ix)]
                of[_U(ob + y * ow + xx)] = s / df[_U(y * ow + xx)]


@njit(**_PAR)
def avg_pool2d_backward(g, kh, kw, sh, sw, ph, pw, div, gx):
    """Adjoint of avg_pool2d: gx (N, C, H, W) gets g / div spread over each window's inside part; each
    task owns one (n, c) plane."""
    n, c, h, w = gx.shape
    oh, ow = g.shape[2], g.shape[3]
    gf = g.reshape(-1)
    xf = gx.reshape(-1)
    df = div.reshape(-1)
    for nc in prange(n * c):
        xb = nc * h * w
        gb = nc * oh * ow
        for k in range(h * w):
            xf[_U(xb + k)] = 0
        for y in range(oh):
            y0 = y * sh - ph
            ylo = max(y0, 0)
            yhi = min(y0 + kh, h)
            for xx in range(ow):
                x0 = xx * sw - pw
                xlo = max(x0, 0)
                xhi = min(x0 + kw, w)
                v = gf[_U(gb + y * ow + xx)] / df[_U(y * ow + xx)]
                for iy in range(ylo, yhi):
                    r = xb + iy * w
                    for ix in range(xlo, xhi):
                        xf[_U(r + ix)] += v




# ----------------------------------------------------------------------------- im2col, unit width stride
@njit(**_PAR)
def im2col_w1(x, kh, kw, sh, ph, pw, dh, dw, cols, nt):
    """im2col (same result as `im2col`) for width stride 1, any height stride, padding and dilation:
    x (N, C, H, W) -> cols (N, C, kh, kw, OH, OW). Each task zero-pads its (n, c) planes into one
    local (H + 2ph, W + 2pw) buffer, so every cols row is a plain copy of OW contiguous elements with
    no bounds tests (measured 1.5-2x faster than `im2col` on LeNet shapes). Task t of nt takes a
    contiguous block of planes (one buffer allocation per task, not per plane); nt is
    numba.get_num_threads(), passed in to keep the kernel cacheable."""
    n, c, h, w = x.shape
    oh, ow = cols.shape[4], cols.shape[5]
    hp = h + 2 * ph
    wp = w + 2 * pw
    xf = x.reshape(-1)
    cf = cols.reshape(-1)
    planes = n * c
    per = (planes + nt - 1) // nt
    for t in prange(nt):
        buf = np.zeros(hp * wp, dtype=x.dtype)  # the border stays zero; the interior is rewritten per plane
        for nc in range(t * per, min(planes, (t + 1) * per)):
            xb = nc * h * w
            for yy in range(h):
                d0 = (yy + ph) * wp + pw
                s0 = xb + yy * w
                for xx in range(w):
                    buf[_U(d0 + xx)] = xf[_U(s0 + xx)]
            d = nc * kh * kw * oh * ow
            for i in range(kh):
                for j in range(kw):
                    for y in range(oh):
                        s = (y * sh + i * dh) * wp + j * dw
                        for k in range(ow):
                            cf[_U(d + k)] = buf[_U(s + k)]
                        d += ow


# ----------------------------------------------------------------------------- col2im, unit strides
# With both strides 1, cols row (c, i, j) as a whole (OH * OW elements) lands in the "shifted plane"
# S_j (Hp, OW), S_j[r, x] = padded input gradient at [r, x + j*dw], as ONE contiguous run (rows
# i*dh .. i*dh + OH - 1). So col2im_s1 accumulates each cols row into its S_j in one long loop that LLVM
# vectorises fully, then sums the kw shifted planes into the output: kw * H short rows instead of
# kh * kw * OH. Measured 1.3-1.6x faster than `col2im` on LeNet shapes (OW = 14). (The same trick for
# im2col measured no faster than im2col_w1, whose copies are already limited by the stores.)
@njit(inline="always")
def _shift_range(j, dw, pw, w, ow):
    """Columns x of S_j that hold input pixels: input column x + j*dw - pw in [0, w): [lo, hi)."""
    off = j * dw - pw
    lo = max(0, -off)
    hi = min(ow, w - off)
    if hi < lo:
        hi = lo
    return lo, hi, off


@njit(**_PAR)
def col2im_s1(cols, kh, kw, ph, pw, dh, dw, out, nt):
    """Adjoint of im2col_s1 (same result as `col2im` up to the order of the additions) for stride (1, 1):
    cols (N, C, kh, kw, OH, OW) -> out (N, C, H, W). Each (n, c) plane is owned by one task."""
    n, c, h, w = out.shape
    oh, ow = cols.shape[4], cols.shape[5]
    hp = h + 2 * ph
    blk = oh * ow
    cf = cols.reshape(-1)
    of = out.reshape(-1)
    planes = n * c
    per = (planes + nt - 1) // nt
    for t in prange(nt):
        sp = np.empty(kw * hp * ow, dtype=out.dtype)
        for nc in range(t * per, min(planes, (t + 1) * per)):
            for k in range(sp.shape[0]):
                sp[_U(k)] = 0
            s = nc * kh * kw * blk
            for i in range(kh):
                for j in range(kw):
                    d = j * hp * ow + i * dh * ow
                    for q in range(blk):
                        sp[_U(d + q)] += cf[_U(s + q)]
                    s += blk
            ob = nc * h * w
            for k in range(h * w):
                of[_U(ob + k)] = 0
            for j in range(kw):
                lo, hi, off = _shift_range(j, dw, pw, w, ow)
                sb = j * hp * ow
                for r in range(h):
                    s0 = sb + (r + ph) * ow
                    d0 = ob + r * w + off
                    for k in range(lo, hi):
                        of[_U(d0 + k)] += sp[_U(s0 + k)]
