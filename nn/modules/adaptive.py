"""AdaptiveLogSoftmaxWithLoss (Grave et al., "Efficient softmax approximation for GPUs"), PyTorch's layout:
head Linear(in_features, shortlist + n_clusters) and one tail Sequential(Linear(in, hsz), Linear(hsz, osz))
per cluster."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

import autodiff
from autodiff.ops.indexing import Gather

from .. import functional as F
from ..module import Module
from .container import ModuleList, Sequential
from .linear import Linear

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    def __init__(self, in_features, n_classes, cutoffs, div_value=4.0, head_bias=False, device=None, dtype=None):
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ValueError("cutoffs should be a sequence of unique, positive integers sorted in an increasing "
                             "order, where each value is between 1 and n_classes-1")
        fk = {"device": device, "dtype": dtype}
        self.in_features, self.n_classes = in_features, n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value, self.head_bias = div_value, head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias, **fk)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hsz, bias=False, **fk), Linear(hsz, osz, bias=False, **fk)))

    def reset_parameters(self):
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input_, target_):
        batched = target_.ndim == 1
        if target_.ndim == 1:
            if input_.shape[0] != target_.shape[0]:
                raise RuntimeError("Input and target should have the same size in the batch dimension.")
            if input_.ndim != 2:
                raise RuntimeError("1D target tensor expects 2D input tensors, but found inputs with size "
                                   f"{tuple(input_.shape)}")
            input, target = input_, target_
        elif target_.ndim == 0:
            if input_.ndim != 1:
                raise RuntimeError("0D target tensor expects 1D input tensors, but found inputs with size "
                                   f"{tuple(input_.shape)}")
            input, target = input_.unsqueeze(0), target_.unsqueeze(0)
        else:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        t = target.detach().cpu().numpy().astype(np.int64)
        b = t.shape[0]
        cut = [0] + self.cutoffs
        if b and (t.min() < 0 or t.max() >= self.n_classes):
            raise RuntimeError(f"Target values should be in [0, {self.n_classes - 1}], but values in range "
                               f"[{t.min()}, {t.max()}] were found. ")
        gather_inds = t.copy()
        xp = autodiff.backends.backend_of(input.data).xp
        cluster_terms = []
        for i in range(1, len(cut) - 1):
            rows = np.nonzero((t >= cut[i]) & (t < cut[i + 1]))[0]
            if rows.size == 0:
                continue
            gather_inds[rows] = self.shortlist_size + i - 1
            sub = input[autodiff.tensor(rows, device=input.device)]
            lp = F.log_softmax(self.tail[i - 1](sub), 1)
            local = Gather.apply(lp, index=xp.asarray((t[rows] - cut[i])[:, None]), axis=1).reshape(-1)
            scatter = np.zeros((b, rows.size))
            scatter[rows, np.arange(rows.size)] = 1.0
            cluster_terms.append(autodiff.tensor(scatter, dtype=input.dtype, device=input.device).matmul(local))
        head_lp = F.log_softmax(self.head(input), 1)
        output = Gather.apply(head_lp, index=xp.asarray(gather_inds[:, None]), axis=1).reshape(-1)
        for term in cluster_terms:
            output = output + term
        loss = (-output).mean()
        if not batched:
            output = output.squeeze(0)
        return _ASMoutput(output, loss)

    def _get_full_log_prob(self, input, head_output):
        head_lp = F.log_softmax(head_output, 1)
        parts = [head_lp[:, :self.shortlist_size]]
        for i in range(len(self.tail)):
            cluster_lp = F.log_softmax(self.tail[i](input), 1)
            parts.append(cluster_lp + head_lp[:, self.shortlist_size + i:self.shortlist_size + i + 1])
        return autodiff.cat(parts, 1)

    def log_prob(self, input):
        """Log-probabilities of all n_classes classes, (N, n_classes) (or (n_classes,))."""
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        out = self._get_full_log_prob(x, self.head(x))
        return out if batched else out.squeeze(0)

    def predict(self, input):
        """The most likely class of each row (same as log_prob(input).argmax(1), as PyTorch)."""
        return self.log_prob(input).argmax(-1)
