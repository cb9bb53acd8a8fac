"""Data-parallel training throughput on 1 and 2 MPI ranks (MLP and CNN), scaling efficiency, and the
time spent in gradient all-reduce.

    python bench/distributed.py [--ranks 1,2] [--models mlp,cnn] [--repeats 3] [--steps 30]
                                [--batch 64] [--backend mpi|nccl] [--device cpu|cuda] [--json OUT]

The driver launches `mpiexec -n R` workers (one BLAS/OpenMP thread per rank) and interleaves the
configurations (for each repeat: every model at every rank count) so machine noise hits them alike;
it reports the median over repeats. Weak scaling: every rank trains on `--batch` samples per step, so
the global batch is batch * ranks and the ideal is R times the 1-rank throughput.

Per configuration, rank 0 reports
- samples/s: global samples per second over the timed steps (after warm-up steps);
- allreduce share: DDP's time launching and waiting for gradient all-reduces / step time. This
  includes waiting for the slower rank (load imbalance, a shared core), not only the transfer;
- pure all-reduce: a separate timed `all_reduce` of one buffer the size of all gradients, after a
  barrier, i.e. the transfer cost alone.
Scaling efficiency = samples/s(R ranks) / (R * samples/s(1 rank)).

GPU (when one is present): `--device cuda --backend nccl --ranks 1` measures the NCCL path at world
size 1; `--device cuda --backend mpi --ranks 2` the host-staged MPI path with 2 ranks sharing one GPU.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- worker (runs on each rank)
def build_model(kind, nn):
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                             nn.Linear(512, 10))
    if kind == "cnn":
        import nn.functional as F
        from nn.parameter import Parameter
        import autodiff as ad

        if hasattr(nn, "Conv2d") and hasattr(nn, "MaxPool2d"):
            return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                 nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))

        class CNN(nn.Module):  # same network from nn.functional, for trees without nn.Conv2d
            def __init__(self):
                super().__init__()
                self.c1 = Parameter(ad.randn(16, 1, 3, 3) * (2 / 9) ** 0.5)
                self.b1 = Parameter(ad.zeros(16))
                self.c2 = Parameter(ad.randn(32, 16, 3, 3) * (2 / 144) ** 0.5)
                self.b2 = Parameter(ad.zeros(32))
                self.fc1 = nn.Linear(32 * 7 * 7, 128)
                self.fc2 = nn.Linear(128, 10)

            def forward(self, x):
                x = F.max_pool2d(F.relu(F.conv2d(x, self.c1, self.b1, padding=1)), 2)
                x = F.max_pool2d(F.relu(F.conv2d(x, self.c2, self.b2, padding=1)), 2)
                return self.fc2(F.relu(self.fc1(x.reshape(x.shape[0], -1))))
        return CNN()
    raise ValueError(f"unknown model {kind!r}")


def worker(args):
    sys.path.insert(0, REPO)
    import numpy as np

    import autodiff as ad
    import autodiff.distributed as dist
    import nn
    import optim
    from nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group(args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    dev = args.device
    ad.manual_seed(rank)
    model = build_model(args.model, nn).to(dev)
    ddp = DDP(model)
    opt = optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(rank)
    xs = [ad.tensor(rng.random((args.batch, 1, 28, 28), dtype=np.float32), device=dev) for _ in range(4)]
    ys = [ad.tensor(rng.integers(0, 10, args.batch), device=dev) for _ in range(4)]
    backend = ad.backends.backend_of(xs[0].data)

    def step(i):
        opt.zero_grad()
        loss_fn(ddp(xs[i % 4]), ys[i % 4]).backward()
        opt.step()

    for i in range(args.warmup):
        step(i)
    backend.synchronize()
    dist.barrier()
    c0 = ddp.comm_seconds
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(i)
    backend.synchronize()
    dt = time.perf_counter() - t0
    comm = ddp.comm_seconds - c0
    # the transfer alone: one buffer of all gradients, after a barrier
    n = sum(p.numel() for p in model.parameters())
    buf = ad.zeros(n, dtype=ad.float32, device=dev)
    dist.barrier()
    t1 = time.perf_counter()
    k = 10
    for _ in range(k):
        dist.all_reduce(buf, op=dist.ReduceOp.AVG)
    backend.synchronize()
    pure = (time.perf_counter() - t1) / k
    times = ad.tensor(np.array([dt, comm]), dtype=ad.float64)
    dist.all_reduce(times, op=dist.ReduceOp.MAX)
    if rank == 0:
        dt_max, _ = times.data.tolist()
        res = {"model": args.model, "ranks": world, "backend": args.backend, "device": dev, "batch": args.batch,
               "steps": args.steps, "params": n, "samples_per_s": args.steps * args.batch * world / dt_max,
               "step_ms": 1e3 * dt_max / args.steps, "allreduce_share": comm / dt,
               "allreduce_ms_per_step": 1e3 * comm / args.steps, "pure_allreduce_ms": 1e3 * pure,
               "buckets": len(ddp._buckets)}
        with open(args.out, "w") as f:
            json.dump(res, f)
    dist.destroy_process_group()


# ----------------------------------------------------------------------------- driver
def run_one(model, ranks, args):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    env = dict(os.environ)
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[v] = str(args.threads)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "autodiff.distributed.run", "-n", str(ranks), "--threads-per-rank",
           str(args.threads), "--timeout", "600", os.path.abspath(__file__), "--worker", "--model", model,
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch", str(args.batch), "--backend",
           args.backend, "--device", args.device, "--out", out]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if p.returncode != 0:
        raise RuntimeError(f"{model} on {ranks} ranks failed:\n{p.stdout}\n{p.stderr}")
    with open(out) as f:
        res = json.load(f)
    os.unlink(out)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help=argparse.SUPPRESS)
    ap.add_argument("--model", default="mlp", help=argparse.SUPPRESS)
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64, help="per-rank batch")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads per rank")
    ap.add_argument("--backend", default="mpi", choices=["mpi", "nccl"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default="", help="also write the results here")
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)

    models = args.models.split(",")
    ranks = [int(r) for r in args.ranks.split(",")]
    samples = {(m, r): [] for m in models for r in ranks}
    for rep in range(args.repeats):
        for m in models:
            for r in ranks:
                samples[(m, r)].append(run_one(m, r, args))
                print(f"  repeat {rep + 1}/{args.repeats} {m} x{r}: "
                      f"{samples[(m, r)][-1]['samples_per_s']:.0f} samples/s", file=sys.stderr)

    def med(m, r, key):
        return statistics.median(s[key] for s in samples[(m, r)])

    print(f"\nbackend={args.backend} device={args.device} per-rank batch={args.batch} steps={args.steps} "
          f"threads/rank={args.threads}, median of {args.repeats} interleaved repeats\n")
    print("| model | params | ranks | samples/s | step ms | scaling eff. | all-reduce share of step | "
          "all-reduce ms/step (DDP) | pure all-reduce ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for m in models:
        base = med(m, ranks[0], "samples_per_s") if ranks[0] == 1 else None
        for r in ranks:
            sps = med(m, r, "samples_per_s")
            eff = sps / (r * base) if base else float("nan")
            row = {"model": m, "ranks": r, "samples_per_s": sps, "scaling_efficiency": eff,
                   "step_ms": med(m, r, "step_ms"), "allreduce_share": med(m, r, "allreduce_share"),
                   "allreduce_ms_per_step": med(m, r, "allreduce_ms_per_step"),
                   "pure_allreduce_ms": med(m, r, "pure_allreduce_ms"), "params": samples[(m, r)][0]["params"],
                   "runs": samples[(m, r)]}
            rows.append(row)
            print(f"| {m} | {row['params']:,} | {r} | {sps:,.0f} | {row['step_ms']:.2f} | {eff:.2f} | "
                  f"{100 * row['allreduce_share']:.0f}% | {row['allreduce_ms_per_step']:.2f} | "
                  f"{row['pure_allreduce_ms']:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
