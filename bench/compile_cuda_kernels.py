"""Compile every CUDA kernel of `autodiff/backends/cuda_kernels.py` without a GPU.

    python -m bench.compile_cuda_kernels [--arch 90] [--nvrtc] [--keep DIR]

Needs CuPy importable (no GPU or driver needed) and either `nvcc` on PATH (default) or, with `--nvrtc`,
CuPy's NVRTC library. For each kernel and each dtype the kernels take (float32, float64):

- RawModule sources are compiled with every template instance CuPy asks for (`name_expressions`);
- ElementwiseKernels are turned into the exact CUDA source CuPy would generate, through CuPy's own code
  generator (`cupy._core._kernel._get_elementwise_kernel_code`), with CuPy's headers prepended, for the
  argument layouts the backend uses (1-d contiguous and n-d strided operands; scalars where the wrappers
  pass Python numbers).

Prints one line per kernel and exits 1 when any fails to compile. This checks syntax, types and names:
it does not run anything, so numerical behaviour is only checked by tests/backends/test_cuda_kernels.py
on a GPU (`make gpu-check`).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

# Kernel key in cuda_kernels -> (builder attribute, names of parameters passed as host scalars). Every
# other non-raw parameter is an array. Kept beside the wrappers' call sites: a new kernel must be listed.
ELEMENTWISE = {
    "sce_bwd": ("_sce_bwd_kernel", {"C"}),
    "sgd": ("_sgd_plain_kernel", {"lr", "sign", "wd"}),
    "sgd_m": ("_sgd_momentum_kernel", {"lr", "sign", "wd", "momentum", "dampening", "nesterov", "first"}),
    "adam": ("_adam_kernel", {"lr", "beta1", "beta2", "eps", "wd", "sign", "step_size", "bc2_sqrt",
                              "decoupled"}),
    "adam_ams": ("_adam_amsgrad_kernel", {"lr", "beta1", "beta2", "eps", "wd", "sign", "step_size",
                                          "bc2_sqrt", "decoupled"}),
    "gelu": ("_gelu_kernel", set()),
    "gelu_tanh": ("_gelu_tanh_kernel", set()),
    "silu": ("_silu_kernel", set()),
    "im2col": ("_im2col_kernel", {"C", "H", "W", "KH", "KW", "OH", "OW", "SH", "SW", "PH", "PW", "DH", "DW"}),
    "col2im": ("_col2im_kernel", {"C", "H", "W", "KH", "KW", "OH", "OW", "SH", "SW", "PH", "PW", "DH", "DW"}),
    "maxpool": ("_max_pool_kernel", {"C", "H", "W", "KH", "KW", "OH", "OW", "SH", "SW", "PH", "PW", "DH",
                                     "DW"}),
    "maxpool_bwd": ("_max_pool_bwd_kernel", {"HW", "OHW"}),
}
BIAS_ACTS = ("relu", "gelu", "silu", "none")
DTYPES = ("float32", "float64")


def _elementwise_source(ek, scalars, dtype, ndim):
    """The CUDA source CuPy generates for ElementwiseKernel `ek` with T = dtype, non-raw arrays of `ndim`
    dimensions (contiguous when ndim == 1, as CuPy's reduced view makes them) and raw arrays 1-d."""
    from cupy._core import _carray, _scalar
    from cupy._core import _kernel as K
    import cupy
    nd_kind, idx_kind, sc_kind = 1, 2, 3  # CuPy's _ArgKind values (checked in _check_arg_kinds)
    t = np.dtype(dtype)
    infos = []
    for p in ek.params:
        if p.name == "_ind":
            infos.append(K._ArgInfo(idx_kind, _carray.Indexer, None, ndim, True, True))
            continue
        dt = np.dtype(p.dtype) if p.dtype is not None else t
        if p.name in scalars:
            if p.raw:
                raise ValueError(f"{ek.name}: raw parameter {p.name} listed as a scalar")
            infos.append(K._ArgInfo(sc_kind, _scalar.CScalar, dt, 0, True, True))
        else:
            nd = 1 if p.raw else ndim
            infos.append(K._ArgInfo(nd_kind, cupy.ndarray, dt, nd, nd == 1, True))
    tm = K._TypeMap((("T", t),))
    code = K._get_elementwise_kernel_code(tuple(infos), tm, ek.params, ek.operation, ek.name, ek.preamble)
    header = "".join(f"#include <{h}>\n" for h in _cupy_headers())
    return header + code


def _cupy_headers():
    from cupy._core import core
    return getattr(core, "_cupy_header_list", ["cupy/complex.cuh", "cupy/carray.cuh", "cupy/atomics.cuh"])


def _include_options():
    from cupy._core import core
    opts = [f"-I{core._get_header_dir_path()}"]
    try:
        opts += list(core._get_cccl_include_options())
    except Exception:  # noqa: BLE001 - older CuPy
        pass
    return opts


def _check_arg_kinds():
    """Make sure the _ArgKind values assumed above are CuPy's (1 ndarray, 2 indexer, 3 scalar)."""
    import cupy
    from cupy._core import _carray, _scalar
    from cupy._core import _kernel as K
    ek = cupy.ElementwiseKernel("raw T a, T b", "T c", "c = b;", "ad_probe")
    infos = (K._ArgInfo(1, cupy.ndarray, np.dtype("float32"), 1, True, True),
             K._ArgInfo(3, _scalar.CScalar, np.dtype("float32"), 0, True, True),
             K._ArgInfo(1, cupy.ndarray, np.dtype("float32"), 1, True, True),
             K._ArgInfo(2, _carray.Indexer, None, 1, True, True))
    code = K._get_elementwise_kernel_code(infos, K._TypeMap((("T", np.dtype("float32")),)), ek.params,
                                          ek.operation, ek.name, ek.preamble)
    head = code.split("ad_probe(", 1)[1].split(")", 1)[0]
    if "CArray<float" not in head.split(",")[0] or "const float b" not in head or "CIndexer" not in head:
        raise RuntimeError(f"CuPy's argument kinds changed; generated parameters: {head}")


class Compiler:
    def __init__(self, arch, use_nvrtc, keep):
        self.arch = arch
        self.use_nvrtc = use_nvrtc
        self.keep = keep
        self.nvcc = shutil.which("nvcc")
        if not use_nvrtc and self.nvcc is None:
            raise SystemExit("nvcc not on PATH; pass --nvrtc to use CuPy's NVRTC")

    def compile(self, name, source, extra=()):
        """Returns None when it compiles, else the compiler's message."""
        if self.keep:
            os.makedirs(self.keep, exist_ok=True)
            with open(os.path.join(self.keep, name + ".cu"), "w") as f:
                f.write(source)
        if self.use_nvrtc:
            return self._nvrtc(source, extra)
        with tempfile.TemporaryDirectory() as d:
            cu = os.path.join(d, "k.cu")
            with open(cu, "w") as f:
                f.write(source)
            cmd = [self.nvcc, "-c", "-x", "cu", "-std=c++17", f"--gpu-architecture=sm_{self.arch}",
                   "-Werror", "cross-execution-space-call", *_include_options(), cu, "-o",
                   os.path.join(d, "k.o")]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                return (p.stdout + p.stderr).strip()
            warn = "\n".join(line for line in (p.stdout + p.stderr).splitlines() if "warning" in line)
            return ("WARNINGS\n" + warn) if warn else None

    def _nvrtc(self, source, name_expressions):
        from cupy.cuda import compiler
        try:
            compiler._NVRTCProgram(source, "k.cu", (), (), name_expressions=tuple(name_expressions) or None,
                                   method="cubin").compile(
                (f"-arch=sm_{self.arch}", "-std=c++17", "--device-as-default-execution-space",
                 *_include_options()), None)
        except Exception as e:  # noqa: BLE001 - CompileException carries the log
            return f"{type(e).__name__}: {e}"
        return None


def _raw_module_source(source, name_expressions):
    """nvcc has no name_expressions: instantiate each template kernel by taking its address."""
    lines = [source, "// instantiations CuPy's RawModule(name_expressions=...) would request"]
    for i, ne in enumerate(name_expressions):
        lines.append(f"static void* ad_inst_{i} __attribute__((used)) = (void*)&{ne};")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.compile_cuda_kernels", description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="90", help="SM version (default 90: H100/H200)")
    ap.add_argument("--nvrtc", action="store_true", help="compile with CuPy's NVRTC instead of nvcc")
    ap.add_argument("--keep", default=None, help="write every generated .cu file into this directory")
    args = ap.parse_args(argv)
    try:
        import cupy
    except ImportError as e:
        raise SystemExit(f"CuPy is needed to generate the kernel sources ({e})") from None
    from autodiff.backends import cuda_kernels as K
    _check_arg_kinds()
    comp = Compiler(args.arch, args.nvrtc, args.keep)
    print(f"CuPy {cupy.__version__}; compiling with {'NVRTC' if args.nvrtc else comp.nvcc} for sm_{args.arch}")
    failures = 0
    total = 0
    t0 = time.perf_counter()

    def report(label, err):
        nonlocal failures, total
        total += 1
        if err is None:
            print(f"  ok    {label}")
        elif err.startswith("WARNINGS"):
            print(f"  ok    {label} (with warnings)\n" + "\n".join("        " + x for x in err.splitlines()[1:]))
        else:
            failures += 1
            print(f"  FAIL  {label}\n" + "\n".join("        " + x for x in err.splitlines()[:40]))

    # RawModule sources
    src = K._SCE_SOURCE
    names = K._ROW_KERNELS
    body = src if args.nvrtc else _raw_module_source(src, names)
    report("RawModule sce/softmax_rows " + ", ".join(names), comp.compile("raw_sce", body, names))

    # ElementwiseKernels, through CuPy's generator
    kernels = [(key, getattr(K, attr)(), scalars) for key, (attr, scalars) in ELEMENTWISE.items()]
    for act in BIAS_ACTS:
        kernels.append((f"bias_{act}", K._bias_act_kernel(act)(), set()))
    listed = {attr for attr, _ in ELEMENTWISE.values()} | {"_bias_act_kernel", "_sce_module"}
    unlisted = sorted(n for n in vars(K) if n.startswith("_") and n.endswith(("_kernel", "_module"))
                      and callable(getattr(K, n)) and n not in listed)
    if unlisted:
        report("every kernel builder listed in ELEMENTWISE", f"not listed (so not compiled): {unlisted}")
    for key, ek, scalars in kernels:
        for dtype in DTYPES:
            # CuPy's type resolution for the call the wrapper makes (scalars take T from the arrays)
            t = np.dtype(dtype).type
            ins = tuple(None if p.name in scalars else (np.dtype(p.dtype).type if p.dtype is not None else t)
                        for p in ek.in_params)
            outs = tuple(np.dtype(p.dtype).type if p.dtype is not None else t for p in ek.out_params)
            try:
                ek._decide_params_type(ins, outs)
            except Exception as e:  # noqa: BLE001
                report(f"{ek.name} [{dtype}] type resolution", f"{type(e).__name__}: {e}")
            for ndim in (1, 2):
                try:
                    code = _elementwise_source(ek, scalars, dtype, ndim)
                except Exception as e:  # noqa: BLE001
                    report(f"{ek.name} [{dtype}, {ndim}-d]", f"source generation failed: {type(e).__name__}: {e}")
                    continue
                report(f"{ek.name} [{dtype}, {ndim}-d]", comp.compile(f"{key}_{dtype}_{ndim}d", code))
    print(f"{total - failures}/{total} compiled in {time.perf_counter() - t0:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
