"""Pruning (torch.nn.utils.prune): re-parametrise a module's tensor as `orig * mask`.

Pruning `module.weight` moves the Parameter to `module.weight_orig`, adds the buffer
`module.weight_mask`, and sets `module.weight = weight_orig * weight_mask` (a plain attribute) that a
forward pre-hook recomputes before every call. So gradients reach `weight_orig` only through the
unmasked entries, the effective weight of pruned entries stays exactly zero after optimizer steps,
and `state_dict()` holds `weight_orig` and `weight_mask` (a pruned model round-trips through it).
Pruning the same tensor again composes masks with a `PruningContainer`: the new amount applies to
the entries (or, for structured methods, the channels) that are still unpruned. `remove` makes the
pruning permanent (`weight` becomes a Parameter holding `orig * mask` again).

`amount` is an int (how many entries/channels) or a float in [0, 1] (fraction, rounded with Python's
`round`, as PyTorch). Ties in magnitude are broken by position (the lowest flat index is pruned
first; PyTorch's `topk` leaves tie order unspecified).

Beyond PyTorch: `sparsity_report(model)` prints and returns per-layer and global sparsity, and
`shrink_structured(model, example_input)` turns structurally pruned Linear/Conv2d layers of a
Sequential into physically smaller ones with identical outputs.
"""
from __future__ import annotations

import copy
import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterable

import numpy as np

from autodiff.autograd import _new_tensor
from autodiff.backends import backend_of
from autodiff.tensor import Tensor

__all__ = ["BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured", "L1Unstructured",
           "RandomStructured", "LnStructured", "CustomFromMask", "identity", "random_unstructured",
           "l1_unstructured", "random_structured", "ln_structured", "global_unstructured", "custom_from_mask",
           "remove", "is_pruned", "sparsity_report", "shrink_structured", "shrink_linear_stack"]


def _xp(a):
    return backend_of(a).xp


def _argsort(xp, a):
    """Stable argsort (ties keep index order) on NumPy or CuPy."""
    try:
        return xp.argsort(a, kind="stable")
    except (TypeError, NotImplementedError, ValueError):
        return xp.argsort(a)  # CuPy's sort is a stable radix sort


def _arr(t):
    return t.data if isinstance(t, Tensor) else t


def _wrap(a):
    return _new_tensor(a)


class BasePruningMethod(ABC):
    """Abstract base: subclasses set PRUNING_TYPE ('unstructured', 'structured' or 'global') and
    implement `compute_mask(t, default_mask)` (Tensors in, mask Tensor out)."""
    _tensor_name: str
    PRUNING_TYPE = "unstructured"

    def __call__(self, module, inputs):
        """Forward pre-hook: recompute `module.<name>` from `<name>_orig` and `<name>_mask`."""
        setattr(module, self._tensor_name, self.apply_mask(module))

    @abstractmethod
    def compute_mask(self, t, default_mask):
        ...

    def apply_mask(self, module):
        """`orig * mask` (differentiable in orig, so gradients of pruned entries are zero)."""
        if not hasattr(self, "_tensor_name"):
            raise AttributeError(f"{type(self).__name__}: module {module} has to be pruned first")
        orig = getattr(module, self._tensor_name + "_orig")
        mask = getattr(module, self._tensor_name + "_mask")
        if mask.data.dtype != orig.data.dtype:
            mask = _wrap(mask.data.astype(orig.data.dtype))
        return mask * orig

    @classmethod
    def apply(cls, module, name, *args, importance_scores=None, **kwargs):
        """Prune `module.<name>` in place with this method (composing with earlier pruning)."""
        if not isinstance(name, str) or not hasattr(module, name):
            raise AttributeError(f"prune: module {type(module).__name__} has no tensor named {name!r}")

        old_method, found, hooks_to_remove = None, 0, []
        for k, hook in module._forward_pre_hooks.items():
            if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
                old_method = hook
                hooks_to_remove.append(k)
                found += 1
        if found > 1:
            raise RuntimeError(f"prune: avoid adding multiple pruning hooks to the same tensor {name!r} of "
                               f"module {module}; use a PruningContainer")
        method = cls(*args, **kwargs)
        method._tensor_name = name
        if old_method is not None:
            if isinstance(old_method, PruningContainer):
                old_method.add_pruning_method(method)
                method = old_method
            else:
                container = PruningContainer(old_method)
                container.add_pruning_method(method)
                method = container

        orig = getattr(module, name)
        if importance_scores is not None:
            if tuple(importance_scores.shape) != tuple(orig.shape):
                raise ValueError(f"prune: importance_scores of shape {tuple(importance_scores.shape)} should "
                                 f"match the shape {tuple(orig.shape)} of {name!r}")
        else:
            importance_scores = orig
        if not isinstance(method, PruningContainer):
            if name not in module._parameters:
                raise ValueError(f"prune: {name!r} is not a parameter of {type(module).__name__}")
            module.register_parameter(name + "_orig", orig)
            del module._parameters[name]
            default_mask = _wrap(_xp(orig.data).ones_like(orig.data))
        else:
            default_mask = _wrap(getattr(module, name + "_mask").data.copy())
        try:
            mask = method.compute_mask(importance_scores, default_mask=default_mask)
            module.register_buffer(name + "_mask", mask)
            setattr(module, name, method.apply_mask(module))
        except Exception:
            if isinstance(method, PruningContainer) and method is old_method:
                method._pruning_methods = method._pruning_methods[:-1]
            if not isinstance(method, PruningContainer):  # undo the re-parametrisation
                orig = module._parameters.pop(name + "_orig")
                module.__dict__.pop(name, None)
                module._buffers.pop(name + "_mask", None)
                module.register_parameter(name, orig)
            raise
        for k in hooks_to_remove:
            del module._forward_pre_hooks[k]
        module.register_forward_pre_hook(method)
        return method

    def prune(self, t, default_mask=None, importance_scores=None):
        """`t` with the mask of this method applied (a new Tensor)."""
        if importance_scores is not None and tuple(importance_scores.shape) != tuple(t.shape):
            raise ValueError("prune: importance_scores should have the same shape as the tensor")
        scores = importance_scores if importance_scores is not None else t
        if default_mask is None:
            default_mask = _wrap(_xp(t.data).ones_like(t.data))
        return t * self.compute_mask(scores, default_mask=default_mask)

    def remove(self, module):
        """Make the pruning permanent: `<name>` becomes a Parameter holding orig * mask."""
        if not hasattr(self, "_tensor_name"):
            raise AttributeError(f"remove: module {module} has to be pruned before pruning can be removed")
        name = self._tensor_name
        weight = self.apply_mask(module)
        if hasattr(module, name) and name in module.__dict__:
            del module.__dict__[name]
        orig = module._parameters[name + "_orig"]
        orig.data = weight.data
        orig._vc[0] += 1
        del module._parameters[name + "_orig"]
        del module._buffers[name + "_mask"]
        module._non_persistent_buffers_set.discard(name + "_mask")
        setattr(module, name, orig)


class PruningContainer(BasePruningMethod):
    """A sequence of pruning methods on one tensor (iterative pruning). Each new method's mask is
    computed only over the entries (unstructured) or channels (structured) not yet pruned."""

    def __init__(self, *args):
        self._pruning_methods: tuple = ()
        if len(args) == 1 and not isinstance(args[0], Iterable):
            self._tensor_name = args[0]._tensor_name
            self.add_pruning_method(args[0])
        elif len(args) == 1 and isinstance(args[0], Iterable):
            for method in args[0]:
                self.add_pruning_method(method)
        else:
            for method in args:
                self.add_pruning_method(method)

    def add_pruning_method(self, method):
        if not isinstance(method, BasePruningMethod) and method is not None:
            raise TypeError(f"{type(method).__name__} is not a BasePruningMethod subclass")
        if method is not None and hasattr(self, "_tensor_name") and self._tensor_name != method._tensor_name:
            raise ValueError(f"Can only add pruning methods acting on the parameter named '{self._tensor_name}' "
                             f"to PruningContainer. Found '{method._tensor_name}'")
        self._pruning_methods += (method,)

    def __len__(self):
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, idx):
        return self._pruning_methods[idx]

    def compute_mask(self, t, default_mask):
        method = self._pruning_methods[-1]
        ta, mask = _arr(t), _arr(default_mask)
        xp = _xp(ta)
        new_mask = mask.astype(ta.dtype, copy=True)
        if method.PRUNING_TYPE == "unstructured":
            slc = mask == 1
        elif method.PRUNING_TYPE == "structured":
            if not hasattr(method, "dim"):
                raise AttributeError("Pruning methods of PRUNING_TYPE 'structured' need to have the attribute `dim` "
                                     "defined.")
            n_dims = ta.ndim
            dim = method.dim + n_dims if method.dim < 0 else method.dim
            if not 0 <= dim < n_dims:
                raise IndexError(f"Index is out of bounds for tensor of dimension {n_dims}")
            keep = mask.sum(axis=tuple(d for d in range(n_dims) if d != dim)) != 0
            slc = [slice(None)] * n_dims
            slc[dim] = xp.nonzero(keep)[0]
            slc = tuple(slc)
        elif method.PRUNING_TYPE == "global":
            slc = (slice(None),) * ta.ndim
        else:
            raise ValueError(f"Unrecognized PRUNING_TYPE {method.PRUNING_TYPE}")
        partial = method.compute_mask(_wrap(ta[slc]), default_mask=_wrap(mask[slc]))
        new_mask[slc] = _arr(partial).astype(new_mask.dtype)
        return _wrap(new_mask)


def _unstructured_mask(amount, t, default_mask, key):
    """Zeroes, in a copy of default_mask, the `amount` entries that come first when sorted by key(ta) (a flat
    array; key is only called when something is pruned)."""
    ta = _arr(t)
    size = ta.size
    k = _compute_nparams_toprune(amount, size)
    _validate_pruning_amount(k, size)
    mask = _arr(default_mask).copy()
    if k:
        idx = _argsort(_xp(ta), key(ta))[:k]
        flat = mask.reshape(-1)
        flat[idx] = 0
        mask = flat.reshape(ta.shape)
    return _wrap(mask)


def _structured_mask(amount, dim, t, default_mask, score):
    """Keeps the channels along `dim` of largest score(ta, dim, n) (ties: the earliest channel is kept); score is
    only called when something is pruned."""
    ta = _arr(t)
    _validate_structured_pruning(ta)
    dim = _validate_pruning_dim(ta, dim)
    n = ta.shape[dim]
    k = _compute_nparams_toprune(amount, n)
    _validate_pruning_amount(k, n)
    if not k:
        return default_mask
    keep = _argsort(_xp(ta), -score(ta, dim, n))[: n - k]
    return _channel_mask(ta, dim, keep, _arr(default_mask))


class Identity(BasePruningMethod):
    """Prunes nothing (mask of ones): the re-parametrisation alone."""
    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        return default_mask

    @classmethod
    def apply(cls, module, name):
        return super().apply(module, name)


class RandomUnstructured(BasePruningMethod):
    """Prune `amount` entries chosen uniformly at random (from the backend's seeded generator)."""
    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _validate_pruning_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        return _unstructured_mask(self.amount, t, default_mask,
                                  lambda ta: -backend_of(ta).random("uniform", ta.shape,
                                                                    np.dtype(np.float32)).reshape(-1))

    @classmethod
    def apply(cls, module, name, amount):
        return super().apply(module, name, amount=amount)


class L1Unstructured(BasePruningMethod):
    """Prune the `amount` entries of smallest absolute value."""
    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _validate_pruning_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        return _unstructured_mask(self.amount, t, default_mask, lambda ta: _xp(ta).abs(ta).reshape(-1))

    @classmethod
    def apply(cls, module, name, amount, importance_scores=None):
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


class RandomStructured(BasePruningMethod):
    """Prune `amount` whole channels along `dim`, chosen at random."""
    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim=-1):
        _validate_pruning_amount_init(amount)
        self.amount = amount
        self.dim = dim

    def compute_mask(self, t, default_mask):
        return _structured_mask(self.amount, self.dim, t, default_mask,
                                lambda ta, dim, n: backend_of(ta).random("uniform", (n,), np.dtype(np.float32)))

    @classmethod
    def apply(cls, module, name, amount, dim=-1):
        return super().apply(module, name, amount=amount, dim=dim)


class LnStructured(BasePruningMethod):
    """Prune the `amount` channels along `dim` of smallest L_n norm (norm over all other dims).
    `n` is a number, inf, -inf or 'fro' (= 2)."""
    PRUNING_TYPE = "structured"

    def __init__(self, amount, n, dim=-1):
        _validate_pruning_amount_init(amount)
        self.amount = amount
        self.n = n
        self.dim = dim

    def compute_mask(self, t, default_mask):
        return _structured_mask(self.amount, self.dim, t, default_mask,
                                lambda ta, dim, n: _compute_norm(ta, self.n, dim))

    @classmethod
    def apply(cls, module, name, amount, n, dim, importance_scores=None):
        return super().apply(module, name, amount=amount, n=n, dim=dim, importance_scores=importance_scores)


class CustomFromMask(BasePruningMethod):
    PRUNING_TYPE = "global"

    def __init__(self, mask):
        self.mask = mask

    def compute_mask(self, t, default_mask):
        dm = _arr(default_mask)
        m = _arr(self.mask)
        if tuple(dm.shape) != tuple(m.shape):
            raise ValueError(f"custom_from_mask: mask of shape {tuple(m.shape)} does not match the tensor's "
                             f"shape {tuple(dm.shape)}")
        if type(m) is not type(dm):
            m = backend_of(dm).asarray(backend_of(m).to_numpy(m))
        return _wrap(dm * m.astype(dm.dtype))

    @classmethod
    def apply(cls, module, name, mask):
        return super().apply(module, name, mask=mask)


# ----------------------------------------------------------------------------- functional API
def identity(module, name):
    Identity.apply(module, name)
    return module


def random_unstructured(module, name, amount):
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module, name, amount, importance_scores=None):
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name, amount, dim):
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module, name, amount, n, dim, importance_scores=None):
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs):
    """Prune the (module, name) pairs together: the `amount` smallest entries of all of them by the
    method's criterion (e.g. L1Unstructured), so layers end up with different sparsities."""
    if not isinstance(parameters, Iterable):
        raise TypeError("global_unstructured(): parameters is not an Iterable")
    parameters = list(parameters)
    if not parameters:
        raise ValueError("global_unstructured(): parameters is empty")
    importance_scores = importance_scores if importance_scores is not None else {}
    if not isinstance(importance_scores, dict):
        raise TypeError("global_unstructured(): importance_scores must be of type dict")
    arrays, masks = [], []
    for module, name in parameters:
        t = getattr(module, name)
        s = importance_scores.get((module, name), t)
        arrays.append(_arr(s).reshape(-1))
        m = getattr(module, name + "_mask", None)
        masks.append(_arr(m).reshape(-1) if m is not None else _xp(t.data).ones(t.data.size, dtype=t.data.dtype))
    xp = _xp(arrays[0])
    scores = xp.concatenate(arrays)
    default_mask = xp.concatenate([m.astype(scores.dtype) for m in masks])
    container = PruningContainer()
    container._tensor_name = "temp"
    method = pruning_method(**kwargs)
    method._tensor_name = "temp"
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError('Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. Found method '
                        f"{pruning_method} of type {method.PRUNING_TYPE}")
    container.add_pruning_method(method)
    final = _arr(container.compute_mask(_wrap(scores), _wrap(default_mask)))
    pointer = 0
    for module, name in parameters:
        param = getattr(module, name)
        n = param.data.size
        custom_from_mask(module, name, mask=_wrap(final[pointer:pointer + n].reshape(param.data.shape)))
        pointer += n


def custom_from_mask(module, name, mask):
    CustomFromMask.apply(module, name, mask)
    return module


def remove(module, name):
    """Make the pruning of `module.<name>` permanent and drop the re-parametrisation."""
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"Parameter '{name}' of module {module} has to be pruned before pruning can be removed")


def is_pruned(module):
    """True if any submodule of `module` carries a pruning hook."""
    for _, submodule in module.named_modules():
        for hook in submodule._forward_pre_hooks.values():
            if isinstance(hook, BasePruningMethod):
                return True
    return False


# ----------------------------------------------------------------------------- validation helpers
def _validate_pruning_amount_init(amount):
    if not isinstance(amount, numbers.Real) or isinstance(amount, bool):
        raise TypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    if (isinstance(amount, numbers.Integral) and amount < 0) or (
            not isinstance(amount, numbers.Integral) and (float(amount) > 1.0 or float(amount) < 0.0)):
        raise ValueError(f"amount={amount} should either be a float in the range [0, 1] or a non-negative integer")


def _validate_pruning_amount(amount, tensor_size):
    if isinstance(amount, numbers.Integral) and amount > tensor_size:
        raise ValueError(f"amount={amount} should be smaller than the number of parameters to prune={tensor_size}")


def _validate_structured_pruning(t):
    if t.ndim <= 1:
        raise ValueError(f"Structured pruning can only be applied to multidimensional tensors. Found tensor of "
                         f"shape {tuple(t.shape)} with {t.ndim} dims")


def _compute_nparams_toprune(amount, tensor_size):
    if isinstance(amount, numbers.Integral):
        return int(amount)
    return round(amount * tensor_size)


def _validate_pruning_dim(t, dim):
    if dim >= t.ndim or dim < -t.ndim:
        raise IndexError(f"Invalid index {dim} for tensor of size {tuple(t.shape)}")
    return dim % t.ndim


def _compute_norm(t, n, dim):
    xp = _xp(t)
    axes = tuple(d for d in range(t.ndim) if d != dim)
    a = xp.abs(t.astype(np.float64) if t.dtype.itemsize < 4 else t)
    if n == "fro":
        n = 2
    if n == "nuc":
        raise ValueError("ln_structured: the nuclear norm is not supported; use an integer n, inf or 'fro'")
    if not isinstance(n, numbers.Real):
        raise TypeError(f"ln_structured: n must be a number, inf, -inf or 'fro', got {n!r}")
    if n == math.inf:
        return a.max(axis=axes)
    if n == -math.inf:
        return a.min(axis=axes)
    if n == 0:
        return (a != 0).sum(axis=axes).astype(a.dtype)
    if n == 1:
        return a.sum(axis=axes)
    if n == 2:
        return xp.sqrt((a * a).sum(axis=axes))
    return (a ** n).sum(axis=axes) ** (1.0 / n)


def _channel_mask(t, dim, keep, default_mask):
    xp = _xp(t)
    mask = xp.zeros_like(t)
    slc = [slice(None)] * t.ndim
    slc[dim] = keep
    mask[tuple(slc)] = 1
    return _wrap(mask * default_mask.astype(mask.dtype))


# ----------------------------------------------------------------------------- reporting and shrinking
def _effective(module, name):
    """The effective (masked) array of module.<name>, pruned or not."""
    if name + "_orig" in module._parameters and name + "_mask" in module._buffers:
        o = module._parameters[name + "_orig"].data
        return o * module._buffers[name + "_mask"].data.astype(o.dtype)
    return module._parameters[name].data


def sparsity_report(model, names=("weight",), print_fn=print):
    """Per-layer and global sparsity (fraction of exactly-zero entries) of the tensors called `names`
    (None: every parameter) in every submodule, pruned or not. Prints a table with `print_fn`
    (None: silent) and returns {"layers": [{"name", "zeros", "total", "sparsity"}...],
    "global": {"zeros", "total", "sparsity"}}."""
    rows = []
    for mname, m in model.named_modules():
        tnames = []
        for pname in m._parameters:
            base = pname[:-5] if pname.endswith("_orig") and pname[:-5] + "_mask" in m._buffers else pname
            if names is None or base in names:
                tnames.append(base)
        for base in tnames:
            a = _effective(m, base)
            zeros = int(backend_of(a).to_numpy((a == 0).sum()))
            total = int(a.size)
            rows.append({"name": (mname + "." if mname else "") + base, "zeros": zeros, "total": total,
                         "sparsity": zeros / total if total else 0.0})
    z = sum(r["zeros"] for r in rows)
    n = sum(r["total"] for r in rows)
    glob = {"zeros": z, "total": n, "sparsity": z / n if n else 0.0}
    if print_fn is not None:
        width = max([len(r["name"]) for r in rows] + [6])
        print_fn(f"{'tensor':<{width}}  {'zeros':>10}  {'total':>10}  {'sparsity':>8}")
        for r in rows:
            print_fn(f"{r['name']:<{width}}  {r['zeros']:>10}  {r['total']:>10}  {100 * r['sparsity']:>7.2f}%")
        print_fn(f"{'global':<{width}}  {z:>10}  {n:>10}  {100 * glob['sparsity']:>7.2f}%")
    return {"layers": rows, "global": glob}


_PASSTHROUGH = {"ReLU", "Tanh", "Sigmoid", "GELU", "SiLU", "ELU", "LeakyReLU", "Softplus", "Identity",
                "Dropout", "Dropout2d", "Hardtanh", "ReLU6", "Mish", "Hardswish", "Hardsigmoid", "Softsign",
                "Tanhshrink", "MaxPool2d", "AvgPool2d", "Flatten"}


def shrink_structured(model, example_input=None):
    """A physically smaller copy of an `nn.Sequential` whose structurally pruned units are removed:
    hidden Linear rows and Conv2d output channels whose weights are all zero (e.g. after
    `ln_structured(layer, "weight", amount, n, dim=0)`), together with the matching input columns /
    channels of the next Linear or Conv2d (through elementwise activations, dropout, max/avg pooling and
    Flatten, which keep channels apart).

    A removed unit still outputs a constant (its bias through the layers in between); that constant's
    contribution to the next layer is folded into the next layer's bias, so the outputs are identical
    (in eval mode). When the contribution is not constant over space (a next Conv2d with zero padding
    and a non-zero constant) the folding would be inexact and those channels are kept. The last
    weighted layer keeps all its outputs. `example_input` (one batch) is needed when the model has
    Conv2d layers, for their spatial sizes. Pruning re-parametrisations are made permanent in the copy.
    """
    from autodiff.autograd import no_grad
    from nn.modules import Conv2d, Linear, Sequential
    from nn.parameter import Parameter
    from nn.functional import conv2d
    if not isinstance(model, Sequential):
        raise TypeError(f"shrink_structured: expected an nn.Sequential, got {type(model).__name__}")
    layers = list(copy.deepcopy(model).children())
    for layer in layers:
        for _, sub in layer.named_modules():
            for k, hook in list(sub._forward_pre_hooks.items()):
                if isinstance(hook, BasePruningMethod):
                    remove(sub, hook._tensor_name)
        layer.eval()

    def weighted(layer):
        return isinstance(layer, Linear) or (isinstance(layer, Conv2d) and layer.groups == 1)

    has_conv = any(isinstance(layer, Conv2d) for layer in layers)
    if has_conv and example_input is None:
        raise ValueError("shrink_structured: the model has Conv2d layers; pass example_input (one batch) so the "
                         "spatial sizes are known")
    idx = [i for i, layer in enumerate(layers) if weighted(layer)]
    for i, j in zip(idx[:-1], idx[1:]):
        between = layers[i + 1:j]
        if any(layer._get_name() not in _PASSTHROUGH for layer in between):
            continue  # e.g. a BatchNorm in between: this pair is left as it is
        a, b = layers[i], layers[j]
        w = a.weight.data
        xp = _xp(w)
        dead = xp.all(w.reshape(w.shape[0], -1) == 0, axis=1)
        if not bool(dead.any()):
            continue
        # the output of layer i for any input, restricted to the dead units: bias broadcast to its shape
        with no_grad():
            if isinstance(a, Conv2d):
                h = example_input[:1]
                for layer in layers[:i + 1]:
                    h = layer(h)
                out_shape = (1,) + tuple(h.shape[1:])
            else:
                out_shape = (1, w.shape[0])
            bias = a.bias.data if a.bias is not None else xp.zeros(w.shape[0], dtype=w.dtype)
            bshape = (1, -1) + (1,) * (len(out_shape) - 2)
            u = _wrap(xp.broadcast_to(bias.reshape(bshape), out_shape).copy())
            cmask = _wrap(xp.broadcast_to(dead.astype(w.dtype).reshape(bshape), out_shape).copy())
            u = u * cmask
            for layer in between:
                u = layer(u)
                if layer._get_name() in ("MaxPool2d", "AvgPool2d", "Flatten"):
                    cmask = layer(cmask) if layer._get_name() != "AvgPool2d" else (layer(cmask) > 0).float()
                u = u * cmask  # channels are independent: keep only the dead ones
            keep_in = cmask.data.reshape(-1) == 0 if isinstance(b, Linear) else ~dead
            if isinstance(b, Linear):
                contrib = u.data.reshape(1, -1) @ b.weight.data.T
                contrib = contrib.reshape(-1)
            else:
                cb = conv2d(u, b.weight, None, b.stride, b.padding, b.dilation, b.groups).data
                flat = cb.reshape(cb.shape[1], -1)
                if not bool(xp.allclose(flat, flat[:, :1], rtol=1e-6, atol=1e-7)):
                    continue  # border effects of padding: not foldable exactly
                contrib = flat[:, 0]
        keep = xp.nonzero(~dead)[0]
        if b.bias is None:
            b.bias = Parameter(_wrap(contrib.astype(b.weight.data.dtype)))
        else:
            b.bias.data = b.bias.data + contrib.astype(b.bias.data.dtype)
        a.weight = Parameter(_wrap(w[keep].copy()))
        if a.bias is not None:
            a.bias = Parameter(_wrap(a.bias.data[keep].copy()))
        if isinstance(a, Linear):
            a.out_features = int(keep.size)
        else:
            a.out_channels = int(keep.size)
        if isinstance(b, Linear):
            cols = xp.nonzero(keep_in)[0]
            b.weight = Parameter(_wrap(b.weight.data[:, cols].copy()))
            b.in_features = int(cols.size)
        else:
            b.weight = Parameter(_wrap(b.weight.data[:, keep].copy()))
            b.in_channels = int(keep.size)
    return Sequential(*layers)


def shrink_linear_stack(model):
    """`shrink_structured` for a Sequential of Linear layers and activations (no example input needed)."""
    return shrink_structured(model)
