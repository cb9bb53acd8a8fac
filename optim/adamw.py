"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's algorithm."""
from __future__ import annotations

from .adam import Adam

__all__ = ["AdamW"]


class AdamW(Adam):
    r"""AdamW, PyTorch's `torch.optim.AdamW` (a subclass of Adam, as in PyTorch 2.6+): Adam whose
    weight decay is applied to the parameter (`p *= 1 - lr * weight_decay`) before the Adam update
    instead of being added to the gradient. Default weight_decay is 1e-2. Same state keys as Adam;
    same backend kernel slot `adam_step_` (with decoupled=True)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         foreach=foreach, maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True)
