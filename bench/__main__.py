"""`python -m bench`: the backend-comparison benchmark suite (workloads in bench/suite.py).

Command line:
    python -m bench [--quick | --full] [--workloads overhead,elementwise,...] [--backends numpy,numba,cupy]
                    [--torch-device cpu,cuda | none] [--repeats N] [--json OUT.json] [--md OUT.md]
                    [--plot DIR] [--no-plot] [--threads N] [--cold-numba]

    --quick (default) smaller sizes, 5 interleaved repeats; --full larger sizes, 11 repeats.
    Default backends: every available one (numpy, numba, cupy when a GPU is present); PyTorch is added as
    the external reference when importable (torch-cpu, and torch-cuda when cupy is benchmarked).
    The "first call" column is the first call of each candidate (numba: loading its compiled kernels from
    numba's on-disk cache, or compiling them with --cold-numba), excluded from the medians.
    Writes a markdown table to stdout (and --md), JSON to bench/results/bench-<UTC time>.json (or --json)
    and, if matplotlib is importable, one PNG bar chart per workload under bench/results/ (or --plot).

Workloads: overhead elementwise matmul conv cross_entropy embedding optimizers mlp cnn transformer scaling
(see bench/suite.py). Workloads that need nn/optim layers not yet available are skipped with a note.

Python API (used by bench/gpu_check.py):
    import bench
    results = bench.run(workloads=["conv", "mlp"], backends=["numpy", "cupy"], quick=True,
                        torch_device="cuda")          # -> list of result dicts
    bench.to_markdown(results); bench.machine_info()

Each result dict has: workload, case, impl (numpy | numba | cupy | torch-cpu | torch-cuda | numpy-hand |
copy | blas), median_s, min_s, max_s (per call), first_s (first call: compilation included), inner
(calls per sample), vs_numpy (time / numpy backend's), vs_torch (time / PyTorch's on the same device
kind), and where meaningful metric (text) and throughput (GB/s, GFLOP/s, Gparam/s, s/sample), or
error (the candidate raised; the others still ran).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="quick", action="store_true", default=True, help="small sizes (default)")
    g.add_argument("--full", dest="quick", action="store_false", help="larger sizes, more repeats")
    ap.add_argument("--workloads", default=None, help="comma-separated subset (default: all)")
    ap.add_argument("--backends", default=None, help="comma-separated: numpy,numba,cupy (default: available)")
    ap.add_argument("--torch-device", default=None, help="cpu, cuda, cpu,cuda or none (default: cpu, +cuda with cupy)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None,
                    help="thread count of every pool (BLAS, numba, torch); use 1 on a shared/oversubscribed machine")
    ap.add_argument("--json", default=None, help="JSON output path (default bench/results/bench-<time>.json)")
    ap.add_argument("--md", default=None, help="also write the markdown table here")
    ap.add_argument("--plot", default=None, help="directory for PNG charts (default bench/results)")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--cold-numba", action="store_true",
                    help="empty numba cache for this run, so numba's 'first call' column is the JIT compile time")
    args = ap.parse_args(argv)
    if args.cold_numba:  # before numba is imported (it reads NUMBA_CACHE_DIR at import)
        import tempfile
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="autodiff-bench-numba-")

    if args.threads:  # before NumPy/OpenBLAS, numba and torch load, so every pool gets the same count
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    from . import common
    if args.threads:
        if common.HAVE_TORCH:
            common.torch.set_num_threads(args.threads)
        try:
            import numba
            numba.set_num_threads(args.threads)
        except Exception:  # noqa: BLE001
            pass
    from . import suite
    torch_device = args.torch_device
    if torch_device is not None and torch_device.lower() == "none":
        torch_device = []
    backends = [b.strip() for b in args.backends.split(",")] if args.backends else None
    log = lambda m: print(m, file=sys.stderr, flush=True)
    info = common.machine_info()
    log(f"[bench] {info['cpu']} | numpy {info['numpy']} ({info['blas']}) | numba {info.get('numba')} "
        f"threads {info.get('numba_threads')} | torch {info.get('torch', 'absent')}")
    load = info.get("load_average")
    if load is not None and info.get("cores") and load > info["cores"] and not args.threads:
        log(f"[bench] note: load average {load:.1f} on {info['cores']} cores; thread pools will fight "
            "(PyTorch's spinning barriers suffer most): consider --threads 1")
    results = suite.run(workloads=args.workloads, backends=backends, quick=args.quick, torch_device=torch_device,
                        repeats=args.repeats, log=log)
    md = common.to_markdown(results)
    header = (f"# autodiff benchmark ({'quick' if args.quick else 'full'})\n\n{info['date']}; {info['cpu']}, "
              f"{info['cores']} cores; numpy {info['numpy']} ({info['blas']}), numba {info.get('numba')} "
              f"({info.get('numba_threads')} threads), torch {info.get('torch', 'absent')}"
              f"{' (' + str(info.get('torch_threads')) + ' threads)' if info.get('torch') else ''}"
              f"{', GPU ' + info['gpu'] if info.get('gpu') else ''}\n\nCommand: `{info['command']}`\n")
    print(header + md)
    here = os.path.dirname(os.path.abspath(__file__))
    out_json = args.json
    if out_json is None:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
        out_json = os.path.join(here, "results", f"bench-{stamp}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out_json)), exist_ok=True)
    with open(out_json, "w") as f:
        json.dump(dict(machine=info, quick=args.quick, results=results), f, indent=1, default=str)
    log(f"[bench] wrote {out_json}")
    if args.md:
        with open(args.md, "w") as f:
            f.write(header + md + "\n")
    if not args.no_plot:
        from . import plot
        written = plot.plot_results(results, args.plot or os.path.join(here, "results"))
        if written is None:
            log("[bench] matplotlib not importable: no PNG charts (pip install matplotlib)")
        else:
            log(f"[bench] wrote {len(written)} chart(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
