"""In-place operations with autograd semantics (PyTorch's): `x += y`, `x *= y`, `x[k] = v`, ...

Without a graph to record, the backend array is updated in place and the version counter bumped.
With one, the result is computed out of place from a snapshot of the old value, written back into
`x.data` (so views of x see it), and x takes over the new node as its `grad_fn`. Any node that
saved x for its backward sees the bumped version and raises at backward time.
"""
from __future__ import annotations

from ..autograd import _mode, _new_tensor


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def _castable(src, dst):
    """PyTorch's in-place rule: the result may narrow within its category (float64 into float32) but
    never move to a lower one (float into int, int into bool)."""
    return _CATEGORY[src.kind] <= _CATEGORY[dst.kind]


def check_leaf(x, opname):
    if _mode.enabled and x.requires_grad and x.grad_fn is None:
        raise RuntimeError(f"{opname}: a leaf tensor that requires grad is being used in an in-place operation; "
                           "wrap it in `with autodiff.no_grad():` or use an out-of-place op")


def apply_inplace(x, op, opname, fast, others=()):
    """Run `op(old_x) -> Tensor` as an in-place update of x. `fast()` does the raw array update
    when nothing needs recording."""
    check_leaf(x, opname)
    record = _mode.enabled and (x.requires_grad or any(getattr(o, "requires_grad", False) for o in others))
    if not record:
        fast()
        x._vc[0] += 1
        return x
    node = x.grad_fn
    base = getattr(node, "view_base", None) if node is not None else None
    if base is not None and base.grad_fn is not None:  # a view of a non-leaf: write through the base
        return _inplace_through_base(x, node, op, opname)
    if node is not None and node.is_view:
        # The view shares memory with a tensor that requires grad; writing through it would change
        # that tensor's values without its graph knowing (PyTorch rebases the base's graph here).
        # Refuse clearly rather than produce wrong gradients.
        base = node.edges[0] if node.edges else None
        what = ("a leaf tensor that requires grad" if base is not None and not hasattr(base, "edges")
                else "a tensor that requires grad")
        raise RuntimeError(f"{opname}: in-place operation on a view (made by {node.name()}) of {what} is not "
                           "supported under autograd; apply it to the base tensor (e.g. base[idx] = ...), "
                           "clone() the view first, or wrap it in no_grad()")
    old = _new_tensor(x.data.copy())
    old.requires_grad = x.requires_grad
    old.grad_fn = x.grad_fn
    r = op(old)
    if r.data.dtype != x.data.dtype and not _castable(r.data.dtype, x.data.dtype):
        raise RuntimeError(f"{opname}: result type {r.data.dtype} can't be cast to the desired output type "
                           f"{x.data.dtype}")
    x.data[...] = r.data
    x.grad_fn = r.grad_fn
    x.requires_grad = r.requires_grad
    if r.grad_fn is not None and getattr(r.grad_fn, "out_vc", None) is not None:
        r.grad_fn.out_vc = x._vc
        r.grad_fn.out_version = x._vc[0] + 1
        r.grad_fn.out_data = x.data
    x._vc[0] += 1
    return x


def _inplace_through_base(x, node, op, opname):
    """In-place op on a basic-indexing view `x = base[key]` under autograd, as PyTorch's rebase:
    the new values are written through the base (`base[key] = op(x)`, recorded on the base's
    graph), and x becomes `base[key]` of the updated base. Views share the base's memory and
    version counter, so both see the new values."""
    from .indexing import getitem, setitem_
    base, key = node.view_base, node.key
    old = _new_tensor(x.data.copy())
    old.requires_grad = x.requires_grad
    old.grad_fn = x.grad_fn
    r = op(old)
    if r.data.dtype != x.data.dtype and not _castable(r.data.dtype, x.data.dtype):
        raise RuntimeError(f"{opname}: result type {r.data.dtype} can't be cast to the desired output type "
                           f"{x.data.dtype}")
    setitem_(base, key, r)
    v = getitem(base, key)
    x.data = v.data  # the same memory as before for views; refreshed where x held a copy
    x.grad_fn = v.grad_fn
    x.requires_grad = v.requires_grad
    return x


def binary_inplace(x, other, fn, opname):
    """x = fn(x, other) in place, for +=, -=, *=, /= and the *_ methods."""
    from ..tensor import Tensor

    def fast():
        o = other.data if isinstance(other, Tensor) else other
        r = fn(_new_tensor(x.data), _new_tensor(o) if isinstance(other, Tensor) else o).data
        if r.dtype != x.data.dtype and not _castable(r.dtype, x.data.dtype):
            raise RuntimeError(f"{opname}: result type {r.dtype} can't be cast to the desired output type "
                               f"{x.data.dtype}")
        x.data[...] = r

    return apply_inplace(x, lambda old: fn(old, other), opname, fast,
                         others=(other,) if isinstance(other, Tensor) else ())
