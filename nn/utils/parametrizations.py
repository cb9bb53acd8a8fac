"""nn.utils.parametrizations: weight_norm as a parametrization (PyTorch's current form: the state dict
holds parametrizations.<name>.original0 = g and original1 = v)."""
from __future__ import annotations

import autodiff

from ..module import Module
from . import parametrize

__all__ = ["weight_norm", "spectral_norm"]


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


class _SpectralNorm(Module):
    """weight / sigma, sigma the largest singular value of the weight as a matrix (dimension `dim` first),
    estimated by power iteration on the buffers _u, _v (one step per training forward), as PyTorch."""

    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] but got "
                             f"{dim})")
        if n_power_iterations <= 0:
            raise ValueError(f"Expected n_power_iterations to be positive, but got n_power_iterations="
                             f"{n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            wm = self._reshape_weight_to_matrix(weight.detach())
            h, w = wm.shape
            u = autodiff.randn(h, dtype=weight.dtype, device=weight.device)
            v = autodiff.randn(w, dtype=weight.dtype, device=weight.device)
            from .. import functional as F
            self.register_buffer("_u", F.normalize(u, dim=0, eps=self.eps))
            self.register_buffer("_v", F.normalize(v, dim=0, eps=self.eps))
            self._power_method(wm, 15)

    def _reshape_weight_to_matrix(self, weight):
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.reshape(weight.shape[0], -1)

    def _power_method(self, weight_mat, n_power_iterations):
        from .. import functional as F
        with autodiff.no_grad():
            wm = weight_mat.detach()
            for _ in range(n_power_iterations):
                self._u.data[...] = F.normalize(wm.mv(self._v), dim=0, eps=self.eps).data
                self._v.data[...] = F.normalize(wm.t().mv(self._u), dim=0, eps=self.eps).data
            self._u._vc[0] += 1
            self._v._vc[0] += 1

    def forward(self, weight):
        from .. import functional as F
        if weight.ndim == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        wm = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(wm, self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()
        sigma = (u * wm.mv(v)).sum()
        return weight / sigma

    def right_inverse(self, value):
        return value


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Reparametrize module.<name> as weight / sigma(weight) (PyTorch's
    torch.nn.utils.parametrizations.spectral_norm; dim defaults to 1 for transposed convolutions)."""
    weight = getattr(module, name, None)
    if not isinstance(weight, autodiff.Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
