"""functional_call: run a module with some parameters / buffers replaced by given tensors, for one call
(PyTorch's torch.nn.utils.stateless.functional_call / torch.func.functional_call)."""
from __future__ import annotations

__all__ = ["functional_call"]


def functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *, tie_weights=True, strict=False):
    """module(*args, **kwargs) with the named parameters / buffers replaced by the given tensors (which may be
    non-leaf: gradients flow back to them). With tie_weights, a tensor registered under several names is
    replaced everywhere. strict=True requires exactly the module's parameter and buffer names."""
    if isinstance(parameter_and_buffer_dicts, (list, tuple)):
        given = {}
        for d in parameter_and_buffer_dicts:
            dup = set(given) & set(d)
            if dup:
                raise ValueError(f"{sorted(dup)} appeared in multiple dictionaries; behavior of functional call "
                                 "is ambiguous")
            given.update(d)
    else:
        given = dict(parameter_and_buffer_dicts)
    named = list(module.named_parameters(remove_duplicate=False)) + list(module.named_buffers(remove_duplicate=False))
    if strict:
        names = {n for n, _ in named}
        missing, unexpected = sorted(names - set(given)), sorted(set(given) - names)
        if missing or unexpected:
            raise RuntimeError(f"Error(s) in reparametrizing for {type(module).__name__}: missing keys {missing}, "
                               f"unexpected keys {unexpected}")
    if tie_weights:
        by_id = {}
        for n, t in named:
            if n in given:
                by_id.setdefault(id(t), given[n])
        for n, t in named:
            if n not in given and id(t) in by_id:
                given[n] = by_id[id(t)]
    saved = []
    try:
        for name, value in given.items():
            path, _, attr = name.rpartition(".")
            m = module.get_submodule(path)
            for store_name in ("_parameters", "_buffers"):
                store = m.__dict__[store_name]
                if attr in store:
                    saved.append((store, attr, store[attr]))
                    store[attr] = value
                    break
            else:
                saved.append((m.__dict__, attr, m.__dict__.get(attr, _MISSING)))
                m.__dict__[attr] = value
        if args is None:
            args = ()
        elif not isinstance(args, tuple):
            args = (args,)
        return module(*args, **(kwargs or {}))
    finally:
        for store, attr, old in reversed(saved):
            if old is _MISSING:
                store.pop(attr, None)
            else:
                store[attr] = old


_MISSING = object()
