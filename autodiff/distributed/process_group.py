"""Process groups and collectives on MPI (mpi4py) and NCCL (cupy.cuda.nccl).

Ranks and the world size come from the MPI launcher (`mpiexec`, or `python -m autodiff.distributed.run`).
Every collective works in place on `tensor.data`, as PyTorch's do, and accepts `async_op=True` to
return a `Work` handle instead of waiting.

Transports
- `backend="mpi"`: NumPy arrays go through mpi4py's buffer interface (uppercase, non-blocking
  `Iallreduce`/`Ibcast`/`Iallgather`/`Ireduce_scatter_block`; no pickling). CuPy arrays are staged
  through host memory unless the MPI library is CUDA-aware and the environment says so
  (`AUTODIFF_MPI_CUDA_AWARE=1`: there is no portable query for it; then device pointers are
  passed to MPI after synchronising the current stream).
- `backend="nccl"`: CuPy arrays use NCCL (`cupy.cuda.nccl.NcclCommunicator`, its unique id shared
  over an MPI broadcast); calls are ordered on the current CUDA stream and never synchronise the host.
  Host (NumPy) tensors under this backend fall back to MPI (PyTorch's NCCL backend rejects them).

Failure handling. A collective waits at most `timeout` (default 30 minutes, PyTorch's default;
`init_process_group(timeout=...)` or AUTODIFF_DISTRIBUTED_TIMEOUT in seconds) and then raises
`DistributedTimeoutError`. `init_process_group` installs a `sys.excepthook` that prints the
uncaught exception with its rank and calls `MPI_Abort`, so one rank that raises ends every rank at
once instead of leaving the others blocked in a collective.

Debug check. With AUTODIFF_DISTRIBUTED_DEBUG=1 (or `init_process_group(debug=True)`) every
collective first all-gathers a small descriptor (collective, shape, dtype, root/op) and raises on
every rank, naming the collective and each rank's shape and dtype, when they disagree.

Limitations (written here because they cannot be tested on a CPU-only machine): the CuPy paths
(NCCL, host staging, CUDA-aware MPI) are written against CuPy's documented API but were not run
in this project's CI. NCCL calls cannot time out (NCCL has no abortable wait through CuPy).
"""
from __future__ import annotations

import datetime
import os
import sys
import time
import traceback

import numpy as np

__all__ = ["ReduceOp", "Work", "DistributedTimeoutError", "init_process_group", "destroy_process_group",
           "is_available", "is_mpi_available", "is_nccl_available", "is_initialized", "get_rank",
           "get_world_size", "get_backend", "barrier", "all_reduce", "broadcast", "all_gather",
           "all_gather_into_tensor", "reduce_scatter", "reduce_scatter_tensor", "group"]


class DistributedTimeoutError(RuntimeError):
    """A collective did not complete within the process group's timeout."""


# ----------------------------------------------------------------------------- reduce ops
class ReduceOp:
    """Reduction operations for `all_reduce` and `reduce_scatter` (`ReduceOp.SUM` etc.).

    AVG divides the sum by the world size (floor division for integer tensors)."""
    __slots__ = ("name", "code")

    def __init__(self, name, code):
        self.name = name
        self.code = code

    def __repr__(self):
        return f"<ReduceOp.{self.name}: {self.code}>"

    def __eq__(self, other):
        return isinstance(other, ReduceOp) and other.code == self.code

    def __hash__(self):
        return hash(self.code)

    def __reduce__(self):
        return (getattr, (ReduceOp, self.name))


ReduceOp.SUM = ReduceOp("SUM", 0)
ReduceOp.PRODUCT = ReduceOp("PRODUCT", 1)
ReduceOp.MIN = ReduceOp("MIN", 2)
ReduceOp.MAX = ReduceOp("MAX", 3)
ReduceOp.AVG = ReduceOp("AVG", 7)
_OPS = {op.code: op for op in (ReduceOp.SUM, ReduceOp.PRODUCT, ReduceOp.MIN, ReduceOp.MAX, ReduceOp.AVG)}


def _as_op(op, what):
    if isinstance(op, ReduceOp):
        return op
    if isinstance(op, str) and hasattr(ReduceOp, op.upper()) and op.upper() in ("SUM", "PRODUCT", "MIN",
                                                                               "MAX", "AVG"):
        return getattr(ReduceOp, op.upper())
    raise ValueError(f"{what}: op must be a ReduceOp (SUM, PRODUCT, MIN, MAX, AVG), got {op!r}")


# ----------------------------------------------------------------------------- helpers
def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError("autodiff.distributed needs mpi4py and an MPI runtime: "
                           "pip install 'autodiff[distributed]' (mpi4py + mpich)") from e
    return MPI


def _is_cupy(a):
    return type(a).__module__.split(".")[0] == "cupy"


def _set_device(a, host):
    """Copy host array `host` into CuPy array `a` (any strides), on the current stream."""
    import cupy
    a[...] = cupy.asarray(host, dtype=a.dtype)


def _array_of(tensor, what):
    from ..tensor import Tensor
    if isinstance(tensor, Tensor):
        return tensor.data
    raise TypeError(f"{what}: expected an autodiff.Tensor, got {type(tensor).__name__}")


def _bump(tensor):
    tensor._vc[0] += 1  # modified in place: saved-tensor checks must see it


_DTYPES = ["float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool",
           "complex64", "complex128", "uint16", "uint32", "uint64", "bfloat16"]
_COLLECTIVES = ["all_reduce", "broadcast", "all_gather", "reduce_scatter", "barrier", "all_gather_into_tensor",
                "reduce_scatter_tensor"]
_DESC_LEN = 14  # collective, extra, dtype, ndim, count, shape[0..8]


def _describe(name, arr, extra):
    d = np.full(_DESC_LEN, -1, dtype=np.int64)
    d[0] = _COLLECTIVES.index(name)
    d[1] = extra
    if arr is not None:
        dt = str(arr.dtype)
        d[2] = _DTYPES.index(dt) if dt in _DTYPES else 100 + arr.dtype.num
        d[3] = arr.ndim
        d[4] = arr.size
        for i, s in enumerate(arr.shape[:9]):
            d[5 + i] = s
    return d


def _fmt_desc(d, extra_name):
    name = _COLLECTIVES[d[0]] if 0 <= d[0] < len(_COLLECTIVES) else f"collective#{d[0]}"
    if d[3] < 0:
        return name
    shape = tuple(int(s) for s in d[5:5 + min(int(d[3]), 9)])
    if d[3] > 9:
        shape = shape + ("...",)
    dt = _DTYPES[d[2]] if 0 <= d[2] < len(_DTYPES) else f"dtype#{d[2] - 100}"
    s = f"{name} shape {shape} {dt}"
    if extra_name and d[1] >= 0:
        s += f" {extra_name}={_OPS[int(d[1])].name if extra_name == 'op' and int(d[1]) in _OPS else int(d[1])}"
    return s


class Work:
    """Handle of an asynchronous collective (`async_op=True`): `wait()` blocks until it is done."""

    def __init__(self, group, requests=(), finish=(), what="collective"):
        self._group = group
        self._requests = list(requests)
        self._finish = list(finish)
        self._what = what
        self._done = not self._requests and not self._finish

    def is_completed(self):
        if self._done:
            return True
        if self._requests and not self._group._mpi.Request.Testall(self._requests):
            return False
        self._complete()
        return True

    def wait(self, timeout=None):
        if self._done:
            return True
        if self._requests:
            self._group._wait(self._requests, self._what, timeout)
        self._complete()
        return True

    def _complete(self):
        if self._done:
            return
        self._done = True
        for f in self._finish:
            f()
        self._finish = []
        self._requests = []


# ----------------------------------------------------------------------------- process groups
class _MPIGroup:
    """The world process group over MPI (a duplicate of COMM_WORLD, so user MPI traffic cannot
    match ours)."""
    backend_name = "mpi"

    def __init__(self, timeout_s, debug):
        MPI = _mpi()
        self._mpi = MPI
        if not MPI.Is_initialized():
            MPI.Init_thread()
        self.comm = MPI.COMM_WORLD.Dup()
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.timeout_s = timeout_s
        self.debug = debug
        self.cuda_aware = os.environ.get("AUTODIFF_MPI_CUDA_AWARE", "0") not in ("", "0", "false", "False")
        self._mpi_ops = {0: MPI.SUM, 1: MPI.PROD, 2: MPI.MIN, 3: MPI.MAX, 7: MPI.SUM}

    # -- waiting with a deadline
    def _wait(self, requests, what, timeout=None):
        """Drive MPI progress until `requests` complete; raise DistributedTimeoutError after the timeout.

        Polls Testall with sched_yield for the first 50 ms (the usual case: the peers are a few ms
        behind; yielding lets them run when ranks outnumber cores), then sleeps between tests so a
        rank waiting for a slow or dead peer does not hog a shared core."""
        Testall = self._mpi.Request.Testall
        if Testall(requests):
            return
        limit = self.timeout_s if timeout is None else _seconds(timeout)
        t0 = time.monotonic()
        spin_until = t0 + min(0.05, limit)
        yield_ = getattr(os, "sched_yield", None) or (lambda: time.sleep(0))
        while time.monotonic() < spin_until:
            if Testall(requests):
                return
            yield_()  # give the core away when ranks outnumber cores
        delay = 5e-5
        while not Testall(requests):
            time.sleep(delay)
            delay = min(delay * 1.5, 2e-3)
            if time.monotonic() - t0 > limit:
                raise DistributedTimeoutError(
                    f"{what}: rank {self.rank} of {self.size} waited more than {limit:g} s for the other "
                    "ranks (one of them may have died, hung, or called a different collective)")

    # -- debug descriptor check
    def check(self, name, arrs, extra=-1, extra_name=""):
        """All-gather each rank's descriptor of `arrs` (a list) and raise on every rank if they differ."""
        descs = [_describe(name, a, extra) for a in (arrs or [None])]
        mine = np.concatenate([np.array([len(descs)], dtype=np.int64)] + descs)
        sizes = np.empty(self.size, dtype=np.int64)
        self._wait([self.comm.Iallgather(np.array([mine.size], dtype=np.int64), sizes)], f"{name} (debug check)")
        width = int(sizes.max())
        buf = np.full(width, -2, dtype=np.int64)
        buf[:mine.size] = mine
        allbuf = np.empty((self.size, width), dtype=np.int64)
        req = self.comm.Iallgather(buf, allbuf)
        self._wait([req], f"{name} (debug check)")
        if all(np.array_equal(allbuf[0], allbuf[r]) for r in range(1, self.size)):
            return
        lines = []
        for r in range(self.size):
            row = allbuf[r]
            n = int(row[0])
            ds = [row[1 + i * _DESC_LEN: 1 + (i + 1) * _DESC_LEN] for i in range(n)]
            txt = "; ".join(_fmt_desc(d, extra_name) for d in ds)
            lines.append(f"rank {r}: {txt}")
        raise RuntimeError(f"{name}: the ranks called collectives that do not match (shapes, dtypes or the "
                           "collective itself differ across ranks):\n  " + "\n  ".join(lines))

    # -- buffers
    def _host_buffer(self, a, reduce=False):
        """(buffer to hand to MPI, function copying the buffer back into `a` or None)."""
        if _is_cupy(a):
            if self.cuda_aware and a.flags.c_contiguous and not (reduce and a.dtype in (np.float16, np.bool_)):
                import cupy
                cupy.cuda.get_current_stream().synchronize()
                return a, None
            work = np.ascontiguousarray(a.get())  # staged through host memory (synchronises the stream)
            if reduce and work.dtype in (np.float16, np.bool_):
                work = work.astype(np.float32 if work.dtype == np.float16 else np.uint8)

            def back(a=a, work=work):
                _set_device(a, work)
            return work, back
        if reduce and a.dtype in (np.float16, np.bool_):  # reduce in a wider/numeric type
            work = a.astype(np.float32 if a.dtype == np.float16 else np.uint8)

            def back(a=a, work=work):
                a[...] = work
            return work, back
        if a.flags.c_contiguous and a.flags.writeable:
            return a, None
        if not a.flags.writeable:
            raise RuntimeError("collective: the tensor's array is read-only")
        work = np.ascontiguousarray(a)

        def back(a=a, work=work):
            a[...] = work
        return work, back

    def _readonly_buffer(self, a):
        if _is_cupy(a):
            if self.cuda_aware and a.flags.c_contiguous:
                import cupy
                cupy.cuda.get_current_stream().synchronize()
                return a
            return np.ascontiguousarray(a.get())
        return np.ascontiguousarray(a)

    # -- collectives on arrays; each returns a Work
    def allreduce(self, a, op):
        buf, back = self._host_buffer(a, reduce=True)
        req = self.comm.Iallreduce(self._mpi.IN_PLACE, buf, op=self._mpi_ops[op.code])
        finish = []
        if op.code == 7:
            def avg(buf=buf, n=self.size):
                if buf.dtype.kind in "iub":
                    buf //= n
                else:
                    buf /= n
            finish.append(avg)
        if back is not None:
            finish.append(back)
        return Work(self, [req], finish, "all_reduce")

    def broadcast(self, a, src):
        buf, back = self._host_buffer(a)
        req = self.comm.Ibcast(buf, root=src)
        return Work(self, [req], [back] if back is not None else [], "broadcast")

    def allgather(self, outs, a):
        send = self._readonly_buffer(a)
        recv = np.empty((self.size,) + tuple(a.shape), dtype=send.dtype)
        req = self.comm.Iallgather(send, recv)

        def scatter_back(outs=outs, recv=recv):
            for r, o in enumerate(outs):
                if _is_cupy(o):
                    _set_device(o, recv[r])
                else:
                    o[...] = recv[r]
        return Work(self, [req], [scatter_back], "all_gather")

    def reduce_scatter(self, out, ins, op):
        send = np.stack([np.asarray(x.get() if _is_cupy(x) else x) for x in ins])
        if send.dtype in (np.float16, np.bool_):
            send = send.astype(np.float32 if send.dtype == np.float16 else np.uint8)
        recv = np.empty(send.shape[1:], dtype=send.dtype)
        req = self.comm.Ireduce_scatter_block(send, recv, op=self._mpi_ops[op.code])

        def finish(out=out, recv=recv, op=op, n=self.size):
            if op.code == 7:
                if recv.dtype.kind in "iub":
                    recv //= n
                else:
                    recv /= n
            if _is_cupy(out):
                _set_device(out, recv)
            else:
                out[...] = recv
        return Work(self, [req], [finish], "reduce_scatter")

    def barrier(self):
        return Work(self, [self.comm.Ibarrier()], [], "barrier")

    def destroy(self):
        try:
            self.comm.Free()
        except Exception:  # noqa: BLE001 - already finalized
            pass


class _NCCLGroup(_MPIGroup):
    """MPI for bootstrap, barrier, debug checks and host tensors; NCCL for CuPy tensors."""
    backend_name = "nccl"

    def __init__(self, timeout_s, debug, device_id=None):
        super().__init__(timeout_s, debug)
        try:
            import cupy
            from cupy.cuda import nccl
        except ImportError as e:
            raise RuntimeError("init_process_group(backend='nccl') needs CuPy with NCCL "
                               "(pip install cupy-cuda12x; NCCL comes with its wheels)") from e
        self._cupy = cupy
        self._nccl = nccl
        ndev = cupy.cuda.runtime.getDeviceCount()
        if ndev == 0:
            raise RuntimeError("init_process_group(backend='nccl'): no CUDA device visible")
        if device_id is None:
            local = self.comm.Split_type(self._mpi.COMM_TYPE_SHARED)
            device_id = local.Get_rank() % ndev
            local.Free()
        if hasattr(device_id, "index"):
            device_id = device_id.index or 0
        self.device_id = int(device_id)
        cupy.cuda.Device(self.device_id).use()
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = self.comm.bcast(uid, root=0)
        self.nccl = nccl.NcclCommunicator(self.size, uid, self.rank)
        self._nccl_ops = {0: nccl.NCCL_SUM, 1: nccl.NCCL_PROD, 2: nccl.NCCL_MIN, 3: nccl.NCCL_MAX}
        self._has_avg = hasattr(nccl, "NCCL_AVG")
        if self._has_avg:
            self._nccl_ops[7] = nccl.NCCL_AVG

    def _nccl_dtype(self, dtype):
        n = self._nccl
        table = {"float64": "NCCL_FLOAT64", "float32": "NCCL_FLOAT32", "float16": "NCCL_FLOAT16",
                 "int64": "NCCL_INT64", "int32": "NCCL_INT32", "int8": "NCCL_INT8", "uint8": "NCCL_UINT8",
                 "uint32": "NCCL_UINT32", "uint64": "NCCL_UINT64"}
        name = table.get(str(dtype))
        if name is None or not hasattr(n, name):
            raise TypeError(f"nccl: unsupported dtype {dtype} (NCCL takes float16/32/64, int8/32/64, "
                            "uint8/32/64)")
        return getattr(n, name)

    def _contig(self, a):
        """(contiguous array aliasing or copying `a`, copy-back function or None); stream-ordered."""
        if a.flags.c_contiguous:
            return a, None
        work = self._cupy.ascontiguousarray(a)

        def back(a=a, work=work):
            a[...] = work
        return work, back

    def _stream(self):
        return self._cupy.cuda.get_current_stream().ptr

    def allreduce(self, a, op):
        if not _is_cupy(a):
            return super().allreduce(a, op)
        buf, back = self._contig(a)
        code = op.code if (op.code != 7 or self._has_avg) else 0
        self.nccl.allReduce(buf.data.ptr, buf.data.ptr, buf.size, self._nccl_dtype(buf.dtype),
                            self._nccl_ops[code], self._stream())
        if op.code == 7 and not self._has_avg:
            if buf.dtype.kind in "iub":
                buf //= self.size
            else:
                buf /= self.size
        if back is not None:
            back()
        return Work(self)

    def broadcast(self, a, src):
        if not _is_cupy(a):
            return super().broadcast(a, src)
        buf, back = self._contig(a)
        self.nccl.broadcast(buf.data.ptr, buf.data.ptr, buf.size, self._nccl_dtype(buf.dtype), src,
                            self._stream())
        if back is not None:
            back()
        return Work(self)

    def allgather(self, outs, a):
        if not _is_cupy(a):
            return super().allgather(outs, a)
        cp = self._cupy
        send = cp.ascontiguousarray(a)
        recv = cp.empty((self.size,) + tuple(a.shape), dtype=a.dtype)
        self.nccl.allGather(send.data.ptr, recv.data.ptr, send.size, self._nccl_dtype(a.dtype), self._stream())
        for r, o in enumerate(outs):
            o[...] = recv[r]
        return Work(self)

    def reduce_scatter(self, out, ins, op):
        if not _is_cupy(out):
            return super().reduce_scatter(out, ins, op)
        cp = self._cupy
        send = cp.ascontiguousarray(cp.stack(ins))
        recv = cp.empty(out.shape, dtype=out.dtype)
        code = op.code if (op.code != 7 or self._has_avg) else 0
        self.nccl.reduceScatter(send.data.ptr, recv.data.ptr, recv.size, self._nccl_dtype(out.dtype),
                                self._nccl_ops[code], self._stream())
        if op.code == 7 and not self._has_avg:
            recv = recv // self.size if recv.dtype.kind in "iub" else recv / self.size
        out[...] = recv
        return Work(self)

    def barrier(self):
        self._cupy.cuda.get_current_stream().synchronize()
        return super().barrier()

    def destroy(self):
        try:
            self.nccl.destroy()
        except Exception:  # noqa: BLE001
            pass
        super().destroy()


# ----------------------------------------------------------------------------- the world group
_world = None


class _GroupMember:
    WORLD = None


group = _GroupMember


def _seconds(timeout):
    if isinstance(timeout, datetime.timedelta):
        return timeout.total_seconds()
    return float(timeout)


def _excepthook(exc_type, exc, tb):
    """Print the uncaught exception with its rank, then abort every rank (no hang in a collective)."""
    g = _world
    rank = g.rank if g is not None else "?"
    size = g.size if g is not None else "?"
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.stderr.write(f"[autodiff.distributed rank {rank}/{size}] uncaught {exc_type.__name__}; aborting all "
                     f"ranks with MPI_Abort:\n{text}")
    sys.stderr.flush()
    # MPI_Abort tears the job down at once; give mpiexec's proxy a moment to forward the message
    # (under load it was sometimes lost, leaving the user without the reason).
    time.sleep(0.5)
    try:
        _mpi().COMM_WORLD.Abort(1)
    finally:
        os._exit(1)


def is_available():
    return True


def is_mpi_available():
    try:
        import mpi4py  # noqa: F401
        return True
    except ImportError:
        return False


def is_nccl_available():
    try:
        from cupy.cuda import nccl  # noqa: F401
        return nccl.available if hasattr(nccl, "available") else True
    except Exception:  # noqa: BLE001
        return False


def init_process_group(backend="mpi", init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None, device_id=None, debug=None, abort_on_exception=True):
    """Join the world process group; ranks and world size come from the MPI launcher.

    backend: "mpi" (NumPy tensors over MPI, CuPy tensors staged through the host or CUDA-aware MPI) or
    "nccl" (CuPy tensors over NCCL; one GPU per rank chosen by local rank unless `device_id`).
    `world_size`/`rank`, when given, must agree with MPI's. `init_method` and `store` are accepted
    for PyTorch compatibility; MPI needs neither. `abort_on_exception` installs the excepthook that
    aborts all ranks on an uncaught exception.
    """
    global _world
    if _world is not None:
        raise RuntimeError("init_process_group: the default process group is already initialized "
                           "(call destroy_process_group first)")
    if backend is None:
        backend = "mpi"
    backend = str(backend).lower()
    if backend not in ("mpi", "nccl"):
        raise ValueError(f"init_process_group: unknown backend {backend!r}; choose 'mpi' or 'nccl' "
                         "(gloo is not provided: use 'mpi' on the CPU)")
    if timeout is None:
        timeout = float(os.environ.get("AUTODIFF_DISTRIBUTED_TIMEOUT", 1800))
    timeout_s = _seconds(timeout)
    if timeout_s <= 0:
        raise ValueError(f"init_process_group: timeout must be positive, got {timeout!r}")
    if debug is None:
        debug = os.environ.get("AUTODIFF_DISTRIBUTED_DEBUG", "0") not in ("", "0", "false", "False")
    g = _MPIGroup(timeout_s, debug) if backend == "mpi" else _NCCLGroup(timeout_s, debug, device_id)
    if world_size not in (-1, None) and int(world_size) != g.size:
        g.destroy()
        raise ValueError(f"init_process_group: world_size={world_size} but the MPI launcher started {g.size} "
                         "ranks")
    if rank not in (-1, None) and int(rank) != g.rank:
        g.destroy()
        raise ValueError(f"init_process_group: rank={rank} but MPI says this process is rank {g.rank}")
    _world = g
    _GroupMember.WORLD = g
    if abort_on_exception and g.size > 1:
        sys.excepthook = _excepthook


def destroy_process_group(group=None):
    """Leave the default process group (MPI itself is finalized at interpreter exit by mpi4py)."""
    global _world
    if _world is None:
        raise RuntimeError("destroy_process_group: the default process group is not initialized")
    _world.destroy()
    _world = None
    _GroupMember.WORLD = None
    if sys.excepthook is _excepthook:
        sys.excepthook = sys.__excepthook__


def is_initialized():
    return _world is not None


def _group(g, what):
    if g is None:
        g = _world
    if g is None:
        raise RuntimeError(f"{what}: the default process group is not initialized; call "
                           "autodiff.distributed.init_process_group() first")
    return g


def get_rank(group=None):
    return _group(group, "get_rank").rank


def get_world_size(group=None):
    return _group(group, "get_world_size").size


def get_backend(group=None):
    return _group(group, "get_backend").backend_name


def _finish(work, async_op):
    if async_op:
        return work
    work.wait()
    return None


def barrier(group=None, async_op=False, device_ids=None):
    """Block until every rank reaches the barrier."""
    g = _group(group, "barrier")
    if g.debug:
        g.check("barrier", [])
    return _finish(g.barrier(), async_op)


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce `tensor` over all ranks in place: every rank ends with the result."""
    g = _group(group, "all_reduce")
    op = _as_op(op, "all_reduce")
    a = _array_of(tensor, "all_reduce")
    if g.debug:
        g.check("all_reduce", [a], op.code, "op")
    _bump(tensor)
    return _finish(g.allreduce(a, op), async_op)


def broadcast(tensor, src, group=None, async_op=False):
    """Copy rank `src`'s `tensor` into `tensor` on every rank (in place)."""
    g = _group(group, "broadcast")
    a = _array_of(tensor, "broadcast")
    if not isinstance(src, (int, np.integer)) or not 0 <= int(src) < g.size:
        raise ValueError(f"broadcast: src must be a rank in [0, {g.size - 1}], got {src!r}")
    if g.debug:
        g.check("broadcast", [a], int(src), "src")
    _bump(tensor)
    return _finish(g.broadcast(a, int(src)), async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """Fill `tensor_list[r]` with rank r's `tensor` (tensor_list has world-size tensors of its shape)."""
    g = _group(group, "all_gather")
    a = _array_of(tensor, "all_gather")
    tensor_list = list(tensor_list)
    if len(tensor_list) != g.size:
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} tensors but the world size is {g.size}")
    outs = [_array_of(t, "all_gather") for t in tensor_list]
    for i, o in enumerate(outs):
        if tuple(o.shape) != tuple(a.shape) or o.dtype != a.dtype or _is_cupy(o) != _is_cupy(a):
            raise ValueError(f"all_gather: tensor_list[{i}] has shape {tuple(o.shape)} {o.dtype} but the input "
                             f"tensor has shape {tuple(a.shape)} {a.dtype} (they must match, on the same device)")
    if g.debug:
        g.check("all_gather", [a])
    for t in tensor_list:
        _bump(t)
    return _finish(g.allgather(outs, a), async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    """Gather every rank's `input_tensor` into `output_tensor` (world_size * its first dim, or stacked)."""
    g = _group(group, "all_gather_into_tensor")
    a = _array_of(input_tensor, "all_gather_into_tensor")
    o = _array_of(output_tensor, "all_gather_into_tensor")
    shape = tuple(a.shape)
    cat = (shape[0] * g.size,) + shape[1:] if shape else (g.size,)
    stacked = (g.size,) + shape
    if tuple(o.shape) not in (cat, stacked) or o.dtype != a.dtype or not o.flags.c_contiguous:
        raise ValueError(f"all_gather_into_tensor: output has shape {tuple(o.shape)} {o.dtype}; expected "
                         f"a contiguous {cat} or {stacked} of {a.dtype} for an input of shape {shape}")
    if g.debug:
        g.check("all_gather_into_tensor", [a])
    view = o.reshape(stacked)
    outs = [view[r] for r in range(g.size)]
    _bump(output_tensor)
    return _finish(g.allgather(outs, a), async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce `input_list[r]` over ranks into rank r's `output`."""
    g = _group(group, "reduce_scatter")
    op = _as_op(op, "reduce_scatter")
    o = _array_of(output, "reduce_scatter")
    input_list = list(input_list)
    if len(input_list) != g.size:
        raise ValueError(f"reduce_scatter: input_list has {len(input_list)} tensors but the world size is {g.size}")
    ins = [_array_of(t, "reduce_scatter") for t in input_list]
    for i, x in enumerate(ins):
        if tuple(x.shape) != tuple(o.shape) or x.dtype != o.dtype:
            raise ValueError(f"reduce_scatter: input_list[{i}] has shape {tuple(x.shape)} {x.dtype} but the "
                             f"output has shape {tuple(o.shape)} {o.dtype}")
    if g.debug:
        g.check("reduce_scatter", [o], op.code, "op")
    _bump(output)
    return _finish(g.reduce_scatter(o, ins, op), async_op)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):
    """`reduce_scatter` with the inputs concatenated (or stacked) in one tensor."""
    g = _group(group, "reduce_scatter_tensor")
    o = _array_of(output, "reduce_scatter_tensor")
    x = _array_of(input, "reduce_scatter_tensor")
    shape = tuple(o.shape)
    cat = (shape[0] * g.size,) + shape[1:] if shape else (g.size,)
    if tuple(x.shape) not in (cat, (g.size,) + shape):
        raise ValueError(f"reduce_scatter_tensor: input has shape {tuple(x.shape)}; expected {cat} or "
                         f"{(g.size,) + shape} for an output of shape {shape}")
    from ..autograd import _new_tensor
    view = x.reshape((g.size,) + shape)
    return reduce_scatter(output, [_new_tensor(view[r]) for r in range(g.size)], op, group, async_op)
