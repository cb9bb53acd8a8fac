"""Optimizer construction errors, param groups, state_dict layout and load_state_dict round trips."""
import numpy as np
import pytest

import autodiff
import optim
from conftest import to_numpy

ALL = ["SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "Adadelta", "Adamax", "NAdam", "RAdam", "Lion"]


def _w(device="cpu", n=3):
    return autodiff.ones(n, device=device, requires_grad=True)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", ALL)
def test_empty_parameter_list(name):
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        getattr(optim, name)([], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        getattr(optim, name)(iter([]), lr=0.1)


@pytest.mark.parametrize("name", ALL)
def test_negative_learning_rate(name):
    with pytest.raises(ValueError, match="Invalid learning rate: -0.1"):
        getattr(optim, name)([_w()], lr=-0.1)


@pytest.mark.parametrize("name", ALL)
def test_non_leaf_tensor(name):
    w = _w()
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        getattr(optim, name)([w * 2])


@pytest.mark.parametrize("bad", [np.ones(3), [1.0, 2.0], 3.0])
def test_non_tensor_parameter(bad):
    # PyTorch raises TypeError; ours is both a TypeError and a ValueError
    with pytest.raises(TypeError, match="optimizer can only optimize Tensors, but one of the params is"):
        optim.SGD([_w(), bad], lr=0.1)
    with pytest.raises(ValueError, match="optimizer can only optimize Tensors"):
        optim.Adam([bad])


def test_single_tensor_and_set_are_rejected():
    with pytest.raises(TypeError, match="should be an iterable of Tensors or dicts"):
        optim.SGD(_w(), lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD([{"params": {_w()}}], lr=0.1)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Lion"])
def test_betas_out_of_range(name):
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0: 1.0"):
        getattr(optim, name)([_w()], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: -0.1"):
        getattr(optim, name)([_w()], betas=(0.9, -0.1))


@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adagrad", "RMSprop", "Adadelta", "Adamax", "NAdam", "RAdam"])
def test_negative_eps_and_weight_decay(name):
    with pytest.raises(ValueError, match="Invalid epsilon value: -1e-08"):
        getattr(optim, name)([_w()], eps=-1e-8)
    with pytest.raises(ValueError, match="Invalid weight_decay value: -0.5"):
        getattr(optim, name)([_w()], weight_decay=-0.5)


def test_optimizer_specific_errors():
    with pytest.raises(ValueError, match="Invalid momentum value: -0.9"):
        optim.SGD([_w()], lr=0.1, momentum=-0.9)
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero dampening"):
        optim.SGD([_w()], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        optim.SGD([_w()], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid lr_decay value"):
        optim.Adagrad([_w()], lr_decay=-1)
    with pytest.raises(ValueError, match="Invalid initial_accumulator_value value"):
        optim.Adagrad([_w()], initial_accumulator_value=-1)
    with pytest.raises(ValueError, match="Invalid alpha value"):
        optim.RMSprop([_w()], alpha=-0.1)
    with pytest.raises(ValueError, match="Invalid momentum value"):
        optim.RMSprop([_w()], momentum=-0.1)
    with pytest.raises(ValueError, match="Invalid rho value: 1.5"):
        optim.Adadelta([_w()], rho=1.5)
    with pytest.raises(ValueError, match="Invalid momentum_decay value"):
        optim.NAdam([_w()], momentum_decay=-1)
    with pytest.raises(NotImplementedError, match="differentiable=True is not supported"):
        optim.Adam([_w()], differentiable=True)


def test_param_in_two_groups_and_required_lr():
    w = _w()
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    opt = optim.SGD([_w()], lr=0.1)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": opt.param_groups[0]["params"]})

    class Custom(optim.Optimizer):
        def __init__(self, params, lr=optim.required):
            super().__init__(params, dict(lr=lr))

    with pytest.raises(ValueError, match="didn't specify a value of required optimization parameter lr"):
        Custom([_w()])
    assert Custom([{"params": [_w()], "lr": 0.5}]).param_groups[0]["lr"] == 0.5
    with pytest.raises(NotImplementedError):
        Custom([{"params": [_w()], "lr": 0.5}]).step()


def test_duplicate_parameter_warns():
    w = _w()
    with pytest.warns(UserWarning, match="duplicate parameters"):
        optim.SGD([w, w], lr=0.1)


def test_add_param_group_applies_defaults_and_is_stepped():
    a, b = _w(), _w()
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.01})
    g = opt.param_groups[1]
    assert g["params"][0] is b and g["lr"] == 0.01 and g["momentum"] == 0.9 and g["nesterov"] is False
    a.grad = autodiff.ones(3)
    b.grad = autodiff.ones(3)
    opt.step()
    np.testing.assert_allclose(to_numpy(a), 0.9)
    np.testing.assert_allclose(to_numpy(b), 0.99)


def test_adagrad_state_is_created_eagerly():
    w = _w()
    opt = optim.Adagrad([w], initial_accumulator_value=0.25)
    assert float(opt.state[w]["step"]) == 0.0
    np.testing.assert_array_equal(to_numpy(opt.state[w]["sum"]), [0.25] * 3)
    v = _w()
    opt.add_param_group({"params": [v], "initial_accumulator_value": 0.5})
    v.grad = autodiff.ones(3)
    opt.step()
    assert float(opt.state[v]["step"]) == 1.0 and float(opt.state[w]["step"]) == 0.0
    np.testing.assert_allclose(to_numpy(opt.state[v]["sum"]), 1.5)


def test_repr_lists_groups():
    r = repr(optim.Adam([_w()], lr=0.5))
    assert r.startswith("Adam (") and "Parameter Group 0" in r and "lr: 0.5" in r and "betas: (0.9, 0.999)" in r
    assert isinstance(optim.AdamW([_w()]), optim.Adam)


# ----------------------------------------------------------------------------- state dicts
def _train(opt, params, steps, device, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        for p in params:
            p.grad = autodiff.tensor(rng.standard_normal(p.shape).astype(p.dtype) + 0.1 * to_numpy(p),
                                     device=device)
        opt.step()


def _make(name, device, kw=None):
    params = [autodiff.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), device=device,
                              requires_grad=True),
              autodiff.tensor(np.array([0.5, -0.5], dtype=np.float32), device=device, requires_grad=True)]
    groups = [{"params": [params[0]]}, {"params": [params[1]], "weight_decay": 0.1}]
    kw = dict(kw or {})
    opt = getattr(optim, name)(groups, **kw)
    return params, opt


def test_state_dict_layout(device):
    params, opt = _make("Adam", device, dict(lr=0.01, amsgrad=True))
    _train(opt, params, 2, device)
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert sd["param_groups"][0]["params"] == [0] and sd["param_groups"][1]["params"] == [1]
    assert sd["param_groups"][1]["weight_decay"] == 0.1 and sd["param_groups"][0]["lr"] == 0.01
    assert set(sd["state"]) == {0, 1}
    s0 = sd["state"][0]
    assert set(s0) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert float(s0["step"]) == 2.0
    assert s0["exp_avg"].shape == (2, 3)
    # the optimizer's own groups still hold the tensors
    assert opt.param_groups[0]["params"][0] is params[0]


@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                     ("Adam", dict(lr=0.01, amsgrad=True)), ("AdamW", dict(lr=0.01)),
                                     ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
                                     ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
                                     ("Adadelta", dict()), ("Adamax", dict()), ("NAdam", dict(lr=0.01)),
                                     ("RAdam", dict(lr=0.01)), ("Lion", dict(lr=0.01))])
def test_load_state_dict_resumes_bit_identically(name, kw, device):
    params, opt = _make(name, device, kw)
    _train(opt, params, 3, device, seed=1)
    sd = opt.state_dict()
    snapshot = [to_numpy(p).copy() for p in params]
    # a fresh optimizer over copies of the parameters, loaded from the state dict
    params2, opt2 = _make(name, device, kw)
    for p2, s in zip(params2, snapshot):
        p2.data[...] = autodiff.tensor(s, device=device).data
    opt2.load_state_dict(sd)
    # state was copied, not aliased
    for k, v in opt2.state[params2[0]].items():
        if hasattr(v, "data") and k in opt.state[params[0]]:
            assert v.data is not opt.state[params[0]][k].data
    _train(opt, params, 4, device, seed=2)
    _train(opt2, params2, 4, device, seed=2)
    for p, p2 in zip(params, params2):
        np.testing.assert_array_equal(to_numpy(p), to_numpy(p2))


def test_load_state_dict_from_numpy_and_casts_to_param_dtype():
    w = autodiff.ones(2, dtype=autodiff.float32, requires_grad=True)
    opt = optim.Adam([w], lr=0.1)
    sd = {"state": {0: {"step": 3, "exp_avg": np.array([0.1, 0.2]), "exp_avg_sq": np.array([0.01, 0.04])}},
          "param_groups": [{"lr": 0.5, "params": [0]}]}
    opt.load_state_dict(sd)
    st = opt.state[w]
    assert st["exp_avg"].dtype == np.float32 and float(st["step"]) == 3.0 and st["step"].device == "cpu"
    g = opt.param_groups[0]
    assert g["lr"] == 0.5 and g["betas"] == (0.9, 0.999) and g["params"][0] is w  # missing keys from defaults


def test_load_state_dict_mismatches():
    params, opt = _make("SGD", "cpu", dict(lr=0.1))
    other = optim.SGD([_w()], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict(other.state_dict())
    bad = opt.state_dict()
    bad["param_groups"][0]["params"] = [0, 5]
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        opt.load_state_dict(bad)
    with pytest.raises(ValueError, match="expected a dict with keys 'state' and 'param_groups'"):
        opt.load_state_dict({"foo": 1})


def test_step_and_mu_product_follow_default_dtype():
    prev = autodiff.get_default_dtype()
    autodiff.set_default_dtype(autodiff.float64)
    try:
        w = autodiff.ones(2, requires_grad=True)
        opt = optim.NAdam([w])
        w.grad = autodiff.ones(2)
        opt.step()
        assert opt.state[w]["step"].dtype == np.float64 and opt.state[w]["mu_product"].dtype == np.float64
    finally:
        autodiff.set_default_dtype(prev)


def test_step_hooks():
    from optim.optimizer import register_optimizer_step_post_hook
    w = _w()
    opt = optim.SGD([w], lr=0.1)
    calls = []
    h1 = opt.register_step_pre_hook(lambda o, a, k: calls.append(("pre", o is opt)))
    h2 = opt.register_step_post_hook(lambda o, a, k: calls.append(("post", float(w[0]))))
    h3 = register_optimizer_step_post_hook(lambda o, a, k: calls.append(("global", type(o).__name__)))
    w.grad = autodiff.ones(3)
    opt.step()
    assert calls == [("pre", True), ("post", pytest.approx(0.9)), ("global", "SGD")]
    for h in (h1, h2, h3):
        h.remove()
    opt.step()
    assert len(calls) == 3

    class MySGD(optim.SGD):  # a subclass calling super().step(): hooks still run once
        def step(self, closure=None):
            return super().step(closure)

    opt = MySGD([w], lr=0.1)
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.step()
    assert calls[3:] == ["pre"] and opt._opt_called


def test_scheduler_before_optimizer_warns():
    from optim import lr_scheduler as S
    opt = optim.SGD([_w()], lr=0.1)
    s = S.StepLR(opt, 1)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        s.step()
