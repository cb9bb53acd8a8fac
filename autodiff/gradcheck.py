"""Finite-difference checks of analytical gradients (float64 central differences)."""
from __future__ import annotations

import numpy as np

from .autograd import grad as _grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    pass


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _flat_outputs(fn, inputs):
    out = fn(*inputs)
    outs = [o for o in _as_tuple(out) if isinstance(o, Tensor) and o.dtype.kind == "f"]
    return outs


def _numerical_jacobian_column(fn, inputs, i, j, eps):
    """d outputs / d inputs[i].flat[j] by central differences; returns a list of flat arrays."""
    x = inputs[i]
    flat = x.data.reshape(-1)
    orig = flat[j].item()
    flat[j] = orig + eps
    plus = [np.asarray(o.detach().numpy(), dtype=np.float64).reshape(-1).copy() for o in _flat_outputs(fn, inputs)]
    flat[j] = orig - eps
    minus = [np.asarray(o.detach().numpy(), dtype=np.float64).reshape(-1).copy() for o in _flat_outputs(fn, inputs)]
    flat[j] = orig
    return [(p - m) / (2 * eps) for p, m in zip(plus, minus)]


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, name=None):
    """Compare the vector-Jacobian products of `fn` at `inputs` with central differences.

    Every floating input that requires grad must be float64 (finite differences in lower precision
    are noise). On failure raises GradcheckError naming the op, the input index, the flat element
    and both values.
    """
    inputs = _as_tuple(inputs)
    name = name or getattr(fn, "__name__", "fn")
    diff_idx = [k for k, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not diff_idx:
        raise ValueError(f"gradcheck({name}): no input requires grad")
    for k in diff_idx:
        if inputs[k].dtype != np.float64:
            raise ValueError(f"gradcheck({name}): input {k} is {inputs[k].dtype}; use float64 inputs")
        if inputs[k].device.type != "cpu":
            raise ValueError(f"gradcheck({name}): inputs must be on the CPU (finite differences write elements)")
    outs = _flat_outputs(fn, inputs)
    if not outs:
        raise ValueError(f"gradcheck({name}): fn returned no floating tensor")
    rng = np.random.default_rng(0)
    # Analytical: for each output, a random cotangent v; VJP = grad(sum(v * out)).
    cotangents = [rng.standard_normal(o.shape) for o in outs]
    diff_inputs = [inputs[k] for k in diff_idx]
    outs_rg = [o for o in outs if o.requires_grad]
    if outs_rg:
        vjp = _grad([o for o in outs if o.requires_grad],
                    diff_inputs,
                    grad_outputs=[Tensor(v, dtype=o.dtype) for v, o in zip(cotangents, outs) if o.requires_grad],
                    allow_unused=True)
    else:
        vjp = [None] * len(diff_inputs)
    if True:  # numerical columns run with grad enabled: fn may itself differentiate (gradgradcheck)
        for k, ana in zip(diff_idx, vjp):
            x = inputs[k]
            ana = np.zeros(x.shape) if ana is None else ana.detach().numpy().astype(np.float64)
            ana = ana.reshape(-1)
            for j in range(x.data.size):
                cols = _numerical_jacobian_column(fn, inputs, k, j, eps)
                num = float(sum((c * v.reshape(-1)).sum() for c, v in zip(cols, cotangents)))
                a = float(ana[j])
                if not abs(a - num) <= atol + rtol * abs(num):
                    msg = (f"gradcheck({name}): gradient mismatch for input {k} (shape {tuple(x.shape)}), "
                           f"element {np.unravel_index(j, x.shape) if x.ndim else ()}: analytical {a!r} vs "
                           f"numerical {num!r}")
                    if raise_exception:
                        raise GradcheckError(msg)
                    return False
    return True


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, name=None):
    """gradcheck of the first-order VJP (with create_graph=True) as a function of the inputs."""
    inputs = _as_tuple(inputs)
    name = name or getattr(fn, "__name__", "fn")
    diff_idx = [k for k, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    outs = _flat_outputs(fn, inputs)
    rng = np.random.default_rng(1)
    cot = [Tensor(rng.standard_normal(o.shape)) for o in outs]

    def first_order(*xs):
        os_ = _flat_outputs(fn, xs)
        gs = _grad(os_, [xs[k] for k in diff_idx], grad_outputs=cot, create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_order, inputs, eps=eps, atol=atol, rtol=rtol, raise_exception=raise_exception,
                     name=f"grad of {name}")
