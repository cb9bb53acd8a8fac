"""NAdam: Adam with Nesterov momentum and momentum decay (PyTorch's algorithm)."""
from __future__ import annotations

from autodiff.autograd import no_grad

from .optimizer import Optimizer, _arr, _check_common, _closure_loss, _incr, _lerp_, _params_with_grad, _value

__all__ = ["NAdam"]


class NAdam(Optimizer):
    r"""NAdam, PyTorch's `torch.optim.NAdam` (Dozat). Per step t::

        g = g + weight_decay * p    (or p *= 1 - lr * weight_decay when decoupled_weight_decay)
        mu_t = beta1 (1 - 0.5 * 0.96^(t psi));   mu_{t+1} = beta1 (1 - 0.5 * 0.96^((t+1) psi))
        mu_product *= mu_t          (psi = momentum_decay)
        m = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2
        denom = sqrt(v / (1 - beta2^t)) + eps
        p = p - lr (1 - mu_t) / (1 - mu_product) * g / denom
              - lr mu_{t+1} / (1 - mu_product * mu_{t+1}) * m / denom

    State: 'step', 'mu_product' (both 0-d float32 CPU tensors, float64 when the default
    dtype is, as PyTorch, so the product is rounded exactly as there), 'exp_avg', 'exp_avg_sq'.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        _check_common("NAdam", lr=lr, eps=eps, betas=betas, weight_decay=weight_decay,
                      differentiable=differentiable)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                        maximize=maximize, foreach=foreach, capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = _closure_loss(closure)
        with no_grad():
            for group in self.param_groups:
                lr = _value(group["lr"])
                beta1, beta2 = group["betas"]
                eps = group["eps"]
                psi = group["momentum_decay"]
                wd_mode = "decoupled" if group["decoupled_weight_decay"] else "l2"
                for _, pa, g, st, xp in _params_with_grad(self, group, ("exp_avg", "exp_avg_sq"),
                                                          scalars={"mu_product": 1.0}, weight_decay=wd_mode):
                    step = _incr(st["step"])
                    bc2 = 1 - beta2 ** step
                    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * psi)))
                    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * psi)))
                    mp = st["mu_product"]
                    mp.data *= mu  # float32, on the host
                    mp._vc[0] += 1
                    mu_product = float(mp.data)
                    m = _arr(st["exp_avg"], pa)
                    v = _arr(st["exp_avg_sq"], pa)
                    _lerp_(xp, m, g, 1 - beta1)
                    v *= beta2
                    v += (1 - beta2) * (g * g)
                    denom = xp.sqrt(v / bc2)
                    denom += eps
                    mu_product_next = mu_product * mu_next
                    t = g / denom
                    t *= lr * (1.0 - mu) / (1.0 - mu_product)
                    pa -= t
                    t = m / denom
                    t *= lr * mu_next / (1.0 - mu_product_next)
                    pa -= t
        return loss
