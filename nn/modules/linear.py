"""Linear, Bilinear and Identity layers."""
from __future__ import annotations

import math

import autodiff
from autodiff import amp as _amp

from autodiff.ops.nn import Linear as _LinearFn
from autodiff.tensor import Tensor as _Tensor

from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter


def _factory(device, dtype):
    return {"device": device, "dtype": dtype}


class Identity(Module):
    """Returns its input unchanged (accepts and ignores any constructor arguments)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x W^T + b with weight (out_features, in_features) and bias (out_features,), PyTorch's default
    initialisation: kaiming_uniform_(a=sqrt(5)) for the weight, U(-1/sqrt(in), 1/sqrt(in)) for the bias."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(autodiff.empty(out_features, in_features, **_factory(device, dtype)))
        if bias:
            self.bias = Parameter(autodiff.empty(out_features, **_factory(device, dtype)))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        if input.__class__ is not _Tensor and not isinstance(input, _Tensor):
            raise TypeError(f"{self!r}: input must be a Tensor, got {type(input).__name__}")
        d = input.data
        shape = d.shape
        if not shape or shape[-1] != self.in_features:
            got = shape[-1] if shape else 0
            raise RuntimeError(f"{self!r}: input has {got} features (shape {tuple(input.shape)}), expected "
                               f"{self.in_features}")
        ps = self._parameters  # direct reads: Module.__getattr__ is a slow fallback (hot path)
        w = ps["weight"] if "weight" in ps else self.weight
        b = ps["bias"] if "bias" in ps else self.bias
        dt = d.dtype
        if (dt == w.data.dtype and dt.kind == "f" and not _amp._active):
            if b is None:
                return _LinearFn.apply(input, w)
            if dt == b.data.dtype:
                return _LinearFn.apply(input, w, b)  # the checks F.linear makes are done
        return F.linear(input, w, b)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class LazyLinear(Linear):
    """Linear whose in_features is inferred from the first input."""

    def __init__(self, out_features, bias=True, device=None, dtype=None):
        Module.__init__(self)
        self.in_features = 0
        self.out_features = out_features
        self._lazy = (bias, device, dtype)
        self.weight = Parameter(autodiff.empty(0, **_factory(device, dtype)))
        self.bias = Parameter(autodiff.empty(0, **_factory(device, dtype))) if bias else None

    def forward(self, input):
        if self.in_features == 0:
            bias, device, dtype = self._lazy
            self.in_features = input.shape[-1]
            self.weight.data = autodiff.empty(self.out_features, self.in_features, dtype=input.dtype,
                                              device=input.device).data
            if self.bias is not None:
                self.bias.data = autodiff.empty(self.out_features, dtype=input.dtype, device=input.device).data
            self.reset_parameters()
            self.__class__ = Linear  # PyTorch's cls_to_become: a materialised LazyLinear is a Linear
            del self._lazy
        return Linear.forward(self, input)


class Bilinear(Module):
    """y = x1^T A x2 + b with weight (out, in1, in2)."""

    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in1_features, self.in2_features, self.out_features = in1_features, in2_features, out_features
        self.weight = Parameter(autodiff.empty(out_features, in1_features, in2_features, **_factory(device, dtype)))
        if bias:
            self.bias = Parameter(autodiff.empty(out_features, **_factory(device, dtype)))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
