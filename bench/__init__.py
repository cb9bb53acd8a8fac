"""Benchmarks. `python -m bench` runs the backend-comparison suite; `bench.run(...)` is its Python API
(documented in bench/__main__.py). Loaded lazily so `python -m bench.<script>` stays light."""


def run(*args, **kwargs):
    from .suite import run as _run
    return _run(*args, **kwargs)


def to_markdown(results):
    from .common import to_markdown as _md
    return _md(results)


def machine_info():
    from .common import machine_info as _mi
    return _mi()
