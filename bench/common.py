"""Timing helpers shared by the benchmark suite (bench/suite.py) and its workloads.

The rules every figure follows (DESIGN.md, Benchmarks):
- candidates of one case are measured in the same process, *interleaved* (round-robin, one sample
  of each per round) so that machine noise hits all of them alike;
- the first call of each candidate is timed apart (`first_s`: numba compilation, CuPy kernel
  compilation, lazy allocation) and followed by warm-up calls that are not counted;
- each sample runs the candidate `inner` times, with `inner` calibrated so that a sample lasts at
  least `min_sample_s`; the report is the median per call over the samples, with min/max as spread;
- on a GPU, every sample ends with a device synchronisation (the candidate's `sync`).
"""
from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
import time

import numpy as np

try:  # imported before autodiff's numba backend sets OMP_WAIT_POLICY, so PyTorch keeps its defaults
    import torch  # noqa: F401
    HAVE_TORCH = True
except Exception:  # noqa: BLE001 - torch is optional
    torch = None
    HAVE_TORCH = False


class Candidate:
    """One thing to time: `fn()` runs one step; `sync()` (optional) waits for the device."""

    def __init__(self, impl, fn, sync=None, note=""):
        self.impl, self.fn, self.sync, self.note = impl, fn, sync, note

    def call(self, n):
        fn = self.fn
        for _ in range(n):
            fn()
        if self.sync is not None:
            self.sync()


def measure(candidates, repeats=5, warmup=2, min_sample_s=0.01, max_inner=10_000):
    """Time `candidates` interleaved. Returns {impl: dict(median_s, min_s, max_s, first_s, samples, inner)}
    with times per single call. A candidate whose first call raises is reported with `error`."""
    stats = {}
    live = []
    for c in candidates:
        t0 = time.perf_counter()
        try:
            c.call(1)
        except Exception as e:  # noqa: BLE001 - reported in the table, the suite goes on
            stats[c.impl] = dict(error=f"{type(e).__name__}: {e}"[:200])
            continue
        first = time.perf_counter() - t0
        for _ in range(warmup):
            c.call(1)
        # calibrate the inner count from one timed call after warm-up
        t0 = time.perf_counter()
        c.call(1)
        one = max(time.perf_counter() - t0, 1e-7)
        inner = int(min(max_inner, max(1, min_sample_s / one)))
        stats[c.impl] = dict(first_s=first, inner=inner, samples=[])
        live.append(c)
    for _ in range(repeats):
        for c in live:
            st = stats[c.impl]
            t0 = time.perf_counter()
            c.call(st["inner"])
            st["samples"].append((time.perf_counter() - t0) / st["inner"])
    for c in live:
        st = stats[c.impl]
        s = st["samples"]
        st.update(median_s=statistics.median(s), min_s=min(s), max_s=max(s))
    return stats


def numpy_blas():
    """The BLAS NumPy is linked against, as 'name version' (best effort)."""
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - older NumPy
        return "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info():
    """Machine, versions and thread counts recorded with every result file."""
    info = dict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        cpu=cpu_model(), cores=os.cpu_count(), platform=platform.platform(),
        python=sys.version.split()[0], numpy=np.__version__, blas=numpy_blas(),
        command=" ".join([os.path.basename(sys.executable), "-m", "bench"] + sys.argv[1:]),
        blas_threads=os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default",
        load_average=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    )
    try:
        import numba
        info.update(numba=numba.__version__, numba_threads=numba.get_num_threads(),
                    numba_threading_layer=numba.config.THREADING_LAYER)
    except Exception:  # noqa: BLE001
        info["numba"] = None
    if HAVE_TORCH:
        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    try:
        import cupy
        info["cupy"] = cupy.__version__
        if cupy.cuda.runtime.getDeviceCount() > 0:
            props = cupy.cuda.runtime.getDeviceProperties(0)
            info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    except Exception:  # noqa: BLE001 - no CuPy or no GPU
        pass
    return info


def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def spread(r):
    """Spread of the samples as +-% of the median (half the min..max range)."""
    if not r.get("median_s"):
        return "-"
    return f"±{50 * (r['max_s'] - r['min_s']) / r['median_s']:.0f}%"


def to_markdown(results):
    """One markdown table per workload: impl, median, spread, first call, ratios, throughput."""
    out = []
    by_wl = {}
    for r in results:
        by_wl.setdefault(r["workload"], []).append(r)
    for wl, rows in by_wl.items():
        out.append(f"\n### {wl}\n")
        notes = sorted({r["note"] for r in rows if r.get("note")})
        out.append("| case | impl | median | best | spread | first call | vs numpy backend | vs torch | metric |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---|")
        for r in rows:
            if r.get("error"):
                out.append(f"| {r['case']} | {r['impl']} | error | | | | | | {r['error'][:80]} |")
                continue
            ratio_np = f"{r['vs_numpy']:.2f}x" if r.get("vs_numpy") else "-"
            ratio_t = f"{r['vs_torch']:.2f}x" if r.get("vs_torch") else "-"
            metric = r.get("metric", "")
            out.append(f"| {r['case']} | {r['impl']} | {fmt_time(r['median_s'])} | {fmt_time(r['min_s'])} | {spread(r)} | "
                       f"{fmt_time(r.get('first_s'))} | {ratio_np} | {ratio_t} | {metric} |")
        for n in notes:
            out.append(f"\n_{n}_")
    out.append("\nRatios: time / time of the reference (numpy backend, or PyTorch on the same device), the "
               "median over rounds of the per-round ratio (interleaved samples); below 1 is faster. Spread: "
               "half the min..max range of the samples, in % of the median; best: the fastest sample.")
    return "\n".join(out)
