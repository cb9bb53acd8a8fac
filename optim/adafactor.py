"""Adafactor (PyTorch's `torch.optim.Adafactor`): factored second moments for matrices."""
from __future__ import annotations

import math

import numpy as np

from autodiff.autograd import _new_tensor, no_grad

from .optimizer import Optimizer, _arr, _closure_loss, _incr, _lerp_, _params_with_grad, _value

__all__ = ["Adafactor"]


class Adafactor(Optimizer):
    r"""Adafactor, PyTorch's algorithm (Shazeer & Stern, with PyTorch's defaults and relative step). Per step t::

        beta2_t = 1 - t^beta2_decay;  rho = min(lr, 1/sqrt(t));  alpha = max(eps2, RMS(p)) * rho
        p *= 1 - lr * weight_decay
        matrices: row/col means of g^2 averaged (lerp), V = R C / mean(R);  vectors: V = lerp(V, g^2)
        u = g / sqrt(max(V, eps1^2));  p -= alpha / max(1, RMS(u) / d) * u

    State: 'step', and 'row_var' / 'col_var' (factored over the last two dimensions) or 'variance'. Like
    PyTorch's it reads a few scalars on the host per parameter (the step count and two norms).
    """

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, *,
                 foreach=None, maximize=False):
        if not 0.0 <= _value(lr):
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = _closure_loss(closure)
        with no_grad():
            for group in self.param_groups:
                lr = _value(group["lr"])
                eps1, eps2 = group["eps"]
                d, wd, decay = group["d"], group["weight_decay"], group["beta2_decay"]
                # weight decay is applied below, after alpha has read RMS(p)
                for _, pa, g, st, xp in _params_with_grad(self, group):
                    if "row_var" not in st and "variance" not in st:
                        if g.ndim > 1:
                            st["row_var"] = _new_tensor(xp.zeros(g.shape[:-1] + (1,), dtype=g.dtype))
                            st["col_var"] = _new_tensor(xp.zeros(g.shape[:-2] + (1,) + g.shape[-1:], dtype=g.dtype))
                        else:
                            st["variance"] = _new_tensor(xp.zeros_like(g))
                    e1 = float(np.finfo(pa.dtype).eps) if eps1 is None else eps1
                    step = _incr(st["step"])
                    one_minus_beta2 = step ** decay
                    rho = min(lr, 1 / (step ** 0.5))
                    alpha = max(eps2, float(xp.sqrt((pa.astype(np.float64) ** 2).sum())) / math.sqrt(pa.size)) * rho
                    if wd != 0:
                        pa *= 1 - lr * wd
                    if g.ndim > 1:
                        rv, cv = _arr(st["row_var"], pa), _arr(st["col_var"], pa)
                        _lerp_(xp, rv, (g * g).sum(-1, keepdims=True) / g.shape[-1], one_minus_beta2)
                        _lerp_(xp, cv, (g * g).sum(-2, keepdims=True) / g.shape[-2], one_minus_beta2)
                        var = xp.matmul(rv, cv)
                        var /= xp.maximum(rv.mean(-2, keepdims=True), e1)
                    else:
                        v = _arr(st["variance"], pa)
                        _lerp_(xp, v, g * g, one_minus_beta2)
                        var = v.copy()
                    upd = 1 / xp.sqrt(xp.maximum(var, e1 * e1))
                    upd *= g
                    denom = max(1.0, float(xp.sqrt((upd.astype(np.float64) ** 2).sum())) / (math.sqrt(upd.size) * d))
                    pa -= (alpha / denom) * upd
        return loss
