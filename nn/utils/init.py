"""nn.utils.skip_init (PyTorch's): build a module without running its parameter initialisation."""
from __future__ import annotations

import inspect

__all__ = ["skip_init"]


def skip_init(module_cls, *args, **kwargs):
    """An instance of module_cls whose parameters and buffers are allocated but not (necessarily) initialised:
    their values are unspecified, as PyTorch's. The class must accept a `device` keyword."""
    if "device" not in inspect.signature(module_cls).parameters:
        raise RuntimeError("Module must support a 'device' arg to skip initialization")
    own = "reset_parameters" in module_cls.__dict__
    orig = module_cls.__dict__.get("reset_parameters")
    module_cls.reset_parameters = lambda self: None  # allocation only
    try:
        return module_cls(*args, **kwargs)
    finally:
        if own:
            module_cls.reset_parameters = orig
        else:
            del module_cls.reset_parameters
