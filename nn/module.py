"""nn.Module: the base class of every layer and model (PyTorch's API).

Attribute assignment registers Parameters, buffers and submodules; `parameters()`, `state_dict()`,
`to()`, hooks and `repr` walk the tree. `to(device / dtype)` converts parameters and buffers IN PLACE
(the same Parameter objects get a new `.data`), so an optimizer built before `.to()` keeps working.
"""
from __future__ import annotations

import collections
import itertools
from collections import OrderedDict

import numpy as np

from autodiff import autograd
from autodiff.autograd import Function
from autodiff.backends import backend_of
from autodiff.device import as_device, backend_for, device as Device
from autodiff.dtypes import normalize_dtype
from autodiff.tensor import Tensor

from .parameter import Parameter
from .keras import KerasMixin

class _IncompatibleKeys(collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict returns: (missing_keys, unexpected_keys), printed like PyTorch's."""
    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class RemovableHandle:
    """Returned by register_*_hook; `remove()` unregisters the hook (also usable as a context manager)."""
    _ids = itertools.count()

    def __init__(self, hooks_dict):
        self.hooks_dict = hooks_dict
        self.id = next(RemovableHandle._ids)

    def remove(self):
        self.hooks_dict.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _addindent(s, n):
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return lines[0] + "\n" + "\n".join(" " * n + line for line in lines[1:])


def _parse_to(args, kwargs):
    dev = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"Module.to: unexpected arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            dev, dtype = a.device, a.dtype
        elif isinstance(a, Device) or (isinstance(a, str) and _is_device_string(a)) or isinstance(a, int) \
                and not isinstance(a, bool):
            dev = a
        else:
            dtype = a
    if dtype is not None:
        dtype = normalize_dtype(dtype)
        if dtype.kind not in "fc":
            raise TypeError(f"Module.to: only floating point dtypes are accepted, got {dtype}")
    return (as_device(dev) if dev is not None else None), dtype


def _is_device_string(s):
    try:
        Device(s)
        return True
    except (ValueError, TypeError):
        return False


# True once any module hook was registered (or a module with hooks was unpickled) in this process:
# until then Module.__call__ skips the four per-module hook-dict lookups. Hooks are only added through
# the register_*_hook methods below (other code only reads or deletes entries), so this never misses one.
_hooks_seen = [False]
_HOOK_DICTS = ("_forward_pre_hooks", "_forward_hooks", "_backward_hooks", "_backward_pre_hooks")


class Module(KerasMixin):
    """Base class of all layers and models. Subclasses call `super().__init__()` first, assign layers
    and Parameters as attributes, and implement `forward`."""

    training: bool
    _version = 1
    call_super_init = False

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments")
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent_buffers_set"] = set()
        d["_modules"] = OrderedDict()
        d["_forward_pre_hooks"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()
        d["_forward_hooks_with_kwargs"] = set()
        d["_forward_pre_hooks_with_kwargs"] = set()
        d["_backward_hooks"] = OrderedDict()
        d["_backward_pre_hooks"] = OrderedDict()

    forward = None  # subclasses define it

    # ------------------------------------------------------------------ registration
    def register_parameter(self, name, param):
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"register_parameter: parameter name must be a non-empty string without '.', "
                           f"got {name!r}")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is None:
            self._parameters[name] = None
            return
        if not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                            "(nn.Parameter or None required)")
        if param.grad_fn is not None:
            raise ValueError(f"cannot assign non-leaf Tensor to parameter '{name}'; use .detach()")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"register_buffer: buffer name must be a non-empty string without '.', got {name!r}")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                            "(Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if not isinstance(name, str) or "." in name or name == "":
            raise KeyError(f"module name must be a non-empty string without '.', got {name!r}")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name, value):
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            _remove_from(self, name, keep="_parameters")  # a replaced parameter keeps its place, as PyTorch
            self.register_parameter(name, value)
            return
        if params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                "(nn.Parameter or None expected)")
            params[name] = None
            return
        modules = d.get("_modules")
        if isinstance(value, Module):
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            _remove_from(self, name, keep="_modules")  # a replaced submodule keeps its place, as PyTorch
            modules[name] = value
            return
        if modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' "
                                "(nn.Module or None expected)")
            modules[name] = None
            return
        buffers = d.get("_buffers")
        if buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                "(Tensor or None expected)")
            buffers[name] = value
            return
        object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            s = d.get(store)
            if s is not None and name in s:
                return s[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in ("_parameters", "_buffers", "_modules"):
            s = self.__dict__.get(store)
            if s is not None and name in s:
                del s[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        keys = list(super().__dir__()) + list(self._parameters) + list(self._modules) + list(self._buffers)
        return sorted(set(k for k in keys if not k[0].isdigit()))

    # ------------------------------------------------------------------ calling
    def _call_impl(self, *args, **kwargs):
        d = self.__dict__
        if not _hooks_seen[0] or not (d.get("_forward_pre_hooks") or d.get("_forward_hooks")
                                      or d.get("_backward_hooks") or d.get("_backward_pre_hooks")):
            # fast path: no hooks (until a hook is registered on any module, one list read decides)
            forward = self.forward
            if forward is None:
                raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" '
                                          'function')
            return forward(*args, **kwargs)
        if self.forward is None:
            raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')
        for hid, hook in list(self._forward_pre_hooks.items()):
            if hid in self._forward_pre_hooks_with_kwargs:
                r = hook(self, args, kwargs)
                if r is not None:
                    if not (isinstance(r, tuple) and len(r) == 2):
                        raise RuntimeError("forward pre-hook with kwargs must return None or (args, kwargs)")
                    args, kwargs = r
            else:
                r = hook(self, args)
                if r is not None:
                    args = r if isinstance(r, tuple) else (r,)
        bw_state = None
        if (d.get("_backward_hooks") or d.get("_backward_pre_hooks")) and autograd._mode.enabled:
            bw_state = _BackwardHookState(self)
            args = bw_state.wrap_inputs(args)
        out = self.forward(*args, **kwargs)
        if bw_state is not None:
            out = bw_state.wrap_outputs(out)
        for hid, hook in list(self._forward_hooks.items()):
            if hid in self._forward_hooks_with_kwargs:
                r = hook(self, args, kwargs, out)
            else:
                r = hook(self, args, out)
            if r is not None:
                out = r
        return out

    __call__ = _call_impl

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """hook(module, args) -> None or new args (with_kwargs: hook(module, args, kwargs) -> None or
        (args, kwargs)); runs before forward."""
        h = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[h.id] = hook
        _hooks_seen[0] = True
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs.add(h.id)
        if prepend:
            self._forward_pre_hooks.move_to_end(h.id, last=False)
        return h

    def register_full_backward_hook(self, hook, prepend=False):
        """hook(module, grad_input, grad_output) -> None or a replacement grad_input tuple; called when the
        gradients w.r.t. the module's tensor inputs are computed (grad_input entries are None for inputs
        that need no gradient). Tensor inputs that need gradients must share one dtype and device."""
        h = RemovableHandle(self._backward_hooks)
        self._backward_hooks[h.id] = hook
        _hooks_seen[0] = True
        if prepend:
            self._backward_hooks.move_to_end(h.id, last=False)
        return h

    def register_full_backward_pre_hook(self, hook, prepend=False):
        """hook(module, grad_output) -> None or a replacement grad_output tuple; called when the gradients
        w.r.t. the module's outputs are computed, before they flow into the module."""
        h = RemovableHandle(self._backward_pre_hooks)
        self._backward_pre_hooks[h.id] = hook
        _hooks_seen[0] = True
        if prepend:
            self._backward_pre_hooks.move_to_end(h.id, last=False)
        return h

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False):
        """hook(module, args, output) -> None or a replacement output; runs after forward."""
        h = RemovableHandle(self._forward_hooks)
        self._forward_hooks[h.id] = hook
        _hooks_seen[0] = True
        if with_kwargs:
            self._forward_hooks_with_kwargs.add(h.id)
        if prepend:
            self._forward_hooks.move_to_end(h.id, last=False)
        return h

    # ------------------------------------------------------------------ iteration
    def _named_members(self, get, prefix="", recurse=True, remove_duplicate=True):
        memo = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mprefix, m in mods:
            for k, v in get(m):
                if v is None or (remove_duplicate and id(v) in memo):
                    continue
                if remove_duplicate:
                    memo.add(id(v))
                yield (mprefix + ("." if mprefix else "") + k), v

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members(lambda m: m._parameters.items(), prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        """The parameters of this module and (recurse=True) its descendants, each once, in registration
        order (module pre-order). Written without name building: optimizers and zero_grad call it every step."""
        if not recurse:
            return [p for p in self._parameters.values() if p is not None].__iter__()
        seen = set()
        out = []
        for m in self._module_list():
            for p in m._parameters.values():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    out.append(p)
        return iter(out)

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members(lambda m: m._buffers.items(), prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def named_children(self):
        memo = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in memo:
                memo.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(name, module) for this module and every descendant in pre-order, each module once."""
        if memo is None:
            memo = set()
        stack = [(prefix, self)]
        while stack:
            pre, m = stack.pop()
            if remove_duplicate:
                if id(m) in memo:
                    continue
                memo.add(id(m))
            yield pre, m
            kids = [((pre + "." + n) if pre else n, c) for n, c in m._modules.items() if c is not None]
            stack.extend(reversed(kids))

    def _module_list(self):
        """Every module in the tree once, pre-order (the fast path of modules()/parameters())."""
        out, memo, stack = [], set(), [self]
        while stack:
            m = stack.pop()
            if id(m) in memo:
                continue
            memo.add(id(m))
            out.append(m)
            kids = [c for c in m._modules.values() if c is not None]
            if kids:
                stack.extend(reversed(kids))
        return out

    def modules(self):
        return iter(self._module_list())

    def get_submodule(self, target):
        if target == "":
            return self
        m = self
        for item in target.split("."):
            if item not in m._modules:
                raise AttributeError(f"{type(m).__name__} has no submodule `{item}` (looking up '{target}')")
            m = m._modules[item]
        return m

    def set_submodule(self, target, module, strict=False):
        """Replace (or, strict=False, add) the submodule at dotted path `target`, as PyTorch."""
        if target == "":
            raise ValueError("set_submodule: cannot set the submodule without a target name")
        parent_path, _, name = target.rpartition(".")
        parent = self.get_submodule(parent_path)
        if strict and name not in parent._modules:
            raise AttributeError(f"{type(parent).__name__} has no attribute `{name}`")
        if not isinstance(module, Module):
            raise ValueError(f"`module` is not an nn.Module, found {type(module).__name__}")
        setattr(parent, name, module)

    def get_parameter(self, target):
        mod_path, _, name = target.rpartition(".")
        m = self.get_submodule(mod_path)
        if name not in m._parameters:
            raise AttributeError(f"{type(m).__name__} has no parameter `{name}`")
        return m._parameters[name]

    def get_buffer(self, target):
        mod_path, _, name = target.rpartition(".")
        m = self.get_submodule(mod_path)
        if name not in m._buffers:
            raise AttributeError(f"{type(m).__name__} has no buffer `{name}`")
        return m._buffers[name]

    # ------------------------------------------------------------------ modes and grads
    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError("train: training mode is expected to be boolean")
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad = autograd._new_tensor(backend_of(p.grad.data).xp.zeros_like(p.grad.data))

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ device / dtype, in place
    def _apply_arrays(self, fn):
        """Replace every parameter's and buffer's array (and gradient) by fn(array), in place."""
        for m in self.modules():
            for p in m._parameters.values():
                if p is None:
                    continue
                new = fn(p.data)
                if new is not p.data:
                    p.data = new
                    p._vc[0] += 1
                if p.grad is not None:
                    g = fn(p.grad.data)
                    if g is not p.grad.data:
                        p.grad = autograd._new_tensor(g)
            for k, b in m._buffers.items():
                if b is not None:
                    new = fn(b.data)
                    if new is not b.data:
                        b.data = new
                        b._vc[0] += 1
        return self

    def to(self, *args, **kwargs):
        """`to(device)`, `to(dtype)`, `to(device, dtype)`, `to(tensor)`: moves/casts parameters and buffers
        in place (same objects, new `.data`). dtype casts apply to floating tensors only, as PyTorch."""
        dev, dtype = _parse_to(args, kwargs)
        target = backend_for(dev) if dev is not None else None

        def conv(a):
            out = a
            if target is not None and (backend_of(a) is not target or
                                       (dev.index is not None and target.device_of(a) != str(dev))):
                out = target.asarray(a, device=dev)
            if dtype is not None and out.dtype.kind in "fc" and out.dtype != dtype:
                out = out.astype(dtype)
            return out

        return self._apply_arrays(conv)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to(Device("cuda", device) if isinstance(device, int) else (device or "cuda"))

    def type(self, dst_type):
        return self.to(dst_type)

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def half(self):
        return self.to(np.float16)

    # ------------------------------------------------------------------ state dicts
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()

    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        """OrderedDict name -> tensor (detached, sharing storage) of every parameter and persistent buffer."""
        if args:  # old positional form state_dict(destination, prefix, keep_vars)
            destination = args[0]
            if len(args) > 1:
                prefix = args[1]
            if len(args) > 2:
                keep_vars = args[2]
        if destination is None:
            destination = OrderedDict()
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        return destination

    def _missing_ok(self, name):
        """Whether a state-dict entry `name` of this module may be absent (kept as is) without being
        reported missing; BatchNorm says yes for num_batches_tracked (old checkpoints), as PyTorch."""
        return False

    def _local_state(self):
        d = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                d[name] = p
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                d[name] = b
        return d

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy values (Tensors or NumPy arrays) into the parameters and buffers in place. Shape
        mismatches always raise; with strict=True missing or unexpected keys raise too, listing them.
        Returns a named tuple (missing_keys, unexpected_keys)."""
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(f"load_state_dict: expected a dict-like state_dict, got {type(state_dict).__name__}")
        missing, mismatched = [], []
        expected = set()
        todo = []
        for mprefix, m in self.named_modules():
            pre = mprefix + "." if mprefix else ""
            for name, t in m._local_state().items():
                key = pre + name
                expected.add(key)
                if key not in state_dict:
                    if not m._missing_ok(name):
                        missing.append(key)
                    continue
                v = state_dict[key]
                arr = v.data if isinstance(v, Tensor) else v
                if not hasattr(arr, "shape"):
                    arr = np.asarray(arr)
                if tuple(arr.shape) != tuple(t.data.shape):
                    mismatched.append(f"size mismatch for {key}: copying a param with shape {tuple(arr.shape)} "
                                      f"from checkpoint, the shape in current model is {tuple(t.data.shape)}.")
                    continue
                todo.append((t, arr))
        unexpected = [k for k in state_dict if k not in expected]
        errors = []
        if strict:
            if unexpected:
                errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
            if missing:
                errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
        errors.extend(mismatched)
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        for t, arr in todo:
            b = backend_of(t.data)
            new = b.asarray(arr, device=t.device if t.device.type == "cuda" else None)
            if assign:
                t.data = new.astype(t.data.dtype, copy=False) if new.dtype.kind != t.data.dtype.kind else new
            else:
                t.data[...] = new
            t._vc[0] += 1
        return _IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ printing
    def extra_repr(self):
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        child = []
        for key, m in self._modules.items():
            child.append("(" + key + "): " + _addindent(repr(m), 2))
        lines = lines + child
        main = self._get_name() + "("
        if lines:
            if len(extra.split("\n")) == 1 and not child:
                main += extra
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def num_parameters(self, only_trainable=False):
        """Total number of parameter elements (only those requiring grad with only_trainable=True)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    def summary(self):
        """The module tree, one line per module, with its own and cumulative parameter counts."""
        rows = []
        for name, m in self.named_modules():
            own = sum(p.numel() for p in m._parameters.values() if p is not None)
            total = m.num_parameters()
            depth = name.count(".") + (1 if name else 0)
            rows.append(f"{'  ' * depth}{name or type(self).__name__} ({m._get_name()}): {own:,} params "
                        f"({total:,} incl. children)")
        total = self.num_parameters()
        trainable = self.num_parameters(only_trainable=True)
        rows.append(f"Total params: {total:,} (trainable: {trainable:,})")
        return "\n".join(rows)

    def __getstate__(self):
        return self.__dict__.copy()

    def __setstate__(self, state):
        self.__dict__.update(state)
        if any(state.get(k) for k in _HOOK_DICTS):  # (unpickled in a process that never registered one)
            _hooks_seen[0] = True


def _remove_from(module, name, keep=None):
    d = module.__dict__
    for store in ("_parameters", "_buffers", "_modules"):
        if store == keep:
            continue
        s = d.get(store)
        if s is not None and name in s:
            del s[name]
    if name in d:
        del d[name]


# ----------------------------------------------------------------------------- full backward hooks
class _BackwardHookState:
    """Per-call state of a module with full backward (pre-)hooks. The tensor inputs that need gradients go
    through one packing node (_HookInputs) so that the hook sees, and may replace, all input gradients at
    once; each output goes through an identity node (_HookOutput) that records its gradient."""

    def __init__(self, module):
        self.module = module
        self.in_pos = []
        self.n_args = 0
        self.grad_output = None
        self.out_pending = 0

    def wrap_inputs(self, args):
        self.n_args = len(args)
        self.in_pos = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
        if not self.in_pos or not self.module._backward_hooks:
            return args
        ins = [args[i] for i in self.in_pos]
        if len({(a.data.dtype, type(a.data)) for a in ins}) != 1:
            raise NotImplementedError(f"{type(self.module).__name__}: full backward hooks need the tensor inputs "
                                      "that require grad to share one dtype and device, got "
                                      + ", ".join(f"{a.dtype} on {a.device}" for a in ins))
        packed = _HookInputs.apply(*ins, state=self)
        args = list(args)
        start = 0
        for i, a in zip(self.in_pos, ins):
            n = a.data.size
            args[i] = packed[start:start + n].reshape(a.data.shape)
            start += n
        return tuple(args)

    def wrap_outputs(self, out):
        single = isinstance(out, Tensor)
        outs = [out] if single else list(out) if isinstance(out, (tuple, list)) else None
        if outs is None:
            return out
        self.grad_output = [None] * len(outs)
        for k, o in enumerate(outs):
            if isinstance(o, Tensor) and o.requires_grad:
                self.out_pending += 1
                outs[k] = _HookOutput.apply(o, state=self, k=k)
        if single:
            return outs[0]
        return type(out)(outs) if isinstance(out, tuple) and type(out) is tuple else \
            (type(out)(*outs) if isinstance(out, tuple) else outs)

    def output_grad(self, k, g):
        go = list(self.grad_output)
        go[k] = g
        self.out_pending -= 1
        if self.out_pending == 0:
            go = tuple(go)
            for hook in list(self.module._backward_pre_hooks.values()):
                r = hook(self.module, go)
                if r is not None:
                    go = tuple(r) if isinstance(r, (tuple, list)) else (r,)
            self.grad_output = go
            if not self.in_pos or not self.module._backward_hooks:  # nothing upstream to wait for
                self.run_hooks(tuple(None for _ in range(self.n_args)))
            return go[k]
        self.grad_output = go
        return g

    def run_hooks(self, grad_input):
        go = tuple(self.grad_output) if self.grad_output is not None else ()
        for hook in list(self.module._backward_hooks.values()):
            r = hook(self.module, grad_input, go)
            if r is not None:
                r = tuple(r) if isinstance(r, (tuple, list)) else (r,)
                if len(r) != len(grad_input):
                    raise RuntimeError(f"backward hook of {type(self.module).__name__} returned {len(r)} gradients, "
                                       f"expected {len(grad_input)}")
                grad_input = r
        return grad_input


class _HookOutput(Function):
    """Identity on one module output; its backward hands the gradient to the hook state."""
    is_view = True

    @staticmethod
    def forward(ctx, a, state, k):
        ctx.state, ctx.k = state, k
        return a.view()

    @staticmethod
    def backward(ctx, g):
        return ctx.state.output_grad(ctx.k, g)


class _HookInputs(Function):
    """The tensor inputs, flattened and concatenated; backward splits the gradient back, calls the full
    backward hooks with it and returns what they give."""

    @staticmethod
    def forward(ctx, *arrays, state):
        ctx.state = state
        ctx.shapes = [a.shape for a in arrays]
        return ctx.backend.xp.concatenate([a.reshape(-1) for a in arrays])

    @staticmethod
    def backward(ctx, g):
        st = ctx.state
        parts, start = [], 0
        for shape in ctx.shapes:
            n = 1
            for v in shape:
                n *= v
            parts.append(g[start:start + n].reshape(shape))
            start += n
        full = [None] * st.n_args
        for i, p in zip(st.in_pos, parts):
            full[i] = p
        full = st.run_hooks(tuple(full))
        return tuple(full[i] for i in st.in_pos)
