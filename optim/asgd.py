"""ASGD: averaged stochastic gradient descent (PyTorch's algorithm)."""
from __future__ import annotations

from autodiff.autograd import no_grad

from .optimizer import Optimizer, _arr, _check_common, _closure_loss, _incr, _params_with_grad, _value

__all__ = ["ASGD"]


class ASGD(Optimizer):
    r"""ASGD, PyTorch's `torch.optim.ASGD`. Per step t::

        g = g + weight_decay * p;   p = p * (1 - lambd * eta) - eta * g
        ax = p if mu == 1 else ax + mu * (p - ax)
        eta = lr / (1 + lambd * lr * t)^alpha;   mu = 1 / max(1, t - t0)

    State: 'step', 'eta', 'mu' (0-d CPU scalars, as PyTorch) and 'ax' (the running average of p).
    """

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, foreach=None,
                 maximize=False, differentiable=False, capturable=False):
        _check_common("ASGD", lr=lr, weight_decay=weight_decay, differentiable=differentiable)
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = _closure_loss(closure)
        with no_grad():
            for group in self.param_groups:
                lr = _value(group["lr"])
                lambd, alpha, t0 = group["lambd"], group["alpha"], group["t0"]
                for _, pa, g, st, _ in _params_with_grad(self, group, ("ax",), scalars={"eta": lr, "mu": 1.0},
                                                         weight_decay="l2"):
                    step = _incr(st["step"])
                    eta = float(st["eta"].data)
                    pa *= 1 - lambd * eta
                    pa -= eta * g
                    ax = _arr(st["ax"], pa)
                    mu = float(st["mu"].data)
                    if mu != 1:
                        ax += (pa - ax) * mu
                    else:
                        ax[...] = pa
                    st["eta"].data[...] = lr / ((1 + lambd * lr * step) ** alpha)
                    st["mu"].data[...] = 1 / max(1, step - t0)
        return loss
