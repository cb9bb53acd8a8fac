"""Lazy layers: the input channel count is inferred from the first input, then the module becomes the
plain layer (PyTorch's LazyConv*d, LazyConvTranspose*d, LazyBatchNorm*d, LazyInstanceNorm*d). The parameter
objects are kept (their arrays are replaced), so an optimizer built before the first call still holds them."""
from __future__ import annotations

import autodiff

from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .extra import InstanceNorm1d, InstanceNorm3d
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm2d


def _lazy_conv(base):
    transposed = base._transposed

    class LazyConv(base):
        cls_to_become = base

        def __init__(self, out_channels, kernel_size, stride=1, padding=0, *rest, **kw):
            groups = kw.get("groups", 1)
            if transposed:
                # (out_channels, kernel_size, stride, padding, output_padding, groups, bias, dilation, ...)
                if len(rest) >= 2:
                    groups = rest[1]
            elif len(rest) >= 2:  # (dilation, groups, ...)
                groups = rest[1]
            super().__init__(groups, out_channels, kernel_size, stride, padding, *rest, **kw)
            self.in_channels = 0
            self.weight.data = self.weight.data[:0]
            if self.bias is not None:
                self.bias.data = self.bias.data[:0]

        def forward(self, input, *args, **kwargs):
            if self.in_channels == 0:
                c = input.shape[-self._n - 1]
                self.in_channels = c
                if transposed:
                    shape = (c, self.out_channels // self.groups) + self.kernel_size
                else:
                    shape = (self.out_channels, c // self.groups) + self.kernel_size
                self.weight.data = autodiff.empty(*shape, dtype=input.dtype, device=input.device).data
                if self.bias is not None:
                    self.bias.data = autodiff.empty(self.out_channels, dtype=input.dtype, device=input.device).data
                self.reset_parameters()
                self.__class__ = base
            return base.forward(self, input, *args, **kwargs)

    LazyConv.__name__ = LazyConv.__qualname__ = "Lazy" + base.__name__
    return LazyConv


def _lazy_norm(base):
    class LazyNorm(base):
        cls_to_become = base

        def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None, dtype=None,
                     **kw):
            super().__init__(0, eps, momentum, affine, track_running_stats, device, dtype, **kw)

        def forward(self, input):
            if self.num_features == 0:
                c = input.shape[1] if input.ndim > self._base_dims() else input.shape[0]
                self.num_features = c
                fk = {"dtype": input.dtype, "device": input.device}
                for name, make in (("weight", autodiff.ones), ("bias", autodiff.zeros),
                                   ("running_mean", autodiff.zeros), ("running_var", autodiff.ones)):
                    t = getattr(self, name, None)
                    if t is not None:
                        t.data = make(c, **fk).data
                self.__class__ = base
            return base.forward(self, input)

        def _base_dims(self):
            return {"BatchNorm1d": 1, "BatchNorm2d": 3, "BatchNorm3d": 4, "InstanceNorm1d": 2, "InstanceNorm2d": 3,
                    "InstanceNorm3d": 4}[base.__name__]

    LazyNorm.__name__ = LazyNorm.__qualname__ = "Lazy" + base.__name__
    return LazyNorm


LazyConv1d, LazyConv2d, LazyConv3d = _lazy_conv(Conv1d), _lazy_conv(Conv2d), _lazy_conv(Conv3d)
LazyConvTranspose1d = _lazy_conv(ConvTranspose1d)
LazyConvTranspose2d = _lazy_conv(ConvTranspose2d)
LazyConvTranspose3d = _lazy_conv(ConvTranspose3d)
LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d = _lazy_norm(BatchNorm1d), _lazy_norm(BatchNorm2d), \
    _lazy_norm(BatchNorm3d)
LazyInstanceNorm1d, LazyInstanceNorm2d, LazyInstanceNorm3d = _lazy_norm(InstanceNorm1d), _lazy_norm(InstanceNorm2d), \
    _lazy_norm(InstanceNorm3d)
