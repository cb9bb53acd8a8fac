"""DistributedDataParallel: data-parallel training over an `autodiff.distributed` process group.

How it works (PyTorch's reducer, simplified):
- At construction rank 0's parameters and buffers are broadcast (one coalesced broadcast per dtype),
  so every replica starts identical.
- Parameters that require grad are packed, in reverse registration order (roughly the order in which
  backward produces their gradients), into buckets of at most `bucket_cap_mb` MiB per dtype/device.
- A hook on each parameter copies its gradient (plus any gradient accumulated under `no_sync`) into
  its slot of the bucket's flat buffer. When a bucket is full its all-reduce (AVG) is started
  non-blocking; buckets are launched strictly in bucket order so every rank issues the same
  collectives in the same order.
- A callback queued on the backward pass (`autodiff.autograd.queue_callback`) launches the buckets
  still open (slots of parameters that got no gradient contribute zeros), waits for all of them and
  sets each `param.grad` to its slice of the averaged flat buffer (a view; the buffer is fresh each
  pass, so grads of different steps never alias).

So after `loss.backward()` every rank holds the gradient averaged over all ranks, which equals the
gradient of the mean loss over the concatenated global batch when each rank's loss is a mean over an
equal-sized shard.

Differences from PyTorch, on purpose or forced by the engine:
- The engine calls leaf hooks at the end of backward, so all-reduces overlap only with the remaining
  leaf bookkeeping, not with the backward compute of earlier layers.
- A parameter that gets no gradient on a rank contributes zeros instead of raising (PyTorch raises
  unless `find_unused_parameters=True`). With `find_unused_parameters=True` an extra small
  all-reduce finds the parameters unused on every rank; their `.grad` is left as it was.
- Buffers are broadcast from rank 0 before a forward only when grad mode is on (a training forward),
  so evaluating the wrapped model on one rank under `no_grad()` does not hang.
- Double backward through the averaged gradients is not supported (the same holds in PyTorch).
"""
from __future__ import annotations

import contextlib
import time

from autodiff import autograd
from autodiff.autograd import _new_tensor
from autodiff.backends import backend_of
from autodiff.device import as_device
from autodiff.distributed import process_group as _pg

from ..module import Module

_AVG = _pg.ReduceOp.AVG
_SUM = _pg.ReduceOp.SUM


def _key(arr):
    return (type(arr), arr.dtype)


def _coalesced_broadcast(group, tensors, src=0):
    """Broadcast `tensors` from `src` in place with one collective per (array type, dtype)."""
    groups = {}
    for t in tensors:
        groups.setdefault(_key(t.data), []).append(t)
    for ts in groups.values():
        xp = backend_of(ts[0].data).xp
        flat = xp.concatenate([t.data.reshape(-1) for t in ts]) if len(ts) > 1 else ts[0].data.reshape(-1).copy()
        if group.debug:
            group.check("broadcast", [flat], src, "src")
        group.broadcast(flat, src).wait()
        off = 0
        for t in ts:
            n = t.data.size
            t.data[...] = flat[off:off + n].reshape(t.data.shape)
            t._vc[0] += 1
            off += n


class _Bucket:
    __slots__ = ("index", "params", "offsets", "xp", "dtype", "numel", "flat", "pending", "work")

    def __init__(self, index, params):
        self.index = index
        self.params = params
        self.offsets = []
        off = 0
        for p in params:
            self.offsets.append(off)
            off += p.data.size
        self.numel = off
        self.xp = backend_of(params[0].data).xp
        self.dtype = params[0].data.dtype
        self.flat = None
        self.pending = len(params)
        self.work = None


class DistributedDataParallel(Module):
    """Wrap `module` for synchronous data-parallel training (one process per rank).

    DistributedDataParallel(module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
    process_group=None, bucket_cap_mb=25, find_unused_parameters=False, check_reduction=False,
    gradient_as_bucket_view=False, static_graph=False)

    `forward` delegates to `module` (kept as `.module`; state_dict keys carry PyTorch's "module."
    prefix). `no_sync()` skips gradient synchronisation for backward passes of forwards run inside
    it, for gradient accumulation: the next synchronised backward averages the accumulated gradient.
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=25, find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected an nn.Module, got {type(module).__name__}")
        group = _pg._group(process_group, "DistributedDataParallel")
        if bucket_cap_mb is None:
            bucket_cap_mb = 25
        if bucket_cap_mb <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}")
        self.module = module
        self.process_group = group
        self.device_ids = list(device_ids) if device_ids is not None else None
        self.output_device = output_device
        self.dim = dim
        self.broadcast_buffers = bool(broadcast_buffers)
        self.bucket_bytes_cap = int(bucket_cap_mb * 1024 * 1024)
        self.find_unused_parameters = bool(find_unused_parameters)
        self.gradient_as_bucket_view = bool(gradient_as_bucket_view)
        self.static_graph = bool(static_graph)
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        self._sync_next_backward = False
        self._pass_active = False
        self._next_launch = 0
        self.comm_seconds = 0.0  # wall time spent launching and waiting for gradient all-reduces

        params, seen = [], set()
        for p in module.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                params.append(p)
        self._params = params
        kinds = {type(p.data) for p in params}
        if len(kinds) > 1:
            devs = sorted({str(p.device) for p in params})
            raise ValueError(f"DistributedDataParallel: the module's parameters are on several devices {devs}; "
                             "one replica per process must live on one device")
        if self.device_ids is not None and params:
            want = self.device_ids[0]
            idx = int(want) if isinstance(want, int) else (as_device(want).index or 0)
            dev = params[0].device
            if dev.type != "cuda" or (dev.index or 0) != idx:
                raise ValueError(f"DistributedDataParallel: device_ids={self.device_ids} but the module is on "
                                 f"{dev}; move it with module.to('cuda:{idx}') first")

        # Start from rank 0's state.
        if group.size > 1:
            state = list(params) + [b for b in module.buffers()]
            state += [p for p in module.parameters() if id(p) not in seen]
            if state:
                _coalesced_broadcast(group, state)

        # Buckets: reverse parameter order, split by (array type, dtype) and size.
        self._buckets = []
        self._slot = {}  # id(param) -> (bucket, offset)
        open_ = {}
        for p in reversed(params):
            k = _key(p.data)
            cur = open_.get(k)
            nbytes = p.data.size * p.data.dtype.itemsize
            if cur is None or (cur[1] > 0 and cur[1] + nbytes > self.bucket_bytes_cap):
                cur = open_[k] = [[], 0]
                self._buckets.append(cur)
            cur[0].append(p)
            cur[1] += nbytes
        self._buckets = [_Bucket(i, b[0]) for i, b in enumerate(self._buckets)]
        for b in self._buckets:
            for p, off in zip(b.params, b.offsets):
                self._slot[id(p)] = (b, off)
        self._hook_handles = []
        if group.size > 1:
            for p in params:
                self._hook_handles.append(p.register_hook(self._make_hook(p)))

    # ------------------------------------------------------------------ forward
    def forward(self, *inputs, **kwargs):
        if self._pass_active:  # a backward that did not finish the reduction (autodiff.grad, error)
            self._abandon_pass()
        grad_on = autograd.is_grad_enabled()
        self._sync_next_backward = grad_on and self.require_backward_grad_sync
        g = self.process_group
        if self.broadcast_buffers and grad_on and g.size > 1:
            bufs = list(self.module.buffers())
            if bufs:
                _coalesced_broadcast(g, bufs)
        return self.module(*inputs, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Inside: backward passes accumulate local gradients without communication."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    # ------------------------------------------------------------------ the reducer
    def _make_hook(self, p):
        def hook(grad):
            if self._sync_next_backward:
                self._mark_ready(p, grad)
            return None
        return hook

    def _start_pass(self):
        self._pass_active = True
        self._next_launch = 0
        self._used = set()
        for b in self._buckets:
            b.flat = b.xp.zeros(b.numel, dtype=b.dtype)
            b.pending = len(b.params)
            b.work = None
        autograd.queue_callback(self._finalize)

    def _mark_ready(self, p, grad):
        if not self._pass_active:
            self._start_pass()
        b, off = self._slot[id(p)]
        if id(p) in self._used:  # two passes sharing one finalize cannot happen; guard anyway
            raise RuntimeError("DistributedDataParallel: a parameter's gradient hook fired twice in one "
                               "backward pass")
        self._used.add(id(p))
        g = grad.data
        if p.grad is not None:  # local accumulation from no_sync passes (or grads not zeroed)
            g = p.grad.data + g
        n = p.data.size
        b.flat[off:off + n] = g.reshape(-1)
        b.pending -= 1
        if b.pending == 0:
            self._launch_ready()

    def _launch(self, b):
        t0 = time.perf_counter()
        g = self.process_group
        if g.debug:
            g.check("all_reduce", [b.flat], _AVG.code, "op")
        b.work = g.allreduce(b.flat, _AVG)
        self.comm_seconds += time.perf_counter() - t0

    def _launch_ready(self):
        bs = self._buckets
        while self._next_launch < len(bs) and bs[self._next_launch].pending == 0:
            self._launch(bs[self._next_launch])
            self._next_launch += 1

    def _finalize(self, assign=True):
        if not self._pass_active:
            return
        try:
            for b in self._buckets[self._next_launch:]:
                b.pending = 0  # params without a gradient this pass contribute zeros
                self._launch(b)
            self._next_launch = len(self._buckets)
            unused_everywhere = set()
            g = self.process_group
            if self.find_unused_parameters:
                import numpy as np
                mask = np.array([1 if id(p) in self._used else 0 for p in self._params], dtype=np.int32)
                if g.debug:
                    g.check("all_reduce", [mask], _SUM.code, "op")
                g.allreduce(mask, _SUM).wait()
                unused_everywhere = {id(p) for p, m in zip(self._params, mask) if m == 0}
            t0 = time.perf_counter()
            for b in self._buckets:
                b.work.wait()
            self.comm_seconds += time.perf_counter() - t0
            for b in self._buckets:
                flat = b.flat
                for p, off in zip(b.params, b.offsets):
                    if not assign or id(p) in unused_everywhere:
                        continue
                    n = p.data.size
                    p.grad = _new_tensor(flat[off:off + n].reshape(p.data.shape))
                b.flat = None
                b.work = None
        finally:
            self._pass_active = False

    def _abandon_pass(self):
        """A pass whose end the engine never signalled (an `autodiff.grad` call, or a backward that
        raised): complete its collectives, so that the ranks stay in step, but leave `.grad` alone."""
        autograd._queued_callbacks[:] = [c for c in autograd._queued_callbacks if c != self._finalize]
        self._finalize(assign=False)

    # ------------------------------------------------------------------ misc
    def extra_repr(self):
        return (f"world_size={self.process_group.size}, buckets={len(self._buckets)}, "
                f"bucket_cap_mb={self.bucket_bytes_cap / 2 ** 20:g}")

    def __getstate__(self):
        raise TypeError("DistributedDataParallel cannot be pickled; save ddp.module.state_dict() instead")
