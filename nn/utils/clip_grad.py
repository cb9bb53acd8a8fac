"""Gradient clipping (in place on `.grad`, no host synchronisation unless error_if_nonfinite=True)."""
from __future__ import annotations

import math

from autodiff import Tensor, autograd
from autodiff.backends import backend_of


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The norm of the norms of `tensors` (as one 0-d Tensor on their device)."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = [t for t in tensors if t is not None]
    norm_type = float(norm_type)
    if not tensors:
        return Tensor(0.0)
    xp = backend_of(tensors[0].data).xp
    if math.isinf(norm_type):
        norms = [xp.abs(t.data).max() for t in tensors if t.data.size]
        total = xp.stack(norms).max() if norms else xp.asarray(0.0, dtype=tensors[0].dtype)
    else:
        parts = [(xp.abs(t.data.astype(xp.float64 if t.dtype == xp.float64 else xp.float32)) ** norm_type).sum()
                 for t in tensors]
        total = xp.sum(xp.stack(parts)) ** (1.0 / norm_type)
    total = xp.asarray(total, dtype=tensors[0].dtype)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
                           "it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")
    return autograd._new_tensor(total)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale all gradients together so that their total `norm_type` norm is at most max_norm; returns the
    total norm before clipping (a 0-d Tensor). The scale min(1, max_norm / (norm + 1e-6)) is applied on the
    device without reading it back."""
    grads = _grads(parameters)
    if not grads:
        return Tensor(0.0)
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    xp = backend_of(total.data).xp
    coef = xp.minimum(float(max_norm) / (total.data + 1e-6), 1.0)
    for g in grads:
        g.data *= coef.astype(g.dtype)
        g._vc[0] += 1
    return total


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scale the gradients by min(1, max_norm / (total_norm + 1e-6)) in place, given a total norm computed
    beforehand (e.g. by get_total_norm), as PyTorch."""
    grads = _grads(parameters)
    if not grads:
        return
    tn = total_norm.data if isinstance(total_norm, Tensor) else total_norm
    xp = backend_of(grads[0].data).xp
    coef = xp.minimum(float(max_norm) / (xp.asarray(tn) + 1e-6), 1.0)
    for g in grads:
        g.data *= coef.astype(g.dtype)
        g._vc[0] += 1


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Deprecated alias of clip_grad_norm_."""
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element to [-clip_value, clip_value] in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        xp = backend_of(g.data).xp
        xp.clip(g.data, -clip_value, clip_value, out=g.data)
        g._vc[0] += 1
