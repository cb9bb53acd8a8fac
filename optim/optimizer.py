"""`Optimizer`: the base of every optimizer, with PyTorch's param groups, state and state dicts.

Updates run on the raw backend arrays of the parameters (`p.data`, `p.grad.data`) in place, under
no graph, in one Python loop over the parameters, without host synchronisation. Per-parameter state
(`self.state[p]`) holds Tensors with PyTorch's key names; `state['step']` is a 0-d float32 CPU
tensor (float64 when the default dtype is), as in PyTorch (reading it is a host read, not a device sync).

"Optimizer state follows the module": if a parameter was moved to another device after its state
was created, the state arrays are moved to the parameter's backend at the next step.
"""
from __future__ import annotations

import functools
import warnings
from collections import OrderedDict, defaultdict
from copy import deepcopy
from itertools import chain

import numpy as np

from autodiff.autograd import _new_tensor, enable_grad
from autodiff.backends import backend_of
from autodiff.dtypes import default_float_dtype
from autodiff.tensor import Tensor

__all__ = ["Optimizer", "required", "register_optimizer_step_pre_hook", "register_optimizer_step_post_hook"]


class _RequiredParameter:
    """Singleton marking a hyper-parameter that every param group must give (e.g. SGD's old lr)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


class _ParamTypeError(TypeError, ValueError):
    """A non-Tensor given as a parameter: PyTorch raises TypeError; it is also a ValueError so that
    code expecting either catches it."""


def _typename(o):
    if isinstance(o, Tensor):
        return f"autodiff.Tensor (dtype {o.dtype}, shape {tuple(o.shape)})"
    t = type(o)
    mod = t.__module__
    return t.__qualname__ if mod in (None, "builtins") else f"{mod}.{t.__qualname__}"


def _value(v):
    """A hyper-parameter as a Python number (a Tensor lr is read once per step, as PyTorch does)."""
    return float(v) if isinstance(v, Tensor) else v


def _scalar_dtype():
    """PyTorch's `_get_scalar_dtype`: float64 when the default dtype is float64, else float32."""
    return np.float64 if default_float_dtype() == np.float64 else np.float32


def _new_step(value=0.0):
    return _new_tensor(np.full((), value, dtype=_scalar_dtype()))


# state entries kept as 0-d float32 CPU tensors whatever the parameter's device (as PyTorch)
_CPU_SCALAR_KEYS = ("step", "mu_product")


def _as_step(v):
    """A loaded 'step' (or NAdam 'mu_product') value as a 0-d float32 CPU tensor."""
    if isinstance(v, Tensor):
        v = v.data
    if hasattr(v, "get") and not isinstance(v, np.ndarray):
        v = v.get()
    return _new_tensor(np.asarray(v, dtype=_scalar_dtype()).reshape(()).copy())


def _incr(step_t):
    """state['step'] += 1 in place; returns the new count as a Python float (host memory: no sync)."""
    a = step_t.data
    a += 1
    step_t._vc[0] += 1
    return float(a)


def _closure_loss(closure):
    if closure is None:
        return None
    with enable_grad():
        return closure()


def _zeros_like(p):
    """A zero Tensor like parameter p (same backend, dtype and shape)."""
    return _new_tensor(backend_of(p.data).xp.zeros_like(p.data))


def _arr(t, parr):
    """The array of state tensor t, moved to parameter array parr's backend if the module moved."""
    a = t.data
    if type(a) is not type(parr):
        a = t.data = backend_of(parr).asarray(a)
    return a


class _RemovableHandle:
    """Returned by the hook registration methods; `remove()` unregisters the hook."""
    _next_id = 0

    def __init__(self, hooks_dict):
        self._dict = hooks_dict
        self.id = _RemovableHandle._next_id
        _RemovableHandle._next_id += 1

    def remove(self):
        self._dict.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


_global_step_pre_hooks: OrderedDict = OrderedDict()
_global_step_post_hooks: OrderedDict = OrderedDict()


def register_optimizer_step_pre_hook(hook):
    """hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs), before every optimizer's step."""
    h = _RemovableHandle(_global_step_pre_hooks)
    _global_step_pre_hooks[h.id] = hook
    return h


def register_optimizer_step_post_hook(hook):
    """hook(optimizer, args, kwargs) -> None, after every optimizer's step."""
    h = _RemovableHandle(_global_step_post_hooks)
    _global_step_post_hooks[h.id] = hook
    return h


def _with_hooks(step):
    """Wrap a subclass's `step` to run the step pre/post hooks (once, even when a subclass's step
    calls super().step()) and to count steps for the LR schedulers."""
    @functools.wraps(step)
    def hooked_step(self, *args, **kwargs):
        if self.__dict__.get("_in_step"):
            return step(self, *args, **kwargs)
        pre = self.__dict__.get("_step_pre_hooks")
        if _global_step_pre_hooks or pre:
            for hook in chain(_global_step_pre_hooks.values(), (pre or {}).values()):
                r = hook(self, args, kwargs)
                if r is not None:
                    if not (isinstance(r, tuple) and len(r) == 2):
                        raise RuntimeError(f"{hook} must return None or a tuple of (new_args, new_kwargs), "
                                           f"but got {r}.")
                    args, kwargs = r
        self._in_step = True
        try:
            out = step(self, *args, **kwargs)
        finally:
            self._in_step = False
        self._opt_called = True
        post = self.__dict__.get("_step_post_hooks")
        if _global_step_post_hooks or post:
            for hook in chain((post or {}).values(), _global_step_post_hooks.values()):
                hook(self, args, kwargs)
        return out

    hooked_step._hooked = True
    return hooked_step


class Optimizer:
    """Base class of all optimizers (PyTorch's `torch.optim.Optimizer`).

    `params` is an iterable of Tensors or of dicts (param groups: {'params': [...], 'lr': ...});
    `defaults` holds the default hyper-parameters, applied to groups that do not set them.
    A subclass implements `step(closure=None)`; step pre/post hooks run around it.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_hooked", False):
            cls.step = _with_hooks(step)

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = defaultdict(dict)
        self.param_groups = []
        self._step_pre_hooks = OrderedDict()
        self._step_post_hooks = OrderedDict()
        if isinstance(params, Tensor):
            raise _ParamTypeError("params argument given to the optimizer should be an iterable of Tensors or "
                                  f"dicts, but got {_typename(params)}")
        if isinstance(params, dict):
            params = [params]
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group):
        """Add a param group (a dict with 'params' and optional hyper-parameters) to the optimizer."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {_typename(param_group)}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of tensors in sets will change between runs. Please use a list instead.")
        else:
            param_group["params"] = list(params)
        for p in param_group["params"]:
            if not isinstance(p, Tensor):
                raise _ParamTypeError(f"optimizer can only optimize Tensors, but one of the params is {_typename(p)}")
            if p.grad_fn is not None:
                raise ValueError(f"can't optimize a non-leaf Tensor (shape {tuple(p.shape)}, grad_fn "
                                 f"{type(p.grad_fn).__name__}); optimize the leaf it comes from, or use "
                                 "tensor.detach().requires_grad_()")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)
        ids = [id(p) for p in param_group["params"]]
        if len(ids) != len(set(ids)):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will "
                          "cause an error; see github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if not seen.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ------------------------------------------------------------------ gradients and steps
    def zero_grad(self, set_to_none: bool = True):
        """Reset the gradients of all optimized tensors: to None (default, as PyTorch), or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if g.grad_fn is not None:
                        g.detach_()
                    else:
                        g.requires_grad = False
                    g.data[...] = 0
                    g._vc[0] += 1

    def step(self, closure=None):
        """Perform one optimization step; `closure` re-evaluates the model (under enable_grad) and
        returns the loss. Subclasses implement the update."""
        raise NotImplementedError(f"{type(self).__name__}.step is not implemented")

    def register_step_pre_hook(self, hook):
        """hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs), before each step of this
        optimizer. Returns a handle with remove()."""
        h = _RemovableHandle(self._step_pre_hooks)
        self._step_pre_hooks[h.id] = hook
        return h

    def register_step_post_hook(self, hook):
        """hook(optimizer, args, kwargs) -> None, after each step of this optimizer."""
        h = _RemovableHandle(self._step_post_hooks)
        self._step_post_hooks[h.id] = hook
        return h

    # ------------------------------------------------------------------ state dicts
    def state_dict(self):
        """{'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]}, as PyTorch.

        Parameters are replaced by their index in the order they appear in the groups. The state
        tensors are references (not copies), as in PyTorch; `autodiff.save` writes them out."""
        mapping = {}
        start = 0

        def pack(group):
            nonlocal start
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                mapping.setdefault(id(p), i)
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start += len(packed["params"])
            return packed

        groups = [pack(g) for g in self.param_groups]
        state = {(mapping[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Load a state dict made by `state_dict()` (possibly via autodiff.save/load or from NumPy
        arrays). State tensors are copied onto each parameter's device (floating ones cast to its
        dtype); 'step' stays a float32 CPU tensor."""
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("load_state_dict: expected a dict with keys 'state' and 'param_groups' (from "
                             f"Optimizer.state_dict()), got {_typename(state_dict)}"
                             + (f" with keys {sorted(map(str, state_dict))}" if isinstance(state_dict, dict) else ""))
        groups = self.param_groups
        saved_groups = deepcopy(list(state_dict["param_groups"]))
        if len(groups) != len(saved_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups ({len(saved_groups)} "
                             f"vs the optimizer's {len(groups)})")
        for i, (g, sg) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't match the size of "
                                 f"optimizer's group (group {i}: {len(sg['params'])} saved parameters vs "
                                 f"{len(g['params'])})")
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))

        def cast(param, value, key=None):
            if key in _CPU_SCALAR_KEYS and (isinstance(value, (Tensor, np.ndarray, int, float))
                                            or hasattr(value, "__cuda_array_interface__")):
                return _as_step(value)
            if isinstance(value, (Tensor, np.ndarray)) or hasattr(value, "__cuda_array_interface__"):
                arr = value.data if isinstance(value, Tensor) else value
                dtype = param.data.dtype if (param.data.dtype.kind in "fc" and arr.dtype.kind in "fc") else None
                new = backend_of(param.data).asarray(arr, dtype=dtype)
                if new is arr or (isinstance(new, np.ndarray) and isinstance(arr, np.ndarray)
                                  and np.shares_memory(new, arr)):
                    new = new.copy()  # the optimizer owns its state: never alias the given dict
                return _new_tensor(new)
            if isinstance(value, dict):
                return {k: cast(param, v, key=k) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(cast(param, v) for v in value)
            return value

        state = defaultdict(dict)
        for k, v in state_dict["state"].items():
            key = int(k) if isinstance(k, str) and k.lstrip("-").isdigit() else k
            if key in id_map:
                p = id_map[key]
                state[p] = cast(p, v)
            else:
                state[key] = v
        new_groups = []
        for g, sg in zip(groups, saved_groups):
            sg["params"] = g["params"]
            for name, default in self.defaults.items():
                sg.setdefault(name, g.get(name, default))
            if isinstance(sg.get("betas"), list):
                sg["betas"] = tuple(sg["betas"])
            new_groups.append(sg)
        self.__setstate__({"state": state, "param_groups": new_groups})

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("_step_pre_hooks", OrderedDict())
        self.__dict__.setdefault("_step_post_hooks", OrderedDict())

    def __repr__(self):
        s = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            s += f"\nParameter Group {i}\n"
            for key in sorted(group):
                if key != "params":
                    s += f"    {key}: {group[key]}\n"
        return s + ")"


def _check_common(name, lr=0.0, eps=0.0, betas=None, weight_decay=0.0, differentiable=False):
    """PyTorch's argument checks shared by the optimizers."""
    if not 0.0 <= _value(lr):
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if betas is not None:
        if len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    if differentiable:
        raise NotImplementedError(f"{name}: differentiable=True is not supported: updates run in place on raw "
                                  "backend arrays, outside the autograd graph")


def _lerp_(xp, a, b, w):
    """a.lerp_(b, w) with PyTorch's formula (a + w*(b-a) for w < 0.5, else b - (b-a)*(1-w))."""
    if w < 0.5:
        a += w * (b - a)
    else:
        a[...] = b - (b - a) * (1 - w)


# ---------------------------------------------------------------------- the per-parameter loop, once
def _init_state(st, p, zeros=(), step=True, **scalars):
    """Lazily fill parameter p's state dict `st`, in PyTorch's key order.

    When `st` is empty: 'step' (unless step=False), then each keyword of `scalars` ({key: initial
    value}), all 0-d CPU scalars like `_new_step`. Then every buffer named in `zeros` that is missing
    (also in a non-empty state: e.g. RMSprop's 'momentum_buffer' once momentum is turned on) is
    created as zeros like p. Returns `st`."""
    if not st:
        if step:
            st["step"] = _new_step()
        for k, v in scalars.items():
            st[k] = _new_step(v)
    for k in zeros:
        if k not in st:
            st[k] = _zeros_like(p)
    return st


def _params_with_grad(opt, group, zeros=(), *, step=True, scalars=None, maximize=True, weight_decay=None):
    """Yield `(p, pa, g, st, xp)` for each parameter p of `group` that has a gradient.

    pa is p's array (updated in place by the caller), g the gradient's array, st p's state
    (initialised by `_init_state(st, p, zeros, step, **scalars)`) and xp p's array module. Before the
    yield, in this order: g is negated when maximize=True and the group has 'maximize' set (pass
    maximize=False when the update handles it itself); then weight decay with the group's
    'weight_decay' wd != 0: "l2" makes `g = g + wd * pa` (a new array: the stored gradient is not
    touched), "decoupled" makes `pa *= 1 - lr * wd`, None leaves it to the caller. After the caller's
    loop body, p's version counter is bumped (the body modified pa in place)."""
    state = opt.state
    negate = maximize and group.get("maximize", False)
    wd = group.get("weight_decay", 0) if weight_decay is not None else 0
    if weight_decay not in (None, "l2", "decoupled"):
        raise ValueError(f"_params_with_grad: weight_decay must be None, 'l2' or 'decoupled', got {weight_decay!r}")
    decay = 1 - _value(group["lr"]) * wd if (wd != 0 and weight_decay == "decoupled") else None
    scalars = scalars or {}
    keys = frozenset(zeros)
    xp_type = xp = None
    for p in group["params"]:
        grad = p.grad
        if grad is None:
            continue
        pa = p.data
        st = state[p]
        if not st or not keys <= st.keys():
            _init_state(st, p, zeros, step, **scalars)
        g = grad.data
        if negate:
            g = -g
        if wd != 0:
            if decay is None:
                g = g + wd * pa
            else:
                pa *= decay
        if type(pa) is not xp_type:
            xp_type, xp = type(pa), backend_of(pa).xp
        yield p, pa, g, st, xp
        p._vc[0] += 1
