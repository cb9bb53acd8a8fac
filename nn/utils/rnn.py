"""nn.utils.rnn: padding and packing of variable-length sequences (PyTorch's PackedSequence layout).

A PackedSequence holds `data` (sum of lengths, *): the time steps one after another, each with the
sequences still running at that step (longest first); `batch_sizes` (int64, on the host as in PyTorch):
how many sequences run at each step; `sorted_indices` / `unsorted_indices`: the permutation to and from
longest-first order (None when the input was already sorted). RNN, LSTM and GRU accept a PackedSequence
and return one."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

import autodiff
from autodiff import Tensor

__all__ = ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence", "unpad_sequence",
           "pack_sequence", "unpack_sequence", "invert_permutation"]


def _host_ints(x, name):
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy() if hasattr(x, "cpu") else x.numpy()
    a = np.asarray(x)
    if a.dtype.kind not in "iu":
        if a.dtype.kind == "f" and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            raise TypeError(f"{name}: lengths must be integers, got dtype {a.dtype}")
    return a.astype(np.int64).reshape(-1)


def invert_permutation(permutation):
    if permutation is None:
        return None
    p = _host_ints(permutation, "invert_permutation")
    out = np.empty_like(p)
    out[p] = np.arange(p.size)
    return autodiff.tensor(out)


class PackedSequence(namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])):
    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs):
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        return type(self)(data, self.batch_sizes, self.sorted_indices, self.unsorted_indices)

    @property
    def is_cuda(self):
        return getattr(self.data.device, "type", "cpu") == "cuda"


def _index(t, dim, idx):
    """t.index_select(dim, idx) with idx on t's device."""
    i = autodiff.tensor(_host_ints(idx, "index"), device=t.device)
    return t.index_select(dim, i)


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack a padded (T, B, *) (or (B, T, *) with batch_first) batch of sequences with the given lengths."""
    lens = _host_ints(lengths, "pack_padded_sequence")
    b = input.shape[0 if batch_first else 1]
    if lens.size != b:
        raise ValueError(f"pack_padded_sequence: expected {b} lengths (the batch size of input "
                         f"{tuple(input.shape)}), got {lens.size}")
    if lens.size and lens.min() <= 0:
        raise RuntimeError("pack_padded_sequence: length of all samples has to be greater than 0, but found an "
                           "element in 'lengths' that is <= 0")
    if enforce_sorted:
        if np.any(lens[:-1] < lens[1:]):
            raise RuntimeError("pack_padded_sequence: `lengths` array must be sorted in decreasing order when "
                               "`enforce_sorted` is True. You can pass `enforce_sorted=False` to "
                               "pack_padded_sequence and/or pack_sequence to sidestep this requirement if you do "
                               "not need ONNX exportability.")
        sorted_indices = None
    else:
        order = np.argsort(-lens, kind="stable")
        sorted_indices = autodiff.tensor(order)
        lens = lens[order]
        input = _index(input, 0 if batch_first else 1, order)
    if batch_first:
        input = input.transpose(0, 1)
    t_max = int(lens[0])
    if t_max > input.shape[0]:
        raise RuntimeError(f"pack_padded_sequence: a length {t_max} exceeds the sequence dimension "
                           f"{input.shape[0]} of input")
    batch_sizes = np.array([(lens > t).sum() for t in range(t_max)], dtype=np.int64)
    data = autodiff.cat([input[t, :int(batch_sizes[t])] for t in range(t_max)], 0)
    return PackedSequence(data, autodiff.tensor(batch_sizes), sorted_indices, None)


def _pad_sorted(sequence, padding_value=0.0, total_length=None):
    """The packed data as (T, B, *) in longest-first order, plus the lengths (host int64) in that order."""
    bs = _host_ints(sequence.batch_sizes, "pad_packed_sequence")
    data = sequence.data
    b = int(bs[0])
    t_max = bs.size
    if total_length is not None:
        if total_length < t_max:
            raise ValueError(f"pad_packed_sequence: expected total_length to be at least the length of the longest "
                             f"sequence ({t_max}), but got total_length={total_length}")
    rest = tuple(data.shape[1:])
    steps, off = [], 0
    for t in range(t_max):
        n = int(bs[t])
        piece = data[off:off + n]
        off += n
        if n < b:
            fill = autodiff.full((b - n,) + rest, padding_value, dtype=data.dtype, device=data.device)
            piece = autodiff.cat([piece, fill], 0)
        steps.append(piece)
    for _ in range(t_max, total_length or t_max):
        steps.append(autodiff.full((b,) + rest, padding_value, dtype=data.dtype, device=data.device))
    lengths = np.array([(bs > i).sum() for i in range(b)], dtype=np.int64)
    return autodiff.stack(steps, 0), lengths


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Inverse of pack_padded_sequence: (padded (T, B, *) or (B, T, *), lengths int64 Tensor)."""
    out, lengths = _pad_sorted(sequence, padding_value, total_length)
    if sequence.unsorted_indices is not None:
        ui = _host_ints(sequence.unsorted_indices, "pad_packed_sequence")
        out = _index(out, 1, ui)
        lengths = lengths[ui]
    if batch_first:
        out = out.transpose(0, 1)
    return out, autodiff.tensor(lengths)


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack variable-length sequences (L_i, *) into (L_max, B, *) (or (B, L_max, *)), padded with
    padding_value on the right (or left)."""
    if isinstance(sequences, Tensor):
        sequences = list(sequences.unbind(0))
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("pad_sequence: received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise ValueError(f"pad_sequence: padding_side must be 'left' or 'right', got {padding_side!r}")
    rest = tuple(sequences[0].shape[1:])
    for s in sequences:
        if tuple(s.shape[1:]) != rest:
            raise RuntimeError(f"pad_sequence: trailing dimensions differ: {tuple(s.shape)} vs "
                               f"{(sequences[0].shape[0],) + rest}")
    m = max(s.shape[0] for s in sequences)
    cols = []
    for s in sequences:
        k = m - s.shape[0]
        if k:
            fill = autodiff.full((k,) + rest, padding_value, dtype=s.dtype, device=s.device)
            s = autodiff.cat([s, fill] if padding_side == "right" else [fill, s], 0)
        cols.append(s)
    return autodiff.stack(cols, 0 if batch_first else 1)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    lens = _host_ints(lengths, "unpad_sequence")
    x = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    return [x[i, :int(n)] for i, n in enumerate(lens)]


def pack_sequence(sequences, enforce_sorted=True):
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences):
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
