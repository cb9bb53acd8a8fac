"""nn.utils.parametrizations: weight_norm as a parametrization (PyTorch's current form: the state dict
holds parametrizations.<name>.original0 = g and original1 = v)."""
from __future__ import annotations

import autodiff

from ..module import Module
from . import parametrize

__all__ = ["weight_norm"]


def _norm_except_dim(v, dim):
    """||v||_2 over every dimension but `dim` (keepdim), or over all of v when dim == -1 / None."""
    if dim is None or dim == -1:
        return autodiff.norm(v)
    d = dim % v.ndim
    axes = tuple(i for i in range(v.ndim) if i != d)
    return autodiff.norm(v, 2, axes, keepdim=True)


class _WeightNorm(Module):
    def __init__(self, dim=0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return weight_v * (weight_g / _norm_except_dim(weight_v, self.dim))

    def right_inverse(self, weight):
        return _norm_except_dim(weight, self.dim).detach(), weight.detach()


def weight_norm(module, name="weight", dim=0):
    """Reparametrize module.<name> as g * v / ||v|| (norm over every dimension but `dim`), as PyTorch's
    torch.nn.utils.parametrizations.weight_norm."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module
