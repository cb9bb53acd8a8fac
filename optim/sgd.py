"""SGD with momentum, dampening, Nesterov momentum, weight decay and maximize (PyTorch's algorithm)."""
from __future__ import annotations

from autodiff.autograd import _mode
from autodiff.backends import backend_of
from autodiff.backends.base import Backend

from .optimizer import Optimizer, _arr, _check_common, _closure_loss, _value, _zeros_like

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent, PyTorch's `torch.optim.SGD`.

    For each parameter with gradient g (negated when `maximize`)::

        g = g + weight_decay * p
        if momentum:   b = g (first step) else momentum * b + (1 - dampening) * g
                       g = g + momentum * b if nesterov else b
        p = p - lr * g

    The update runs through the backend kernel slot `sgd_step_` (numba/CUDA backends fuse it).
    State: 'momentum_buffer' (only when momentum != 0), as PyTorch. `foreach` and `fused` are
    accepted for compatibility; the update is one loop of per-parameter kernel calls.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        _check_common("SGD", lr=lr, weight_decay=weight_decay, differentiable=differentiable)
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach, differentiable=differentiable,
                        fused=fused)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = _closure_loss(closure)
        prev = _mode.enabled  # no_grad without the context-manager object (this runs every step)
        _mode.enabled = False
        try:
            state = self.state
            for group in self.param_groups:
                lr = _value(group["lr"])
                momentum = group["momentum"]
                dampening = group["dampening"]
                nesterov = group["nesterov"]
                wd = group["weight_decay"]
                maximize = group["maximize"]
                arr_type = kernel = None  # the backend's sgd_step_ slot, looked up once per array type
                inline = False
                for p in group["params"]:
                    g = p.grad
                    if g is None:
                        continue
                    pa = p.data
                    if type(pa) is not arr_type:
                        arr_type = type(pa)
                        kernel = backend_of(pa).sgd_step_
                        # plain SGD on a backend that keeps the reference slot: its one line, inline
                        inline = (momentum == 0 and not wd and not maximize
                                  and getattr(kernel, "__func__", None) is Backend.sgd_step_)
                    if inline:
                        pa -= lr * g.data  # (= Backend.sgd_step_ with momentum 0, no decay, not maximize)
                        p._vc[0] += 1
                        continue
                    if momentum != 0:
                        st = state[p]
                        b = st.get("momentum_buffer")
                        first = b is None
                        if first:
                            b = st["momentum_buffer"] = _zeros_like(p)
                        kernel(pa, g.data, _arr(b, pa), lr, momentum, dampening, nesterov, wd, maximize, first)
                    else:
                        kernel(pa, g.data, None, lr, 0, dampening, nesterov, wd, maximize, False)
                    p._vc[0] += 1
        finally:
            _mode.enabled = prev
        return loss
