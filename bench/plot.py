"""PNG charts of benchmark results (optional: needs matplotlib).

`plot_results(results, outdir)` writes one bar chart per workload (median time per impl and case, with
the min..max spread as error bars) and, for the scaling workload, a line chart of time per sample
against width and batch. Returns the list of files written, or None when matplotlib is missing.
"""
from __future__ import annotations

import os
import re


def _slug(s):
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")


def plot_results(results, outdir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # noqa: BLE001 - optional dependency
        return None
    os.makedirs(outdir, exist_ok=True)
    written = []
    by_wl = {}
    for r in results:
        if r.get("median_s"):
            by_wl.setdefault(r["workload"], []).append(r)
    for wl, rows in by_wl.items():
        if wl == "scaling":
            written += _plot_scaling(plt, rows, outdir)
            continue
        cases = list(dict.fromkeys(r["case"] for r in rows))
        impls = list(dict.fromkeys(r["impl"] for r in rows))
        fig, axes = plt.subplots(1, len(cases), figsize=(4.5 * len(cases), 3.6), squeeze=False)
        for ax, case in zip(axes[0], cases):
            sub = {r["impl"]: r for r in rows if r["case"] == case}
            names = [i for i in impls if i in sub]
            med = [sub[i]["median_s"] * 1e3 for i in names]
            err = [[(sub[i]["median_s"] - sub[i]["min_s"]) * 1e3 for i in names],
                   [(sub[i]["max_s"] - sub[i]["median_s"]) * 1e3 for i in names]]
            ax.bar(names, med, yerr=err, capsize=3, color=[_color(i) for i in names])
            ax.set_title(case, fontsize=8)
            ax.set_ylabel("ms per call (median)")
            ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        fig.suptitle(wl)
        fig.tight_layout()
        path = os.path.join(outdir, f"{_slug(wl)}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def _color(impl):
    return {"numpy": "#4c72b0", "numba": "#dd8452", "cupy": "#55a868", "torch-cpu": "#c44e52",
            "torch-cuda": "#8172b3", "numpy-hand": "#937860"}.get(impl, "#8c8c8c")


def _plot_scaling(plt, rows, outdir):
    out = []
    for kind in ("width", "batch"):
        sub = [r for r in rows if r.get("scale_kind") == kind]
        if not sub:
            continue
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for impl in dict.fromkeys(r["impl"] for r in sub):
            pts = sorted((r["scale_value"], r["throughput"] * 1e6) for r in sub if r["impl"] == impl)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=impl, color=_color(impl))
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(kind)
        ax.set_ylabel("us per sample (median)")
        ax.set_title(f"MLP training step vs {kind}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(outdir, f"scaling_{kind}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out.append(path)
    return out
