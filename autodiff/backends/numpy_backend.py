"""The reference CPU backend: plain NumPy, every kernel slot from `base.Backend`."""
from .base import Backend


class NumpyBackend(Backend):
    name = "numpy"
    device_type = "cpu"
