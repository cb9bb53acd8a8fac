"""Finite-difference checks of analytical gradients (float64 central differences).

Works on every backend: elements are perturbed in place through their multi-index, so inputs may
be non-contiguous views, and outputs are copied to the host for the comparison (a check, not a hot
path, so host syncs are fine here).
"""
from __future__ import annotations

import numpy as np

from .autograd import grad as _grad
from .tensor import Tensor


class GradcheckError(RuntimeError, AssertionError):
    """A gradient check failed (a RuntimeError as PyTorch's, and an AssertionError for test runners)."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _float_outputs(fn, inputs):
    out = fn(*inputs)
    return [o for o in _as_tuple(out) if isinstance(o, Tensor) and o.dtype.kind == "f"]


def _host(t):
    from . import backends
    return np.array(backends._by_array_type[type(t.data)].to_numpy(t.data), dtype=np.float64)  # a copy


def _numerical_column(fn, inputs, x, idx, eps):
    """d outputs / d x[idx] by central differences; a list of flat float64 arrays."""
    arr = x.data
    orig = arr[idx].item()
    arr[idx] = orig + eps
    plus = [_host(o).reshape(-1) for o in _float_outputs(fn, inputs)]
    arr[idx] = orig - eps
    minus = [_host(o).reshape(-1) for o in _float_outputs(fn, inputs)]
    arr[idx] = orig
    return [(p - m) / (2 * eps) for p, m in zip(plus, minus)]


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, name=None):
    """Compare the vector-Jacobian products of `fn` at `inputs` with central differences.

    Every input that requires grad must be float64 (finite differences in lower precision are
    noise). For each floating output a fixed random cotangent v is drawn; the analytical
    `grad(sum(v * out), x)` is compared, element by element, with the numerical derivative of
    `sum(v * out)`. On failure raises GradcheckError naming the function, the input index, the
    element and both values (or returns False with raise_exception=False).
    """
    inputs = _as_tuple(inputs)
    name = name or getattr(fn, "__name__", "fn")
    diff_idx = [k for k, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not diff_idx:
        raise ValueError(f"gradcheck({name}): no input requires grad")
    for k in diff_idx:
        if inputs[k].dtype != np.float64:
            raise ValueError(f"gradcheck({name}): input {k} is {inputs[k].dtype}; use float64 inputs")
        if not getattr(inputs[k].data.flags, "writeable", True):  # CuPy flags have no 'writeable'
            raise ValueError(f"gradcheck({name}): input {k} is not writeable (a broadcast view?)")
    outs = _float_outputs(fn, inputs)
    if not outs:
        raise ValueError(f"gradcheck({name}): fn returned no floating tensor")
    rng = np.random.default_rng(0)
    cotangents = [rng.standard_normal(o.shape) for o in outs]
    diff_inputs = [inputs[k] for k in diff_idx]
    pairs = [(o, v) for o, v in zip(outs, cotangents) if o.requires_grad]
    if pairs:
        vjp = _grad([o for o, _ in pairs], diff_inputs,
                    grad_outputs=[Tensor(v, dtype=o.dtype, device=o.device) for o, v in pairs],
                    allow_unused=True)
    else:
        vjp = [None] * len(diff_inputs)
    # Numerical columns run with grad enabled: fn may itself differentiate (gradgradcheck).
    for k, ana in zip(diff_idx, vjp):
        x = inputs[k]
        shape = tuple(x.shape)
        ana = np.zeros(shape) if ana is None else _host(ana)
        if ana.shape != shape:
            raise GradcheckError(f"gradcheck({name}): gradient for input {k} has shape {ana.shape}, "
                                 f"expected {shape}")
        for idx in np.ndindex(*shape):
            cols = _numerical_column(fn, inputs, x, idx, eps)
            num = float(sum((c * v.reshape(-1)).sum() for c, v in zip(cols, cotangents)))
            a = float(ana[idx])
            if not (abs(a - num) <= atol + rtol * abs(num) or (np.isnan(a) and np.isnan(num)) or a == num):
                msg = (f"gradcheck({name}): gradient mismatch for input {k} (shape {shape}), element {idx}: "
                       f"analytical {a!r} vs numerical {num!r}")
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, name=None):
    """gradcheck of the first-order VJP (built with create_graph=True) as a function of the inputs."""
    inputs = _as_tuple(inputs)
    name = name or getattr(fn, "__name__", "fn")
    diff_idx = [k for k, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    outs = _float_outputs(fn, inputs)
    rng = np.random.default_rng(1)
    cot = [Tensor(rng.standard_normal(o.shape), device=o.device) for o in outs]

    def first_order(*xs):
        os_ = _float_outputs(fn, xs)
        keep = [(o, c) for o, c in zip(os_, cot) if o.requires_grad]
        if not keep:
            return ()
        gs = _grad([o for o, _ in keep], [xs[k] for k in diff_idx], grad_outputs=[c for _, c in keep],
                   create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_order, inputs, eps=eps, atol=atol, rtol=rtol, raise_exception=raise_exception,
                     name=f"grad of {name}")
