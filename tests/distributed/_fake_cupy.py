"""A NumPy stand-in for CuPy + NCCL, for PLUMBING tests only (never GPU validation).

It lets tests/distributed exercise the Python logic of the `nccl` process group (device choice, unique-id
exchange, dtype/op tables, contiguity handling, AVG emulation) and of the host-staged `mpi` path for
CuPy arrays on a machine without a GPU. `ndarray` is a NumPy subclass whose module is "cupy" and whose
`.data.ptr` is the host address; the fake `NcclCommunicator` performs each call with MPI on views of
those addresses, with NCCL's argument order.
"""
from __future__ import annotations

import ctypes
import sys
import types

import numpy as np


class _Ptr:
    __slots__ = ("ptr",)

    def __init__(self, ptr):
        self.ptr = ptr


class ndarray(np.ndarray):
    @property
    def data(self):
        return _Ptr(self.ctypes.data)

    def get(self):
        return np.array(self, copy=True).view(np.ndarray)


ndarray.__module__ = "cupy"


def _wrap(a):
    return np.asarray(a).view(ndarray)


def asarray(a, dtype=None):
    return np.array(np.asarray(a), dtype=dtype, copy=True).view(ndarray)


def ascontiguousarray(a):
    return np.ascontiguousarray(a).view(ndarray)


def empty(shape, dtype=np.float32):
    return np.empty(shape, dtype=dtype).view(ndarray)


def zeros(shape, dtype=np.float32):
    return np.zeros(shape, dtype=dtype).view(ndarray)


def stack(arrs):
    return np.stack([np.asarray(a) for a in arrs]).view(ndarray)


class _Stream:
    ptr = 0
    synced = 0

    def synchronize(self):
        _Stream.synced += 1


class _Device:
    used = None

    def __init__(self, i):
        self.i = i

    def use(self):
        _Device.used = self.i


def install(with_avg=True):
    """Put fake `cupy`, `cupy.cuda`, `cupy.cuda.nccl` into sys.modules; returns the nccl module."""
    from mpi4py import MPI

    cupy = types.ModuleType("cupy")
    cuda = types.ModuleType("cupy.cuda")
    nccl = types.ModuleType("cupy.cuda.nccl")
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 1)
    cuda.runtime = runtime
    cuda.Device = _Device
    stream = _Stream()
    cuda.get_current_stream = lambda: stream
    cuda.nccl = nccl
    cupy.cuda = cuda
    for name in ("ndarray", "asarray", "ascontiguousarray", "empty", "zeros", "stack"):
        setattr(cupy, name, globals()[name])

    dts = {"NCCL_INT8": np.int8, "NCCL_UINT8": np.uint8, "NCCL_INT32": np.int32, "NCCL_UINT32": np.uint32,
           "NCCL_INT64": np.int64, "NCCL_UINT64": np.uint64, "NCCL_FLOAT16": np.float16,
           "NCCL_FLOAT32": np.float32, "NCCL_FLOAT64": np.float64}
    codes = {}
    for i, (k, v) in enumerate(dts.items()):
        setattr(nccl, k, i)
        codes[i] = np.dtype(v)
    ops = {0: MPI.SUM, 1: MPI.PROD, 2: MPI.MAX, 3: MPI.MIN}
    nccl.NCCL_SUM, nccl.NCCL_PROD, nccl.NCCL_MAX, nccl.NCCL_MIN = 0, 1, 2, 3
    if with_avg:
        nccl.NCCL_AVG = 4
    nccl.calls = []

    def view(ptr, count, dt):
        dt = codes[dt]
        buf = (ctypes.c_char * (count * dt.itemsize)).from_address(ptr)
        return np.frombuffer(buf, dtype=dt, count=count)

    class NcclCommunicator:
        def __init__(self, ndev, uid, rank):
            self.comm = MPI.COMM_WORLD.Dup()
            assert ndev == self.comm.Get_size() and rank == self.comm.Get_rank()
            self.uid = uid

        def _red(self, s, r, op):
            x = s.astype(np.float64) if s.dtype == np.float16 else s.copy()
            if op == 4:
                self.comm.Allreduce(MPI.IN_PLACE, x, op=MPI.SUM)
                x = x / self.comm.Get_size() if x.dtype.kind == "f" else x // self.comm.Get_size()
            else:
                self.comm.Allreduce(MPI.IN_PLACE, x, op=ops[op])
            r[...] = x

        def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
            nccl.calls.append("allReduce")
            self._red(view(sendbuf, count, datatype), view(recvbuf, count, datatype), op)

        def broadcast(self, sendbuf, recvbuf, count, datatype, root, stream):
            nccl.calls.append("broadcast")
            x = view(sendbuf, count, datatype).copy()
            self.comm.Bcast(x, root=root)
            view(recvbuf, count, datatype)[...] = x

        def allGather(self, sendbuf, recvbuf, count, datatype, stream):
            nccl.calls.append("allGather")
            n = self.comm.Get_size()
            out = np.empty(count * n, dtype=codes[datatype])
            self.comm.Allgather(view(sendbuf, count, datatype).copy(), out)
            view(recvbuf, count * n, datatype)[...] = out

        def reduceScatter(self, sendbuf, recvbuf, recvcount, datatype, op, stream):
            nccl.calls.append("reduceScatter")
            n, r = self.comm.Get_size(), self.comm.Get_rank()
            full = view(sendbuf, recvcount * n, datatype).copy()
            tmp = np.empty_like(full)
            self._red(full, tmp, op)
            view(recvbuf, recvcount, datatype)[...] = tmp[r * recvcount:(r + 1) * recvcount]

        def destroy(self):
            self.comm.Free()

    nccl.NcclCommunicator = NcclCommunicator
    nccl.get_unique_id = lambda: tuple(range(8))
    sys.modules["cupy"] = cupy
    sys.modules["cupy.cuda"] = cuda
    sys.modules["cupy.cuda.nccl"] = nccl
    return nccl


def device_tensor(arr):
    """An autodiff Tensor whose .data is a fake CuPy array (bypasses the backend registry)."""
    from autodiff.autograd import _new_tensor
    return _new_tensor(_wrap(np.array(arr)))
