"""Gradient checkpointing: peak memory and time of one training step (forward + backward) of a deep
tanh MLP, plain vs `autodiff.checkpoint` segments.

Peak memory is measured with `tracemalloc` (NumPy reports its array allocations to it) on the CPU,
or with CuPy's memory pool on `--device cuda`, relative to the memory held before the step
(parameters and input). Time is the median of `--repeats` interleaved runs after one warm-up run.

    .venv/bin/python -m bench.checkpoint_memory [--depth 32 --width 128 --batch 1024 --repeats 7]
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import time
import tracemalloc

import autodiff as ad
from autodiff.checkpoint import checkpoint


def make_params(depth, width, device):
    ad.manual_seed(0)
    ps = []
    for _ in range(depth):
        w = (ad.randn(width, width, device=device) * (1.0 / math.sqrt(width))).requires_grad_()
        b = ad.zeros(width, device=device, requires_grad=True)
        ps.append((w, b))
    return ps


def run_step(ps, x, segment):
    """One forward+backward; `segment` layers per checkpoint (0: no checkpointing)."""
    def block(lo, hi):
        def f(h):
            for w, b in ps[lo:hi]:
                h = (h @ w + b).tanh()
            return h
        return f

    h = x
    depth = len(ps)
    if segment:
        for lo in range(0, depth, segment):
            h = checkpoint(block(lo, min(depth, lo + segment)), h)
    else:
        h = block(0, depth)(h)
    loss = (h * h).mean()
    loss.backward()
    for w, b in ps:
        w.grad = b.grad = None
    return loss


class _Peak:
    """Peak bytes allocated during a call, above what was held at its start."""

    def __init__(self, device):
        self.device = device

    def measure(self, fn):
        if self.device == "cuda":
            # CuPy's pool keeps freed blocks for reuse, so after emptying it the bytes it holds at
            # the end of the step bound the step's high-water mark (up to fragmentation).
            import cupy
            pool = cupy.get_default_memory_pool()
            cupy.cuda.Device().synchronize()
            pool.free_all_blocks()
            base = pool.total_bytes()
            fn()
            cupy.cuda.Device().synchronize()
            return max(0, pool.total_bytes() - base)
        tracemalloc.start()
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        fn()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return peak - base


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--depth", type=int, default=32)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    ps = make_params(args.depth, args.width, args.device)
    x = ad.randn(args.batch, args.width, device=args.device)
    seg_sqrt = max(1, int(round(math.sqrt(args.depth))))
    configs = [("plain", 0), (f"checkpoint every {seg_sqrt} layers", seg_sqrt),
               (f"checkpoint every {max(1, args.depth // 2)} layers", max(1, args.depth // 2)),
               ("checkpoint every layer", 1)]
    peaks = {}
    times = {name: [] for name, _ in configs}
    meter = _Peak(args.device)
    backend = ad.backends._by_array_type[type(x.data)]
    for name, seg in configs:  # warm-up + memory (one measured run each)
        run_step(ps, x, seg)
        peaks[name] = meter.measure(lambda: run_step(ps, x, seg))
    for _ in range(args.repeats):  # interleaved timing
        for name, seg in configs:
            backend.synchronize()
            t0 = time.perf_counter()
            run_step(ps, x, seg)
            backend.synchronize()
            times[name].append(time.perf_counter() - t0)

    act = args.batch * args.width * 4
    print(f"deep tanh MLP: depth {args.depth}, width {args.width}, batch {args.batch}, device {args.device}; "
          f"one activation = {act / 2**20:.2f} MiB; median of {args.repeats}")
    base_peak, base_t = peaks["plain"], statistics.median(times["plain"])
    print(f"{'config':<32}{'peak MiB':>10}{'vs plain':>10}{'step s':>10}{'time vs plain':>15}")
    rows = []
    for name, _ in configs:
        t = statistics.median(times[name])
        print(f"{name:<32}{peaks[name] / 2**20:>10.1f}{peaks[name] / base_peak:>10.2f}{t:>10.3f}"
              f"{t / base_t:>15.2f}")
        rows.append({"config": name, "peak_bytes": peaks[name], "peak_ratio": peaks[name] / base_peak,
                     "time_s": t, "time_ratio": t / base_t})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
