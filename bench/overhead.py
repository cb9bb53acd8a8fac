"""Engine overhead on the NumPy backend (issue 2's targets), printed as ratios measured in one run.

(1) forward+backward microseconds per op on chains of small (16,) tensors: a mixed chain
    (mul by a leaf, add a leaf, tanh), a chain with Python scalars (x * 1.0001 + 0.001), and a
    no-grad forward chain;
(2) one training step (forward, backward, SGD update) of the MLP 784-128-64-10 (ReLU, softmax
    cross-entropy, plain SGD) at batch 128 and 1024, built from raw autodiff ops (`x @ W.T + b`,
    `relu`, fused softmax-cross-entropy when `autodiff.ops.nn` has it, else log-sum-exp from ops),
    and the same model through nn.Linear / nn.ReLU / nn.CrossEntropyLoss / optim.SGD (issue 3),
    against a hand-written NumPy forward/backward/update of the same model, interleaved, median
    of repeats after warm-up.

Targets: <= 6 us per op; engine step <= 1.10x NumPy at batch 128 and <= 1.05x at batch 1024; the
nn/optim step <= 1.10x at batch 128.
Run: .venv/bin/python -m bench.overhead [--quick] [--repeats N] [--phases] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np

import autodiff as ad

TARGET_US_PER_OP = 6.0
TARGET_RATIO = {128: 1.10, 1024: 1.05}
TARGET_RATIO_NN = {128: 1.10}  # issue 3: the same step through nn / optim


# ----------------------------------------------------------------------------- (1) op chains
def chain_mixed(n_iter):
    """3 ops per iteration: y = tanh(y * w + b) with leaves w, b (16,)."""
    x = ad.randn(16)
    w = ad.tensor(np.full(16, 0.9, np.float32), requires_grad=True)
    b = ad.tensor(np.full(16, 0.01, np.float32), requires_grad=True)
    t0, c0 = time.perf_counter(), time.thread_time()
    y = x
    for _ in range(n_iter):
        y = (y * w + b).tanh()
    y.sum().backward()
    return _per_op(t0, c0, 3 * n_iter + 1)


def chain_scalars(n_iter):
    """2 ops per iteration: y = y * 1.0001 + 0.001 from a leaf (16,)."""
    x = ad.randn(16, requires_grad=True)
    t0, c0 = time.perf_counter(), time.thread_time()
    y = x
    for _ in range(n_iter):
        y = y * 1.0001 + 0.001
    y.sum().backward()
    return _per_op(t0, c0, 2 * n_iter + 1)


def chain_nograd(n_iter):
    x = ad.randn(16)
    w = ad.randn(16)
    t0, c0 = time.perf_counter(), time.thread_time()
    with ad.no_grad():
        y = x
        for _ in range(n_iter):
            y = (y * w + w).tanh()
    return _per_op(t0, c0, 3 * n_iter)


def chain_numpy(n_iter):
    """The same mixed chain's forward and backward written by hand in NumPy (the floor)."""
    x = np.random.randn(16).astype(np.float32)
    w = np.full(16, 0.9, np.float32)
    b = np.full(16, 0.01, np.float32)
    t0, c0 = time.perf_counter(), time.thread_time()
    ys = []
    y = x
    for _ in range(n_iter):
        y = np.tanh(y * w + b)
        ys.append(y)
    g = np.ones(16, np.float32)
    gw = np.zeros(16, np.float32)
    gb = np.zeros(16, np.float32)
    for i in range(n_iter - 1, -1, -1):
        g = g * (1 - ys[i] * ys[i])
        gb += g
        gw += g * (ys[i - 1] if i else x)
        g = g * w
    return _per_op(t0, c0, 3 * n_iter + 1)


def _per_op(t0, c0, n_ops):
    """(wall, CPU) microseconds per op since (perf_counter, thread_time) = (t0, c0)."""
    return (time.perf_counter() - t0) / n_ops * 1e6, (time.thread_time() - c0) / n_ops * 1e6


# ----------------------------------------------------------------------------- (2) MLP step
SIZES = (784, 128, 64, 10)
LR = 0.01


def init_params(seed=0):
    rng = np.random.default_rng(seed)
    ps = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1 / np.sqrt(fan_in)
        ps.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        ps.append(rng.uniform(-bound, bound, (fan_out,)).astype(np.float32))
    return ps


def _cross_entropy():
    try:
        import inspect

        from autodiff.ops.nn import SoftmaxCrossEntropy
        if "reduction" in inspect.signature(SoftmaxCrossEntropy.forward).parameters:
            def ce(logits, target):
                return SoftmaxCrossEntropy.apply(logits, target=target.data, reduction="mean")
            return ce, "fused SoftmaxCrossEntropy with the mean inside"

        def ce(logits, target):
            return SoftmaxCrossEntropy.apply(logits, target=target.data).mean()
        return ce, "fused SoftmaxCrossEntropy + mean"
    except ImportError:
        def ce(logits, target):
            lse = ad.logsumexp(logits, 1)
            picked = logits.gather(1, target.unsqueeze(1)).squeeze(1)
            return (lse - picked).mean()
        return ce, "logsumexp - gather (composite)"


CE, CE_KIND = _cross_entropy()


class EngineMLP:
    def __init__(self, arrays):
        self.params = [ad.tensor(a.copy(), requires_grad=True) for a in arrays]

    def step(self, x, y):
        w1, b1, w2, b2, w3, b3 = self.params
        h = (x @ w1.T + b1).relu()
        h = (h @ w2.T + b2).relu()
        loss = CE(h @ w3.T + b3, y)
        loss.backward()
        with ad.no_grad():
            for p in self.params:
                p.data -= LR * p.grad.data
                p.grad = None
        return loss


class ModuleMLP:
    """The same model through the PyTorch-style API: nn.Sequential of nn.Linear / nn.ReLU,
    nn.CrossEntropyLoss, optim.SGD (zero_grad, forward, backward, step): issue 3's target."""

    def __init__(self, arrays):
        import nn
        import optim
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
            lin = nn.Linear(fan_in, fan_out)
            with ad.no_grad():
                lin.weight.data[...] = arrays[2 * i]
                lin.bias.data[...] = arrays[2 * i + 1]
            layers += [lin, nn.ReLU()]
        self.model = nn.Sequential(*layers[:-1])
        self.params = list(self.model.parameters())
        self.crit = nn.CrossEntropyLoss()
        self.opt = optim.SGD(self.params, lr=LR)

    def step(self, x, y):
        self.opt.zero_grad()
        loss = self.crit(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss


class NumpyMLP:
    def __init__(self, arrays):
        self.params = [a.copy() for a in arrays]

    def step(self, x, y):
        w1, b1, w2, b2, w3, b3 = self.params
        n = x.shape[0]
        h1 = x @ w1.T
        h1 += b1
        a1 = np.maximum(h1, 0)
        h2 = a1 @ w2.T
        h2 += b2
        a2 = np.maximum(h2, 0)
        z = a2 @ w3.T
        z += b3
        m = z.max(axis=1, keepdims=True)
        z -= m
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        rows = np.arange(n)
        loss = float(np.mean(np.log(s[:, 0]) - z[rows, y]))
        dz = e / s
        dz[rows, y] -= 1
        dz *= 1.0 / n
        gw3 = dz.T @ a2
        gb3 = dz.sum(0)
        d2 = dz @ w3
        d2 *= h2 > 0
        gw2 = d2.T @ a1
        gb2 = d2.sum(0)
        d1 = d2 @ w2
        d1 *= h1 > 0
        gw1 = d1.T @ x
        gb1 = d1.sum(0)
        for p, g in zip(self.params, (gw1, gb1, gw2, gb2, gw3, gb3)):
            p -= LR * g
        return loss


def bench_mlp(batch, repeats, steps_per_sample):
    rng = np.random.default_rng(1)
    x_np = rng.standard_normal((batch, SIZES[0])).astype(np.float32)
    y_np = rng.integers(0, SIZES[-1], batch).astype(np.int64)
    x, y = ad.tensor(x_np), ad.tensor(y_np)
    arrays = init_params()
    eng, mod, ref = EngineMLP(arrays), ModuleMLP(arrays), NumpyMLP(arrays)
    # correctness: one step each from the same parameters gives the same loss and parameters
    l_r = ref.step(x_np, y_np)
    for m in (eng, mod):
        l_e = float(m.step(x, y))
        assert abs(l_e - l_r) < 1e-4 * max(1.0, abs(l_r)), (l_e, l_r)
        for p, q in zip(m.params, ref.params):
            np.testing.assert_allclose(p.data, q, rtol=1e-4, atol=1e-6)
    for _ in range(3):  # warm-up
        eng.step(x, y)
        mod.step(x, y)
        ref.step(x_np, y_np)
    wall = {"e": [], "m": [], "r": []}
    cpu = {"e": [], "m": [], "r": []}
    order = [("e", eng.step, x, y), ("m", mod.step, x, y), ("r", ref.step, x_np, y_np)]
    for r in range(repeats):  # interleaved, rotating which goes first
        for name, fn, a, b in order[r % 3:] + order[:r % 3]:
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(steps_per_sample):
                fn(a, b)
            wall[name].append((time.perf_counter() - t0) / steps_per_sample)
            cpu[name].append((time.process_time() - c0) / steps_per_sample)
    med = statistics.median
    return {"wall": (med(wall["e"]), med(wall["r"])), "cpu": (med(cpu["e"]), med(cpu["r"])),
            "wall_nn": med(wall["m"]), "cpu_nn": med(cpu["m"]),
            "paired": sorted(a / b for a, b in zip(cpu["e"], cpu["r"])),
            "paired_nn": sorted(a / b for a, b in zip(cpu["m"], cpu["r"])),
            "paired_wall": sorted(a / b for a, b in zip(wall["e"], wall["r"])),
            "paired_wall_nn": sorted(a / b for a, b in zip(wall["m"], wall["r"]))}


def bench_phases(batch, n_steps):
    """Where the nn/optim step's extra time goes: forward, loss, backward and update timed apart
    (perf_counter around each phase, alternating with the same phases of the hand-written NumPy step;
    medians over n_steps after warm-up). Diagnostic only (`--phases`): the timers add a little."""
    rng = np.random.default_rng(1)
    xn = rng.standard_normal((batch, SIZES[0])).astype(np.float32)
    yn = rng.integers(0, SIZES[-1], batch).astype(np.int64)
    x, y = ad.tensor(xn), ad.tensor(yn)
    arrays = init_params()
    mod, ps = ModuleMLP(arrays), [a.copy() for a in arrays]
    clock = time.perf_counter
    phases = ("forward", "loss", "backward", "update")
    tn, tm = {k: [] for k in phases}, {k: [] for k in phases}

    def numpy_step():
        w1, b1, w2, b2, w3, b3 = ps
        t0 = clock()
        h1 = xn @ w1.T
        h1 += b1
        a1 = np.maximum(h1, 0)
        h2 = a1 @ w2.T
        h2 += b2
        a2 = np.maximum(h2, 0)
        z = a2 @ w3.T
        z += b3
        t1 = clock()
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        rows = np.arange(batch)
        float(np.mean(np.log(s[:, 0]) - z[rows, yn]))
        t2 = clock()
        dz = e / s
        dz[rows, yn] -= 1
        dz *= 1.0 / batch
        gw3, gb3, d2 = dz.T @ a2, dz.sum(0), dz @ w3
        d2 *= h2 > 0
        gw2, gb2, d1 = d2.T @ a1, d2.sum(0), d2 @ w2
        d1 *= h1 > 0
        gw1, gb1 = d1.T @ xn, d1.sum(0)
        t3 = clock()
        for p, g in zip(ps, (gw1, gb1, gw2, gb2, gw3, gb3)):
            p -= LR * g
        t4 = clock()
        for k, a, b in zip(phases, (t0, t1, t2, t3), (t1, t2, t3, t4)):
            tn[k].append(b - a)

    def module_step():
        t0 = clock()
        mod.opt.zero_grad()
        out = mod.model(x)
        t1 = clock()
        loss = mod.crit(out, y)
        t2 = clock()
        loss.backward()
        t3 = clock()
        mod.opt.step()
        t4 = clock()
        for k, a, b in zip(phases, (t0, t1, t2, t3), (t1, t2, t3, t4)):
            tm[k].append(b - a)

    for _ in range(20):  # warm-up
        numpy_step()
        module_step()
    for k in phases:
        tn[k].clear()
        tm[k].clear()
    for _ in range(n_steps):
        numpy_step()
        module_step()
    med = statistics.median
    return {k: (med(tn[k]) * 1e6, med(tm[k]) * 1e6) for k in phases}


def machine():
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    ap.add_argument("--phases", action="store_true",
                    help="also time the nn/optim step's phases (forward, loss, backward, update) at batch 128 "
                         "against the same phases of the NumPy step")
    args = ap.parse_args(argv)
    ad.set_backend("numpy")
    repeats = args.repeats or (5 if args.quick else 21)
    n_iter = 100 if args.quick else 300  # short runs: fewer preemptions on a shared machine

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"autodiff overhead benchmark: numpy {np.__version__}, python {platform.python_version()}, "
          f"CPU {machine()} x{os.cpu_count()}, load average {load:.1f}")
    print("wall = perf_counter; cpu = this thread's CPU time (process CPU time for the MLP), which is "
          "what to read when the machine is shared (load average > cores)")
    out = {"numpy": np.__version__, "python": platform.python_version(), "cpu": machine(), "load": load}

    chains = (chain_mixed, chain_scalars, chain_nograd, chain_numpy)
    for f in chains:
        f(50)  # warm-up
    res = {}
    for _ in range(repeats * 2):
        for f in chains:
            res.setdefault(f.__name__, []).append(f(n_iter))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in res.items()}
    out["chain_us_per_op"] = {k: {"wall": w, "cpu": c} for k, (w, c) in med.items()}

    def verdict(c):
        return "MET" if c <= TARGET_US_PER_OP else "NOT MET"

    print(f"\n(1) chains of (16,) tensors, {n_iter} iterations, median of {len(res['chain_mixed'])} "
          f"(us per op: wall / cpu):")
    w, c = med["chain_mixed"]
    print(f"  mixed chain tanh(y*w+b), fwd+bwd      : {w:6.2f} / {c:5.2f}   target <= {TARGET_US_PER_OP}: {verdict(c)}")
    w, c = med["chain_scalars"]
    print(f"  scalar chain y*1.0001+0.001, fwd+bwd  : {w:6.2f} / {c:5.2f}   target <= {TARGET_US_PER_OP}: {verdict(c)}")
    w, c = med["chain_nograd"]
    print(f"  mixed chain under no_grad, fwd only   : {w:6.2f} / {c:5.2f}")
    w, c = med["chain_numpy"]
    print(f"  same chain by hand in NumPy, fwd+bwd  : {w:6.2f} / {c:5.2f}   "
          f"(engine / NumPy, cpu: {med['chain_mixed'][1] / c:.1f}x)")

    print(f"\n(2) MLP 784-128-64-10 training step (cross-entropy: {CE_KIND}), median of {repeats}, interleaved:")
    # Process CPU time includes BLAS worker threads (which spin while waiting), so it is the fair basis
    # only with one BLAS thread; otherwise the verdicts use wall time.
    one_thread = "1" in (os.environ.get("OPENBLAS_NUM_THREADS"), os.environ.get("OMP_NUM_THREADS"))
    basis = "cpu" if one_thread else "wall"
    print(f"  verdicts on {basis} time ({'one BLAS thread' if one_thread else 'BLAS threads as configured'}); "
          "paired IQR = interquartile range of the per-repeat ratios")
    out["mlp"] = {"basis": basis}
    for batch, steps in ((128, 5 if not args.quick else 2), (1024, 2 if not args.quick else 1)):
        r = bench_mlp(batch, repeats, steps)
        (we, wr), (ce, cr) = r["wall"], r["cpu"]
        wm, cm = r["wall_nn"], r["cpu_nn"]
        target = TARGET_RATIO[batch]
        nn_target = TARGET_RATIO_NN.get(batch)

        def iqr(p):
            return f"{p[len(p) // 4]:.2f}-{p[(3 * len(p)) // 4]:.2f}"

        def met(ratio, t):
            return "-" if t is None else ("MET" if ratio <= t else "NOT MET")
        re, rm = (ce / cr, cm / cr) if one_thread else (we / wr, wm / wr)
        pe, pm = (r["paired"], r["paired_nn"]) if one_thread else (r["paired_wall"], r["paired_wall_nn"])
        print(f"  batch {batch:5d} numpy      : wall {wr * 1e3:7.3f} ms | cpu {cr * 1e3:7.3f} ms")
        print(f"  batch {batch:5d} raw ops    : wall {we * 1e3:7.3f} ms ({we / wr:.3f}x) | cpu {ce * 1e3:7.3f} ms "
              f"({ce / cr:.3f}x) | paired IQR {iqr(pe)} | target <= {target}x: {met(re, target)}")
        print(f"  batch {batch:5d} nn + optim : wall {wm * 1e3:7.3f} ms ({wm / wr:.3f}x) | cpu {cm * 1e3:7.3f} ms "
              f"({cm / cr:.3f}x) | paired IQR {iqr(pm)}"
              + (f" | target <= {nn_target}x: {met(rm, nn_target)}" if nn_target else ""))
        out["mlp"][batch] = {"wall_engine_ms": we * 1e3, "wall_numpy_ms": wr * 1e3, "wall_ratio": we / wr,
                             "cpu_engine_ms": ce * 1e3, "cpu_numpy_ms": cr * 1e3, "cpu_ratio": ce / cr,
                             "target": target, "wall_nn_ms": wm * 1e3, "cpu_nn_ms": cm * 1e3,
                             "cpu_ratio_nn": cm / cr, "target_nn": nn_target}
    if args.phases:
        ph = bench_phases(128, 300 if args.quick else 2000)
        print("\n(3) nn/optim step at batch 128 by phase, median us (NumPy / nn+optim / difference):")
        for k, (a, b) in ph.items():
            print(f"  {k:9s}: {a:7.1f} / {b:7.1f} / {b - a:+6.1f}")
        ta, tb = sum(a for a, _ in ph.values()), sum(b for _, b in ph.values())
        print(f"  {'sum':9s}: {ta:7.1f} / {tb:7.1f} / {tb - ta:+6.1f}  ({tb / ta:.3f}x)")
        out["phases_us"] = {k: {"numpy": a, "nn": b} for k, (a, b) in ph.items()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
