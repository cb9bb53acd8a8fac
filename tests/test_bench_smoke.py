"""Smoke test of the benchmark suite's plumbing (not a timing test: no figure is asserted)."""
import bench


def test_suite_runs_and_reports_every_candidate():
    res = bench.run(workloads=["overhead", "cross_entropy"], backends=["numpy"], quick=True,
                    torch_device="none", repeats=1, log=lambda *a, **k: None)
    assert res, "the suite returned no results"
    errors = [r for r in res if r.get("error")]
    assert not errors, errors
    for r in res:
        assert r["median_s"] > 0 and r["min_s"] <= r["median_s"] <= r["max_s"]
    md = bench.to_markdown(res)
    assert "overhead" in md and "cross_entropy" in md


def test_overhead_script_smoke():
    import bench.overhead as ov
    assert callable(getattr(ov, "main", None))
