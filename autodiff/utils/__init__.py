"""`autodiff.utils.data` mirrors `torch.utils.data`, so ported scripts keep their imports' shape."""
from . import data  # noqa: F401
