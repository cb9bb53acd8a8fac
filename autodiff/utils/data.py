"""Alias of `autodiff.data` under PyTorch's path (`torch.utils.data` -> `autodiff.utils.data`)."""
from ..data import *  # noqa: F401,F403
from ..data import __all__  # noqa: F401
