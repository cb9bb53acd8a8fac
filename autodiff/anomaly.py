"""Anomaly detection for the backward pass (PyTorch's `torch.autograd.detect_anomaly`).

    with autodiff.detect_anomaly():
        loss.backward()     # raises, naming the op whose backward first produced NaN/Inf

While enabled, the engine calls a check after every node's backward: if any gradient it returns
contains NaN or Inf, a `RuntimeError` names the op (e.g. `'LogBackward'`), which of its inputs got
the bad gradient, that input's shape and dtype, and whether the incoming gradient was already
non-finite. The check reads every gradient back to the host, so it slows training down: use it to
debug, not in production (as in PyTorch).

`set_detect_anomaly(mode)` switches it on or off globally; `is_anomaly_enabled()` reports it.
"""
from __future__ import annotations

import functools

from . import autograd


def _check(node, grads_in):
    xp = node.backend.xp
    for i, g in enumerate(grads_in):
        if g is None:
            continue
        d = g.data
        if d.dtype.kind not in "fc":
            continue
        if not bool(xp.isfinite(d).all()):
            kind = "nan" if bool(xp.isnan(d).any()) else "inf"
            meta = node.in_meta[i] if node.in_meta is not None and i < len(node.in_meta) else None
            where = f" (forward input {i}: shape {tuple(meta[0])}, dtype {meta[1]})" if meta else ""
            raise RuntimeError(
                f"detect_anomaly: Function '{node.name()}Backward' returned {kind} values in its {i}th output"
                f"{where}. This is the first op in the backward pass that produced a non-finite gradient; look "
                f"at where the forward computed {node.name()} (e.g. log of 0, division by 0, sqrt of 0).")


class detect_anomaly:
    """Context manager / decorator that checks every backward op's output for NaN/Inf."""

    def __init__(self, check_nan=True):
        self.check_nan = check_nan

    def __enter__(self):
        self._prev = autograd._anomaly_hook
        autograd._anomaly_hook = _check if self.check_nan else None
        return self

    def __exit__(self, *exc):
        autograd._anomaly_hook = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)
        return wrapper


class set_detect_anomaly:
    """`set_detect_anomaly(True/False)` switches anomaly detection at once; used with `with`, it
    restores the previous setting on exit."""

    def __init__(self, mode, check_nan=True):
        self._prev = autograd._anomaly_hook
        autograd._anomaly_hook = _check if (mode and check_nan) else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        autograd._anomaly_hook = self._prev
        return False


def is_anomaly_enabled() -> bool:
    return autograd._anomaly_hook is not None
