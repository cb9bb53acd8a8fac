"""Adagrad with lr_decay, initial_accumulator_value, weight decay and maximize (PyTorch's algorithm)."""
from __future__ import annotations

from autodiff.autograd import _new_tensor, no_grad
from autodiff.backends import backend_of

from .optimizer import Optimizer, _arr, _check_common, _closure_loss, _incr, _new_step, _params_with_grad, _value

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad, PyTorch's `torch.optim.Adagrad` (Duchi et al.). Per step t::

        g = g + weight_decay * p;   clr = lr / (1 + (t - 1) * lr_decay)
        sum = sum + g^2;            p = p - clr * g / (sqrt(sum) + eps)

    As in PyTorch the state ('step', 'sum' filled with initial_accumulator_value) is created in
    the constructor for every parameter (and lazily for groups added later).
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        _check_common("Adagrad", lr=lr, eps=eps, weight_decay=weight_decay, differentiable=differentiable)
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, initial_accumulator_value)

    def _init_state(self, p, init):
        st = self.state[p]
        st["step"] = _new_step()
        st["sum"] = _new_tensor(backend_of(p.data).xp.full_like(p.data, init))
        return st

    def step(self, closure=None):
        loss = _closure_loss(closure)
        with no_grad():
            for group in self.param_groups:
                lr, lr_decay, eps = _value(group["lr"]), group["lr_decay"], group["eps"]
                for p, pa, g, st, xp in _params_with_grad(self, group, step=False, weight_decay="l2"):
                    if "sum" not in st:
                        st = self._init_state(p, group["initial_accumulator_value"])
                    step = _incr(st["step"])
                    s = _arr(st["sum"], pa)
                    clr = lr / (1 + (step - 1) * lr_decay)
                    s += g * g
                    std = xp.sqrt(s)
                    std += eps
                    t = clr * g  # PyTorch's addcdiv order: p + (value * g) / std
                    t /= std
                    pa -= t
        return loss
