"""`python -m autodiff.info`: versions, the backends this machine can run and why not, the GPU.

`collect()` returns the same facts as a dict (used by `bench/gpu_check.py` to label its results).
`--json` prints that dict as JSON.
"""
from __future__ import annotations

import json
import os
import platform
import sys


def _version(mod):
    try:
        m = __import__(mod)
        return getattr(m, "__version__", "?")
    except Exception as e:  # noqa: BLE001 - report, never fail
        return None if isinstance(e, ImportError) else f"broken ({type(e).__name__}: {e})"


def _cuda_version(v):
    """CUDA's integer version (13000) as '13.0'."""
    try:
        v = int(v)
        return f"{v // 1000}.{(v % 1000) // 10}"
    except Exception:  # noqa: BLE001
        return str(v)


def collect() -> dict:
    import autodiff
    from autodiff import backends

    info = {
        "autodiff": autodiff.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": _version("numpy"),
        "numba": _version("numba"),
        "cupy": _version("cupy"),
        "torch": None,
        "default_device": str(autodiff.get_default_device()),
        "cpu_backend": backends.get_cpu_backend().name,
        "env": {k: os.environ[k] for k in ("AUTODIFF_DEVICE", "AUTODIFF_BACKEND", "CUDA_VISIBLE_DEVICES")
                if k in os.environ},
        "backends": {},
        "gpus": [],
    }
    for name in ("numpy", "numba", "cupy"):
        try:
            backends.get_backend(name)
            info["backends"][name] = {"available": True}
        except Exception as e:  # noqa: BLE001 - BackendUnavailable, or anything a broken install raises
            info["backends"][name] = {"available": False, "why": f"{e}"}
    if info["backends"]["cupy"]["available"]:
        cp = backends.get_backend("cupy").xp
        rt = cp.cuda.runtime
        try:
            info["cuda_runtime"] = _cuda_version(rt.runtimeGetVersion())
            info["cuda_driver"] = _cuda_version(rt.driverGetVersion())
        except Exception as e:  # noqa: BLE001
            info["cuda_runtime"] = f"unknown ({e})"
        for i in range(rt.getDeviceCount()):
            p = rt.getDeviceProperties(i)
            name = p.get("name", b"?")
            info["gpus"].append({
                "index": i,
                "name": name.decode() if isinstance(name, bytes) else str(name),
                "memory_gib": round(p.get("totalGlobalMem", 0) / 2 ** 30, 1),
                "compute_capability": f"{p.get('major', '?')}.{p.get('minor', '?')}",
            })
    try:  # from the package metadata: importing torch would take seconds
        from importlib.metadata import version
        info["torch"] = version("torch")
    except Exception:  # noqa: BLE001
        info["torch"] = None
    return info


def format_info(info: dict) -> str:
    lines = [f"autodiff {info['autodiff']}  (python {info['python']}, {info['platform']})"]
    for mod in ("numpy", "numba", "cupy", "torch"):
        v = info.get(mod)
        if v is not None or mod != "torch":
            lines.append(f"  {mod:<7}{v if v is not None else 'not installed'}")
    lines.append("backends:")
    for name, b in info["backends"].items():
        lines.append(f"  {name:<7}{'available' if b['available'] else 'unavailable: ' + b['why']}")
    if info["gpus"]:
        lines.append(f"CUDA runtime {info.get('cuda_runtime')}, driver {info.get('cuda_driver')}")
        for g in info["gpus"]:
            lines.append(f"  cuda:{g['index']}  {g['name']}  {g['memory_gib']} GiB  "
                         f"compute capability {g['compute_capability']}")
    else:
        lines.append("GPU: none usable (see the cupy line above)")
    lines.append(f"default device: {info['default_device']}   CPU backend: {info['cpu_backend']}")
    for k, v in info["env"].items():
        lines.append(f"  {k}={v}")
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    info = collect()
    if "--json" in argv:
        print(json.dumps(info, indent=2))
    else:
        print(format_info(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
