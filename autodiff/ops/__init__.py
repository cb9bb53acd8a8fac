"""The op library: one module per family. Each public function takes and returns Tensors."""
from . import creation, elementwise, indexing, inplace, linalg, reduction, shape  # noqa: F401
