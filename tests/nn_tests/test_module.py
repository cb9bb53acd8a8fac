"""Module API: registration, iteration, state_dict round trip, hooks, train/eval, to(dtype), zero_grad,
repr, containers, init, utils, bad input; and the convergence of a small MLP and a small CNN."""
import math
from collections import OrderedDict

import numpy as np
import pytest

import autodiff
import nn
from nn import init
from nn.utils import clip_grad_norm_, clip_grad_value_, parameters_to_vector, vector_to_parameters


class Net(nn.Module):
    """The seed model of the issue, unchanged apart from the imports."""

    def __init__(self):
        super(Net, self).__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, 10)

    def forward(self, x):
        x = x.view(x.shape[0], -1)
        x = autodiff.relu(self.fc1(x))
        x = autodiff.relu(self.fc2(x))
        return self.fc3(x)


def test_seed_model_runs_and_learns():
    net = Net()
    criterion = nn.CrossEntropyLoss()
    data = autodiff.randn(16, 1, 28, 28)
    target = autodiff.randint(0, 10, (16,))
    losses = []
    for _ in range(5):
        net.zero_grad()
        loss = criterion(net(data), target)
        loss.backward()
        with autodiff.no_grad():
            for p in net.parameters():
                p.data -= 0.05 * p.grad.data
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert repr(net) == ("Net(\n  (fc1): Linear(in_features=784, out_features=128, bias=True)\n"
                         "  (fc2): Linear(in_features=128, out_features=64, bias=True)\n"
                         "  (fc3): Linear(in_features=64, out_features=10, bias=True)\n)")


def test_registration_and_iteration():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 3)
            self.seq = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.BatchNorm1d(3))
            self.p = nn.Parameter(autodiff.zeros(4))
            self.register_buffer("buf", autodiff.ones(2))
            self.register_buffer("tmp", autodiff.ones(1), persistent=False)
            self.shared = self.a  # a shared module is listed once

        def forward(self, x):
            return self.seq(self.a(x))

    m = M()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["p", "a.weight", "a.bias", "seq.0.weight", "seq.0.bias", "seq.2.weight", "seq.2.bias"]
    assert [n for n, _ in m.named_buffers()] == ["buf", "tmp", "seq.2.running_mean", "seq.2.running_var",
                                                  "seq.2.num_batches_tracked"]
    assert [n for n, _ in m.named_modules()] == ["", "a", "seq", "seq.0", "seq.1", "seq.2"]
    assert len(list(m.children())) == 2
    sd = m.state_dict()
    assert isinstance(sd, OrderedDict) and "tmp" not in sd and "seq.2.num_batches_tracked" in sd
    assert list(sd)[:3] == ["p", "buf", "a.weight"]
    assert all(not t.requires_grad for t in sd.values())
    assert m.get_submodule("seq.0") is m.seq[0]
    assert m.get_parameter("seq.0.bias") is m.seq[0].bias
    with pytest.raises(TypeError, match="cannot assign"):
        m.p = autodiff.zeros(4)
    m.p = None
    assert "p" not in [n for n, _ in m.named_parameters()]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        m.nope

    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(autodiff.zeros(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Bad()


def test_state_dict_round_trip_and_errors():
    a = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    b = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    a.train()
    a(autodiff.randn(3, 1, 4, 4))  # update running stats
    params_before = list(b.parameters())
    res = b.load_state_dict(a.state_dict())
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert all(p is q for p, q in zip(params_before, b.parameters()))  # in place
    x = autodiff.randn(2, 1, 4, 4)
    a.eval()
    b.eval()
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    # NumPy arrays are accepted (a PyTorch state dict converted with .numpy())
    np_sd = {k: v.numpy() for k, v in a.state_dict().items()}
    c = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    c.load_state_dict(np_sd)
    c.eval()
    np.testing.assert_array_equal(c(x).detach().numpy(), a(x).detach().numpy())
    bad = dict(np_sd)
    del bad["0.weight"]
    bad["extra"] = np.zeros(1)
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "0.weight"') as ei:
        c.load_state_dict(bad)
    assert 'Unexpected key(s) in state_dict: "extra"' in str(ei.value)
    missing, unexpected = c.load_state_dict(bad, strict=False)
    assert missing == ["0.weight"] and unexpected == ["extra"]
    wrong = dict(np_sd)
    wrong["3.weight"] = np.zeros((3, 9))
    with pytest.raises(RuntimeError, match=r"size mismatch for 3.weight: copying a param with shape \(3, 9\).*\(3, 8\)"):
        c.load_state_dict(wrong, strict=False)


def test_hooks_train_eval_zero_grad_apply():
    lin = nn.Linear(3, 2)
    calls = []
    h1 = lin.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
    h2 = lin.register_forward_hook(lambda m, args, out: calls.append(out.shape) or out * 0)
    x = autodiff.ones(1, 3)
    assert np.all(lin(x).detach().numpy() == 0) and calls == [(1, 2)]
    h1.remove()
    h2.remove()
    ref = x.numpy() @ lin.weight.detach().numpy().T + lin.bias.detach().numpy()
    np.testing.assert_allclose(lin(x).detach().numpy(), ref, rtol=1e-6)
    seq = nn.Sequential(lin, nn.Dropout())
    seq.eval()
    assert not seq[1].training and not seq.training
    seq.train()
    assert seq[1].training
    lin(x).sum().backward()
    assert lin.weight.grad is not None
    seq.zero_grad(set_to_none=False)
    assert np.all(lin.weight.grad.numpy() == 0)
    seq.zero_grad()
    assert lin.weight.grad is None
    seen = []
    seq.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "Dropout", "Sequential"]


def test_to_dtype_in_place_keeps_parameter_objects():
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    ps = list(m.parameters())
    m.to(autodiff.float64)
    assert all(p is q for p, q in zip(ps, m.parameters()))
    assert all(p.dtype == np.float64 for p in m.parameters())
    assert m[1].running_mean.dtype == np.float64 and m[1].num_batches_tracked.dtype == np.int64
    m.float()
    assert m[0].weight.dtype == np.float32
    m.to("cpu")
    assert m[0].weight.device == autodiff.device("cpu")
    with pytest.raises(TypeError, match="floating"):
        m.to(autodiff.int64)


def test_containers():
    seq = nn.Sequential(OrderedDict([("a", nn.Linear(2, 2)), ("b", nn.ReLU())]))
    assert isinstance(seq[0], nn.Linear) and isinstance(seq[-1], nn.ReLU) and len(seq) == 2
    assert isinstance(seq[:1], nn.Sequential) and len(seq[:1]) == 1
    seq.append(nn.Tanh())
    assert len(seq) == 3
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    ml.append(nn.ReLU())
    assert len(list(ml.parameters())) == 6
    assert repr(ml) == ("ModuleList(\n  (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)\n"
                        "  (3): ReLU()\n)")
    md = nn.ModuleDict({"x": nn.Linear(1, 1)})
    md["y"] = nn.ReLU()
    assert list(md.keys()) == ["x", "y"] and "x" in md
    assert [n for n, _ in md.named_parameters()] == ["x.weight", "x.bias"]
    pl = nn.ParameterList([nn.Parameter(autodiff.zeros(2)) for _ in range(2)])
    assert len(list(pl.parameters())) == 2
    with pytest.raises(IndexError):
        seq[5]


def test_parameter_basics():
    p = nn.Parameter(autodiff.zeros(2))
    assert p.requires_grad and p.is_leaf and isinstance(p, autodiff.Tensor)
    assert repr(p) == "Parameter containing:\ntensor([0., 0.], requires_grad=True)"
    assert not nn.Parameter(autodiff.zeros(1), requires_grad=False).requires_grad
    y = (p * 2).sum()
    assert type(y) is autodiff.Tensor
    y.backward()
    np.testing.assert_array_equal(p.grad.numpy(), [2.0, 2.0])


def test_init_functions():
    w = autodiff.empty(300, 200)
    init.kaiming_uniform_(w, a=math.sqrt(5))
    assert abs(np.abs(w.numpy()).max() - 1 / math.sqrt(200)) < 1e-3
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.numpy().std() - math.sqrt(2 / 300)) < 0.005
    init.xavier_uniform_(w, gain=init.calculate_gain("tanh"))
    assert np.abs(w.numpy()).max() <= 5 / 3 * math.sqrt(6 / 500) + 1e-6
    init.xavier_normal_(w)
    assert abs(w.numpy().std() - math.sqrt(2 / 500)) < 0.005
    init.trunc_normal_(w, std=1.0, a=-0.5, b=0.5)
    assert np.abs(w.numpy()).max() <= 0.5
    q = autodiff.empty(4, 6)
    init.orthogonal_(q)
    np.testing.assert_allclose(q.numpy() @ q.numpy().T, np.eye(4), atol=1e-5)
    init.constant_(q, 0.3)
    assert np.all(q.numpy() == np.float32(0.3))
    init.zeros_(q)
    init.ones_(q)
    assert np.all(q.numpy() == 1)
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert init.calculate_gain("relu") == math.sqrt(2)
    autodiff.manual_seed(7)
    a = nn.Linear(3, 3).weight.detach().numpy()
    autodiff.manual_seed(7)
    np.testing.assert_array_equal(a, nn.Linear(3, 3).weight.detach().numpy())
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(autodiff.empty(3))


def test_clip_grad_and_vector_utils():
    ps = [nn.Parameter(autodiff.ones(3)), nn.Parameter(autodiff.ones(4))]
    ps[0].grad = autodiff.full((3,), 3.0)
    ps[1].grad = autodiff.full((4,), 4.0)
    total = clip_grad_norm_(ps, 1.0)
    np.testing.assert_allclose(total.item(), math.sqrt(27 + 64), rtol=1e-6)
    np.testing.assert_allclose(math.sqrt(sum((p.grad.numpy() ** 2).sum() for p in ps)), 1.0, rtol=1e-5)
    ps[0].grad = autodiff.tensor([-5.0, 0.1, 5.0])
    clip_grad_value_(ps, 0.5)
    np.testing.assert_allclose(ps[0].grad.numpy(), [-0.5, 0.1, 0.5])
    total_inf = clip_grad_norm_(ps, 10.0, norm_type="inf")
    np.testing.assert_allclose(total_inf.item(), 0.5, rtol=1e-6)
    v = parameters_to_vector(ps)
    assert v.shape == (7,)
    vector_to_parameters(autodiff.arange(7, dtype=autodiff.float32), ps)
    np.testing.assert_array_equal(ps[1].numpy() if not ps[1].requires_grad else ps[1].detach().numpy(), [3, 4, 5, 6])


def test_summary_and_num_parameters():
    net = Net()
    assert net.num_parameters() == 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    assert "Total params: 109,386" in net.summary()


# ----------------------------------------------------------------------------- convergence
def _blobs(n, d, seed):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((3, d)) * 3
    y = rng.integers(0, 3, n)
    x = centers[y] + rng.standard_normal((n, d))
    return x.astype(np.float32), y


def _sgd(model, lr):
    with autodiff.no_grad():
        for p in model.parameters():
            p.data -= lr * p.grad.data


def test_mlp_converges():
    x, y = _blobs(300, 10, 0)
    X, Y = autodiff.tensor(x), autodiff.tensor(y)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
    crit = nn.CrossEntropyLoss()
    for _ in range(60):
        model.zero_grad()
        loss = crit(model(X), Y)
        loss.backward()
        _sgd(model, 0.1)
    acc = (model(X).argmax(1).numpy() == y).mean()
    assert acc >= 0.95, acc


def test_cnn_converges():
    rng = np.random.default_rng(1)
    n = 160
    y = rng.integers(0, 2, n)
    x = rng.standard_normal((n, 1, 8, 8)).astype(np.float32) * 0.3
    x[y == 0, 0, :, 3:5] += 1.0   # vertical bar
    x[y == 1, 0, 3:5, :] += 1.0   # horizontal bar
    X, Y = autodiff.tensor(x), autodiff.tensor(y)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 2))
    crit = nn.CrossEntropyLoss()
    for _ in range(40):
        model.zero_grad()
        loss = crit(model(X), Y)
        loss.backward()
        _sgd(model, 0.2)
    acc = (model(X).argmax(1).numpy() == y).mean()
    assert acc >= 0.95, acc
