"""Adam (with amsgrad, L2 weight decay and maximize), PyTorch's algorithm."""
from __future__ import annotations

from autodiff.autograd import no_grad
from autodiff.backends import backend_of

from .optimizer import Optimizer, _arr, _check_common, _closure_loss, _incr, _params_with_grad, _value

__all__ = ["Adam"]


def _adam_step(opt):
    """The shared Adam / AdamW loop over all groups (one backend `adam_step_` call per parameter)."""
    for group in opt.param_groups:
        lr = _value(group["lr"])
        beta1, beta2 = group["betas"]
        eps = group["eps"]
        wd = group["weight_decay"]
        amsgrad = group["amsgrad"]
        maximize = group["maximize"]
        dec = group.get("decoupled_weight_decay", False)
        zeros = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if amsgrad else ("exp_avg", "exp_avg_sq")
        # maximize and weight decay run inside the kernel
        for _, pa, g, st, _ in _params_with_grad(opt, group, zeros, maximize=False):
            step = _incr(st["step"])
            vmax = _arr(st["max_exp_avg_sq"], pa) if amsgrad else None
            backend_of(pa).adam_step_(pa, g, _arr(st["exp_avg"], pa), _arr(st["exp_avg_sq"], pa), vmax,
                                      step, lr, beta1, beta2, eps, wd, amsgrad, maximize, dec)


class Adam(Optimizer):
    r"""Adam, PyTorch's `torch.optim.Adam` (Kingma & Ba; amsgrad from Reddi et al.).

    Per step t (g negated when `maximize`; weight decay added to g as L2, or applied to p as
    `p *= 1 - lr * weight_decay` when `decoupled_weight_decay=True`, which is AdamW)::

        m = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2;   vmax = max(vmax, v) if amsgrad
        p = p - lr / (1 - beta1^t) * m / (sqrt(v or vmax) / sqrt(1 - beta2^t) + eps)

    eps is added after the bias-corrected square root, as PyTorch. The update runs through the
    backend kernel slot `adam_step_`. State: 'step' (0-d float32 CPU tensor), 'exp_avg',
    'exp_avg_sq', 'max_exp_avg_sq' (amsgrad). `foreach`, `capturable` and `fused` are accepted for
    compatibility and have no effect (the update never synchronises with the host anyway).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        _check_common(type(self).__name__, lr=lr, eps=eps, betas=betas, weight_decay=weight_decay,
                      differentiable=differentiable)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, capturable=capturable, differentiable=differentiable,
                        fused=fused, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = _closure_loss(closure)
        with no_grad():
            _adam_step(self)
        return loss
