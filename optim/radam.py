"""RAdam: rectified Adam (PyTorch's algorithm, rectification when rho_t > 5)."""
from __future__ import annotations

from autodiff.autograd import no_grad

from .optimizer import Optimizer, _arr, _check_common, _closure_loss, _incr, _lerp_, _params_with_grad, _value

__all__ = ["RAdam"]


class RAdam(Optimizer):
    r"""RAdam, PyTorch's `torch.optim.RAdam` (Liu et al.). Per step t::

        g = g + weight_decay * p    (or p *= 1 - lr * weight_decay when decoupled_weight_decay)
        m = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2;   m_hat = m / (1 - beta1^t)
        rho_inf = 2 / (1 - beta2) - 1;   rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        if rho_t > 5:  r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
                       p = p - lr * m_hat * sqrt(1 - beta2^t) / (sqrt(v) + eps) * r
        else:          p = p - lr * m_hat

    State: 'step', 'exp_avg', 'exp_avg_sq'.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        _check_common("RAdam", lr=lr, eps=eps, betas=betas, weight_decay=weight_decay,
                      differentiable=differentiable)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, capturable=capturable, decoupled_weight_decay=decoupled_weight_decay,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = _closure_loss(closure)
        with no_grad():
            for group in self.param_groups:
                lr = _value(group["lr"])
                beta1, beta2 = group["betas"]
                eps = group["eps"]
                wd_mode = "decoupled" if group["decoupled_weight_decay"] else "l2"
                rho_inf = 2 / (1 - beta2) - 1
                for _, pa, g, st, xp in _params_with_grad(self, group, ("exp_avg", "exp_avg_sq"),
                                                          weight_decay=wd_mode):
                    step = _incr(st["step"])
                    m = _arr(st["exp_avg"], pa)
                    v = _arr(st["exp_avg_sq"], pa)
                    _lerp_(xp, m, g, 1 - beta1)
                    v *= beta2
                    v += (1 - beta2) * (g * g)
                    bc1 = 1 - beta1 ** step
                    bc2 = 1 - beta2 ** step
                    upd = m / bc1
                    upd *= lr
                    rho_t = rho_inf - 2 * step * (beta2 ** step) / bc2
                    if rho_t > 5.0:
                        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                        s = xp.sqrt(v)
                        s += eps
                        upd *= (bc2 ** 0.5) / s
                        upd *= rect
                    pa -= upd
        return loss
