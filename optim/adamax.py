"""Adamax: Adam with the infinity norm (PyTorch's algorithm)."""
from __future__ import annotations

from autodiff.autograd import no_grad

from .optimizer import Optimizer, _arr, _check_common, _closure_loss, _incr, _lerp_, _params_with_grad, _value

__all__ = ["Adamax"]


class Adamax(Optimizer):
    r"""Adamax, PyTorch's `torch.optim.Adamax` (Kingma & Ba, section 7). Per step t::

        g = g + weight_decay * p
        m = beta1 m + (1 - beta1) g;   u = max(beta2 u, |g| + eps)
        p = p - lr / (1 - beta1^t) * m / u

    eps is added to |g| inside the max, as PyTorch. State: 'step', 'exp_avg', 'exp_inf'.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        _check_common("Adamax", lr=lr, eps=eps, betas=betas, weight_decay=weight_decay,
                      differentiable=differentiable)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = _closure_loss(closure)
        with no_grad():
            for group in self.param_groups:
                lr = _value(group["lr"])
                beta1, beta2 = group["betas"]
                eps = group["eps"]
                for _, pa, g, st, xp in _params_with_grad(self, group, ("exp_avg", "exp_inf"), weight_decay="l2"):
                    step = _incr(st["step"])
                    m = _arr(st["exp_avg"], pa)
                    u = _arr(st["exp_inf"], pa)
                    _lerp_(xp, m, g, 1 - beta1)
                    u *= beta2
                    a = xp.abs(g)
                    a += eps
                    xp.maximum(u, a, out=u)
                    clr = lr / (1 - beta1 ** step)
                    t = m / u
                    t *= clr
                    pa -= t
        return loss
