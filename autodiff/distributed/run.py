"""Launcher: `python -m autodiff.distributed.run -n 4 train.py args...` (or `-m package.module args...`).

Runs `mpiexec -n N <this python> -m mpi4py train.py args...`, so that
- every rank uses the same interpreter (the virtualenv's) as the launcher;
- an uncaught exception on any rank aborts all ranks at once (mpi4py's `-m mpi4py` runner calls
  MPI_Abort; `init_process_group` installs the same behaviour with a rank-tagged message);
- each rank gets one BLAS/OpenMP/numba thread unless told otherwise (`--threads-per-rank`), as
  `torchrun` does, so N ranks do not oversubscribe the cores.

`mpiexec` is looked up next to the interpreter first (the `mpich` wheel installs it into the
virtualenv's bin/), then on PATH, unless `--mpiexec` or the MPIEXEC environment variable names one.
For Open MPI running as root, the two OMPI_ALLOW_RUN_AS_ROOT variables and --oversubscribe are set.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def find_mpiexec(explicit=None):
    """Path of the mpiexec to use, or None."""
    cand = explicit or os.environ.get("MPIEXEC")
    if cand:
        return shutil.which(cand) or (cand if os.path.exists(cand) else None)
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.path.exists(here):
        return here
    return shutil.which("mpiexec") or shutil.which("mpirun")


def _is_open_mpi(mpiexec):
    try:
        out = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return "Open MPI" in (out.stdout + out.stderr) or "OpenRTE" in (out.stdout + out.stderr)


def build_command(nprocs, target, args, module=False, mpiexec=None, extra_mpiexec_args=()):
    """(argv, env) for running `target` on `nprocs` ranks."""
    exe = find_mpiexec(mpiexec)
    if exe is None:
        raise FileNotFoundError("autodiff.distributed.run: no mpiexec found (looked next to "
                                f"{sys.executable} and on PATH); install an MPI runtime: pip install mpich")
    env = dict(os.environ)
    argv = [exe, "-n", str(nprocs)]
    if _is_open_mpi(exe):
        argv.append("--oversubscribe")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
            env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    argv += list(extra_mpiexec_args)
    argv += [sys.executable, "-m", "mpi4py"]
    argv += (["-m", target] if module else [target]) + list(args)
    return argv, env


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m autodiff.distributed.run",
        description="Run a training script on N MPI ranks (wraps mpiexec).")
    p.add_argument("-n", "--nproc", "--nproc-per-node", "--np", dest="nproc", type=int, required=True,
                   help="number of ranks")
    p.add_argument("-m", "--module", action="store_true", help="run the target as a module (like python -m)")
    p.add_argument("--mpiexec", default=None, help="mpiexec to use (default: the venv's, then PATH)")
    p.add_argument("--threads-per-rank", type=int, default=1,
                   help="OMP/BLAS/numba threads per rank, unless already set in the environment (default 1)")
    p.add_argument("--timeout", type=float, default=None, help="kill the whole job after this many seconds")
    p.add_argument("--mpiexec-arg", action="append", default=[], help="extra argument passed to mpiexec")
    p.add_argument("target", help="script path (or module name with -m)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the script")
    ns = p.parse_args(argv)
    if ns.nproc < 1:
        p.error(f"-n must be at least 1, got {ns.nproc}")
    try:
        cmd, env = build_command(ns.nproc, ns.target, ns.args, ns.module, ns.mpiexec, ns.mpiexec_arg)
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 127
    for var in _THREAD_VARS:
        env.setdefault(var, str(ns.threads_per_rank))
    env.setdefault("PYTHONUNBUFFERED", "1")
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        rc = proc.wait(timeout=ns.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        print(f"autodiff.distributed.run: the job ran past --timeout {ns.timeout:g} s and was killed",
              file=sys.stderr)
        return 124
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        return 130
    if rc != 0:
        print(f"autodiff.distributed.run: {ns.nproc} ranks of {ns.target} ended with exit code {rc} "
              "(a rank failed or was aborted; its traceback is above)", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
