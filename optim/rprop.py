"""Rprop: resilient backpropagation (PyTorch's algorithm)."""
from __future__ import annotations

from autodiff.autograd import _new_tensor, no_grad

from .optimizer import Optimizer, _arr, _check_common, _closure_loss, _incr, _params_with_grad, _value

__all__ = ["Rprop"]


class Rprop(Optimizer):
    r"""Rprop, PyTorch's `torch.optim.Rprop`. Per element, with s = sign(g * g_prev)::

        step_size *= etaplus (s > 0), etaminus (s < 0), 1 (s == 0);  clamped to step_sizes
        g = 0 where s < 0;   p -= sign(g) * step_size;   g_prev = g

    State: 'step', 'prev', 'step_size' (initialised to lr).
    """

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False, foreach=None,
                 maximize=False, differentiable=False):
        _check_common("Rprop", lr=lr, differentiable=differentiable)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes), foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = _closure_loss(closure)
        with no_grad():
            for group in self.param_groups:
                etaminus, etaplus = group["etas"]
                smin, smax = group["step_sizes"]
                for _, pa, g, st, xp in _params_with_grad(self, group, ("prev",)):
                    if "step_size" not in st:
                        st["step_size"] = _new_tensor(xp.full(g.shape, _value(group["lr"]), dtype=g.dtype))
                    _incr(st["step"])
                    prev = _arr(st["prev"], pa)
                    ss = _arr(st["step_size"], pa)
                    s = xp.sign(g * prev)
                    factor = xp.where(s > 0, g.dtype.type(etaplus), xp.where(s < 0, g.dtype.type(etaminus),
                                                                              g.dtype.type(1)))
                    ss *= factor
                    xp.clip(ss, smin, smax, out=ss)
                    g = xp.where(s < 0, xp.zeros((), dtype=g.dtype), g)
                    pa -= xp.sign(g) * ss
                    prev[...] = g
        return loss
