"""`make gpu-check`: the one command to run on a machine with an NVIDIA GPU.

    PYTHONPATH=. python3 -m bench.gpu_check [--dry-run] [--budget SECONDS] [--skip-tests] [--skip-bench]
                                            [--all-tests] [--quick]

Made for a machine with CuPy, numba, PyTorch, pytest, hypothesis and tqdm preinstalled and no package
index: it uses the running interpreter, installs nothing, and finishes inside a global time budget
(default 285 s; every stage has its own share and later stages are skipped, and said to be skipped, when
time runs out).

Stages
1. environment: `autodiff.info` (versions, GPU, CUDA, CuPy); a GPU-less machine stops here with "no GPU".
   Then every fused CUDA kernel is compiled and run once on tiny inputs (`warm_kernels`): a compile or
   launch error is reported by kernel name, and the later stages find the kernels in CuPy's disk cache.
2. tests: `pytest tests -m cuda` (the CUDA-marked tests and every backend-parametrised case on cuda), then,
   with `--all-tests`, the rest of the suite in the time left; `-x` off, junit XML written beside the
   summary, failures listed.
3. benchmarks, measured side by side in this process (device-wide synchronize around each timed batch,
   warm-up and kernel compilation excluded and reported apart, median of interleaved repeats):
   - MLP 784-128-64-10 training step (SGD), batch 128 and 4096: autodiff CuPy vs PyTorch CUDA eager
     (target <= 1.3x) and vs the autodiff NumPy backend;
   - wide MLP 4096-4096-4096-10, batch 4096, float32 and float16: step time vs the bare `cupy.matmul`
     calls of the same shapes (target >= 80 % of their throughput);
   - elementwise ops on 64M float32 elements: bytes moved per second vs a device-to-device copy
     measured in the same run (target >= 75 %);
   - LeNet-style CNN step, batch 256: vs PyTorch CUDA eager (target <= 2x);
   then, in the time left, the general suite (`python -m bench --quick --backends numpy,cupy
   --torch-device cuda`, bench/suite.py) in a subprocess (`--no-suite` skips it).
4. summary: `gpu_check.json` and `gpu_check.md` in $OUT when set, else bench/results/.

Before spending GPU time: `python -m bench.compile_cuda_kernels` (any machine with CuPy importable and nvcc)
compiles every fused kernel's exact CuPy-generated source without a GPU.

`--dry-run` checks the environment and the plan, runs each benchmark once at a tiny size when a GPU is
present, and skips the tests: on a CPU-only machine it reports "no GPU" and exits 0 within seconds.
Exit status: 0 when everything that ran passed (targets missed are reported, not fatal), 1 when tests
failed or a stage crashed, 2 when there is no GPU (0 with --dry-run).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TARGETS = {
    "mlp": ("<=", 1.3, "x PyTorch CUDA step time"),
    "wide_mlp": (">=", 0.80, "of bare cupy.matmul throughput"),
    "elementwise": (">=", 0.75, "of device-to-device copy bandwidth"),
    "cnn": ("<=", 2.0, "x PyTorch CUDA step time"),
}


class Budget:
    def __init__(self, total):
        self.t0 = time.perf_counter()
        self.total = total

    def elapsed(self):
        return time.perf_counter() - self.t0

    def left(self):
        return self.total - self.elapsed()


def _out_dir():
    d = os.environ.get("OUT") or os.path.join(ROOT, "bench", "results")
    os.makedirs(d, exist_ok=True)
    return d


def _log(msg):
    print(msg, flush=True)


# ----------------------------------------------------------------------------- stage 2: tests
_DEADLINE_ENV = "AUTODIFF_GPU_CHECK_DEADLINE"
_BUDGET_SKIP = "bench.gpu_check: time budget spent"


def pytest_runtest_setup(item):
    """pytest hook (this module is loaded with `-p bench.gpu_check`): past the deadline, skip the remaining
    tests so that pytest still finishes and writes its report."""
    dl = os.environ.get(_DEADLINE_ENV)
    if dl and time.time() > float(dl):
        import pytest
        pytest.skip(_BUDGET_SKIP)


def _junit_summary(path):
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        return {"error": f"no junit report ({e})"}
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    s = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time_s": 0.0, "failed": []}
    for su in suites:
        for k in ("tests", "failures", "errors", "skipped"):
            s[k] += int(su.get(k, 0))
        s["time_s"] += float(su.get("time", 0.0))
        for tc in su.iter("testcase"):
            for sk in tc.findall("skipped"):
                if _BUDGET_SKIP in (sk.get("message") or ""):
                    s["skipped_for_time"] = s.get("skipped_for_time", 0) + 1
            for bad in list(tc.findall("failure")) + list(tc.findall("error")):
                msg = (bad.get("message") or "").strip().splitlines()
                s["failed"].append(f"{tc.get('classname')}::{tc.get('name')}: {msg[0][:200] if msg else ''}")
    s["passed"] = s["tests"] - s["failures"] - s["errors"] - s["skipped"]
    s["time_s"] = round(s["time_s"], 1)
    return s


def run_tests(name, marker, limit, out_dir):
    """pytest on `tests` with `-m marker`, killed after `limit` seconds; returns the junit summary."""
    junit = os.path.join(out_dir, f"junit_{name}.xml")
    cmd = [sys.executable, "-m", "pytest", "tests", "-m", marker, "-q", "-p", "no:cacheprovider",
           "-p", "bench.gpu_check", "-o", "addopts=", f"--junitxml={junit}", "-rfE", "--durations=10"]
    try:
        import xdist  # noqa: F401
        cmd += ["-n", str(min(8, os.cpu_count() or 1))]
    except ImportError:
        pass
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env[_DEADLINE_ENV] = str(time.time() + limit - 15)  # tests still running then are skipped, not killed
    _log(f"[tests:{name}] {' '.join(cmd[1:])}  (limit {limit:.0f} s)")
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=max(limit + 20, 30))
        rc, out, timed_out = p.returncode, p.stdout + p.stderr, False
    except subprocess.TimeoutExpired as e:
        rc, timed_out = None, True
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
    wall = time.perf_counter() - t0
    with open(os.path.join(out_dir, f"pytest_{name}.log"), "w") as f:
        f.write(out)
    s = _junit_summary(junit) if not timed_out else {"error": f"timed out after {limit:.0f} s (no junit)"}
    s.update({"marker": marker, "returncode": rc, "timed_out": timed_out, "wall_s": round(wall, 1),
              "tail": out.strip().splitlines()[-15:]})
    if "tests" in s:
        _log(f"[tests:{name}] {s['passed']} passed, {s['failures']} failed, {s['errors']} errors, "
             f"{s['skipped']} skipped ({s.get('skipped_for_time', 0)} for lack of time) in {wall:.0f} s")
        for f_ in s["failed"][:30]:
            _log(f"    FAILED {f_}")
    else:
        _log(f"[tests:{name}] {s['error']}")
        for line in s["tail"]:
            _log("    " + line)
    return s


# ----------------------------------------------------------------------------- stage 1b: fused-kernel warm-up
def _pool_roundtrip(cb, x):
    out, idx = cb.max_pool2d(x, (3, 3), (2, 2), (1, 1), (1, 1), False)
    return cb.max_pool2d_backward(out, idx, x.shape)


def warm_kernels():
    """Compile and run every fused CUDA kernel once on tiny float32 and float64 inputs (through the CuPy
    backend's slots), so that a compile error shows up first and by name, and the tests and benchmarks
    find the kernels in CuPy's on-disk cache. Returns {"ok": [...], "failed": {name: error}, "wall_s"}."""
    import numpy as np

    from autodiff import backends
    cb = backends.get_backend("cupy")
    cp = cb.xp
    rng = np.random.default_rng(0)
    res = {"ok": [], "failed": {}}
    t0 = time.perf_counter()
    for dt in ("float32", "float64"):
        def arr(*shape):
            return cp.asarray(rng.standard_normal(shape).astype(dt))
        x2, x4 = arr(4, 10), arr(2, 3, 8, 8)
        tgt = cp.asarray(np.array([1, 0, 9, 3], dtype=np.int64))
        p, g, b1, b2, b3 = (arr(6, 5) for _ in range(5))
        b2, b3 = b2 * b2, b3 * b3  # second moments are non-negative
        jobs = {
            "softmax_rows": lambda: (cb.softmax(x2, -1), cb.log_softmax(x2, -1)),
            "softmax_cross_entropy": lambda: cb.softmax_cross_entropy_backward(
                cb.softmax_cross_entropy(x2, tgt)[1], tgt, arr(4)),
            "sgd": lambda: cb.sgd_step_(p, g, None, 0.1, 0.0, 0.0, False, 0.0, False, False),
            "sgd_momentum": lambda: cb.sgd_step_(p, g, b1, 0.1, 0.9, 0.0, True, 1e-4, False, False),
            "adam": lambda: cb.adam_step_(p, g, b1, b2, None, 2, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, False),
            "adam_amsgrad": lambda: cb.adam_step_(p, g, b1, b2, b3, 2, 1e-3, 0.9, 0.999, 1e-8, 1e-2, True, False,
                                                  True),
            "gelu": lambda: (cb.gelu(x2), cb.gelu(x2, "tanh")),
            "silu": lambda: cb.silu(x2),
            "bias_act": lambda: [cb.k.bias_act(x2, x2[0], a) for a in ("relu", "gelu", "silu", "none")],
            "im2col/col2im": lambda: cb.col2im(cb.im2col(x4, 3, 3, (1, 1), (1, 1), (1, 1)), x4.shape, 3, 3,
                                               (1, 1), (1, 1), (1, 1)),
            "max_pool2d": lambda: _pool_roundtrip(cb, x4),
            "erf": lambda: cb.erf(x2),
            "index_add": lambda: cb.index_add((10, 3), x2.dtype, tgt, arr(4, 3)),
        }
        for name, fn in jobs.items():
            key = f"{name}[{dt}]"
            try:
                fn()
                cp.cuda.Device().synchronize()  # a launch failure surfaces here, under this kernel's name
                res["ok"].append(key)
            except Exception as e:  # noqa: BLE001 - record it and go on to the next kernel
                res["failed"][key] = f"{type(e).__name__}: {str(e).strip()[:400]}"
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    _log(f"[kernels] {len(res['ok'])} fused-kernel groups compiled and ran, {len(res['failed'])} failed, "
         f"in {res['wall_s']} s")
    for k, v in res["failed"].items():
        _log(f"    FAILED {k}: {v}")
    return res


# ----------------------------------------------------------------------------- timing helpers
def _sync_all(torch=None):
    import cupy
    cupy.cuda.Device().synchronize()
    if torch is not None:
        torch.cuda.synchronize()


def _time_batch(fn, n, sync):
    sync()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    sync()
    return (time.perf_counter() - t0) / n


def compare(fns, n, repeats, sync, warmup=2):
    """Median seconds per call of each fn in `fns` (a dict), timed in interleaved batches of n calls after
    `warmup` untimed calls (the first call, with compilation, is timed apart as 'first_s')."""
    first = {}
    for k, f in fns.items():
        sync()
        t0 = time.perf_counter()
        f()
        sync()
        first[k] = time.perf_counter() - t0
        for _ in range(warmup - 1):
            f()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            times[k].append(_time_batch(f, n, sync))
    return {k: statistics.median(v) for k, v in times.items()}, first


def _import_torch():
    try:
        import torch
        if not torch.cuda.is_available():
            return None, "torch is installed but sees no CUDA device"
        return torch, None
    except Exception as e:  # noqa: BLE001
        return None, f"torch unavailable: {e}"


# ----------------------------------------------------------------------------- models
def _ad_mlp(ad, nn, sizes, device, dtype):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    m = nn.Sequential(*layers).to(device)
    if dtype is not None:
        m = m.to(dtype=dtype)
    return m


def _torch_mlp(torch, sizes, dtype):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).to("cuda", dtype=dtype)


def _ad_lenet(nn):
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def _torch_lenet(torch):
    tnn = torch.nn
    return tnn.Sequential(
        tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(16 * 5 * 5, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(),
        tnn.Linear(84, 10)).to("cuda")


def _ad_step(ad, model, opt, x, y):
    import nn.functional as F

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def _torch_step(torch, model, opt, x, y):
    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def _np_pair(ad, shape_x, n_classes, seed=0, dtype="float32", image=False):
    import numpy as np
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape_x).astype(dtype)
    y = rng.integers(0, n_classes, size=shape_x[0]).astype(np.int64)
    return x, y


# ----------------------------------------------------------------------------- benchmarks
def bench_mlp(ctx, batch):
    ad, nn, optim, torch = ctx["ad"], ctx["nn"], ctx["optim"], ctx["torch"]
    sizes = (784, 128, 64, 10)
    batch = min(batch, ctx["max_batch"])
    xn, yn = _np_pair(ad, (batch, 784), 10)
    ad.manual_seed(0)
    m = _ad_mlp(ad, nn, sizes, "cuda", None)
    opt = optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    x, y = ad.tensor(xn, device="cuda"), ad.tensor(yn, device="cuda")
    fns = {"autodiff_cupy": _ad_step(ad, m, opt, x, y)}
    res = {"batch": batch}
    if torch is not None:
        tm = _torch_mlp(torch, sizes, torch.float32)
        topt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)
        fns["torch_cuda"] = _torch_step(torch, tm, topt, torch.from_numpy(xn).cuda(), torch.from_numpy(yn).cuda())
    n = ctx["n"](50 if batch <= 512 else 20)
    med, first = compare(fns, n, ctx["repeats"], lambda: _sync_all(torch))
    # the NumPy backend on the host, same model and data (a few steps; it is the slow baseline)
    mc = _ad_mlp(ad, nn, sizes, "cpu", None)
    optc = optim.SGD(mc.parameters(), lr=0.01, momentum=0.9)
    prev = ad.backends.get_cpu_backend().name
    ad.set_backend("numpy")
    try:
        cpu_step = _ad_step(ad, mc, optc, ad.tensor(xn), ad.tensor(yn))
        cmed, _ = compare({"numpy": cpu_step}, ctx["n"](5 if batch <= 512 else 2), 3, lambda: None, warmup=1)
    finally:
        ad.set_backend(prev)
    res.update({k + "_ms": round(v * 1e3, 4) for k, v in med.items()})
    res["autodiff_numpy_ms"] = round(cmed["numpy"] * 1e3, 4)
    res["first_step_s"] = {k: round(v, 3) for k, v in first.items()}
    if torch is not None:
        res["ratio"] = med["autodiff_cupy"] / med["torch_cuda"]
        res["vs"] = "torch_cuda"
    res["speedup_vs_numpy_backend"] = round(cmed["numpy"] / med["autodiff_cupy"], 2)
    return res


def bench_wide_mlp(ctx, dtype_name):
    import cupy
    ad, nn, optim = ctx["ad"], ctx["nn"], ctx["optim"]
    big = ctx["wide"]
    sizes = (big, big, big, 10)
    batch = big
    dt = getattr(ad, dtype_name)
    xn, yn = _np_pair(ad, (batch, big), 10, dtype=dtype_name)
    xn *= 0.1
    ad.manual_seed(0)
    m = _ad_mlp(ad, nn, sizes, "cuda", dt)
    opt = optim.SGD(m.parameters(), lr=1e-3)
    x, y = ad.tensor(xn, device="cuda"), ad.tensor(yn, device="cuda")
    step = _ad_step(ad, m, opt, x, y)

    # the bare GEMMs of one step on the same shapes (forward x @ W.T, backward g @ W and g.T @ h)
    cdt = cupy.dtype(dtype_name)
    X = cupy.asarray(xn)
    Ws = [cupy.asarray(p.data) for p in m.parameters() if p.ndim == 2]
    acts = [X]
    for W in Ws[:-1]:
        acts.append(cupy.full((batch, W.shape[0]), 0.01, dtype=cdt))
    G = [cupy.ones((batch, W.shape[0]), dtype=cdt) * 0.01 for W in Ws]

    def gemms():
        h = X
        for i, W in enumerate(Ws):
            h = cupy.matmul(h, W.T)
        for i in reversed(range(len(Ws))):
            cupy.matmul(G[i].T, acts[i])          # dW
            if i > 0:
                cupy.matmul(G[i], Ws[i])          # dX
    flops = 0
    for i, W in enumerate(Ws):
        o, k = W.shape
        flops += 2 * batch * k * o * (3 if i > 0 else 2)
    med, first = compare({"autodiff_cupy": step, "bare_matmul": gemms}, ctx["n"](5), ctx["repeats"],
                         lambda: _sync_all(None))
    return {"dtype": dtype_name, "shape": f"{big}-{big}-{big}-10 batch {batch}",
            "autodiff_cupy_ms": round(med["autodiff_cupy"] * 1e3, 3),
            "bare_matmul_ms": round(med["bare_matmul"] * 1e3, 3),
            "autodiff_tflops": round(flops / med["autodiff_cupy"] / 1e12, 1),
            "bare_matmul_tflops": round(flops / med["bare_matmul"] / 1e12, 1),
            "first_step_s": {k: round(v, 3) for k, v in first.items()},
            "ratio": med["bare_matmul"] / med["autodiff_cupy"], "vs": "bare cupy.matmul (throughput share)"}


def bench_elementwise(ctx):
    import cupy
    ad = ctx["ad"]
    n = ctx["elem_n"]
    a = ad.randn(n, device="cuda")
    b = ad.randn(n, device="cuda")
    src = cupy.random.standard_normal(n, dtype=cupy.float32)
    dst = cupy.empty_like(src)
    ops = {
        "copy (cupy, baseline)": (lambda: cupy.copyto(dst, src), 2),
        "add": (lambda: a + b, 3),
        "mul scalar": (lambda: a * 1.5, 2),
        "relu": (lambda: a.relu(), 2),
        "exp": (lambda: a.exp(), 2),
        "sigmoid": (lambda: a.sigmoid(), 2),
        "gelu": (lambda: ad.gelu(a), 2),
        "silu": (lambda: ad.silu(a), 2),
    }
    res = {"n": n, "ops": {}}
    with ad.no_grad():
        med, first = compare({k: v[0] for k, v in ops.items()}, ctx["n"](10), ctx["repeats"],
                             lambda: _sync_all(None))
    nbytes = n * 4
    copy_bw = 2 * nbytes / med["copy (cupy, baseline)"]
    res["copy_GBps"] = round(copy_bw / 1e9, 1)
    worst = None
    for k, (_, nacc) in ops.items():
        if k.startswith("copy"):
            continue
        bw = nacc * nbytes / med[k]
        r = bw / copy_bw
        res["ops"][k] = {"ms": round(med[k] * 1e3, 3), "GBps": round(bw / 1e9, 1), "ratio": round(r, 3)}
        worst = r if worst is None else min(worst, r)
    res["ratio"] = worst
    res["vs"] = "d2d copy bandwidth (worst op)"
    return res


def bench_cnn(ctx):
    ad, nn, optim, torch = ctx["ad"], ctx["nn"], ctx["optim"], ctx["torch"]
    batch = ctx["cnn_batch"]
    xn, yn = _np_pair(ad, (batch, 1, 28, 28), 10)
    ad.manual_seed(0)
    m = _ad_lenet(nn).to("cuda")
    opt = optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    fns = {"autodiff_cupy": _ad_step(ad, m, opt, ad.tensor(xn, device="cuda"), ad.tensor(yn, device="cuda"))}
    if torch is not None:
        tm = _torch_lenet(torch)
        topt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)
        fns["torch_cuda"] = _torch_step(torch, tm, topt, torch.from_numpy(xn).cuda(), torch.from_numpy(yn).cuda())
    med, first = compare(fns, ctx["n"](20), ctx["repeats"], lambda: _sync_all(torch))
    res = {"batch": batch, **{k + "_ms": round(v * 1e3, 3) for k, v in med.items()},
           "first_step_s": {k: round(v, 3) for k, v in first.items()}}
    if torch is not None:
        res["ratio"] = med["autodiff_cupy"] / med["torch_cuda"]
        res["vs"] = "torch_cuda"
    return res


def _verdict(kind, ratio):
    if ratio is None:
        return "n/a"
    op, target, _ = TARGETS[kind]
    ok = ratio <= target if op == "<=" else ratio >= target
    return "PASS" if ok else "MISS"


def run_benches(budget, limit, dry, quick):
    import autodiff as ad
    torch, why_torch = _import_torch()
    if why_torch:
        _log(f"[bench] {why_torch}: PyTorch columns omitted")
    try:
        import nn
        import optim
    except Exception as e:  # noqa: BLE001
        nn = optim = None
        _log(f"[bench] nn/optim unavailable ({e}); model benchmarks skipped")
    ctx = {"ad": ad, "nn": nn, "optim": optim, "torch": torch,
           "repeats": 1 if dry else (3 if quick else 5),
           "n": (lambda k: 1) if dry else ((lambda k: max(1, k // 4)) if quick else (lambda k: k)),
           "wide": 256 if dry else 4096, "elem_n": (1 << 20) if dry else (1 << 26),
           "cnn_batch": 8 if dry else 256, "max_batch": 32 if dry else 1 << 30}
    plan = [("mlp", "MLP 784-128-64-10 step, batch 128", lambda: bench_mlp(ctx, 128), True),
            ("mlp", "MLP 784-128-64-10 step, batch 4096", lambda: bench_mlp(ctx, 4096), True),
            ("wide_mlp", "wide MLP float32", lambda: bench_wide_mlp(ctx, "float32"), True),
            ("wide_mlp", "wide MLP float16", lambda: bench_wide_mlp(ctx, "float16"), True),
            ("elementwise", "elementwise 64M float32", lambda: bench_elementwise(ctx), False),
            ("cnn", "LeNet CNN step, batch 256", lambda: bench_cnn(ctx), True)]
    if dry:
        plan = [(k, t + " (dry-run size)", f, needs) for k, t, f, needs in plan]
    t_end = budget.elapsed() + limit
    results = []
    for kind, title, fn, needs_nn in plan:
        r = {"kind": kind, "title": title}
        if budget.elapsed() > t_end or budget.left() < 10:
            r["skipped"] = "time budget spent"
        elif needs_nn and nn is None:
            r["skipped"] = "nn/optim not importable"
        else:
            t0 = time.perf_counter()
            try:
                r.update(fn())
                r["verdict"] = _verdict(kind, r.get("ratio"))
            except Exception as e:  # noqa: BLE001 - record and go on to the next benchmark
                r["error"] = f"{type(e).__name__}: {e}"
                r["traceback"] = traceback.format_exc().strip().splitlines()[-8:]
            r["wall_s"] = round(time.perf_counter() - t0, 1)
            try:
                ad.cuda.empty_cache()
                if torch is not None:
                    torch.cuda.empty_cache()
            except Exception:  # noqa: BLE001
                pass
        if isinstance(r.get("ratio"), float):
            r["ratio"] = round(r["ratio"], 3)
        _log(_bench_line(r))
        results.append(r)
    return results


def _bench_details(r):
    if r["kind"] in ("mlp", "cnn"):
        d = f"ours {r.get('autodiff_cupy_ms')} ms, torch {r.get('torch_cuda_ms', 'n/a')} ms"
        if "autodiff_numpy_ms" in r:
            d += f", numpy backend {r['autodiff_numpy_ms']} ms"
        return d + f"; first step {r.get('first_step_s')}"
    if r["kind"] == "wide_mlp":
        return (f"ours {r['autodiff_cupy_ms']} ms ({r['autodiff_tflops']} TFLOP/s), bare matmul "
                f"{r['bare_matmul_ms']} ms ({r['bare_matmul_tflops']} TFLOP/s)")
    if r["kind"] == "elementwise":
        return f"copy {r['copy_GBps']} GB/s; " + ", ".join(f"{k} {v['ratio']:.2f}" for k, v in r["ops"].items())
    return ""


def _bench_line(r):
    if "skipped" in r:
        return f"[bench] {r['title']}: skipped ({r['skipped']})"
    if "error" in r:
        return f"[bench] {r['title']}: ERROR {r['error']}"
    op, target, what = TARGETS[r["kind"]]
    ratio = r.get("ratio")
    rs = "n/a" if ratio is None else f"{ratio:.3f}"
    return f"[bench] {r['title']}: {rs} (target {op} {target} {what}) {r.get('verdict', '')}  {_bench_details(r)}"


# ----------------------------------------------------------------------------- stage 3b: the general suite
SUITE_WORKLOADS = "elementwise,matmul,conv,cross_entropy,embedding,optimizers,mlp,cnn"


def run_suite(limit, out_dir):
    """`python -m bench --quick` (bench/suite.py) on the numpy and cupy backends with PyTorch CUDA, in a
    subprocess killed after `limit` seconds; its markdown table is kept in suite.md."""
    md = os.path.join(out_dir, "suite.md")
    cmd = [sys.executable, "-m", "bench", "--quick", "--backends", "numpy,cupy", "--torch-device", "cuda",
           "--workloads", SUITE_WORKLOADS, "--json", os.path.join(out_dir, "suite.json"), "--md", md, "--no-plot"]
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    _log(f"[suite] {' '.join(cmd[1:])}  (limit {limit:.0f} s)")
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit)
        res = {"returncode": p.returncode, "tail": (p.stdout + p.stderr).strip().splitlines()[-10:]}
    except subprocess.TimeoutExpired:
        res = {"error": f"timed out after {limit:.0f} s"}
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    if os.path.exists(md):
        with open(md) as f:
            res["markdown"] = f.read()
    _log(f"[suite] {res.get('error') or 'exit ' + str(res['returncode'])} in {res['wall_s']} s")
    return res


# ----------------------------------------------------------------------------- summary
def _markdown(summary):
    env = summary["env"]
    gpus = ", ".join(g["name"] for g in env.get("gpus", [])) or "none"
    lines = [f"GPU check, {summary['date']} ({'dry run' if summary['dry_run'] else 'full'}), "
             f"{summary['wall_s']} s",
             "",
             f"Machine: {gpus}; CUDA runtime {env.get('cuda_runtime', '-')}, driver {env.get('cuda_driver', '-')}; "
             f"python {env.get('python')}, numpy {env.get('numpy')}, cupy {env.get('cupy')}, "
             f"torch {env.get('torch')}, numba {env.get('numba')}; git {summary.get('git', '?')}.",
             f"Command: `{summary['command']}`", ""]
    if summary.get("no_gpu"):
        lines.append(f"No GPU: {summary['no_gpu']}")
        return "\n".join(lines) + "\n"
    kern = summary.get("kernels")
    if kern:
        if "error" in kern:
            lines.append(f"Fused-kernel warm-up: ERROR {kern['error']}")
        else:
            lines.append(f"Fused-kernel warm-up: {len(kern['ok'])} compiled and ran, {len(kern['failed'])} failed, "
                         f"{kern['wall_s']} s.")
            for k, v in kern["failed"].items():
                lines.append(f"- FAILED {k}: {v}")
    for name, t in summary.get("tests", {}).items():
        if "tests" in t:
            lines.append(f"Tests ({name}, `-m {t['marker']}`): {t['passed']} passed, {t['failures']} failed, "
                         f"{t['errors']} errors, {t['skipped']} skipped "
                         f"({t.get('skipped_for_time', 0)} for lack of time), {t['wall_s']} s.")
            for f in t["failed"][:20]:
                lines.append(f"- FAILED {f}")
        else:
            lines.append(f"Tests ({name}): {t.get('error') or t.get('skipped')}")
    lines += ["", "| benchmark | result | target | verdict | details |", "|---|---|---|---|---|"]
    for r in summary.get("bench", []):
        op, target, what = TARGETS[r["kind"]]
        if "skipped" in r or "error" in r:
            lines.append(f"| {r['title']} | - | {op} {target} | {'skipped' if 'skipped' in r else 'ERROR'} | "
                         f"{r.get('skipped') or r.get('error')} |")
            continue
        ratio = r.get("ratio")
        lines.append(f"| {r['title']} | {'n/a' if ratio is None else f'{ratio:.3f}'} | {op} {target} {what} | "
                     f"{r.get('verdict', '')} | {_bench_details(r)} |")
    suite = summary.get("suite")
    if suite:
        lines += ["", f"General suite (`python -m bench --quick --backends numpy,cupy --torch-device cuda`): "
                  f"{suite.get('skipped') or suite.get('error') or 'exit ' + str(suite.get('returncode'))}"]
        if suite.get("markdown"):
            lines += ["", suite["markdown"]]
    return "\n".join(lines) + "\n"


def _git_rev():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=5).stdout.strip() or "?"
    except Exception:  # noqa: BLE001
        return "?"


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m bench.gpu_check", description=__doc__.split("\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="environment + plan + tiny benchmark smoke; no tests")
    ap.add_argument("--budget", type=float, default=285.0, help="total seconds (default 285)")
    ap.add_argument("--skip-tests", action="store_true")
    ap.add_argument("--skip-bench", action="store_true")
    ap.add_argument("--all-tests", action="store_true", help="also run the non-CUDA tests in the time left")
    ap.add_argument("--quick", action="store_true", help="fewer repeats and iterations")
    ap.add_argument("--no-suite", action="store_true", help="skip the general bench suite (python -m bench)")
    args = ap.parse_args(argv)
    budget = Budget(args.budget)
    out_dir = _out_dir()
    sys.path.insert(0, ROOT)

    import autodiff
    from autodiff import info as _info
    env = _info.collect()
    summary = {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "dry_run": args.dry_run,
               "command": "PYTHONPATH=. python3 -m bench.gpu_check " + " ".join(argv if argv is not None
                                                                               else sys.argv[1:]),
               "git": _git_rev(), "env": env, "targets": TARGETS}
    _log(_info.format_info(env))
    rc = 0
    if not autodiff.cuda.is_available():
        why = autodiff.cuda.unavailable_reason()
        _log(f"no GPU: {why}")
        summary["no_gpu"] = why
        _log("plan (on a GPU machine): tests -m cuda" + (" + rest" if args.all_tests else "") +
             "; benchmarks: " + ", ".join(TARGETS))
        rc = 0 if args.dry_run else 2
    else:
        summary["tests"] = {}
        try:
            summary["kernels"] = warm_kernels()
            if summary["kernels"]["failed"]:
                rc = 1
        except Exception as e:  # noqa: BLE001
            summary["kernels"] = {"error": f"{type(e).__name__}: {e}"}
            _log(traceback.format_exc())
            rc = 1
        if not (args.dry_run or args.skip_tests):
            share = 0.55 * budget.left() if not args.skip_bench else budget.left() - 10
            summary["tests"]["cuda"] = run_tests("cuda", "cuda", share if not args.all_tests else 0.6 * share,
                                                 out_dir)
            if args.all_tests:
                left = share - budget.elapsed()
                if left > 15:
                    summary["tests"]["rest"] = run_tests("rest", "not cuda", left, out_dir)
                else:
                    summary["tests"]["rest"] = {"skipped": "time budget spent"}
            for t in summary["tests"].values():
                if t.get("failures") or t.get("errors") or t.get("timed_out") or t.get("error"):
                    rc = 1
        if not args.skip_bench:
            try:
                summary["bench"] = run_benches(budget, budget.left() - 8, args.dry_run, args.quick)
            except Exception as e:  # noqa: BLE001
                summary["bench_error"] = f"{type(e).__name__}: {e}"
                _log(traceback.format_exc())
                rc = 1
            if not (args.dry_run or args.no_suite):
                left = budget.left() - 10
                if left > 30 and os.path.exists(os.path.join(ROOT, "bench", "suite.py")):
                    summary["suite"] = run_suite(left, out_dir)
                else:
                    summary["suite"] = {"skipped": "time budget spent" if left <= 30 else "bench/suite.py missing"}
    summary["wall_s"] = round(budget.elapsed(), 1)
    with open(os.path.join(out_dir, "gpu_check.json"), "w") as f:
        json.dump(summary, f, indent=2, default=str)
    md = _markdown(summary)
    with open(os.path.join(out_dir, "gpu_check.md"), "w") as f:
        f.write(md)
    _log("\n" + md)
    _log(f"wrote {os.path.join(out_dir, 'gpu_check.json')} and gpu_check.md in {summary['wall_s']} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
