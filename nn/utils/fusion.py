"""Fold an eval-mode BatchNorm into the preceding convolution / linear layer (PyTorch's nn.utils.fusion)."""
from __future__ import annotations

import copy

import autodiff

from ..parameter import Parameter

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights"]


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False):
    """(weight, bias) Parameters of the convolution followed by the eval-mode batch norm."""
    with autodiff.no_grad():
        dt = conv_w.dtype
        if conv_b is None:
            conv_b = autodiff.zeros_like(bn_rm)
        if bn_w is None:
            bn_w = autodiff.ones_like(bn_rm)
        if bn_b is None:
            bn_b = autodiff.zeros_like(bn_rm)
        var_rsqrt = 1.0 / (bn_rv + bn_eps).sqrt()
        shape = [1] * conv_w.ndim
        shape[1 if transpose else 0] = -1
        w = conv_w * (bn_w * var_rsqrt).reshape(*shape)
        b = (conv_b - bn_rm) * var_rsqrt * bn_w + bn_b
    return (Parameter(w.to(dt).data, conv_w.requires_grad),
            Parameter(b.to(conv_b.dtype).data, conv_b.requires_grad if conv_b is not None else True))


def fuse_conv_bn_eval(conv, bn, transpose=False):
    """A copy of `conv` (eval mode) whose weight and bias include the eval-mode `bn`."""
    if conv.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    fused = copy.deepcopy(conv)
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError("fuse_conv_bn_eval: the batch norm must track running statistics")
    fused.weight, fused.bias = fuse_conv_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                    bn.eps, bn.weight, bn.bias, transpose)
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    with autodiff.no_grad():
        if linear_b is None:
            linear_b = autodiff.zeros_like(bn_rm)
        bn_scale = bn_w * (1.0 / (bn_rv + bn_eps).sqrt())
        w = linear_w * bn_scale.unsqueeze(-1)
        b = (linear_b - bn_rm) * bn_scale + bn_b
    return Parameter(w.data, linear_w.requires_grad), Parameter(b.data, linear_b.requires_grad)


def fuse_linear_bn_eval(linear, bn):
    """A copy of `linear` (eval mode) whose weight and bias include the eval-mode 1-d `bn`."""
    if linear.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    if linear.out_features != bn.num_features and bn.num_features != 1:
        raise AssertionError("To fuse, linear.out_features must equal bn.num_features or bn.num_features must be 1")
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError("fuse_linear_bn_eval: the batch norm must track running statistics")
    fused = copy.deepcopy(linear)
    fused.weight, fused.bias = fuse_linear_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                      bn.eps, bn.weight, bn.bias)
    return fused
