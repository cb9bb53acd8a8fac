"""A restricted unpickler for pickled NumPy arrays (the classic `mnist.pkl.gz`).

A pickle can run arbitrary code when loaded: its GLOBAL opcodes name any importable callable and
REDUCE calls it. `safe_load` resolves only the three globals that NumPy's array pickles need and
refuses every other one before anything is called:

    numpy.core.multiarray._reconstruct   (also spelled numpy._core.multiarray._reconstruct)
    numpy.ndarray
    numpy.dtype

Python-2-era pickles (like mnist.pkl.gz) store the array bytes as 8-bit `str`; load them with
`encoding="latin1"` (the default here), which maps every byte to one code point and back.
"""
from __future__ import annotations

import gzip
import io
import pickle

import numpy as np

try:  # NumPy 2 moved the implementation to numpy._core and warns on access through numpy.core
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import _reconstruct

ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list (it could run code when loaded)."""


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` whose `find_class` allows only NumPy array reconstruction."""

    def find_class(self, module, name):
        fn = ALLOWED_GLOBALS.get((module, name))
        if fn is None:
            allowed = ", ".join(f"{m}.{n}" for m, n in ALLOWED_GLOBALS)
            raise UnsafePickleError(
                f"safe_load: refusing to load global '{module}.{name}' from the pickle: only NumPy array "
                f"reconstruction is allowed ({allowed}). The file may be malicious or not a pickled array.")
        return fn

    def persistent_load(self, pid):
        raise UnsafePickleError(f"safe_load: refusing persistent id {pid!r} (not used by array pickles)")


def safe_loads(data: bytes, encoding: str = "latin1"):
    """Unpickle `data` allowing only NumPy arrays, dtypes, and plain containers/scalars."""
    return RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()


def safe_load(path, encoding: str = "latin1"):
    """Unpickle the file at `path` (gzip-compressed if its name ends in .gz or it starts with the
    gzip magic) with the restricted unpickler."""
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        return RestrictedUnpickler(f, encoding=encoding).load()
