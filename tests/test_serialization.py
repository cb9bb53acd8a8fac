"""autodiff.save / autodiff.load: round trips, exact paths, atomic writes, integrity and safety."""
import hashlib
import io
import json
import os
import struct
from collections import Counter, OrderedDict

import numpy as np
import pytest

import autodiff
import optim
from autodiff.serialization import MAGIC, CheckpointError
from conftest import to_numpy


def _roundtrip(obj, path, **kw):
    autodiff.save(obj, path)
    return autodiff.load(path, **kw)


DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_,
          np.complex64]


@pytest.mark.parametrize("dtype", DTYPES, ids=[np.dtype(d).name for d in DTYPES])
def test_tensor_dtypes_and_shapes(dtype, tmp_path, device):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((3, 4)) * 10, rng.standard_normal(()), np.zeros((0, 3)),
              (rng.standard_normal((4, 5)) * 10).T]  # non-contiguous
    ts = [autodiff.tensor(a.astype(dtype), device=device) for a in arrays]
    out = _roundtrip({"ts": ts}, tmp_path / "f.ckpt")
    for t, o in zip(ts, out["ts"]):
        assert isinstance(o, autodiff.Tensor)
        assert o.dtype == t.dtype and o.shape == t.shape and o.device == t.device
        np.testing.assert_array_equal(to_numpy(o), to_numpy(t))
        assert not o.requires_grad


def test_nested_structure_roundtrip(tmp_path):
    t = autodiff.randn(2, 3)
    obj = OrderedDict(
        a=t, b=[1, 2.5, -0.0, None, "x", True, False, (t, 3)], c={0: "int key", (1, "x"): "tuple key", 2.5: None},
        d=Counter({30: 1, 80: 2}), e=np.arange(6).reshape(2, 3), f=np.float32(2.5), g=np.int64(7),
        h=[float("inf"), -float("inf")], i=b"\x00\xffbytes", j=1 + 2j, k=np.dtype("float32"), big=2 ** 70,
        empty={}, nested={"deeper": {"list": [[], [{}]]}})
    out = _roundtrip(obj, tmp_path / "f")
    assert type(out) is OrderedDict and list(out) == list(obj)
    assert out["b"][:7] == [1, 2.5, -0.0, None, "x", True, False]
    assert type(out["b"][1]) is float and type(out["b"][0]) is int and type(out["b"][5]) is bool
    assert isinstance(out["b"][7], tuple) and out["b"][7][0] is out["a"]  # shared tensor loads as one object
    assert out["c"] == {0: "int key", (1, "x"): "tuple key", 2.5: None}
    assert type(out["d"]) is Counter and out["d"] == Counter({30: 1, 80: 2})
    assert isinstance(out["e"], np.ndarray) and out["e"].dtype == np.int64 and out["e"].flags.writeable
    np.testing.assert_array_equal(out["e"], obj["e"])
    assert type(out["f"]) is np.float32 and out["f"] == 2.5 and type(out["g"]) is np.int64
    assert out["h"] == [float("inf"), -float("inf")]
    assert out["i"] == b"\x00\xffbytes" and out["j"] == 1 + 2j and out["k"] == np.float32 and out["big"] == 2 ** 70
    assert out["empty"] == {} and out["nested"] == {"deeper": {"list": [[], [{}]]}}
    nan = _roundtrip([float("nan")], tmp_path / "nan")
    assert np.isnan(nan[0])


def test_requires_grad_and_parameter_kept(tmp_path):
    w = autodiff.ones(2, requires_grad=True)
    out = _roundtrip({"w": w}, tmp_path / "w")
    assert out["w"].requires_grad and out["w"].is_leaf
    from nn.parameter import Parameter
    p = Parameter(autodiff.ones(3))
    out = _roundtrip([p], tmp_path / "p")
    assert isinstance(out[0], Parameter) and out[0].requires_grad


def test_loaded_tensors_are_independent_and_writable(tmp_path):
    t = autodiff.arange(4.0)
    out = _roundtrip([t, t.clone()], tmp_path / "x")
    out[0].data[0] = 42
    assert float(out[1][0]) == 0 and float(t[0]) == 0


def test_exact_path_no_extension_and_pathlike(tmp_path):
    for name in ("ckpt", "model.pt", "weights.npz", "state.bin"):
        autodiff.save({"a": 1}, str(tmp_path / name))
        assert (tmp_path / name).exists()
    assert sorted(os.listdir(tmp_path)) == ["ckpt", "model.pt", "state.bin", "weights.npz"]  # no .npz appended
    assert autodiff.load(tmp_path / "model.pt") == {"a": 1}


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="parent directory .* does not exist"):
        autodiff.save({}, tmp_path / "nope" / "ck")


def test_file_objects(tmp_path):
    buf = io.BytesIO()
    autodiff.save({"x": autodiff.ones(2)}, buf)
    buf.seek(0)
    out = autodiff.load(buf)
    np.testing.assert_array_equal(to_numpy(out["x"]), [1, 1])
    with open(tmp_path / "f", "wb") as fh:
        autodiff.save([1, 2], fh)
    with open(tmp_path / "f", "rb") as fh:
        assert autodiff.load(fh) == [1, 2]


def test_atomic_overwrite_and_failed_save_leaves_old_file(tmp_path):
    path = tmp_path / "ck"
    autodiff.save({"v": 1}, path)
    autodiff.save({"v": 2}, path)
    assert autodiff.load(path) == {"v": 2}
    with pytest.raises(TypeError, match=r"cannot save an object of type .*object at \['bad'\]\[1\]"):
        autodiff.save({"v": 3, "bad": [1, object()]}, path)
    assert autodiff.load(path) == {"v": 2}

    # an error while writing: the temporary file is removed and the target untouched
    big = autodiff.zeros(10)
    orig = os.replace

    def failing_replace(a, b):
        raise OSError("disk full (simulated)")

    os.replace = failing_replace
    try:
        with pytest.raises(OSError, match="disk full"):
            autodiff.save({"v": big}, path)
    finally:
        os.replace = orig
    assert autodiff.load(path) == {"v": 2}
    assert sorted(os.listdir(tmp_path)) == ["ck"]  # no temporary files left behind
    # the file gets normal permissions (the umask), not a private temp file's 0600
    umask = os.umask(0)
    os.umask(umask)
    assert (os.stat(path).st_mode & 0o777) == (0o666 & ~umask)


def test_truncated_file_raises(tmp_path):
    path = tmp_path / "ck"
    autodiff.save({"w": autodiff.randn(100)}, path)
    raw = path.read_bytes()
    for n in (len(raw) - 1, len(raw) // 2, 20, 9):
        path.write_bytes(raw[:n])
        with pytest.raises(CheckpointError, match="truncated|integrity"):
            autodiff.load(path)
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="not an autodiff checkpoint"):
        autodiff.load(path)


def test_tampered_file_raises(tmp_path):
    path = tmp_path / "ck"
    autodiff.save({"w": autodiff.randn(100), "lr": 0.1}, path)
    raw = bytearray(path.read_bytes())
    for pos in (len(MAGIC) + 10, len(raw) // 2, len(raw) - 40, len(raw) - 1):
        bad = bytearray(raw)
        bad[pos] ^= 0x01
        path.write_bytes(bytes(bad))
        with pytest.raises(CheckpointError, match="SHA-256 integrity check"):
            autodiff.load(path)
    assert issubclass(CheckpointError, ValueError)


def test_not_a_checkpoint(tmp_path):
    import pickle
    path = tmp_path / "p"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError, match="looks like a pickle/zip file"):
        autodiff.load(path)
    np.savez(tmp_path / "z.npz", a=np.ones(2))
    with pytest.raises(CheckpointError, match="not an autodiff checkpoint"):
        autodiff.load(tmp_path / "z.npz")


def _forge(structure, arrays_meta, data=b""):
    """A file with a valid digest but hostile contents (what an attacker who can write the file
    could produce): loading must still refuse anything that is not plain data."""
    header = json.dumps({"structure": structure, "arrays": arrays_meta}).encode()
    head = MAGIC + struct.pack("<Q", len(header)) + header
    head += b"\0" * (-len(head) % 64)
    body = head + data
    return body + hashlib.sha256(body).digest()


def test_hostile_content_with_valid_digest_is_refused(tmp_path):
    path = tmp_path / "evil"
    cases = [
        ({"__t": "ndarray", "i": 0}, [{"dtype": "|O", "shape": [1], "offset": 0, "nbytes": 8}], b"\0" * 8),
        ({"__t": "ndarray", "i": 0}, [{"dtype": "<f8", "shape": [1000], "offset": 0, "nbytes": 8000}], b"\0" * 8),
        ({"__t": "ndarray", "i": 3}, [], b""),
        ({"__t": "pickle", "v": "cos\nsystem\n"}, [], b""),
        ({"not": "tagged"}, [], b""),
        ({"__t": "dict", "cls": "dict", "k": [[1]], "v": [1]}, [], b""),
    ]
    for structure, meta, data in cases:
        path.write_bytes(_forge(structure, meta, data))
        with pytest.raises(CheckpointError, match="not a valid checkpoint"):
            autodiff.load(path)
    # an unknown dict class name falls back to dict (no import by name)
    path.write_bytes(_forge({"__t": "dict", "cls": "os.system", "k": ["a"], "v": [1]}, []))
    assert autodiff.load(path) == {"a": 1}


def test_unsupported_objects():
    with pytest.raises(TypeError, match="cannot save an object of type"):
        autodiff.save(lambda: 0, io.BytesIO())
    with pytest.raises(TypeError, match="dict key"):
        autodiff.save({frozenset(): 1}, io.BytesIO())
    with pytest.raises(TypeError, match="dtype object"):
        autodiff.save(np.array([None]), io.BytesIO())


def test_map_location(tmp_path, device):
    t = autodiff.arange(6.0, device=device).reshape(2, 3)
    autodiff.save({"t": t}, tmp_path / "m")
    for loc in ("cpu", autodiff.device("cpu"), {str(t.device): "cpu"}):
        out = autodiff.load(tmp_path / "m", map_location=loc)
        assert out["t"].device == "cpu"
        np.testing.assert_array_equal(to_numpy(out["t"]), to_numpy(t))
    if device == "cuda":
        out = autodiff.load(tmp_path / "m", map_location="cuda")
        assert out["t"].device.type == "cuda"
    with pytest.raises(TypeError, match="map_location must be"):
        autodiff.load(tmp_path / "m", map_location=3.5)


def test_cuda_tensor_without_gpu_suggests_map_location(tmp_path):
    from conftest import CUDA_OK
    if CUDA_OK:
        pytest.skip("this machine has a GPU")
    # a file as saved on a GPU machine
    meta = [{"dtype": "<f4", "shape": [2], "offset": 0, "nbytes": 8}]
    (tmp_path / "c").write_bytes(_forge({"__t": "tensor", "i": 0, "device": "cuda:0"}, meta,
                                        np.ones(2, np.float32).tobytes()))
    with pytest.raises(autodiff.BackendUnavailable, match="map_location='cpu'"):
        autodiff.load(tmp_path / "c")
    out = autodiff.load(tmp_path / "c", map_location="cpu")
    assert out.dtype == np.float32 and out.device == "cpu"
    np.testing.assert_array_equal(to_numpy(out), [1, 1])


def test_optimizer_state_dict_roundtrip(tmp_path, device):
    w = autodiff.tensor(np.linspace(-1, 1, 5, dtype=np.float32), device=device, requires_grad=True)
    opt = optim.NAdam([w], lr=0.1)
    for _ in range(3):
        w.grad = autodiff.tensor(np.ones(5, np.float32), device=device)
        opt.step()
    autodiff.save(opt.state_dict(), tmp_path / "opt")
    sd = autodiff.load(tmp_path / "opt")
    assert set(sd["state"]) == {0} and sd["param_groups"][0]["params"] == [0]
    assert sd["param_groups"][0]["betas"] == (0.9, 0.999)
    st = sd["state"][0]
    assert st["exp_avg"].dtype == np.float32 and st["step"].dtype == np.float32 and float(st["step"]) == 3
    w2 = autodiff.tensor(to_numpy(w), device=device, requires_grad=True)
    opt2 = optim.NAdam([w2], lr=0.5)
    opt2.load_state_dict(sd)
    for o, p in ((opt, w), (opt2, w2)):
        p.grad = autodiff.tensor(np.full(5, 0.5, np.float32), device=device)
        o.step()
    np.testing.assert_array_equal(to_numpy(w), to_numpy(w2))
