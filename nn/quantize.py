"""Post-training int8 quantisation of Linear layers (after torch.ao.quantization, eager mode).

Dynamic (`quantize_dynamic(model)`): every `nn.Linear` becomes a `DynamicQuantizedLinear` holding int8
weights with one symmetric scale per output channel (w ~ scale[o] * q[o, :], q in [-127, 127]) and a
float32 bias. Activations stay float: by default (`accumulate="float"`) the layer computes
`(x @ q.T) * scale + bias` in float32, which is exactly float matmul with the dequantised weight;
with `accumulate="int32"` each input row is also quantised on the fly (symmetric int8, one scale per
row) and the integer products are summed exactly (emulated with a float64 GEMM, which is exact for
int8 x int8 sums below 2^53: NumPy and CuPy have no integer BLAS), then rescaled.

Static (`prepare` -> run calibration data -> `convert`, or `quantize_static(model, data)`): observers
record the range of every Linear's input and output during calibration; `convert` replaces each
Linear with a `QuantizedLinear` whose input is quantised with the calibrated per-tensor affine uint8
parameters, whose weight is per-channel symmetric int8, accumulation is exact integer (as above), and
whose output is re-quantised to uint8 with the output observer's parameters and dequantised, so
activations between layers carry int8 precision exactly as a quantised engine's would.

Quantised modules are for inference: they run under no-grad and hold no Parameters. Their weights
are buffers (`weight_int8`, `weight_scale`, `bias`), so `state_dict()` stores them and
`model_size_bytes(model)` counts int8 weights at one byte each (about 4x smaller than float32).
"""
from __future__ import annotations

import copy

import numpy as np

from autodiff.autograd import _new_tensor, no_grad
from autodiff.backends import backend_of
from autodiff.tensor import Tensor

from .module import Module

__all__ = ["quantize_dynamic", "DynamicQuantizedLinear", "QuantizedLinear", "MinMaxObserver",
           "MovingAverageMinMaxObserver", "prepare", "convert", "quantize_static", "quantize",
           "model_size_bytes", "quantize_per_channel_symmetric", "qint8", "quint8"]

qint8 = np.dtype(np.int8)
quint8 = np.dtype(np.uint8)
_QMAX = 127


def _xp(a):
    return backend_of(a).xp


def quantize_per_channel_symmetric(w, axis=0, qmax=_QMAX):
    """Array w -> (q int8, scale float32 per slice along `axis`) with w ~ scale * q.
    An all-zero channel gets scale 1 (its q is all zero)."""
    xp = _xp(w)
    red = tuple(d for d in range(w.ndim) if d != axis)
    amax = xp.abs(w).max(axis=red, keepdims=True).astype(np.float32)
    scale = xp.where(amax > 0, amax / qmax, np.float32(1.0)).astype(np.float32)
    q = xp.clip(xp.rint(w / scale), -qmax, qmax).astype(np.int8)
    return q, scale.reshape(-1)


def _check_linear_input(name, x, in_features):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a Tensor input, got {type(x).__name__}")
    if x.data.ndim == 0 or x.data.shape[-1] != in_features:
        raise RuntimeError(f"{name}: input has {x.data.shape[-1] if x.data.ndim else 0} features (shape "
                           f"{tuple(x.shape)}), expected {in_features}")
    if x.data.dtype.kind != "f":
        raise RuntimeError(f"{name}: expected a floating point input, got {x.data.dtype}")


class _QuantizedLinearBase(Module):
    def __init__(self, in_features, out_features, weight_int8, weight_scale, bias):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.register_buffer("weight_int8", _new_tensor(weight_int8))
        self.register_buffer("weight_scale", _new_tensor(weight_scale))
        self.register_buffer("bias", None if bias is None else _new_tensor(bias))

    @classmethod
    def _quantize_weights(cls, linear):
        w = linear.weight.data
        q, scale = quantize_per_channel_symmetric(w.astype(np.float32, copy=False), axis=0)
        b = None if linear.bias is None else linear.bias.data.astype(np.float32, copy=True)
        return q, scale, b

    def weight(self):
        """The dequantised float32 weight (out, in) as a Tensor (PyTorch: `qlinear.weight()`)."""
        w = self.weight_int8.data.astype(np.float32) * self.weight_scale.data[:, None]
        return _new_tensor(w)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, dtype=qint8, "
                f"qscheme=per_channel_symmetric")


class DynamicQuantizedLinear(_QuantizedLinearBase):
    """Linear with int8 per-output-channel weights; float activations (see the module doc)."""

    def __init__(self, in_features, out_features, weight_int8, weight_scale, bias, accumulate="float"):
        super().__init__(in_features, out_features, weight_int8, weight_scale, bias)
        if accumulate not in ("float", "int32"):
            raise ValueError(f"DynamicQuantizedLinear: accumulate must be 'float' or 'int32', got {accumulate!r}")
        self.accumulate = accumulate

    @classmethod
    def from_float(cls, linear, accumulate="float"):
        q, scale, b = cls._quantize_weights(linear)
        return cls(linear.in_features, linear.out_features, q, scale, b, accumulate=accumulate)

    def forward(self, x):
        _check_linear_input("DynamicQuantizedLinear", x, self.in_features)
        a = x.data
        xp = _xp(a)
        shape = a.shape
        a2 = a.reshape(-1, shape[-1])
        q = self.weight_int8.data
        if self.accumulate == "float":
            y = (a2.astype(np.float32, copy=False) @ q.T.astype(np.float32)) * self.weight_scale.data
        else:
            amax = xp.abs(a2).max(axis=1, keepdims=True).astype(np.float32)
            xs = xp.where(amax > 0, amax / _QMAX, np.float32(1.0)).astype(np.float32)
            xq = xp.clip(xp.rint(a2 / xs), -_QMAX, _QMAX)
            acc = xq.astype(np.float64) @ q.T.astype(np.float64)  # exact integer sums
            y = (acc * (xs.astype(np.float64) * self.weight_scale.data.astype(np.float64))).astype(np.float32)
        if self.bias is not None:
            y = y + self.bias.data
        return _new_tensor(y.reshape(shape[:-1] + (self.out_features,)).astype(a.dtype, copy=False))

    def extra_repr(self):
        return super().extra_repr() + f", accumulate={self.accumulate}"


# ----------------------------------------------------------------------------- observers
class MinMaxObserver(Module):
    """Records the running min and max of the tensors it sees; `calculate_qparams()` gives the
    per-tensor affine (scale, zero_point) for `dtype` (quint8: [0, 255], qint8: [-128, 127]).
    The range always includes 0 so that zero is exactly representable, as PyTorch."""

    def __init__(self, dtype=quint8, eps=float(np.finfo(np.float32).eps)):
        super().__init__()
        self.dtype = np.dtype(dtype)
        if self.dtype not in (quint8, qint8):
            raise ValueError(f"MinMaxObserver: dtype must be quint8 or qint8, got {self.dtype}")
        self.eps = eps
        self.register_buffer("min_val", None)
        self.register_buffer("max_val", None)

    def _update(self, lo, hi):
        if self.min_val is None:
            self.min_val, self.max_val = _new_tensor(lo), _new_tensor(hi)
        else:
            xp = _xp(lo)
            self.min_val = _new_tensor(xp.asarray(xp.minimum(self.min_val.data, lo), dtype=np.float32))
            self.max_val = _new_tensor(xp.asarray(xp.maximum(self.max_val.data, hi), dtype=np.float32))

    def forward(self, x):
        a = x.data
        xp = _xp(a)
        self._update(xp.asarray(a.min(), dtype=np.float32), xp.asarray(a.max(), dtype=np.float32))
        return x

    def calculate_qparams(self):
        """(scale, zero_point) as Python numbers (one host read: calibration is not a hot path)."""
        if self.min_val is None:
            raise RuntimeError("MinMaxObserver: no data observed; run calibration batches through the prepared "
                               "model before convert()")
        b = backend_of(self.min_val.data)
        lo = min(float(b.to_numpy(self.min_val.data)), 0.0)
        hi = max(float(b.to_numpy(self.max_val.data)), 0.0)
        qmin, qmax = (0, 255) if self.dtype == quint8 else (-128, 127)
        scale = max((hi - lo) / float(qmax - qmin), self.eps)
        zero_point = int(np.clip(qmin - round(lo / scale), qmin, qmax))
        return scale, zero_point

    def extra_repr(self):
        return f"dtype={self.dtype}, min_val={self.min_val}, max_val={self.max_val}"


class MovingAverageMinMaxObserver(MinMaxObserver):
    """Min/max as exponential moving averages (weight `averaging_constant` on each new batch)."""

    def __init__(self, averaging_constant=0.01, dtype=quint8, eps=float(np.finfo(np.float32).eps)):
        super().__init__(dtype=dtype, eps=eps)
        self.averaging_constant = float(averaging_constant)

    def _update(self, lo, hi):
        if self.min_val is None:
            self.min_val, self.max_val = _new_tensor(lo), _new_tensor(hi)
        else:
            c = np.float32(self.averaging_constant)
            xp = _xp(lo)
            self.min_val = _new_tensor(xp.asarray(self.min_val.data + c * (lo - self.min_val.data), dtype=np.float32))
            self.max_val = _new_tensor(xp.asarray(self.max_val.data + c * (hi - self.max_val.data), dtype=np.float32))


def _fake_quant(a, scale, zp, qmin=0, qmax=255):
    xp = _xp(a)
    q = xp.clip(xp.rint(a / np.float32(scale)) + zp, qmin, qmax)
    return q


class QuantizedLinear(_QuantizedLinearBase):
    """Statically quantised Linear: uint8 affine input (calibrated scale/zero point), int8
    per-channel weights, exact integer accumulation, uint8 affine output (see the module doc)."""

    def __init__(self, in_features, out_features, weight_int8, weight_scale, bias, input_qparams,
                 output_qparams):
        super().__init__(in_features, out_features, weight_int8, weight_scale, bias)
        self.input_scale, self.input_zero_point = float(input_qparams[0]), int(input_qparams[1])
        self.scale, self.zero_point = float(output_qparams[0]), int(output_qparams[1])

    @classmethod
    def from_observed(cls, linear, in_obs, out_obs):
        q, scale, b = cls._quantize_weights(linear)
        return cls(linear.in_features, linear.out_features, q, scale, b, in_obs.calculate_qparams(),
                   out_obs.calculate_qparams())

    def forward(self, x):
        _check_linear_input("QuantizedLinear", x, self.in_features)
        a = x.data
        shape = a.shape
        a2 = a.reshape(-1, shape[-1])
        xq = _fake_quant(a2, self.input_scale, self.input_zero_point) - self.input_zero_point
        acc = xq.astype(np.float64) @ self.weight_int8.data.T.astype(np.float64)  # exact integer sums
        y = acc * (self.input_scale * self.weight_scale.data.astype(np.float64))
        if self.bias is not None:
            y = y + self.bias.data
        yq = _fake_quant(y, self.scale, self.zero_point)
        out = ((yq - self.zero_point) * self.scale).astype(a.dtype)
        return _new_tensor(out.reshape(shape[:-1] + (self.out_features,)))

    def extra_repr(self):
        return (super().extra_repr() + f", input_scale={self.input_scale:.6g}, "
                f"input_zero_point={self.input_zero_point}, scale={self.scale:.6g}, zero_point={self.zero_point}")


# ----------------------------------------------------------------------------- model transforms
def _linear_type():
    from .modules import Linear
    return Linear


def _matches(name, module, spec, linear):
    if spec is None:
        return type(module) is linear
    for s in spec:
        if isinstance(s, str) and s == name:
            return True
        if isinstance(s, type) and type(module) is s:
            return True
    return False


def _swap(model, make, spec, linear, prefix=""):
    for name, child in list(model._modules.items()):
        if child is None:
            continue
        full = prefix + name
        if _matches(full, child, spec, linear):
            model._modules[name] = make(child)
        else:
            _swap(child, make, spec, linear, full + ".")


def quantize_dynamic(model, qconfig_spec=None, dtype=qint8, mapping=None, inplace=False, accumulate="float"):
    """A copy of `model` (or `model` itself with inplace=True) whose Linear layers are
    DynamicQuantizedLinear. `qconfig_spec` (optional) is a set of module types and/or qualified
    submodule names to quantise; by default every nn.Linear. Only `dtype=qint8` is supported.
    `accumulate` is 'float' (default) or 'int32' (see the module doc)."""
    if np.dtype(dtype) != qint8:
        raise ValueError(f"quantize_dynamic: only dtype=qint8 (int8) is supported, got {dtype}")
    if not isinstance(model, Module):
        raise TypeError(f"quantize_dynamic: expected an nn.Module, got {type(model).__name__}")
    linear = _linear_type()
    if isinstance(qconfig_spec, dict):
        qconfig_spec = set(qconfig_spec)
    if not inplace:
        model = copy.deepcopy(model)
    if _matches("", model, qconfig_spec, linear):
        return DynamicQuantizedLinear.from_float(model, accumulate)
    _swap(model, lambda m: DynamicQuantizedLinear.from_float(m, accumulate), qconfig_spec, linear)
    return model


class _Observed(Module):
    """A Linear wrapped with input and output observers during calibration (`prepare`)."""

    def __init__(self, linear, observer):
        super().__init__()
        self.module = linear
        self.input_observer = observer()
        self.output_observer = observer()

    def forward(self, x):
        self.input_observer(x)
        y = self.module(x)
        self.output_observer(y)
        return y


def prepare(model, inplace=False, observer=MinMaxObserver, qconfig_spec=None):
    """Wrap every Linear (or those named by qconfig_spec) with activation observers; run calibration
    batches through the result (in eval mode, no grad) and then call `convert`."""
    if not isinstance(model, Module):
        raise TypeError(f"prepare: expected an nn.Module, got {type(model).__name__}")
    linear = _linear_type()
    if not inplace:
        model = copy.deepcopy(model)
    _swap(model, lambda m: _Observed(m, observer), qconfig_spec, linear)
    model.eval()
    return model


def convert(model, inplace=False):
    """Replace the observed Linears of a prepared, calibrated model by QuantizedLinear."""
    if not inplace:
        model = copy.deepcopy(model)
    found = []

    def make(obs):
        found.append(obs)
        return QuantizedLinear.from_observed(obs.module, obs.input_observer, obs.output_observer)
    _swap(model, make, [_Observed], None)
    if not found:
        raise RuntimeError("convert: the model has no observed Linear layers; call prepare() and calibrate first")
    return model


def quantize(model, run_fn, run_args=(), inplace=False, observer=MinMaxObserver):
    """prepare -> run_fn(prepared_model, *run_args) (calibration) -> convert (torch.ao.quantization.quantize)."""
    prepared = prepare(model, inplace=inplace, observer=observer)
    with no_grad():
        run_fn(prepared, *run_args)
    return convert(prepared, inplace=True)


def quantize_static(model, calibration_data, observer=MinMaxObserver, inplace=False):
    """Static quantisation calibrated on `calibration_data`: an iterable of input Tensors or of
    (input, target) batches."""
    def run(m):
        for batch in calibration_data:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            m(x)
    return quantize(model, run, inplace=inplace, observer=observer)


def model_size_bytes(model):
    """Bytes of all parameters and buffers of `model` (int8 tensors count one byte per entry)."""
    seen = set()
    total = 0
    for t in list(model.parameters()) + list(model.buffers()):
        if t is None or id(t) in seen:
            continue
        seen.add(id(t))
        total += int(t.data.size) * t.data.dtype.itemsize
    return total
