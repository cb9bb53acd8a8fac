"""`autodiff.save` / `autodiff.load`: checkpoints in a format that never executes code on load.

File layout (all integers little-endian)::

    b"ADCKPT01"                 magic and format version
    u64 header_len              length of the JSON header
    header                      UTF-8 JSON: {"structure": ..., "arrays": [{"dtype", "shape", "offset", "nbytes"}]}
    padding                     to a 64-byte boundary
    data                        raw array buffers, each at its 64-byte aligned offset (relative to data start)
    sha256                      32-byte SHA-256 digest of every byte before it

The structure is plain JSON (numbers, strings, lists) with tagged objects for dicts (any hashable
simple keys, insertion order and OrderedDict/Counter kept), tuples, tensors, NumPy arrays and
scalars. Loading parses JSON and copies raw buffers of whitelisted dtypes: nothing is unpickled
and no code runs. The digest is checked before anything is parsed, so a truncated or tampered file
raises `CheckpointError` (a ValueError). Saving writes a temporary file in the same directory and
renames it over the target (`os.replace`), so a crash never leaves a half-written checkpoint, and
the file lands at exactly the path given (no extension is appended, unlike `np.savez`).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from collections import Counter, OrderedDict

import numpy as np

from . import backends
from .autograd import _new_tensor

__all__ = ["save", "load", "CheckpointError"]

MAGIC = b"ADCKPT01"
_ALIGN = 64
_DIGEST = 32
_DTYPE_KINDS = "biufc"  # bool, int, uint, float, complex: plain bytes only, never object dtypes
_DICT_CLASSES = {"dict": dict, "OrderedDict": OrderedDict, "Counter": Counter}


class CheckpointError(ValueError):
    """A checkpoint file that is not one, is truncated, or fails its integrity check."""


# ----------------------------------------------------------------------------- encoding
class _Writer:
    def __init__(self):
        self.arrays = []      # host (NumPy) arrays, C-contiguous little-endian
        self.meta = []
        self.offset = 0
        self.tensor_ids = {}  # id(Tensor) -> array index, so a tensor saved twice loads as one object
        self.keep = []        # keeps the objects whose ids are in tensor_ids alive

    def add_array(self, arr):
        arr = np.asarray(arr, order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
        if arr.dtype.kind not in _DTYPE_KINDS:
            raise TypeError(f"save: arrays of dtype {arr.dtype} cannot be saved (only bool, integer, float and "
                            "complex arrays)")
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        self.offset = -(-self.offset // _ALIGN) * _ALIGN
        self.meta.append({"dtype": arr.dtype.str, "shape": list(arr.shape), "offset": self.offset,
                          "nbytes": int(arr.nbytes)})
        self.arrays.append(arr)
        self.offset += arr.nbytes
        return len(self.arrays) - 1

    def encode(self, obj, path):
        from .tensor import Tensor
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int) and not isinstance(obj, bool):
            return obj if type(obj) is int else int(obj)
        if isinstance(obj, float):
            if math.isfinite(obj):
                return float(obj)
            return {"__t": "float", "v": repr(float(obj))}  # inf, -inf, nan: kept out of the JSON numbers
        if isinstance(obj, Tensor):
            key = id(obj)
            if key not in self.tensor_ids:
                data = obj.data
                b = backends.backend_of(data)
                self.tensor_ids[key] = self.add_array(b.to_numpy(data))
                self.keep.append(obj)
            out = {"__t": "tensor", "i": self.tensor_ids[key], "device": str(obj.device)}
            if obj.requires_grad:
                out["requires_grad"] = True
            if type(obj).__name__ == "Parameter":
                out["parameter"] = True
            return out
        if isinstance(obj, np.ndarray):
            return {"__t": "ndarray", "i": self.add_array(obj)}
        if isinstance(obj, np.generic):
            return {"__t": "npscalar", "i": self.add_array(np.asarray(obj))}
        if isinstance(obj, complex):
            return {"__t": "complex", "re": self.encode(obj.real, path), "im": self.encode(obj.imag, path)}
        if isinstance(obj, dict):
            # dict subclasses other than these two (defaultdict, ...) load as plain dicts
            cls = "Counter" if isinstance(obj, Counter) else "OrderedDict" if isinstance(obj, OrderedDict) else "dict"
            keys = []
            for k in obj:
                if not (k is None or isinstance(k, (bool, int, float, str, tuple, np.number, np.bool_))):
                    raise TypeError(f"save: dict key {k!r} of type {type(k).__name__} at {path or 'top level'} "
                                    "cannot be saved (keys must be str, int, float, bool, None or tuples of them)")
                keys.append(self.encode(k, f"{path}[{k!r}]"))
            vals = [self.encode(v, f"{path}[{k!r}]") for k, v in obj.items()]
            return {"__t": "dict", "cls": cls, "k": keys, "v": vals}
        if isinstance(obj, list):
            return [self.encode(v, f"{path}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {"__t": "tuple", "v": [self.encode(v, f"{path}[{i}]") for i, v in enumerate(obj)]}
        if isinstance(obj, (bytes, bytearray)):
            return {"__t": "bytes", "i": self.add_array(np.frombuffer(bytes(obj), dtype=np.uint8))}
        if isinstance(obj, np.dtype) or (isinstance(obj, type) and issubclass(obj, np.generic)):
            return {"__t": "dtype", "v": np.dtype(obj).str}
        from .device import device as Device
        if isinstance(obj, Device):
            return {"__t": "device", "v": str(obj)}
        raise TypeError(f"save: cannot save an object of type {type(obj).__module__}.{type(obj).__qualname__} at "
                        f"{path or 'top level'}: checkpoints hold tensors, NumPy arrays and scalars, int, float, "
                        "bool, None, str, bytes and dicts/lists/tuples of them (no pickled objects)")


def save(obj, f):
    """Save `obj` (a state dict: nested dicts/lists/tuples of Tensors, NumPy arrays, numbers,
    strings, None) to `f`, a path (written at exactly that path, atomically) or a binary file object.

    Tensors are stored with their dtype, shape and device; tensors on the GPU are copied to the host.
    A tensor that appears several times is stored once and loads as one object.
    """
    w = _Writer()
    structure = w.encode(obj, "")
    header = json.dumps({"structure": structure, "arrays": w.meta}, separators=(",", ":"),
                        allow_nan=False).encode("utf-8")
    head = MAGIC + struct.pack("<Q", len(header)) + header
    head += b"\0" * (-len(head) % _ALIGN)

    def write_all(fh):
        h = hashlib.sha256()

        def put(b):
            h.update(b)
            fh.write(b)

        put(head)
        pos = 0
        for arr, m in zip(w.arrays, w.meta):
            if m["offset"] > pos:
                put(b"\0" * (m["offset"] - pos))
                pos = m["offset"]
            if arr.nbytes:
                put(memoryview(arr.reshape(-1)).cast("B"))
            pos += arr.nbytes
        fh.write(h.digest())

    if hasattr(f, "write"):
        write_all(f)
        return
    path = os.fspath(f)
    d = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    if not os.path.isdir(d):
        raise FileNotFoundError(f"save: parent directory {d!r} of {path!r} does not exist")
    tmp = None
    for attempt in range(100):
        cand = os.path.join(d, f".{base}.{os.getpid()}.{attempt}.tmp")
        try:
            fd = os.open(cand, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        tmp = cand
        break
    if tmp is None:
        raise OSError(f"save: could not create a temporary file next to {path!r}")
    try:
        with os.fdopen(fd, "wb") as fh:
            write_all(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ----------------------------------------------------------------------------- decoding
def _target_device(saved, map_location):
    """Where a tensor saved on device string `saved` goes, as a device string."""
    if map_location is None:
        return saved
    if isinstance(map_location, dict):
        return str(map_location.get(saved, saved))
    from .device import device as Device
    if isinstance(map_location, (str, Device)):
        return str(Device(map_location))
    raise TypeError(f"load: map_location must be None, a device ('cpu', 'cuda', 'cuda:0'), or a dict mapping saved "
                    f"device strings to devices, got {type(map_location).__name__}")


class _Reader:
    def __init__(self, buf, metas, data_start, map_location, name):
        self.buf = buf
        self.metas = metas
        self.data_start = data_start
        self.map_location = map_location
        self.name = name
        self.tensors = {}

    def fail(self, msg):
        raise CheckpointError(f"load: {self.name} is not a valid checkpoint: {msg}")

    def array(self, i):
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(self.metas):
            self.fail(f"array reference {i!r} out of range")
        m = self.metas[i]
        try:
            dt = np.dtype(m["dtype"])
            shape = tuple(int(s) for s in m["shape"])
            off, nbytes = int(m["offset"]), int(m["nbytes"])
        except (KeyError, TypeError, ValueError):
            self.fail(f"bad array entry {m!r}")
        if dt.kind not in _DTYPE_KINDS or dt.hasobject or any(s < 0 for s in shape):
            self.fail(f"array {i} has unsupported dtype {m['dtype']!r} or shape {m['shape']!r}")
        count = math.prod(shape)
        if count * dt.itemsize != nbytes or off < 0 or self.data_start + off + nbytes > len(self.buf):
            self.fail(f"array {i} (dtype {dt}, shape {shape}) does not fit in the file")
        return np.frombuffer(self.buf, dtype=dt, count=count, offset=self.data_start + off).reshape(shape)

    def decode(self, s):
        if s is None or isinstance(s, (bool, int, float, str)):
            return s
        if isinstance(s, list):
            return [self.decode(v) for v in s]
        if not isinstance(s, dict) or "__t" not in s:
            self.fail("unexpected structure entry")
        t = s["__t"]
        if t == "dict":
            cls = _DICT_CLASSES.get(s.get("cls"), dict)
            keys, vals = s.get("k"), s.get("v")
            if not isinstance(keys, list) or not isinstance(vals, list) or len(keys) != len(vals):
                self.fail("malformed dict entry")
            keys = [self.decode(k) for k in keys]
            for k in keys:
                try:
                    hash(k)
                except TypeError:
                    self.fail("unhashable dict key")
            d = dict(zip(keys, (self.decode(v) for v in vals)))
            return d if cls is dict else cls(d)
        if t == "tuple":
            return tuple(self.decode(v) for v in s["v"])
        if t == "tensor":
            i = s.get("i")
            key = (i, s.get("device"))
            if key in self.tensors:
                return self.tensors[key]
            arr = self.array(i)
            dev = _target_device(s.get("device", "cpu"), self.map_location)
            from .device import as_device, backend_for
            try:
                d = as_device(dev)
                b = backend_for(d)
            except backends.BackendUnavailable as e:
                raise backends.BackendUnavailable(
                    f"load: {self.name} holds tensors saved on {s.get('device')!r}, which this machine cannot "
                    f"provide ({e}); pass map_location='cpu' to load them on the CPU") from None
            data = b.asarray(arr, device=d)
            if isinstance(data, np.ndarray) and np.shares_memory(data, arr):
                data = data.copy()  # writable, aligned and independent of the file buffer
            if s.get("parameter"):
                try:
                    from nn.parameter import Parameter
                    out = Parameter(_new_tensor(data), requires_grad=bool(s.get("requires_grad", False)))
                except ImportError:
                    out = _new_tensor(data)
                    out.requires_grad = bool(s.get("requires_grad", False))
            else:
                out = _new_tensor(data)
                if s.get("requires_grad"):
                    out.requires_grad = True
            self.tensors[key] = out
            return out
        if t == "ndarray":
            return self.array(s.get("i")).copy()
        if t == "npscalar":
            return self.array(s.get("i")).reshape(())[()]
        if t == "float":
            v = s.get("v")
            if v not in ("inf", "-inf", "nan"):
                self.fail(f"bad float {v!r}")
            return float(v)
        if t == "complex":
            return complex(self.decode(s["re"]), self.decode(s["im"]))
        if t == "bytes":
            return self.array(s.get("i")).tobytes()
        if t == "dtype":
            dt = np.dtype(str(s.get("v")))
            if dt.kind not in _DTYPE_KINDS:
                self.fail(f"bad dtype {s.get('v')!r}")
            return dt
        if t == "device":
            from .device import device as Device
            return Device(str(s.get("v")))
        self.fail(f"unknown entry type {t!r}")


def load(f, map_location=None, *, weights_only=True, mmap=None):
    """Load an object saved by `save` from a path or binary file object.

    Tensors return as autodiff Tensors with their saved dtype on their saved device, or on
    `map_location` ('cpu', 'cuda', 'cuda:N', an autodiff.device, or a dict {saved: target}).
    Nothing is unpickled: `weights_only` is accepted for compatibility with torch.load and the load
    is always as safe as PyTorch's weights_only=True. Raises CheckpointError (a ValueError) for a
    file that is not a checkpoint, is truncated or fails its SHA-256 check.
    """
    if hasattr(f, "read"):
        buf = f.read()
        name = repr(getattr(f, "name", "<file object>"))
    else:
        path = os.fspath(f)
        name = repr(path)
        with open(path, "rb") as fh:
            buf = fh.read()
    if not isinstance(buf, (bytes, bytearray)):
        raise TypeError(f"load: {name} must be opened in binary mode")
    if len(buf) < len(MAGIC) or buf[:len(MAGIC)] != MAGIC:
        if buf[:2] == b"PK" or buf[:1] == b"\x80":
            raise CheckpointError(f"load: {name} is not an autodiff checkpoint (it looks like a pickle/zip file, "
                                  "e.g. from torch.save; those are not loaded because unpickling can run code)")
        raise CheckpointError(f"load: {name} is not an autodiff checkpoint (bad magic bytes)")
    if len(buf) < len(MAGIC) + 8 + _DIGEST:
        raise CheckpointError(f"load: {name} is truncated ({len(buf)} bytes)")
    body, digest = memoryview(buf)[:-_DIGEST], buf[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise CheckpointError(f"load: {name} failed its SHA-256 integrity check: the file is truncated or was "
                              "modified after it was written")
    (hlen,) = struct.unpack_from("<Q", buf, len(MAGIC))
    hstart = len(MAGIC) + 8
    if hstart + hlen > len(body):
        raise CheckpointError(f"load: {name} has a header longer than the file")
    try:
        header = json.loads(bytes(buf[hstart:hstart + hlen]).decode("utf-8"))
        structure, metas = header["structure"], header["arrays"]
        if not isinstance(metas, list):
            raise TypeError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise CheckpointError(f"load: {name} has a corrupt header") from None
    data_start = hstart + hlen
    data_start += -data_start % _ALIGN
    r = _Reader(memoryview(body), metas, data_start, map_location, name)
    return r.decode(structure)

