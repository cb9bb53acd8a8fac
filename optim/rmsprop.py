"""RMSprop with smoothing constant alpha, momentum, centered variant, weight decay and maximize."""
from __future__ import annotations

from autodiff.autograd import no_grad

from .optimizer import Optimizer, _arr, _check_common, _closure_loss, _incr, _lerp_, _params_with_grad, _value

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop, PyTorch's `torch.optim.RMSprop` (Hinton). Per step::

        g = g + weight_decay * p
        v = alpha v + (1 - alpha) g^2
        centered:  g_avg = alpha g_avg + (1 - alpha) g;   avg = sqrt(v - g_avg^2) + eps
        else:      avg = sqrt(v) + eps
        momentum:  b = momentum b + g / avg;  p = p - lr b      else: p = p - lr g / avg

    eps is added outside the square root, as PyTorch. State: 'step', 'square_avg',
    'momentum_buffer' (momentum > 0), 'grad_avg' (centered).
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        _check_common("RMSprop", lr=lr, eps=eps, weight_decay=weight_decay, differentiable=differentiable)
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach, maximize=maximize,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = _closure_loss(closure)
        with no_grad():
            for group in self.param_groups:
                lr = _value(group["lr"])
                alpha = group["alpha"]
                eps = group["eps"]
                momentum = group["momentum"]
                centered = group["centered"]
                # momentum_buffer / grad_avg are also created when turned on after the first step
                zeros = ("square_avg",) + (("momentum_buffer",) if momentum > 0 else ()) + \
                    (("grad_avg",) if centered else ())
                for _, pa, g, st, xp in _params_with_grad(self, group, zeros, weight_decay="l2"):
                    _incr(st["step"])
                    sq = _arr(st["square_avg"], pa)
                    sq *= alpha
                    sq += (1 - alpha) * (g * g)
                    if centered:
                        ga = _arr(st["grad_avg"], pa)
                        _lerp_(xp, ga, g, 1 - alpha)
                        avg = xp.sqrt(sq - ga * ga)
                    else:
                        avg = xp.sqrt(sq)
                    avg += eps
                    if momentum > 0:
                        buf = _arr(st["momentum_buffer"], pa)
                        buf *= momentum
                        buf += g / avg
                        pa -= lr * buf
                    else:
                        t = g / avg
                        t *= lr
                        pa -= t
        return loss
