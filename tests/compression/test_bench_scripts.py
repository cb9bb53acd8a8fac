"""The compression benchmarks run (tiny sizes; no timing is asserted, only what must hold exactly)."""
import bench.checkpoint_memory as ckpt
import bench.compression as comp


def test_compression_bench_smoke(capsys):
    res = comp.main(["--hidden", "32", "--batch", "8", "--repeats", "1"])
    assert all(r["max_abs_diff"] < 1e-5 for r in res["structured"])
    assert res["cnn"]["max_abs_diff"] < 1e-5
    assert res["cnn"]["params"]["shrunk"] < res["cnn"]["params"]["dense"]
    assert "shrunk 75% rows" in capsys.readouterr().out


def test_checkpoint_memory_bench_smoke():
    rows = ckpt.main(["--depth", "8", "--width", "16", "--batch", "64", "--repeats", "1"])
    assert [r["config"] for r in rows][0] == "plain" and len(rows) == 4
    assert all(r["peak_bytes"] > 0 for r in rows)
