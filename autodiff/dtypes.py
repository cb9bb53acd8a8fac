"""dtype names, inference and PyTorch's type-promotion rules.

dtypes are NumPy dtype objects, so `autodiff.float32 == np.float32` holds and either can be passed
wherever a dtype is taken. Where NumPy and PyTorch promote differently (int64 + float32 gives
float64 in NumPy, float32 in PyTorch; a 0-d tensor does not widen a dimensioned one), PyTorch wins.
"""
from __future__ import annotations

import builtins

import numpy as np

float16 = half = np.dtype(np.float16)
float32 = float = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
int16 = short = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = long = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

_default_float = float32
_NAMES = {"float16": float16, "half": float16, "float32": float32, "float": float32, "float64": float64,
          "double": float64, "int8": int8, "uint8": uint8, "int16": int16, "int32": int32, "int": int32,
          "int64": int64, "long": int64, "bool": bool_}


def normalize_dtype(dtype):
    """Any dtype spelling (autodiff/NumPy dtype, Python type, name) as a NumPy dtype; None stays None."""
    if dtype is None or isinstance(dtype, np.dtype):
        return dtype
    if dtype is bool:
        return bool_
    if dtype is builtins.int:
        return int64
    if dtype is builtins.float:
        return _default_float
    if isinstance(dtype, str):
        name = dtype.replace("torch.", "").replace("autodiff.", "")
        if name in _NAMES:
            return _NAMES[name]
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}") from None


def default_float_dtype():
    return _default_float


def set_default_dtype(dtype):
    global _default_float
    d = normalize_dtype(dtype)
    if d.kind != "f":
        raise TypeError(f"set_default_dtype: only floating dtypes can be the default, got {d}")
    _default_float = d


def get_default_dtype():
    return _default_float


def infer_dtype(data):
    """The dtype PyTorch gives `tensor(data)`: arrays keep theirs; Python floats give the default
    float dtype, Python ints int64, bools bool."""
    if hasattr(data, "dtype") and not isinstance(data, (list, tuple)):
        return None  # keep the array's own dtype
    kind = _scan_kind(data)
    if kind == "b":
        return bool_
    if kind == "i":
        return int64
    if kind == "f":
        # NumPy float scalars keep their width, Python floats count as the default dtype; the
        # widest wins (tensor([np.float64(1), 2]) is float64, as PyTorch)
        out = None
        for d in _float_dtypes(data):
            out = d if out is None else np.promote_types(out, d)
        return out or _default_float
    return None


def _float_dtypes(data):
    if isinstance(data, np.floating):  # before float: np.float64 subclasses it
        yield data.dtype
    elif isinstance(data, builtins.float):
        yield _default_float
    elif isinstance(data, (list, tuple)):
        for x in data:
            yield from _float_dtypes(x)
    elif hasattr(data, "dtype") and data.dtype.kind == "f":
        yield data.dtype


def _scan_kind(data):
    """Highest category among the Python scalars in a (nested) list: 'b' < 'i' < 'f'."""
    if isinstance(data, bool) or isinstance(data, np.bool_):
        return "b"
    if isinstance(data, (builtins.int, np.integer)):
        return "i"
    if isinstance(data, (builtins.float, np.floating)):
        return "f"
    if isinstance(data, (list, tuple)):
        best = "b" if data else "f"
        for x in data:
            k = _scan_kind(x)
            if k == "f":
                return "f"
            if k == "i":
                best = "i"
            elif k is None:
                return None
        return best
    if hasattr(data, "dtype"):
        k = data.dtype.kind
        return "f" if k == "f" else ("b" if k == "b" else "i")
    return None


_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def result_type(a, b):
    """PyTorch's promotion of two tensors' dtypes, given as (dtype, ndim) pairs."""
    (da, na), (db, nb) = a, b
    if da == db:
        return da
    ra, rb = _RANK[da.kind], _RANK[db.kind]
    if ra != rb:
        # The higher category wins; within it, the participating tensors decide the width.
        return da if ra > rb else db
    # Same category: a dimensioned tensor beats a 0-d one.
    if na == 0 and nb != 0:
        return db
    if nb == 0 and na != 0:
        return da
    return np.promote_types(da, db)


def scalar_result_dtype(dtype, scalar):
    """dtype of `tensor op python_scalar`: the scalar is 'weak' and only lifts the category."""
    if isinstance(scalar, bool):
        return dtype
    if isinstance(scalar, builtins.int):
        return int64 if dtype.kind == "b" else dtype
    if isinstance(scalar, builtins.float):
        return dtype if dtype.kind in "fc" else _default_float
    return dtype
