"""Stochastic Weight Averaging / EMA utilities (PyTorch's `torch.optim.swa_utils`): AveragedModel, SWALR,
update_bn and the averaging functions."""
from __future__ import annotations

import copy
import itertools
import math

import numpy as np

import autodiff
from autodiff.autograd import no_grad
from autodiff.tensor import Tensor

from .lr_scheduler import LRScheduler, _format_param
from .optimizer import _lerp_

__all__ = ["AveragedModel", "SWALR", "update_bn", "get_ema_multi_avg_fn", "get_swa_multi_avg_fn", "get_ema_avg_fn",
           "get_swa_avg_fn"]


def get_ema_multi_avg_fn(decay=0.999):
    """In place: averaged = averaged + (1 - decay) (current - averaged) for every pair of lists."""
    def ema_update(ema_param_list, current_param_list, _num_averaged=None):
        with no_grad():
            for a, c in zip(ema_param_list, current_param_list):
                if a.dtype.kind == "f":
                    _lerp_(None, a.data, c.data, 1 - decay)
                else:
                    a.data[...] = (a.data * decay + c.data * (1 - decay)).astype(a.dtype)
                a._vc[0] += 1
    return ema_update


def get_swa_multi_avg_fn():
    """In place: averaged += (current - averaged) / (num_averaged + 1)."""
    def swa_update(averaged_param_list, current_param_list, num_averaged):
        n = float(num_averaged.data if isinstance(num_averaged, Tensor) else num_averaged)
        with no_grad():
            for a, c in zip(averaged_param_list, current_param_list):
                if a.dtype.kind == "f":
                    _lerp_(None, a.data, c.data, 1.0 / (n + 1))
                else:
                    a.data[...] = (a.data + (c.data - a.data) / (n + 1)).astype(a.dtype)
                a._vc[0] += 1
    return swa_update


def get_ema_avg_fn(decay=0.999):
    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn():
    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)
    return swa_update


def _module_base():
    from nn.module import Module
    return Module


class AveragedModel(_module_base()):
    """A deep copy of `model` whose parameters (and buffers with use_buffers=True) are running averages of
    the model's: SWA (equal weights) by default, or avg_fn / multi_avg_fn (e.g. get_ema_multi_avg_fn(0.999)).
    Call update_parameters(model) after each optimizer step (or epoch); forward runs the averaged copy."""

    def __init__(self, model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("AveragedModel: only one of avg_fn and multi_avg_fn should be provided")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", autodiff.tensor(0, dtype=np.int64, device=device))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def update_parameters(self, model):
        self_param = (itertools.chain(self.module.parameters(), self.module.buffers()) if self.use_buffers
                      else self.parameters())
        model_param = itertools.chain(model.parameters(), model.buffers()) if self.use_buffers else model.parameters()
        first = int(self.n_averaged.data) == 0
        avg_list, cur_list = [], []
        with no_grad():
            for p_avg, p_model in zip(self_param, model_param):
                cur = p_model.detach().to(p_avg.device)
                avg_list.append(p_avg)
                cur_list.append(cur)
                if first:
                    p_avg.data[...] = cur.data
                    p_avg._vc[0] += 1
            if not first:
                if self.multi_avg_fn is not None or self.avg_fn is None:
                    fn = self.multi_avg_fn or get_swa_multi_avg_fn()
                    fn(avg_list, cur_list, self.n_averaged)
                else:
                    n = self.n_averaged.to(avg_list[0].device) if avg_list else self.n_averaged
                    for p_avg, cur in zip(avg_list, cur_list):
                        new = self.avg_fn(p_avg.detach(), cur, n)
                        p_avg.data[...] = new.data if isinstance(new, Tensor) else new
                        p_avg._vc[0] += 1
            if not self.use_buffers:  # buffers follow the source model
                for b_swa, b_model in zip(self.module.buffers(), model.buffers()):
                    b_swa.data[...] = b_model.detach().to(b_swa.device).data
                    b_swa._vc[0] += 1
            self.n_averaged.data += 1


def update_bn(loader, model, device=None):
    """Recompute the BatchNorm running statistics of `model` with one pass over `loader` (cumulative
    average: momentum None during the pass), as PyTorch."""
    from nn.modules.normalization import _BatchNorm
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    with no_grad():
        for input in loader:
            if isinstance(input, (list, tuple)):
                input = input[0]
            if device is not None:
                input = input.to(device)
            model(input)
    for module, m in momenta.items():
        module.momentum = m
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr to swa_lr over anneal_epochs ('cos' or 'linear'), then hold it (PyTorch's SWALR)."""

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos", last_epoch=-1):
        swa_lrs = _format_param("swa_lr", optimizer, swa_lr)
        for lr, group in zip(swa_lrs, optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must by one of 'cos' or 'linear', instead got {anneal_strategy}")
        self._anneal_cos = anneal_strategy == "cos"
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def anneal_func(self, t):
        return (1 - math.cos(math.pi * t)) / 2 if self._anneal_cos else t

    @staticmethod
    def _get_initial_lr(lr, swa_lr, alpha):
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self):
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        prev_lrs = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in self.optimizer.param_groups]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(self.optimizer.param_groups, prev_lrs)]
