"""Lion (EvoLved Sign Momentum, Chen et al. 2023)."""
from __future__ import annotations

from autodiff.autograd import no_grad

from .optimizer import Optimizer, _arr, _check_common, _closure_loss, _params_with_grad, _value

__all__ = ["Lion"]


class Lion(Optimizer):
    r"""Lion, Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms" (Algorithm 2).

    PyTorch has no Lion; this follows the paper and the reference `lion-pytorch` package
    (same defaults lr=1e-4, betas=(0.9, 0.99), weight_decay=0, decoupled weight decay)::

        p = p * (1 - lr * weight_decay)
        p = p - lr * sign(beta1 m + (1 - beta1) g)      (sign(0) = 0)
        m = beta2 m + (1 - beta2) g

    State: 'exp_avg' (m). `maximize` negates the gradient, as in the other optimizers.
    """

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, *, maximize=False, foreach=None):
        _check_common("Lion", lr=lr, betas=betas, weight_decay=weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, maximize=maximize, foreach=foreach)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = _closure_loss(closure)
        with no_grad():
            for group in self.param_groups:
                lr = _value(group["lr"])
                beta1, beta2 = group["betas"]
                for _, pa, g, st, xp in _params_with_grad(self, group, ("exp_avg",), step=False,
                                                          weight_decay="decoupled"):
                    m = _arr(st["exp_avg"], pa)
                    u = xp.sign(m * beta1 + (1 - beta1) * g)
                    u *= lr
                    pa -= u
                    m *= beta2
                    m += (1 - beta2) * g
        return loss
