"""Adadelta with rho, eps, weight decay and maximize (PyTorch's algorithm)."""
from __future__ import annotations

from autodiff.autograd import no_grad

from .optimizer import Optimizer, _arr, _check_common, _closure_loss, _incr, _params_with_grad, _value

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    r"""Adadelta, PyTorch's `torch.optim.Adadelta` (Zeiler). Per step::

        g = g + weight_decay * p
        v = rho v + (1 - rho) g^2
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho u + (1 - rho) delta^2
        p = p - lr * delta

    State: 'step', 'square_avg' (v), 'acc_delta' (u).
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        _check_common("Adadelta", lr=lr, eps=eps, weight_decay=weight_decay, differentiable=differentiable)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = _closure_loss(closure)
        with no_grad():
            for group in self.param_groups:
                lr, rho, eps = _value(group["lr"]), group["rho"], group["eps"]
                for _, pa, g, st, xp in _params_with_grad(self, group, ("square_avg", "acc_delta"),
                                                          weight_decay="l2"):
                    _incr(st["step"])
                    sq = _arr(st["square_avg"], pa)
                    acc = _arr(st["acc_delta"], pa)
                    sq *= rho
                    sq += (1 - rho) * (g * g)
                    std = xp.sqrt(sq + eps)
                    delta = xp.sqrt(acc + eps)
                    delta /= std
                    delta *= g
                    acc *= rho
                    acc += (1 - rho) * (delta * delta)
                    delta *= lr
                    pa -= delta
        return loss
