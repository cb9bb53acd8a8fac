"""Flatten parameters into one vector and back."""
from __future__ import annotations

from autodiff import Tensor, cat


def parameters_to_vector(parameters):
    """One 1-D Tensor concatenating every parameter (differentiable)."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    ps = list(parameters)
    if not ps:
        raise ValueError("parameters_to_vector: got an empty parameter list")
    dev = ps[0].device
    for p in ps:
        if p.device != dev:
            raise TypeError(f"parameters_to_vector: found parameters on different devices ({dev} and {p.device})")
    return cat([p.reshape(-1) for p in ps])


def vector_to_parameters(vec, parameters):
    """Copy slices of the 1-D `vec` into the parameters (in place, so optimizers stay valid)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected vec to be a Tensor, but got {type(vec).__name__}")
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    ps = list(parameters)
    total = sum(p.numel() for p in ps)
    if vec.ndim != 1 or vec.numel() != total:
        raise ValueError(f"vector_to_parameters: vec of shape {tuple(vec.shape)} does not match the {total} "
                         "parameter elements")
    pointer = 0
    for p in ps:
        n = p.numel()
        if vec.device != p.device:
            raise TypeError(f"vector_to_parameters: vec is on {vec.device} but a parameter is on {p.device}")
        p.data[...] = vec.data[pointer:pointer + n].reshape(p.data.shape)
        p._vc[0] += 1
        pointer += n
