"""Distributed training on real MPI ranks: each test spawns `mpiexec -n N` through the launcher
(`python -m autodiff.distributed.run`) with a timeout, running tests/distributed/_worker.py.

Skipped with the reason when mpi4py or mpiexec is missing (install: pip install 'autodiff[distributed]').
The debug descriptor check (AUTODIFF_DISTRIBUTED_DEBUG=1) is on in every run.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autodiff.distributed import run as launcher

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("_worker.py")


def _why_unavailable():
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install 'autodiff[distributed]')"
    if launcher.find_mpiexec() is None:
        return "no mpiexec found next to the interpreter or on PATH (pip install mpich)"
    return None


WHY = _why_unavailable()
pytestmark = pytest.mark.skipif(WHY is not None, reason=WHY or "")

CHECKS = ["collectives", "ddp", "ddp_small_buckets", "ddp_nn_mlp", "no_sync", "buffers", "state_dict", "find_unused", "grad_api", "checkpoint"]


def launch(n, scenario, out, timeout=60):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["AUTODIFF_DISTRIBUTED_DEBUG"] = "1"
    cmd = [sys.executable, "-m", "autodiff.distributed.run", "-n", str(n), "--timeout", str(timeout),
           str(WORKER), scenario, str(out)]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout + 30)
    return p, time.monotonic() - t0


@pytest.fixture(scope="module", params=[1, 2, 3], ids=lambda n: f"{n}ranks")
def correctness_run(request, tmp_path_factory):
    n = request.param
    out = tmp_path_factory.mktemp(f"ddp{n}")
    p, _ = launch(n, "correctness", out)
    assert p.returncode == 0, f"mpiexec -n {n} failed:\n{p.stdout}\n{p.stderr}"
    per_rank = [json.loads((out / f"rank{r}.json").read_text()) for r in range(n)]
    assert all(d["world"] == n for d in per_rank)
    return n, per_rank


@pytest.mark.parametrize("check", CHECKS)
def test_correctness(correctness_run, check):
    """Collectives, DDP == single-process training on the concatenated batches (20 SGD+momentum steps,
    float64, to 1e-6; default and tiny buckets), no_sync accumulation, buffer broadcast from rank 0,
    'module.' state_dict keys, find_unused_parameters; on every rank."""
    n, per_rank = correctness_run
    for d in per_rank:
        res = d["results"][check]
        assert res.startswith("ok"), f"rank {d['rank']} of {n}: {check} failed:\n{res}"


def test_rank_that_raises_aborts_all_ranks(tmp_path):
    p, took = launch(3, "raise_on_one", tmp_path, timeout=40)
    assert p.returncode != 0
    assert took < 35, f"the job took {took:.1f} s: the surviving ranks hung"
    assert "deliberate failure on the last rank" in p.stderr
    assert "[autodiff.distributed rank 2/3] uncaught ValueError; aborting all ranks" in p.stderr


def test_rank_that_leaves_makes_the_others_time_out(tmp_path):
    p, took = launch(2, "silent_exit", tmp_path, timeout=40)
    assert p.returncode != 0
    assert took < 35
    assert "DistributedTimeoutError" in p.stderr
    assert re.search(r"all_reduce( \(debug check\))?: rank 0 of 2 waited more than 1.5 s", p.stderr), p.stderr


def test_mismatched_shapes_and_dtypes_raise_on_every_rank(tmp_path):
    p, _ = launch(2, "mismatch", tmp_path, timeout=40)
    assert p.returncode != 0
    err = p.stderr
    assert "all_reduce: the ranks called collectives that do not match" in err
    assert "rank 0: all_reduce shape (3,) float64 op=SUM" in err
    assert "rank 1: all_reduce shape (4,) float32 op=SUM" in err


def test_ddp_rejects_replicas_of_different_shapes(tmp_path):
    p, _ = launch(2, "ddp_mismatch", tmp_path, timeout=40)
    assert p.returncode != 0
    assert "broadcast: the ranks called collectives that do not match" in p.stderr
    assert "rank 0: broadcast shape (2,)" in p.stderr and "rank 1: broadcast shape (3,)" in p.stderr


def test_cupy_paths_plumbing_with_numpy_stand_in(tmp_path):
    """PLUMBING ONLY (not GPU validation): the nccl group (with and without NCCL_AVG) and the
    host-staged mpi path for CuPy arrays, on tests/distributed/_fake_cupy.py over 2 MPI ranks."""
    p, _ = launch(2, "fake_cupy", tmp_path, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    for r in range(2):
        res = json.loads((tmp_path / f"rank{r}.json").read_text())["results"]
        for label in ("nccl", "nccl_no_avg", "mpi_staged"):
            assert res[label] == "ok", f"rank {r} {label}:\n{res[label]}"


@pytest.mark.skipif(not (REPO / "data" / "mnist.npz").exists(), reason="data/mnist.npz missing (run `make data`)")
def test_ddp_mnist_example_smoke(tmp_path):
    """examples/ddp_mnist.py on 2 ranks for a 2048-image slice: runs, learns, saves rank 0's weights."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    out = tmp_path / "mlp.ckpt"
    cmd = [sys.executable, "-m", "autodiff.distributed.run", "-n", "2", "--timeout", "90",
           str(REPO / "examples" / "ddp_mnist.py"), "--limit", "2048", "--batch-size", "32", "--hidden", "64",
           "--save", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    m = re.search(r"test accuracy ([0-9.]+)", p.stdout)
    assert m and float(m.group(1)) > 0.3, p.stdout
    assert out.exists()
