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
        self.hooks = []

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

    Two hooks, each installed where this CuPy allows it, and counted once per transfer:
    - `cupy.ndarray.get` and `cupy.asnumpy` are wrapped (`cupy.ndarray` is a Python subclass of CuPy's
      Cython base, so `.item()`, `float()`, `bool()`, `int()`, `.tolist()` and printing, which call
      `self.get()`, go through the wrapper);
    - CuPy's private sync detector `cupy._core.syncdetect._declare_synchronize`, which CuPy <= 13 calls
      from `ndarray.get()` and `Device.synchronize()` (CuPy 14 no longer calls it; calls made inside a
      wrapped `get` are not counted twice).
    `log.hooks` names the hooks that were installed. Copies CuPy makes internally without either path
    (and `Device.synchronize()` on CuPy >= 14) are not seen.
    """
    cp = _cp()
    log = TransferLog()
    undo = []
    inside_get = [0]
    try:
        from cupy._core import syncdetect
        orig = syncdetect._declare_synchronize

        def declare():
            if not inside_get[0]:
                log.add("device->host sync")
            return orig()

        syncdetect._declare_synchronize = declare
        undo.append((syncdetect, "_declare_synchronize", orig))
        log.hooks.append("syncdetect")
    except (ImportError, AttributeError):
        pass
    nd = getattr(cp, "ndarray", None)
    if nd is not None and hasattr(nd, "get"):
        orig_get = nd.get
        own = "get" in vars(nd)

        def get(self, *a, **k):
            if not inside_get[0]:
                log.add("ndarray.get")
            inside_get[0] += 1
            try:
                return orig_get(self, *a, **k)
            finally:
                inside_get[0] -= 1
        try:
            nd.get = get
            undo.append((nd, "get", orig_get if own else None))
            log.hooks.append("ndarray.get")
        except (TypeError, AttributeError):  # an immutable (Cython) type: only the sync detector is left
            pass
        orig_asnumpy = getattr(cp, "asnumpy", None)
        if orig_asnumpy is not None:
            def asnumpy(a, *args, **k):
                if isinstance(a, nd) and not inside_get[0]:
                    log.add("asnumpy")
                    inside_get[0] += 1
                    try:
                        return orig_asnumpy(a, *args, **k)
                    finally:
                        inside_get[0] -= 1
                return orig_asnumpy(a, *args, **k)
            cp.asnumpy = asnumpy
            undo.append((cp, "asnumpy", orig_asnumpy))
    try:
        yield log
    finally:
        for obj, name, val in reversed(undo):
            if val is None:
                delattr(obj, name)  # the method was inherited: uncover it again
            else:
                setattr(obj, name, val)
