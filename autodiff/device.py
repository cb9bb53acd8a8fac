"""Devices ("cpu", "cuda", "cuda:N") and the default device for factories."""
from __future__ import annotations

import os

from . import backends


class device:
    """A device, compared and printed like PyTorch's `torch.device`.

    `device("cuda")` has index None (the current GPU); it compares equal to "cuda:0" only when its
    index is given, as in PyTorch. `device(1)` is `device("cuda", 1)`. A device also compares equal to its
    string spelling (`device("cpu") == "cpu"`).
    """
    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            self.type, self.index = type.type, type.index
            return
        if isinstance(type, int) and not isinstance(type, bool) and index is None:
            type, index = "cuda", type  # device(1) is cuda:1, as in PyTorch
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string like 'cpu' or 'cuda:0', got {type!r}")
        spec = type.strip().lower()
        if ":" in spec:
            spec, _, idx = spec.partition(":")
            if index is not None:
                raise ValueError(f"device: index given twice in {type!r}")
            try:
                index = int(idx)
            except ValueError:
                raise ValueError(f"device: bad device index in {type!r}") from None
        if spec not in ("cpu", "cuda"):
            raise ValueError(f"device: unknown device type {spec!r} (expected 'cpu' or 'cuda[:N]')")
        if index is not None and index < 0:
            raise ValueError(f"device: negative index {index}")
        if spec == "cpu" and index not in (None, 0):
            raise ValueError(f"device: cpu has no index {index}")
        self.type = spec
        self.index = None if spec == "cpu" else index

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = device(other)
            except (ValueError, TypeError):
                return False
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self):
        return hash((self.type, self.index))


CPU = device("cpu")
_default_device = CPU


def as_device(d) -> device:
    if d is None:
        return get_default_device()
    if isinstance(d, device):
        return d
    if isinstance(d, int):
        return device("cuda", d)
    return device(d)


def set_default_device(d) -> None:
    """Device used by factories when none is given. The environment variable AUTODIFF_DEVICE, when
    set, overrides it, so a script can be moved to the GPU without editing it."""
    global _default_device
    _default_device = as_device(d)


def get_default_device() -> device:
    env = os.environ.get("AUTODIFF_DEVICE")
    if env:
        return device(env)
    return _default_device


def backend_for(d: device):
    """The backend that places arrays on device `d` (raises BackendUnavailable for missing CUDA)."""
    if d.type == "cpu":
        return backends.get_cpu_backend()
    return backends.cuda_backend()
