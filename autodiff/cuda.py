"""`autodiff.cuda`: the GPU namespace, shaped like `torch.cuda`.

Nothing here imports CuPy until a function is called, and the query functions (`is_available`,
`device_count`) never raise: on a machine without CuPy or without a GPU they answer False / 0. The others
raise `autodiff.BackendUnavailable` with the reason (CuPy missing, or no GPU/driver) and the fix.

Memory figures come from CuPy's default memory pool (the allocator every autodiff CUDA array uses):
`memory_allocated` is the pool's bytes in use, `memory_reserved` the bytes it holds from the driver,
`empty_cache` returns the unused blocks. The peak (`max_memory_allocated`) is tracked by wrapping the
allocator, switched on by the first call to `reset_peak_memory_stats()` or `max_memory_allocated()` so
that programs that never ask pay nothing on their allocation path; before that first call the peak
equals the current use.
"""
from __future__ import annotations

import contextlib
import traceback

from . import backends
from .backends import BackendUnavailable

__all__ = ["is_available", "device_count", "current_device", "set_device", "get_device_name", "synchronize",
           "manual_seed", "manual_seed_all", "memory_allocated", "max_memory_allocated", "memory_reserved",
           "reset_peak_memory_stats", "empty_cache", "BackendUnavailable"]


def _backend():
    return backends.cuda_backend()


def _cp():
    return _backend().xp


def _index(device):
    """Device index of `device` (None, int, 'cuda:N', autodiff.device) on the GPU; None -> current."""
    if device is None:
        return _cp().cuda.runtime.getDevice()
    if isinstance(device, int):
        return device
    from .device import device as Device
    d = Device(device)
    if d.type != "cuda":
        raise ValueError(f"autodiff.cuda: expected a CUDA device, got {d}")
    return _cp().cuda.runtime.getDevice() if d.index is None else d.index


def is_available() -> bool:
    """True when CuPy imports and sees at least one GPU. Never raises."""
    try:
        _backend()
        return True
    except BackendUnavailable:
        return False


def unavailable_reason():
    """Why CUDA is unavailable (the BackendUnavailable message), or None when it is available."""
    try:
        _backend()
        return None
    except BackendUnavailable as e:
        return str(e)


def device_count() -> int:
    """Number of visible GPUs; 0 without CuPy or a driver. Never raises."""
    try:
        return _backend().device_count
    except BackendUnavailable:
        return 0


def current_device() -> int:
    return _cp().cuda.runtime.getDevice()


def set_device(device) -> None:
    """Make `device` (int, 'cuda:N' or autodiff.device) the current GPU of this thread."""
    _cp().cuda.Device(_index(device)).use()


def get_device_name(device=None) -> str:
    props = _cp().cuda.runtime.getDeviceProperties(_index(device))
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def synchronize(device=None) -> None:
    """Wait until every kernel queued on the GPU has finished."""
    cp = _cp()
    with cp.cuda.Device(_index(device)):
        cp.cuda.Device().synchronize()


def manual_seed(seed) -> None:
    """Seed the random generators of the GPUs (all of them: one generator per GPU, same seed, as
    autodiff keeps; PyTorch seeds the current one). Safe to call before CUDA is first used."""
    backends.set_cuda_seed(int(seed))


def manual_seed_all(seed) -> None:
    """Seed the random generators of every GPU."""
    backends.set_cuda_seed(int(seed))


# ----------------------------------------------------------------------------- memory
_peak: dict = {}
_tracking = False


def _pool():
    return _cp().get_default_memory_pool()


def _start_peak_tracking():
    """Wrap the current CuPy allocator so each allocation updates the per-device peak of the pool's use."""
    global _tracking
    if _tracking:
        return
    cp = _cp()
    pool = cp.get_default_memory_pool()
    prev = cp.cuda.get_allocator()

    def malloc(size):
        mem = prev(size)
        used = pool.used_bytes()
        dev = mem.device_id
        if used > _peak.get(dev, 0):
            _peak[dev] = used
        return mem

    cp.cuda.set_allocator(malloc)
    _tracking = True


def memory_allocated(device=None) -> int:
    """Bytes of GPU memory held by live arrays on `device` (CuPy pool `used_bytes`)."""
    cp = _cp()
    with cp.cuda.Device(_index(device)):
        return int(cp.get_default_memory_pool().used_bytes())


def memory_reserved(device=None) -> int:
    """Bytes the memory pool holds from the driver on `device` (in use + cached)."""
    cp = _cp()
    with cp.cuda.Device(_index(device)):
        return int(cp.get_default_memory_pool().total_bytes())


def max_memory_allocated(device=None) -> int:
    """Peak of memory_allocated since tracking began (the first call to this function or to
    reset_peak_memory_stats); at least the current use."""
    _start_peak_tracking()
    i = _index(device)
    cur = memory_allocated(i)
    p = max(_peak.get(i, 0), cur)
    _peak[i] = p
    return p


def reset_peak_memory_stats(device=None) -> None:
    """Restart the peak at the current use (and start tracking if it was off)."""
    _start_peak_tracking()
    i = _index(device)
    _peak[i] = memory_allocated(i)


def empty_cache() -> None:
    """Return the pool's unused blocks (and pinned host blocks) to the driver."""
    cp = _cp()
    cp.get_default_memory_pool().free_all_blocks()
    cp.get_default_pinned_memory_pool().free_all_blocks()


# ----------------------------------------------------------------------------- test helper: host transfers
class TransferLog:
    """What `_count_transfers` saw: `count` device-to-host copies/synchronisations and, for each, the
    innermost frames of the Python stack that caused it (`where`)."""

    def __init__(self):
        self.count = 0
        self.where = []

    def add(self, what):
        self.count += 1
        stack = traceback.extract_stack()[:-2]  # drop add() and the hook
        frames = [f for f in stack if "/cupy/" not in f.filename and "/cupy_backends/" not in f.filename]
        self.where.append(f"{what} at " + " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}"
                                                      for f in reversed(frames[-4:])))

    def __repr__(self):
        return f"TransferLog(count={self.count})" + "".join(f"\n  {w}" for w in self.where)


@contextlib.contextmanager
def _count_transfers():
    """Count device-to-host transfers and host synchronisations while the block runs (for tests).

    Hooks CuPy's sync detector, which `ndarray.get()` (hence `cupy.asnumpy`, `.item()`, `float()`,
    `bool()`, `int()`, `.tolist()`, printing) and `Device.synchronize()` call before they block; where
    that private hook is missing (a future CuPy), falls back to wrapping `cupy.ndarray.get` and
    `cupy.asnumpy`. Copies CuPy makes internally without either path are not seen.
    """
    cp = _cp()
    log = TransferLog()
    undo = []
    try:
        from cupy._core import syncdetect
        orig = syncdetect._declare_synchronize

        def declare():
            log.add("device->host sync")
            return orig()

        syncdetect._declare_synchronize = declare
        undo.append((syncdetect, "_declare_synchronize", orig))
    except (ImportError, AttributeError):
        orig_get = cp.ndarray.get
        orig_asnumpy = cp.asnumpy

        def get(self, *a, **k):
            log.add("ndarray.get")
            return orig_get(self, *a, **k)

        def asnumpy(a, *args, **k):
            if isinstance(a, cp.ndarray):
                return get(a, *args, **k)
            return orig_asnumpy(a, *args, **k)

        own = "get" in vars(cp.ndarray)
        cp.ndarray.get = get
        cp.asnumpy = asnumpy
        undo.append((cp.ndarray, "get", orig_get if own else None))
        undo.append((cp, "asnumpy", orig_asnumpy))
    try:
        yield log
    finally:
        for obj, name, val in reversed(undo):
            if val is None:
                delattr(obj, name)  # the method was inherited: uncover it again
            else:
                setattr(obj, name, val)
