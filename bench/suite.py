"""The backend-comparison benchmark suite: every workload on every available backend, interleaved.

Implementations ("impl") compared in each case:
  numpy, numba, cupy   this library on that backend (cupy only when a GPU is present)
  torch-cpu, torch-cuda PyTorch, the external reference (when importable)
  numpy-hand           the same computation hand-written in NumPy (training steps)
  copy / blas          the machine's own limits: a measured memory copy, np.matmul called directly

Ratios: `vs_numpy` = time / time of the numpy backend in the same case; `vs_torch` = time / time of
PyTorch on the same kind of device. Each workload function returns result dicts (see `_result`).
"""
from __future__ import annotations

import gc
import math
import statistics

import numpy as np

from . import common
from .common import HAVE_TORCH, Candidate, measure, torch

import autodiff  # noqa: E402 - after bench.common imported torch (see there)
from autodiff import backends  # noqa: E402

CPU_BACKENDS = ("numpy", "numba")


# ----------------------------------------------------------------------------- context and helpers
class Ctx:
    """Options of one suite run."""

    def __init__(self, backends=None, quick=True, torch_device=None, repeats=None, log=print):
        self.quick = quick
        avail = available_backends()
        if isinstance(backends, str):
            backends = [b.strip() for b in backends.split(",") if b.strip()]
        self.backends = [b for b in backends if b in avail] if backends else avail
        for b in backends or ():
            if b not in avail:
                log(f"  backend {b!r} unavailable here: skipped")
        if torch_device is None:
            torch_device = ["cpu"]
            if HAVE_TORCH and torch.cuda.is_available() and "cupy" in self.backends:
                torch_device.append("cuda")
        elif isinstance(torch_device, str):
            torch_device = [] if torch_device.strip().lower() == "none" else \
                [d.strip() for d in torch_device.split(",") if d.strip()]
        if not HAVE_TORCH:
            if torch_device:
                log("  torch not importable: no PyTorch reference (pip install torch)")
            torch_device = []
        elif "cuda" in torch_device and not torch.cuda.is_available():
            log("  torch has no CUDA device here: torch-cuda skipped")
            torch_device = [d for d in torch_device if d != "cuda"]
        self.torch_devices = list(torch_device)
        self.repeats = repeats or (7 if quick else 11)
        self.min_sample_s = 0.005 if quick else 0.02
        self.log = log

    def time(self, cands):
        return measure(cands, repeats=self.repeats, warmup=1 if self.quick else 3, min_sample_s=self.min_sample_s)


def available_backends():
    out = ["numpy"]
    try:
        backends.get_backend("numba")
        out.append("numba")
    except Exception:  # noqa: BLE001
        pass
    try:
        if autodiff.cuda.is_available():
            out.append("cupy")
    except Exception:  # noqa: BLE001
        pass
    return out


def _dev(impl):
    return "cuda" if impl in ("cupy", "torch-cuda") else "cpu"


def _use(impl):
    """Make `impl` the current CPU backend (a dict assignment; cupy needs nothing)."""
    if impl in CPU_BACKENDS:
        autodiff.set_backend(impl)


def _sync(impl):
    if impl == "cupy":
        return autodiff.cuda.synchronize
    if impl == "torch-cuda":
        return torch.cuda.synchronize
    return None


def _tensor(a, impl, requires_grad=False):
    """A NumPy array as an input tensor of `impl` (autodiff Tensor, or torch tensor for torch-*)."""
    if impl.startswith("torch"):
        t = torch.from_numpy(np.ascontiguousarray(a)).to(_dev(impl))
        return t.requires_grad_(requires_grad) if requires_grad else t
    return autodiff.tensor(a, requires_grad=requires_grad, device=_dev(impl))


def _wrap(impl, fn):
    """fn with the backend selected first, so interleaved candidates of different CPU backends can share
    tensors (the backend is chosen from the array type, which set_backend remaps)."""
    if impl in CPU_BACKENDS:
        def run():
            autodiff.set_backend(impl)
            fn()
        return run
    return fn


def _impls(ctx, torch_too=True):
    out = list(ctx.backends)
    if torch_too:
        out += [f"torch-{d}" for d in ctx.torch_devices]
    return out


def _result(workload, case, impl, st, **extra):
    r = dict(workload=workload, case=case, impl=impl)
    r.update(st)
    r.update(extra)
    return r


def _paired_ratio(a, b):
    """Median over rounds of a's sample / b's sample taken in the same round (adjacent in time), which
    cancels most of the slow drift of a shared machine's load; falls back to the ratio of medians."""
    sa, sb = a.get("samples") or [], b.get("samples") or []
    if len(sa) == len(sb) and sa:
        return statistics.median(x / y for x, y in zip(sa, sb))
    return a["median_s"] / b["median_s"]


def _finish(results, ref="numpy"):
    """Add vs_numpy / vs_torch ratios (paired per round, see _paired_ratio) within each (workload, case)."""
    cases = {}
    for r in results:
        cases.setdefault((r["workload"], r["case"]), []).append(r)
    for rows in cases.values():
        by = {r["impl"]: r for r in rows if r.get("median_s")}
        for r in rows:
            if not r.get("median_s"):
                continue
            if ref in by and r["impl"] != ref:
                r["vs_numpy"] = _paired_ratio(r, by[ref])
            tref = "torch-cuda" if _dev(r["impl"]) == "cuda" else "torch-cpu"
            if tref in by and r["impl"] != tref:
                r["vs_torch"] = _paired_ratio(r, by[tref])
    return results


def _run_case(ctx, workload, case, cands, metric=None, note=""):
    """Time candidates; `metric(impl, seconds)` gives the throughput string and value."""
    stats = ctx.time(cands)
    out = []
    for c in cands:
        st = stats[c.impl]
        extra = {}
        if metric is not None and st.get("median_s"):
            extra["metric"], extra["throughput"] = metric(c.impl, st["median_s"])
        if note or c.note:
            extra["note"] = c.note or note
        out.append(_result(workload, case, c.impl, st, **extra))
    return out


def _need(mod, *names):
    """The attributes `names` of module `mod`, or None if any is missing (workload skipped)."""
    try:
        return [getattr(mod, n) for n in names]
    except AttributeError:
        return None


def _import_nn():
    try:
        import nn
        import nn.functional as F
        import optim
        return nn, F, optim
    except Exception as e:  # noqa: BLE001
        return e


# ----------------------------------------------------------------------------- workloads
def wl_overhead(ctx):
    """Framework overhead per op: a chain of 10 small-tensor ops (forward + backward), time per op."""
    x0 = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    cands = []
    n_ops = 9  # mul add relu mul sub exp mul tanh sum (each with its backward)
    for impl in _impls(ctx):
        x = _tensor(x0, impl, requires_grad=True)

        def step(x=x):  # the same code for autodiff and torch tensors
            y = (((x * 2.0 + 1.0).relu() * x - 0.5).exp() * 0.1).tanh().sum()
            y.backward()
            x.grad = None
        cands.append(Candidate(impl, _wrap(impl, step), _sync(impl)))
    return _run_case(ctx, "overhead", "16 floats, 9 ops fwd+bwd", cands,
                     metric=lambda impl, s: (f"{s / n_ops * 1e6:.1f} us/op", s / n_ops))


def wl_elementwise(ctx):
    """Bandwidth of an elementwise add and a full sum vs a measured copy (GB/s)."""
    n = (1 << 22) if ctx.quick else (1 << 24)
    rng = np.random.default_rng(1)
    a0, b0 = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    nbytes_add, nbytes_sum = 3 * a0.nbytes, a0.nbytes
    out = []
    for op, nbytes in (("add", nbytes_add), ("sum", nbytes_sum)):
        cands = []
        dst = np.empty_like(a0)
        if op == "add":
            cands.append(Candidate("copy", lambda: np.copyto(dst, a0), note="copy: np.copyto, 2 x bytes moved"))
        for impl in _impls(ctx):
            a, b = _tensor(a0, impl), _tensor(b0, impl)
            if op == "add":
                fn = (lambda a=a, b=b: a + b)
            else:
                fn = (lambda a=a: a.sum())
            if impl in CPU_BACKENDS or impl == "cupy":
                fn = _nograd(fn)
            cands.append(Candidate(impl, _wrap(impl, fn), _sync(impl)))

        def metric(impl, s, nbytes=nbytes):
            b = 2 * a0.nbytes if impl == "copy" else nbytes
            return f"{b / s / 1e9:.1f} GB/s", b / s / 1e9
        out += _run_case(ctx, "elementwise", f"{op} {n / 1e6:.1f}M float32", cands, metric)
    return out


def _nograd(fn):
    def run():
        with autodiff.no_grad():
            fn()
    return run


def wl_matmul(ctx):
    """Matmul GFLOP/s vs the same BLAS called directly (np.matmul)."""
    out = []
    for n in ((256, 1024) if ctx.quick else (256, 1024, 2048)):
        rng = np.random.default_rng(2)
        a0, b0 = rng.standard_normal((n, n)).astype(np.float32), rng.standard_normal((n, n)).astype(np.float32)
        cands = [Candidate("blas", lambda a0=a0, b0=b0: np.matmul(a0, b0), note="blas: np.matmul on the same arrays")]
        for impl in _impls(ctx):
            a, b = _tensor(a0, impl), _tensor(b0, impl)
            fn = lambda a=a, b=b: a @ b
            if not impl.startswith("torch"):
                fn = _nograd(fn)
            cands.append(Candidate(impl, _wrap(impl, fn), _sync(impl)))
        flops = 2 * n ** 3
        out += _run_case(ctx, "matmul", f"{n}x{n} float32", cands,
                         lambda impl, s, f=flops: (f"{f / s / 1e9:.1f} GFLOP/s", f / s / 1e9))
    return out


def wl_conv(ctx):
    """conv2d forward + backward (input and weight grads) through nn.functional.conv2d."""
    mods = _import_nn()
    if isinstance(mods, Exception) or _need(mods[1], "conv2d") is None:
        ctx.log("  conv: skipped (nn.functional.conv2d not available)")
        return []
    F = mods[1]
    out = []
    shapes = [(64, 8, 14, 14, 16)] if ctx.quick else [(64, 8, 14, 14, 16), (32, 32, 32, 32, 64)]
    for (n, c, h, w, o) in shapes:
        rng = np.random.default_rng(3)
        x0 = rng.standard_normal((n, c, h, w)).astype(np.float32)
        w0 = (rng.standard_normal((o, c, 3, 3)) * 0.1).astype(np.float32)
        b0 = np.zeros(o, np.float32)
        cands = []
        for impl in _impls(ctx):
            x, wt, b = (_tensor(a, impl, True) for a in (x0, w0, b0))
            if impl.startswith("torch"):
                conv = torch.nn.functional.conv2d
            else:
                conv = F.conv2d

            def step(x=x, wt=wt, b=b, conv=conv):
                y = conv(x, wt, b, padding=1)
                y.sum().backward()
                x.grad = wt.grad = b.grad = None
            cands.append(Candidate(impl, _wrap(impl, step), _sync(impl)))
        flops = 3 * 2 * n * o * h * w * c * 9
        out += _run_case(ctx, "conv2d", f"x({n},{c},{h},{w}) 3x3 -> {o}, pad 1, fwd+bwd", cands,
                         lambda impl, s, f=flops: (f"{f / s / 1e9:.1f} GFLOP/s", f / s / 1e9))
    return out


def wl_cross_entropy(ctx):
    """Fused softmax + cross-entropy forward + backward (nn.functional.cross_entropy)."""
    mods = _import_nn()
    if isinstance(mods, Exception) or _need(mods[1], "cross_entropy") is None:
        ctx.log("  cross_entropy: skipped (nn.functional.cross_entropy not available)")
        return []
    F = mods[1]
    out = []
    for (n, c) in ((128, 10), (1024, 1000)) if ctx.quick else ((128, 10), (4096, 1000)):
        rng = np.random.default_rng(4)
        z0 = (rng.standard_normal((n, c)) * 3).astype(np.float32)
        t0 = rng.integers(0, c, n)
        cands = []
        for impl in _impls(ctx):
            z = _tensor(z0, impl, True)
            t = _tensor(t0, impl)
            ce = torch.nn.functional.cross_entropy if impl.startswith("torch") else F.cross_entropy

            def step(z=z, t=t, ce=ce):
                ce(z, t).backward()
                z.grad = None
            cands.append(Candidate(impl, _wrap(impl, step), _sync(impl)))
        out += _run_case(ctx, "cross_entropy", f"logits ({n},{c}) fwd+bwd", cands)
    return out


def wl_embedding(ctx):
    """Embedding lookup + backward (scatter-add of rows): table (10000, 128), indices (32, 64)."""
    mods = _import_nn()
    if isinstance(mods, Exception) or _need(mods[1], "embedding") is None:
        ctx.log("  embedding: skipped (nn.functional.embedding not available)")
        return []
    F = mods[1]
    rng = np.random.default_rng(5)
    w0 = rng.standard_normal((10000, 128)).astype(np.float32)
    i0 = rng.integers(0, 10000, (32, 64))
    g0 = rng.standard_normal((32, 64, 128)).astype(np.float32)
    cands = []
    for impl in _impls(ctx):
        w = _tensor(w0, impl, True)
        idx, g = _tensor(i0, impl), _tensor(g0, impl)
        emb = torch.nn.functional.embedding if impl.startswith("torch") else F.embedding

        def step(w=w, idx=idx, g=g, emb=emb):
            emb(idx, w).backward(g)
            w.grad = None
        cands.append(Candidate(impl, _wrap(impl, step), _sync(impl)))
    out = _run_case(ctx, "embedding", "table (10000,128), idx (32,64), fwd+bwd", cands)
    # the backward alone: the backends' embedding_backward slot (scatter-add of rows into a fresh table)
    cands = []
    for impl in ctx.backends:
        bk = backends.get_backend(impl)
        g, idx = bk.asarray(g0), bk.asarray(i0)
        cands.append(Candidate(impl, lambda bk=bk, g=g, idx=idx: bk.embedding_backward(g, idx, 10000), _sync(impl)))
    return out + _run_case(ctx, "embedding", "embedding_backward slot only", cands)


def wl_optimizers(ctx):
    """One optimizer step over 10M float32 parameters (3 tensors), per optimizer."""
    mods = _import_nn()
    if isinstance(mods, Exception):
        ctx.log(f"  optimizers: skipped ({mods})")
        return []
    nn, _, optim = mods
    sizes = (4_000_000, 4_000_000, 2_000_000)
    rng = np.random.default_rng(6)
    p0 = [rng.standard_normal(s).astype(np.float32) for s in sizes]
    g0 = [(rng.standard_normal(s) * 1e-3).astype(np.float32) for s in sizes]
    configs = [("SGD(momentum=0.9)", "SGD", dict(lr=1e-3, momentum=0.9)),
               ("Adam", "Adam", dict(lr=1e-3)),
               ("AdamW", "AdamW", dict(lr=1e-3, weight_decay=1e-2))]
    if not ctx.quick:
        configs += [("SGD", "SGD", dict(lr=1e-3)), ("Adagrad", "Adagrad", dict(lr=1e-3)),
                    ("RMSprop", "RMSprop", dict(lr=1e-3)), ("Adam(amsgrad)", "Adam", dict(lr=1e-3, amsgrad=True))]
    out = []
    for label, cls, kw in configs:
        if not hasattr(optim, cls):
            continue
        cands = []
        for impl in _impls(ctx):
            if impl.startswith("torch"):
                ps = [torch.from_numpy(a.copy()).to(_dev(impl)).requires_grad_() for a in p0]
                for p, g in zip(ps, g0):
                    p.grad = torch.from_numpy(g).to(_dev(impl))
                opt = getattr(torch.optim, cls)(ps, **kw)
            else:
                ps = [nn.Parameter(autodiff.tensor(a.copy(), device=_dev(impl))) for a in p0]
                for p, g in zip(ps, g0):
                    p.grad = autodiff.tensor(g, device=_dev(impl))
                opt = getattr(optim, cls)(ps, **kw)
            cands.append(Candidate(impl, _wrap(impl, opt.step), _sync(impl)))
        n = sum(sizes)
        out += _run_case(ctx, "optimizer step", f"{label}, 10M params", cands,
                         lambda impl, s, n=n: (f"{n / s / 1e9:.2f} Gparam/s", n / s / 1e9))
        del cands
        gc.collect()
    return out


# ----------------------------------------------------------------------------- training steps
def _mlp_numpy_hand(x, y, widths, lr=0.01, seed=0):
    """A hand-written NumPy SGD step of an MLP with ReLU and softmax cross-entropy (the baseline)."""
    rng = np.random.default_rng(seed)
    Ws, bs = [], []
    for fi, fo in zip(widths[:-1], widths[1:]):
        bound = 1 / math.sqrt(fi)
        Ws.append(rng.uniform(-bound, bound, (fo, fi)).astype(np.float32))
        bs.append(rng.uniform(-bound, bound, fo).astype(np.float32))
    n = x.shape[0]
    rows = np.arange(n)

    def step():
        acts = [x]
        h = x
        for i, (W, b) in enumerate(zip(Ws, bs)):
            h = h @ W.T + b
            if i < len(Ws) - 1:
                np.maximum(h, 0, out=h)
            acts.append(h)
        z = h - h.max(axis=1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
        g = p
        g[rows, y] -= 1
        g /= n
        for i in range(len(Ws) - 1, -1, -1):
            a = acts[i]
            gW = g.T @ a
            gb = g.sum(axis=0)
            if i > 0:
                g = g @ Ws[i]
                g *= acts[i] > 0
            Ws[i] -= lr * gW
            bs[i] -= lr * gb
    return step


def _mlp_module(nn, widths):
    layers = []
    for i, (fi, fo) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(fi, fo))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _train_step_cands(ctx, build_ours, build_torch, x0, y0, hand=None):
    """Candidates for one SGD(lr=0.01) training step on (x0, y0) for each impl."""
    mods = _import_nn()
    nn, F, optim = mods
    cands = []
    if hand is not None:
        cands.append(Candidate("numpy-hand", hand, note="numpy-hand: the same step hand-written in NumPy"))
    for impl in _impls(ctx):
        if impl.startswith("torch"):
            torch.manual_seed(0)
            model = build_torch().to(_dev(impl))
            opt = torch.optim.SGD(model.parameters(), lr=0.01)
            crit = torch.nn.CrossEntropyLoss()
        else:
            _use(impl)
            autodiff.manual_seed(0)
            model = build_ours()
            if impl == "cupy":
                model = model.to("cuda")
            opt = optim.SGD(model.parameters(), lr=0.01)
            crit = nn.CrossEntropyLoss()
        x, y = _tensor(x0, impl), _tensor(y0, impl)

        def step(model=model, opt=opt, crit=crit, x=x, y=y):
            opt.zero_grad()
            loss = crit(model(x), y)
            loss.backward()
            opt.step()
        cands.append(Candidate(impl, _wrap(impl, step), _sync(impl)))
    return cands


def wl_mlp(ctx):
    """End-to-end training step of the MLP 784-128-64-10, batch 128 (nn/optim vs hand-written NumPy)."""
    mods = _import_nn()
    if isinstance(mods, Exception) or _need(mods[0], "Linear", "Sequential", "ReLU", "CrossEntropyLoss") is None:
        ctx.log("  mlp: skipped (nn.Linear/Sequential/ReLU/CrossEntropyLoss not available)")
        return []
    nn = mods[0]
    widths = (784, 128, 64, 10)
    rng = np.random.default_rng(7)
    x0 = rng.standard_normal((128, 784)).astype(np.float32)
    y0 = rng.integers(0, 10, 128)
    cands = _train_step_cands(ctx, lambda: _mlp_module(nn, widths), lambda: _torch_mlp(widths), x0, y0,
                              hand=_mlp_numpy_hand(x0, y0, widths))
    return _run_case(ctx, "training step", "MLP 784-128-64-10, batch 128, SGD", cands)


def _torch_mlp(widths):
    layers = []
    for i, (fi, fo) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(torch.nn.Linear(fi, fo))
        if i < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def _cnn_numpy_hand(x, y, lr=0.01, seed=0):
    """Hand-written NumPy im2col step of the LeNet-style CNN (the baseline of issue 3)."""
    rng = np.random.default_rng(seed)

    def u(shape, fan_in):
        b = 1 / math.sqrt(fan_in)
        return rng.uniform(-b, b, shape).astype(np.float32)
    P = dict(w1=u((8, 1, 3, 3), 9), b1=u(8, 9), w2=u((16, 8, 3, 3), 72), b2=u(16, 72), w3=u((10, 784), 784),
             b3=u(10, 784))
    n = x.shape[0]
    rows = np.arange(n)

    def im2col(a):  # (N, C, H, W), 3x3 pad 1 -> (N, C*9, H*W)
        nn_, c, h, w = a.shape
        ap = np.pad(a, ((0, 0), (0, 0), (1, 1), (1, 1)))
        cols = np.empty((nn_, c, 3, 3, h, w), a.dtype)
        for i in range(3):
            for j in range(3):
                cols[:, :, i, j] = ap[:, :, i:i + h, j:j + w]
        return cols.reshape(nn_, c * 9, h * w)

    def col2im(cols, shape):
        nn_, c, h, w = shape
        cols = cols.reshape(nn_, c, 3, 3, h, w)
        ap = np.zeros((nn_, c, h + 2, w + 2), cols.dtype)
        for i in range(3):
            for j in range(3):
                ap[:, :, i:i + h, j:j + w] += cols[:, :, i, j]
        return ap[:, :, 1:-1, 1:-1]

    def conv_f(a, w, b):
        cols = im2col(a)
        out = np.matmul(w.reshape(w.shape[0], -1), cols) + b[:, None]
        return out.reshape(a.shape[0], w.shape[0], a.shape[2], a.shape[3]), cols

    def conv_b(g, a_shape, w, cols, need_gx=True):
        g2 = g.reshape(g.shape[0], g.shape[1], -1)
        gw = np.matmul(g2, cols.transpose(0, 2, 1)).sum(0).reshape(w.shape)
        gb = g2.sum(axis=(0, 2))
        gx = col2im(np.matmul(w.reshape(w.shape[0], -1).T, g2), a_shape) if need_gx else None
        return gx, gw, gb

    def pool_f(a):  # 2x2 max pool; mask of the maxima
        nn_, c, h, w = a.shape
        r = a.reshape(nn_, c, h // 2, 2, w // 2, 2)
        m = np.maximum(np.maximum(r[:, :, :, 0, :, 0], r[:, :, :, 0, :, 1]),
                       np.maximum(r[:, :, :, 1, :, 0], r[:, :, :, 1, :, 1]))
        mask = r == m[:, :, :, None, :, None]
        return m, mask

    def pool_b(g, mask):
        return (mask * g[:, :, :, None, :, None]).reshape(mask.shape[0], mask.shape[1], mask.shape[2] * 2, -1)

    def step():
        h1, c1 = conv_f(x, P["w1"], P["b1"])
        r1 = np.maximum(h1, 0)
        p1, m1 = pool_f(r1)
        h2, c2 = conv_f(p1, P["w2"], P["b2"])
        r2 = np.maximum(h2, 0)
        p2, m2 = pool_f(r2)
        f = p2.reshape(n, -1)
        z = f @ P["w3"].T + P["b3"]
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        g = e / e.sum(axis=1, keepdims=True)
        g[rows, y] -= 1
        g /= n
        gw3, gb3 = g.T @ f, g.sum(0)
        gf = (g @ P["w3"]).reshape(p2.shape)
        gr2 = pool_b(gf, m2) * (h2 > 0)
        gp1, gw2, gb2 = conv_b(gr2, p1.shape, P["w2"], c2)
        gr1 = pool_b(gp1, m1) * (h1 > 0)
        _, gw1, gb1 = conv_b(gr1, x.shape, P["w1"], c1, need_gx=False)  # the input needs no grad
        for k, gk in (("w1", gw1), ("b1", gb1), ("w2", gw2), ("b2", gb2), ("w3", gw3), ("b3", gb3)):
            P[k] -= lr * gk
    return step


def wl_cnn(ctx):
    """LeNet-style CNN training step, batch 64 (issue 3): conv 1->8, pool, conv 8->16, pool, linear 784->10."""
    mods = _import_nn()
    need = ("Conv2d", "MaxPool2d", "Linear", "ReLU", "Flatten", "Sequential", "CrossEntropyLoss")
    if isinstance(mods, Exception) or _need(mods[0], *need) is None:
        ctx.log("  cnn: skipped (nn.Conv2d/MaxPool2d/Flatten not available yet)")
        return []
    nn = mods[0]

    def build(m):
        return m.Sequential(m.Conv2d(1, 8, 3, padding=1), m.ReLU(), m.MaxPool2d(2),
                            m.Conv2d(8, 16, 3, padding=1), m.ReLU(), m.MaxPool2d(2),
                            m.Flatten(), m.Linear(784, 10))
    rng = np.random.default_rng(8)
    x0 = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    y0 = rng.integers(0, 10, 64)
    cands = _train_step_cands(ctx, lambda: build(nn), lambda: build(torch.nn), x0, y0,
                              hand=_cnn_numpy_hand(x0, y0))
    return _run_case(ctx, "training step", "LeNet CNN, batch 64, SGD", cands)


def wl_transformer(ctx):
    """One TransformerEncoderLayer training step (d_model 128, 4 heads, seq 64, batch 32), when nn has it."""
    mods = _import_nn()
    if isinstance(mods, Exception) or _need(mods[0], "TransformerEncoderLayer") is None:
        ctx.log("  transformer: skipped (nn.TransformerEncoderLayer not available)")
        return []
    nn, F, optim = mods
    rng = np.random.default_rng(9)
    x0 = rng.standard_normal((32, 64, 128)).astype(np.float32)
    cands = []
    for impl in _impls(ctx):
        if impl.startswith("torch"):
            torch.manual_seed(0)
            layer = torch.nn.TransformerEncoderLayer(128, 4, dim_feedforward=512, dropout=0.0,
                                                     batch_first=True).to(_dev(impl))
            opt = torch.optim.SGD(layer.parameters(), lr=0.01)
        else:
            _use(impl)
            layer = nn.TransformerEncoderLayer(128, 4, dim_feedforward=512, dropout=0.0, batch_first=True)
            if impl == "cupy":
                layer = layer.to("cuda")
            opt = optim.SGD(layer.parameters(), lr=0.01)
        x = _tensor(x0, impl)

        def step(layer=layer, opt=opt, x=x):
            opt.zero_grad()
            (layer(x) ** 2).mean().backward()
            opt.step()
        cands.append(Candidate(impl, _wrap(impl, step), _sync(impl)))
    return _run_case(ctx, "training step", "TransformerEncoderLayer d128 h4 ff512, (32,64), SGD", cands)


def wl_scaling(ctx):
    """MLP step time as width grows (batch 128) and as batch grows (width 128): where each backend stops
    being overhead-bound (time per sample flattens)."""
    mods = _import_nn()
    if isinstance(mods, Exception) or _need(mods[0], "Linear", "Sequential", "ReLU", "CrossEntropyLoss") is None:
        ctx.log("  scaling: skipped (nn not available)")
        return []
    nn = mods[0]
    widths = (128, 512, 2048, 4096) if ctx.quick else (128, 256, 512, 1024, 2048, 4096)
    batches = (16, 256, 4096) if ctx.quick else (16, 64, 256, 1024, 4096)
    out = []
    rng = np.random.default_rng(10)
    for kind, values in (("width", widths), ("batch", batches)):
        for v in values:
            width, batch = (v, 128) if kind == "width" else (128, v)
            dims = (784, width, width, 10)
            x0 = rng.standard_normal((batch, 784)).astype(np.float32)
            y0 = rng.integers(0, 10, batch)
            cands = _train_step_cands(ctx, lambda d=dims: _mlp_module(nn, d), lambda d=dims: _torch_mlp(d), x0, y0,
                                      hand=_mlp_numpy_hand(x0, y0, dims))
            res = _run_case(ctx, "scaling", f"MLP 784-{width}-{width}-10, batch {batch}", cands,
                            lambda impl, s, b=batch: (f"{s / b * 1e6:.2f} us/sample", s / b))
            for r in res:
                r.update(scale_kind=kind, scale_value=v)
            out += res
            gc.collect()
    return out


WORKLOADS = {
    "overhead": wl_overhead,
    "elementwise": wl_elementwise,
    "matmul": wl_matmul,
    "conv": wl_conv,
    "cross_entropy": wl_cross_entropy,
    "embedding": wl_embedding,
    "optimizers": wl_optimizers,
    "mlp": wl_mlp,
    "cnn": wl_cnn,
    "transformer": wl_transformer,
    "scaling": wl_scaling,
}


def run(workloads=None, backends=None, quick=True, torch_device=None, repeats=None, log=print):
    """Run the suite; returns a list of result dicts (see bench/__main__.py for the fields)."""
    ctx = Ctx(backends=backends, quick=quick, torch_device=torch_device, repeats=repeats, log=log)
    names = list(WORKLOADS) if not workloads else [w.strip() for w in
                                                   (workloads.split(",") if isinstance(workloads, str)
                                                    else workloads)]
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown:
        raise ValueError(f"bench: unknown workload(s) {unknown}; choose from {sorted(WORKLOADS)}")
    prev = autodiff.get_cpu_backend().name
    results = []
    try:
        for name in names:
            log(f"[bench] {name} ...")
            try:
                results += WORKLOADS[name](ctx)
            except Exception as e:  # noqa: BLE001 - one broken workload must not lose the others' figures
                import traceback
                log(f"  {name}: failed: {type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}")
                results.append(dict(workload=name, case="(setup)", impl="-", error=f"{type(e).__name__}: {e}"[:200]))
            gc.collect()
    finally:
        autodiff.set_backend(prev)
    return _finish(results)


def info():
    return common.machine_info()
