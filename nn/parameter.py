"""nn.Parameter: a leaf Tensor that a Module registers as a learnable parameter."""
from __future__ import annotations

from autodiff.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that is registered as a parameter when assigned to a Module attribute.

    `Parameter(data=None, requires_grad=True)`: shares `data`'s array (no copy). Like PyTorch, it is
    always a leaf; its repr is "Parameter containing:" followed by the tensor.
    """
    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            from autodiff import empty
            data = empty(0)
        arr = data.data if isinstance(data, Tensor) else data
        Tensor.__init__(self, arr, requires_grad=False)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + Tensor.__repr__(self)

    __str__ = __repr__

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        out = Parameter(self.data.copy(), self.requires_grad)
        if self.grad is not None:
            out.grad = Tensor(self.grad.data.copy())
        memo[id(self)] = out
        return out

    def __reduce_ex__(self, proto):
        from autodiff.backends import backend_of
        return (Parameter, (backend_of(self.data).to_numpy(self.data), self.requires_grad))

