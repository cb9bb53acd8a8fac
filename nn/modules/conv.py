"""Convolution layers (NCHW): Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d."""
from __future__ import annotations

import math

import autodiff

from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter


def _tuple(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


class _ConvNd(Module):
    _n = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None, output_padding=0):
        super().__init__()
        n = self._n
        name = type(self).__name__
        if groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups}")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        valid_modes = ("zeros", "reflect", "replicate", "circular")
        if padding_mode not in valid_modes:
            raise ValueError(f"{name}: padding_mode must be one of {valid_modes}, got {padding_mode!r}")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: invalid padding string {padding!r}, should be one of 'valid', 'same'")
            if padding == "same" and any(s != 1 for s in _tuple(stride, n)):
                raise ValueError(f"{name}: padding='same' is not supported for strided convolutions")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _tuple(kernel_size, n)
        self.stride = _tuple(stride, n)
        self.padding = padding if isinstance(padding, str) else _tuple(padding, n)
        self.dilation = _tuple(dilation, n)
        self.output_padding = _tuple(output_padding, n)
        self.groups = groups
        self.padding_mode = padding_mode
        self.transposed = self._transposed
        if self._transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(autodiff.empty(*shape, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(autodiff.empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        s = "{in_channels}, {out_channels}, kernel_size={kernel_size}, stride={stride}"
        if self.padding != (0,) * len(self.padding):
            s += ", padding={padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += ", dilation={dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += ", output_padding={output_padding}"
        if self.groups != 1:
            s += ", groups={groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += ", padding_mode={padding_mode}"
        return s.format(**self.__dict__)

    def _check_input(self, input):
        name = type(self).__name__
        if not isinstance(input, autodiff.Tensor):
            raise TypeError(f"{self!r}: input must be a Tensor, got {type(input).__name__}")
        nd = self._n
        if input.ndim not in (nd + 1, nd + 2):
            raise RuntimeError(f"{self!r}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, got "
                               f"shape {tuple(input.shape)}")
        c = input.shape[-nd - 1]
        if c != self.in_channels:
            raise RuntimeError(f"{name}({self.extra_repr()}): input has {c} channels (shape {tuple(input.shape)}), "
                               f"expected {self.in_channels}")

    def _padded(self, input):
        """Non-zero padding modes pad explicitly, then convolve without padding (as PyTorch)."""
        if self.padding_mode == "zeros" or isinstance(self.padding, str):
            return input, self.padding
        pads = []
        for p in reversed(self.padding):
            pads += [p, p]
        mode = {"reflect": "reflect", "replicate": "replicate", "circular": "circular"}[self.padding_mode]
        return F.pad(input, pads, mode=mode), 0


class _Conv(_ConvNd):
    """Common constructor and forward of Conv1d/2d/3d."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)

    def _conv_forward(self, input, conv):
        self._check_input(input)
        x, pad = self._padded(input)
        return conv(x, self.weight, self.bias, self.stride, pad, self.dilation, self.groups)


class _ConvTransposeNd(_ConvNd):
    """Common constructor of ConvTranspose1d/2d/3d (only padding_mode='zeros')."""
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype, output_padding)


class Conv1d(_Conv):
    _n = 1

    def forward(self, input):
        return self._conv_forward(input, F.conv1d)


class Conv2d(_Conv):
    """2-D convolution: weight (out_channels, in_channels/groups, kh, kw); input (N, C, H, W) or (C, H, W)."""

    def forward(self, input):
        return self._conv_forward(input, F.conv2d)


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-D convolution: weight (in_channels, out_channels/groups, kh, kw)."""

    def forward(self, input, output_size=None):
        self._check_input(input)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation, output_size=output_size)


class ConvTranspose1d(_ConvTransposeNd):
    _n = 1

    def forward(self, input, output_size=None):
        self._check_input(input)
        op = self.output_padding
        if output_size is not None:  # PyTorch's _output_padding: the extra size that reaches output_size
            size = list(output_size)[-1:]
            k, s, p, d = (v[0] if isinstance(v, (tuple, list)) else v
                          for v in (self.kernel_size, self.stride, self.padding, self.dilation))
            lo = (input.shape[-1] - 1) * s - 2 * p + d * (k - 1) + 1
            if not lo <= size[0] <= lo + s - 1:
                raise ValueError(f"requested an output size of {list(output_size)}, but valid sizes range from "
                                 f"[{lo}] to [{lo + s - 1}] (for an input of {list(input.shape[2:])})")
            op = (size[0] - lo,)
        return F.conv_transpose1d(input, self.weight, self.bias, self.stride, self.padding, op,
                                  self.groups, self.dilation)


class Conv3d(_Conv):
    """3-D convolution: weight (out_channels, in_channels/groups, kd, kh, kw); input (N, C, D, H, W) or
    (C, D, H, W)."""
    _n = 3

    def forward(self, input):
        return self._conv_forward(input, F.conv3d)


class ConvTranspose3d(_ConvTransposeNd):
    """Transposed 3-D convolution: weight (in_channels, out_channels/groups, kd, kh, kw)."""
    _n = 3

    def forward(self, input, output_size=None):
        self._check_input(input)
        op = self.output_padding
        if output_size is not None:  # PyTorch's _output_padding
            size = list(output_size)[-3:]
            op = []
            for i in range(3):
                lo = ((input.shape[-3 + i] - 1) * self.stride[i] - 2 * self.padding[i]
                      + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
                if not lo <= size[i] <= lo + self.stride[i] - 1:
                    raise ValueError(f"requested an output size of {size}, but the valid size in dimension {i} "
                                     f"ranges from {lo} to {lo + self.stride[i] - 1}")
                op.append(size[i] - lo)
        return F.conv_transpose3d(input, self.weight, self.bias, self.stride, self.padding, tuple(op), self.groups,
                                  self.dilation)
