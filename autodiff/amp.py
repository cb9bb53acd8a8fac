"""Automatic mixed precision: `autocast` and `GradScaler` (PyTorch's `torch.amp` API).

autocast
    `with autodiff.amp.autocast("cpu", dtype=autodiff.float16): ...` runs matmul (hence `Linear`)
    and convolution in the low-precision dtype: the ops call `autocast_operands`, which casts their
    floating-point operands (a differentiable cast, so float32 parameters still receive float32
    gradients). Losses, softmax/log-softmax and reductions that are hooked call `autocast_float32`,
    which casts low-precision inputs up to float32 (PyTorch's "float32 list"). Everything else runs in
    the widest dtype of its inputs, as PyTorch's promotion does (a float16 matmul output plus a float32
    bias gives float32; PyTorch's autocast would also cast the bias of `linear` — it is a single
    fused op there and two ops here).

    The hooks cost one module-attribute test when autocast is off (`_active`). State is
    per-thread, as in PyTorch. Defaults follow PyTorch: float16 on "cuda", bfloat16 on "cpu".
    bfloat16 needs the `ml_dtypes` package on the CPU (NumPy has no bfloat16) and is not available
    on CuPy; both cases raise a clear error naming the alternative.

GradScaler
    Dynamic loss scaling. The scale and the growth tracker live on the device as 0-d arrays and are
    updated there, so `scale`, `unscale_` and `update` never synchronise with the host; `step` reads
    one combined inf/NaN flag per device (one sync, as PyTorch) and skips `optimizer.step()` when it
    is set. `get_scale()` and `state_dict()` return Python numbers (they sync, as PyTorch's do).
"""
from __future__ import annotations

import enum
import functools
import threading

import numpy as np

from . import backends

__all__ = ["autocast", "GradScaler", "is_autocast_enabled", "get_autocast_dtype", "autocast_operands",
           "autocast_float32", "bfloat16", "custom_fwd", "custom_bwd"]

_by_array_type = backends._by_array_type

try:  # NumPy has no bfloat16; ml_dtypes (used by JAX) provides one that NumPy arrays accept.
    import ml_dtypes as _ml_dtypes
    bfloat16 = np.dtype(_ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - depends on the environment
    _ml_dtypes = None
    bfloat16 = None

_DEFAULT_DTYPE = {"cuda": np.dtype(np.float16), "cpu": "bfloat16"}


class _State(threading.local):
    def __init__(self):
        self.enabled = {"cpu": False, "cuda": False}
        self.dtype = {"cpu": None, "cuda": None}


_state = _State()
_active = 0          # number of enabled autocast regions open in any thread: the ops' fast check
_active_lock = threading.Lock()


def _resolve_dtype(device_type, dtype):
    if dtype is None:
        dtype = _DEFAULT_DTYPE[device_type]
    if isinstance(dtype, str) and dtype.replace("torch.", "").replace("autodiff.", "") == "bfloat16":
        dtype = "bfloat16"
    elif bfloat16 is not None and not isinstance(dtype, str) and np.dtype(dtype) == bfloat16:
        dtype = "bfloat16"
    if dtype == "bfloat16":
        if device_type == "cuda":
            raise RuntimeError("autocast: bfloat16 is not supported on the CuPy backend (CuPy has no bfloat16 "
                               "dtype); use dtype=autodiff.float16 with a GradScaler")
        if bfloat16 is None:
            raise RuntimeError("autocast: bfloat16 on the CPU needs the ml_dtypes package "
                               "(pip install ml_dtypes), or pass dtype=autodiff.float16")
        return bfloat16
    from .dtypes import normalize_dtype
    d = normalize_dtype(dtype)
    if d not in (np.dtype(np.float16),) and d != bfloat16:
        raise RuntimeError(f"autocast: dtype must be float16 or bfloat16, got {d}")
    return d


class autocast:
    """`autocast(device_type, dtype=None, enabled=True, cache_enabled=None)`: context manager and
    decorator that runs matmul/linear/conv on `device_type` tensors in `dtype` (see module doc).

    device_type is "cpu" or "cuda" (a device string like "cuda:0" is accepted). `cache_enabled` is
    accepted for API compatibility; casts are not cached (each op casts its operands).
    """

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        if not isinstance(device_type, str):
            device_type = getattr(device_type, "type", device_type)
        if not isinstance(device_type, str):
            raise TypeError(f"autocast: device_type must be a string like 'cpu' or 'cuda', got {device_type!r}")
        dt = device_type.split(":")[0].lower()
        if dt not in ("cpu", "cuda"):
            raise RuntimeError(f"autocast: unsupported device_type {device_type!r} (expected 'cpu' or 'cuda')")
        self.device = dt
        self._enabled = bool(enabled)
        self.fast_dtype = _resolve_dtype(dt, dtype) if self._enabled else (
            np.dtype(np.float16) if dtype is None else dtype)

    def __enter__(self):
        global _active
        self._prev = (_state.enabled[self.device], _state.dtype[self.device])
        _state.enabled[self.device] = self._enabled
        _state.dtype[self.device] = self.fast_dtype if self._enabled else self._prev[1]
        if self._enabled:
            with _active_lock:
                _active += 1
        return self

    def __exit__(self, *exc):
        global _active
        _state.enabled[self.device], _state.dtype[self.device] = self._prev
        if self._enabled:
            with _active_lock:
                _active -= 1
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.device, self.fast_dtype, self._enabled):
                return fn(*args, **kwargs)
        return wrapper


def is_autocast_enabled(device_type="cuda"):
    return bool(_state.enabled.get(device_type, False))


def get_autocast_dtype(device_type="cuda"):
    d = _state.dtype.get(device_type)
    if d is not None:
        return d
    d = _DEFAULT_DTYPE[device_type]
    return bfloat16 if d == "bfloat16" else d


def _target(t):
    """The dtype autocast wants for tensor t, or None when autocast is off for its device."""
    b = _by_array_type.get(type(t.data))
    if b is None:
        return None
    dev = b.device_type
    if not _state.enabled.get(dev):
        return None
    return _state.dtype[dev]


def autocast_operands(*tensors):
    """Hook for matmul/linear/conv: under autocast, the floating-point operands cast to the
    autocast dtype (differentiable); otherwise returned unchanged. Returns a tuple. As in PyTorch,
    float64 operands are not eligible and stay float64."""
    if not _active:
        return tensors
    out = []
    for t in tensors:
        if t is not None and hasattr(t, "data") and t.data.dtype.kind in "fV" and t.data.dtype != np.float64:
            d = _target(t)
            if d is not None and t.data.dtype != d:
                t = t.to(d)
        out.append(t)
    return tuple(out)


def autocast_float32(*tensors):
    """Hook for losses, softmax and reductions: under autocast, low-precision floating inputs cast
    up to float32 (float64 stays float64). Returns a tuple."""
    if not _active:
        return tensors
    out = []
    for t in tensors:
        if (t is not None and hasattr(t, "data") and t.data.dtype.kind in "fV" and t.data.dtype.itemsize < 4
                and _target(t) is not None):
            t = t.to(np.float32)
        out.append(t)
    return tuple(out)


def custom_fwd(fwd=None, *, device_type="cuda", cast_inputs=None):
    """Decorator for a custom forward: with `cast_inputs`, runs it with autocast off and its floating
    Tensor arguments cast to `cast_inputs` when autocast is on (torch.amp.custom_fwd)."""
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def wrapper(*args, **kwargs):
        if cast_inputs is None or not is_autocast_enabled(device_type):
            return fwd(*args, **kwargs)
        from .tensor import Tensor

        def cast(a):
            return a.to(cast_inputs) if isinstance(a, Tensor) and a.data.dtype.kind == "f" else a
        with autocast(device_type, enabled=False):
            return fwd(*[cast(a) for a in args], **{k: cast(v) for k, v in kwargs.items()})
    return wrapper


def custom_bwd(bwd=None, *, device_type="cuda"):
    """Decorator for a custom backward (torch.amp.custom_bwd); backward runs outside autocast here."""
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)
    return bwd


# ----------------------------------------------------------------------------- GradScaler
class OptState(enum.Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _grads_of(optimizer):
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None:
                yield p.grad


class GradScaler:
    """Dynamic loss scaling (torch.amp.GradScaler).

    `GradScaler(device="cuda", init_scale=2.**16, growth_factor=2.0, backoff_factor=0.5,
    growth_interval=2000, enabled=True)`. For convenience a number given as the first positional
    argument is taken as `init_scale` (the older `torch.cuda.amp.GradScaler` signature). The scale
    lives on the device of the first tensor passed to `scale` (so `device` only labels it).

    Typical loop::

        scaler.scale(loss).backward()
        scaler.unscale_(opt)               # optional, e.g. before clip_grad_norm_
        scaler.step(opt)                   # skipped if any gradient is inf/NaN
        scaler.update()                    # backoff on overflow, growth after growth_interval clean steps
    """

    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        if isinstance(device, (int, float)) and not isinstance(device, bool):
            device, init_scale = "cuda", float(device)
        self._device = str(device)
        self._enabled = bool(enabled)
        if self._enabled:
            if growth_factor <= 1.0:
                raise ValueError(f"GradScaler: growth_factor should be > 1, got {growth_factor}")
            if not 0.0 < backoff_factor < 1.0:
                raise ValueError(f"GradScaler: backoff_factor should be in (0, 1), got {backoff_factor}")
            if int(growth_interval) <= 0:
                raise ValueError(f"GradScaler: growth_interval should be a positive integer, got {growth_interval}")
        self._init_scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._init_growth_tracker = 0
        self._scale = None           # 0-d float32 array on the device
        self._growth_tracker = None  # 0-d int32 array on the device
        self._backend = None
        self._per_optimizer_states: dict = {}

    # ------------------------------------------------------------------ helpers
    def _lazy_init(self, backend):
        self._backend = backend
        xp = backend.xp
        self._scale = xp.full((), self._init_scale, dtype=np.float32)
        self._growth_tracker = xp.full((), self._init_growth_tracker, dtype=np.int32)

    def _opt_state(self, optimizer):
        st = self._per_optimizer_states.get(id(optimizer))
        if st is None:
            st = self._per_optimizer_states[id(optimizer)] = {"stage": OptState.READY, "found_inf": {}}
        return st

    def _check_scale(self, fn):
        if self._scale is None:
            raise RuntimeError(f"GradScaler.{fn}: the scale was never initialised; call scaler.scale(loss) "
                               "earlier in the iteration")

    # ------------------------------------------------------------------ API
    def is_enabled(self):
        return self._enabled

    def scale(self, outputs):
        """outputs * scale (a Tensor, or nested lists/tuples of Tensors); no host sync."""
        if not self._enabled:
            return outputs
        from .autograd import _new_tensor
        from .tensor import Tensor

        def apply(o):
            if isinstance(o, Tensor):
                b = _by_array_type[type(o.data)]
                if self._scale is None:
                    self._lazy_init(b)
                s = self._scale
                if b is not self._backend and b.xp is not self._backend.xp:
                    s = b.asarray(self._backend.to_numpy(s))
                return o * _new_tensor(s)
            if isinstance(o, (list, tuple)):
                return type(o)(apply(x) for x in o)
            raise ValueError(f"GradScaler.scale: outputs must be a Tensor or an iterable of Tensors, "
                             f"got {type(o).__name__}")
        return apply(outputs)

    def _unscale_grads(self, optimizer, inv_scale, allow_fp16=False):
        """Multiply every grad by inv_scale in place; per device, one 0-d float32 flag (1.0 if any
        grad holds inf/NaN). The flags stay on the device."""
        flags: dict = {}
        for g in _grads_of(optimizer):
            a = g.data
            if a.dtype == np.float16 and not allow_fp16:
                raise ValueError("GradScaler.unscale_: attempting to unscale FP16 gradients; keep the "
                                 "parameters in float32 and let autocast cast them")
            b = _by_array_type[type(a)]
            xp = b.xp
            s = inv_scale if b is self._backend else b.asarray(self._backend.to_numpy(inv_scale))
            a *= s.astype(a.dtype)
            flags.setdefault(b, []).append(~xp.isfinite(a).all())
        out = {}
        for b, bads in flags.items():
            out[b.device_type] = b.xp.stack(bads).any().astype(np.float32)
        return out

    def unscale_(self, optimizer):
        """Divide the optimizer's gradients by the scale, in place (e.g. before clipping)."""
        if not self._enabled:
            return
        self._check_scale("unscale_")
        st = self._opt_state(optimizer)
        if st["stage"] is OptState.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if st["stage"] is OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        xp = self._backend.xp
        inv_scale = (xp.asarray(1.0, dtype=np.float64) / self._scale.astype(np.float64)).astype(np.float32)
        st["found_inf"] = self._unscale_grads(optimizer, inv_scale)
        st["stage"] = OptState.UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """Unscale (if not done yet) and call optimizer.step(*args, **kwargs) unless a gradient holds
        inf/NaN. Returns what optimizer.step returned, or None when skipped."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_scale("step")
        st = self._opt_state(optimizer)
        if st["stage"] is OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if st["stage"] is OptState.READY:
            self.unscale_(optimizer)
        found = st["found_inf"]
        if not found:
            raise RuntimeError("GradScaler.step: no inf checks were recorded for this optimizer (none of its "
                               "parameters has a gradient)")
        # One host read per device for the whole optimizer (PyTorch syncs here too).
        if not any(bool(v) for v in found.values()):
            retval = optimizer.step(*args, **kwargs)
        else:
            retval = None
        st["stage"] = OptState.STEPPED
        return retval

    def update(self, new_scale=None):
        """Back off the scale if any stepped optimizer saw inf/NaN, else grow it after
        `growth_interval` consecutive clean steps. Runs on the device (no host sync)."""
        if not self._enabled:
            return
        self._check_scale("update")
        xp = self._backend.xp
        if new_scale is not None:
            from .tensor import Tensor
            if isinstance(new_scale, Tensor):
                if new_scale.data.size != 1:
                    raise ValueError("GradScaler.update: new_scale should be a single-element tensor")
                self._scale = xp.asarray(new_scale.data, dtype=np.float32).reshape(())
            elif isinstance(new_scale, (int, float)):
                self._scale = xp.full((), float(new_scale), dtype=np.float32)
            else:
                raise ValueError("GradScaler.update: new_scale should be a float or a 1-element tensor")
        else:
            flags = [f for st in self._per_optimizer_states.values() for f in st["found_inf"].values()]
            if not flags:
                raise RuntimeError("GradScaler.update: no inf checks were recorded prior to update() "
                                   "(call scaler.step(optimizer) first)")
            found = flags[0]
            for f in flags[1:]:
                found = found + self._backend.asarray(f)
            bad = found > 0
            tracker = xp.where(bad, 0, self._growth_tracker + 1).astype(np.int32)
            grow = tracker >= self._growth_interval
            scale = xp.where(bad, self._scale * np.float32(self._backoff_factor),
                             xp.where(grow, self._scale * np.float32(self._growth_factor), self._scale))
            self._scale = scale.astype(np.float32)
            self._growth_tracker = xp.where(grow, 0, tracker).astype(np.int32)
        self._per_optimizer_states = {}

    # ------------------------------------------------------------------ accessors
    def get_scale(self):
        """The current scale as a Python float (syncs); 1.0 when disabled."""
        if not self._enabled:
            return 1.0
        if self._scale is None:
            return self._init_scale
        return float(self._backend.to_numpy(self._scale))

    def _get_growth_tracker(self):
        if not self._enabled:
            return 0
        if self._growth_tracker is None:
            return self._init_growth_tracker
        return int(self._backend.to_numpy(self._growth_tracker))

    def get_growth_factor(self):
        return self._growth_factor

    def set_growth_factor(self, new_factor):
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self):
        return self._backoff_factor

    def set_backoff_factor(self, new_factor):
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self):
        return self._growth_interval

    def set_growth_interval(self, new_interval):
        self._growth_interval = int(new_interval)

    def state_dict(self):
        """{'scale', 'growth_factor', 'backoff_factor', 'growth_interval', '_growth_tracker'} as
        Python numbers; {} when disabled (as PyTorch)."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict):
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("GradScaler.load_state_dict: the source state dict is empty, possibly because "
                               "it was saved from a disabled instance of GradScaler.")
        self._init_scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._init_growth_tracker = int(state_dict["_growth_tracker"])
        if self._scale is not None:
            xp = self._backend.xp
            self._scale = xp.full((), self._init_scale, dtype=np.float32)
            self._growth_tracker = xp.full((), self._init_growth_tracker, dtype=np.int32)

    def __getstate__(self):
        state = self.__dict__.copy()
        if self._enabled:
            state["_init_scale"] = self.get_scale()
            state["_init_growth_tracker"] = self._get_growth_tracker()
        state["_scale"] = state["_growth_tracker"] = state["_backend"] = None
        state["_per_optimizer_states"] = {}
        return state
