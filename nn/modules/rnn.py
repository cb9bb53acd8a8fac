"""Recurrent layers: RNN (tanh / relu), LSTM and GRU with PyTorch's parameter names, shapes, gate order
(LSTM: i, f, g, o; GRU: r, z, n) and initialisation U(-1/sqrt(hidden), 1/sqrt(hidden)), multi-layer,
batch_first, inter-layer dropout and bidirectional. The input projection of all time steps is one GEMM;
the recurrence is a Python loop over time steps of Tensor ops (so autograd handles BPTT)."""
from __future__ import annotations

import math

import autodiff
from autodiff.ops.shape import stack

from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter


class RNNBase(Module):
    _gates = 1

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, nonlinearity="tanh", device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"{name}: hidden_size must be a positive integer, got {hidden_size!r}")
        if num_layers <= 0:
            raise ValueError(f"{name}: num_layers must be positive, got {num_layers}")
        if not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout must be a number in [0, 1], got {dropout}")
        if proj_size < 0:
            raise ValueError(f"{name}: proj_size should be a positive integer or zero to disable projections")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if proj_size >= hidden_size:
            raise ValueError(f"{name}: proj_size ({proj_size}) has to be smaller than hidden_size ({hidden_size})")
        self.mode, self.input_size, self.hidden_size, self.num_layers = mode, input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size, self.nonlinearity = bidirectional, proj_size, nonlinearity
        g = self._gates * hidden_size
        d = 2 if bidirectional else 1
        real = proj_size if proj_size > 0 else hidden_size  # LSTM with projections: h has proj_size features
        self._flat_weights_names = []
        for layer in range(num_layers):
            for direction in range(d):
                in_size = input_size if layer == 0 else real * d
                sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                names = [("weight_ih" + sfx, (g, in_size)), ("weight_hh" + sfx, (g, real))]
                if bias:
                    names += [("bias_ih" + sfx, (g,)), ("bias_hh" + sfx, (g,))]
                if proj_size > 0:
                    names += [("weight_hr" + sfx, (proj_size, hidden_size))]
                for nm, shape in names:
                    setattr(self, nm, Parameter(autodiff.empty(*shape, device=device, dtype=dtype)))
                    self._flat_weights_names.append(nm)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    @property
    def all_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # -- one direction of one layer over the whole sequence x (L, N, in); returns (outputs (L, N, H), state).
    # Subclasses define _cell(xw_t, state, w_hh, b_hh) -> new state.
    def _run_direction(self, x, state, layer, reverse, lengths=None):
        sfx = f"_l{layer}" + ("_reverse" if reverse else "")
        w_ih, w_hh = getattr(self, "weight_ih" + sfx), getattr(self, "weight_hh" + sfx)
        b_ih = getattr(self, "bias_ih" + sfx) if self.bias else None
        b_hh = getattr(self, "bias_hh" + sfx) if self.bias else None
        w_hr = getattr(self, "weight_hr" + sfx) if self.proj_size else None
        xw = F.linear(x, w_ih, b_ih)  # all time steps in one GEMM
        L = x.shape[0]
        outs = [None] * L
        steps = range(L - 1, -1, -1) if reverse else range(L)
        for t in steps:
            new = self._cell(xw[t], state, w_hh, b_hh)
            if w_hr is not None:  # LSTM projection: h = (o * tanh(c)) W_hr^T
                new = (F.linear(new[0], w_hr), new[1])
            if lengths is not None:  # packed input: sequences that ended (or, reversed, not begun) keep their state
                m = autodiff.tensor((lengths > t).reshape(-1, 1), device=x.device)
                new = tuple(autodiff.where(m, a, b) for a, b in zip(new, state)) if isinstance(new, tuple) \
                    else autodiff.where(m, new, state)
            state = new
            outs[t] = state[0] if isinstance(state, tuple) else state
        return stack(outs, 0), state

    def _check_and_layout(self, input, hx):
        name = type(self).__name__
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: expected a 2-D (unbatched) or 3-D input, got shape {tuple(input.shape)}")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"{name}({self.extra_repr()}): input has {input.shape[-1]} features (shape "
                               f"{tuple(input.shape)}), expected input_size={self.input_size}")
        batched = input.ndim == 3
        x = input
        if not batched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        return x, batched

    def _initial(self, x, hx, batched, size=None):
        d = 2 if self.bidirectional else 1
        n = x.shape[1]
        shape = (self.num_layers * d, n, self.hidden_size if size is None else size)
        if hx is None:
            return autodiff.zeros(*shape, dtype=x.dtype, device=x.device)
        h = hx if batched else hx.unsqueeze(1)
        if tuple(h.shape) != shape:
            raise RuntimeError(f"{type(self).__name__}: expected hidden size {shape if batched else (shape[0], shape[2])}, "
                               f"got {tuple(hx.shape)}")
        return h

    def _forward_layers(self, x, init_states, pk=None):
        """init_states: list (per layer*direction) of the state object; returns (output, final states)."""
        d = 2 if self.bidirectional else 1
        finals = []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(d):
                o, st = self._run_direction(x, init_states[layer * d + direction], layer, direction == 1,
                                            None if pk is None else pk[0])
                outs.append(o)
                finals.append(st)
            x = outs[0] if d == 1 else autodiff.cat(outs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        return x, finals

    def _layout(self, input, hx):
        """(x as (L, N, features), batched, pk): pk = (lengths in longest-first order, the PackedSequence) for a
        packed input, else None."""
        from ..utils.rnn import PackedSequence, _pad_sorted
        if isinstance(input, PackedSequence):
            x, lengths = _pad_sorted(input)
            if x.shape[-1] != self.input_size:
                raise RuntimeError(f"{type(self).__name__}: packed input has {x.shape[-1]} features, expected "
                                   f"input_size={self.input_size}")
            return x, True, (lengths, input)
        x, batched = self._check_and_layout(input, hx)
        return x, batched, None

    @staticmethod
    def _permute(h, pk, which):
        """Reorder the batch dimension of a state (or (h, c)) to / from the packed longest-first order."""
        if pk is None or h is None:
            return h
        idx = pk[1].sorted_indices if which == "sorted" else pk[1].unsorted_indices
        if idx is None:
            return h
        if isinstance(h, (tuple, list)):
            return type(h)(RNNBase._permute(t, pk, which) for t in h)
        return h.index_select(1, idx.to(h.device) if hasattr(idx, "to") else idx)

    def _output(self, out, batched, pk=None):
        if pk is not None:
            from ..utils.rnn import PackedSequence, _host_ints
            packed = pk[1]
            bs = _host_ints(packed.batch_sizes, type(self).__name__)
            data = autodiff.cat([out[t, :int(bs[t])] for t in range(bs.size)], 0)
            return PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
        if not batched:
            return out.squeeze(1)
        return out.transpose(0, 1) if self.batch_first else out


class RNN(RNNBase):
    """Elman RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r} (use 'tanh' or 'relu')")
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         nonlinearity=nonlinearity, device=device, dtype=dtype)

    def _cell(self, xw, h, w_hh, b_hh):
        z = xw + F.linear(h, w_hh, b_hh)
        return autodiff.tanh(z) if self.nonlinearity == "tanh" else autodiff.relu(z)

    def forward(self, input, hx=None):
        x, batched, pk = self._layout(input, hx)
        h0 = self._initial(x, self._permute(hx, pk, "sorted"), batched)
        out, finals = self._forward_layers(x, [h0[i] for i in range(h0.shape[0])], pk)
        hn = stack(finals, 0)
        return self._output(out, batched, pk), self._permute(hn if batched else hn.squeeze(1), pk, "unsorted")


class LSTM(RNNBase):
    """LSTM with gates (i, f, g, o): c' = f c + i g, h' = o tanh(c'); returns (output, (h_n, c_n))."""
    _gates = 4

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device=device, dtype=dtype)

    def _cell(self, xw, state, w_hh, b_hh):
        h, c = state
        gates = xw + F.linear(h, w_hh, b_hh)
        i, f, g, o = gates.chunk(4, -1)
        i, f, g, o = autodiff.sigmoid(i), autodiff.sigmoid(f), autodiff.tanh(g), autodiff.sigmoid(o)
        c = f * c + i * g
        h = o * autodiff.tanh(c)
        return h, c

    def forward(self, input, hx=None):
        x, batched, pk = self._layout(input, hx)
        hx = self._permute(hx, pk, "sorted")
        real = self.proj_size if self.proj_size > 0 else self.hidden_size
        if hx is None:
            h0 = self._initial(x, None, batched, real)
            c0 = h0 if real == self.hidden_size else self._initial(x, None, batched)
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise RuntimeError("LSTM: hx must be a tuple (h_0, c_0)")
            h0, c0 = self._initial(x, hx[0], batched, real), self._initial(x, hx[1], batched)
        out, finals = self._forward_layers(x, [(h0[i], c0[i]) for i in range(h0.shape[0])], pk)
        hn = stack([s[0] for s in finals], 0)
        cn = stack([s[1] for s in finals], 0)
        if not batched:
            hn, cn = hn.squeeze(1), cn.squeeze(1)
        return self._output(out, batched, pk), self._permute((hn, cn), pk, "unsorted")


class GRU(RNNBase):
    """GRU with gates (r, z, n): n = tanh(x W_in + b_in + r (h W_hn + b_hn)), h' = (1 - z) n + z h."""
    _gates = 3

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)

    def _cell(self, xw, h, w_hh, b_hh):
        hw = F.linear(h, w_hh, b_hh)
        xr, xz, xn = xw.chunk(3, -1)
        hr, hz, hn = hw.chunk(3, -1)
        r = autodiff.sigmoid(xr + hr)
        z = autodiff.sigmoid(xz + hz)
        n = autodiff.tanh(xn + r * hn)
        return (1 - z) * n + z * h

    def forward(self, input, hx=None):
        x, batched, pk = self._layout(input, hx)
        h0 = self._initial(x, self._permute(hx, pk, "sorted"), batched)
        out, finals = self._forward_layers(x, [h0[i] for i in range(h0.shape[0])], pk)
        hn = stack(finals, 0)
        return self._output(out, batched, pk), self._permute(hn if batched else hn.squeeze(1), pk, "unsorted")


class _CellBase(Module):
    _gates = 1

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        g = self._gates * hidden_size
        self.weight_ih = Parameter(autodiff.empty(g, input_size, device=device, dtype=dtype))
        self.weight_hh = Parameter(autodiff.empty(g, hidden_size, device=device, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(autodiff.empty(g, device=device, dtype=dtype))
            self.bias_hh = Parameter(autodiff.empty(g, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        stdv = 1.0 / math.sqrt(hidden_size)
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")
        nl = getattr(self, "nonlinearity", "tanh")  # RNNCell only, as torch's RNNCellBase.extra_repr
        return s + ("" if nl == "tanh" else f", nonlinearity={nl}")

    def _zeros(self, x):
        n = x.shape[0] if x.ndim == 2 else None
        shape = (n, self.hidden_size) if n is not None else (self.hidden_size,)
        return autodiff.zeros(*shape, dtype=x.dtype, device=x.device)


RNNCellBase = _CellBase  # PyTorch's public name of the cells' base class


class RNNCell(_CellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        h = self._zeros(input) if hx is None else hx
        z = F.linear(input, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        return autodiff.tanh(z) if self.nonlinearity == "tanh" else autodiff.relu(z)


class LSTMCell(_CellBase):
    _gates = 4

    def forward(self, input, hx=None):
        if hx is None:
            hx = (self._zeros(input), self._zeros(input))
        xw = F.linear(input, self.weight_ih, self.bias_ih)
        return LSTM._cell(self, xw, hx, self.weight_hh, self.bias_hh)


class GRUCell(_CellBase):
    _gates = 3

    def forward(self, input, hx=None):
        h = self._zeros(input) if hx is None else hx
        xw = F.linear(input, self.weight_ih, self.bias_ih)
        return GRU._cell(self, xw, h, self.weight_hh, self.bias_hh)
