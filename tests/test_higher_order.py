"""Higher-order derivatives: d²/dx² of x**3, tanh, sigmoid; a Hessian-vector product of a small MLP
loss against finite differences of its gradient."""
import numpy as np

import autodiff as ad
from conftest import to_numpy


def _second_derivative(fn, x):
    (g,) = ad.grad(fn(x).sum(), x, create_graph=True)
    (g2,) = ad.grad(g.sum(), x)
    return to_numpy(g2)


def test_second_derivatives(device):
    xs = np.array([-1.5, -0.3, 0.0, 0.7, 2.0])
    x = ad.tensor(xs, dtype=ad.float64, device=device, requires_grad=True)
    np.testing.assert_allclose(_second_derivative(lambda t: t ** 3, x), 6 * xs, rtol=1e-12)
    th = np.tanh(xs)
    np.testing.assert_allclose(_second_derivative(ad.tanh, x), -2 * th * (1 - th ** 2), rtol=1e-10, atol=1e-14)
    s = 1 / (1 + np.exp(-xs))
    np.testing.assert_allclose(_second_derivative(ad.sigmoid, x), s * (1 - s) * (1 - 2 * s), rtol=1e-10,
                               atol=1e-14)


def test_third_derivative_of_cube(device):
    x = ad.tensor([0.5, -2.0], dtype=ad.float64, device=device, requires_grad=True)
    (g,) = ad.grad((x ** 3).sum(), x, create_graph=True)
    (g2,) = ad.grad(g.sum(), x, create_graph=True)
    (g3,) = ad.grad(g2.sum(), x)
    np.testing.assert_allclose(to_numpy(g3), [6.0, 6.0])


def test_backward_create_graph_then_grad_of_grad(device):
    x = ad.tensor([1.0, 2.0], dtype=ad.float64, device=device, requires_grad=True)
    (x.sin() * x).sum().backward(create_graph=True)
    gx = x.grad  # cos(x) x + sin(x)
    (h,) = ad.grad(gx.sum(), x)
    xs = np.array([1.0, 2.0])
    np.testing.assert_allclose(to_numpy(h), -np.sin(xs) * xs + 2 * np.cos(xs), rtol=1e-12)


def _mlp_loss(params, X, y_onehot):
    w1, b1, w2, b2 = params
    h = ad.tanh(X @ w1.T + b1)
    logits = h @ w2.T + b2
    logp = logits - ad.logsumexp(logits, 1, keepdim=True)
    return -(logp * y_onehot).sum() / X.shape[0] + 0.5 * (h * h).mean()


def test_mlp_hessian_vector_product_matches_finite_differences(device):
    rng = np.random.default_rng(0)
    shapes = [(5, 4), (5,), (3, 5), (3,)]
    theta = [rng.standard_normal(s) * 0.5 for s in shapes]
    vec = [rng.standard_normal(s) for s in shapes]
    X = ad.tensor(rng.standard_normal((6, 4)), device=device)
    Y = ad.tensor(np.eye(3)[rng.integers(0, 3, 6)], device=device)

    def grad_at(values, create_graph=False):
        ps = [ad.tensor(v, dtype=ad.float64, device=device, requires_grad=True) for v in values]
        gs = ad.grad(_mlp_loss(ps, X, Y), ps, create_graph=create_graph)
        return ps, gs

    ps, gs = grad_at(theta, create_graph=True)
    gv = None
    for g, v in zip(gs, vec):
        term = (g * ad.tensor(v, device=device)).sum()
        gv = term if gv is None else gv + term
    hvp = [to_numpy(h) for h in ad.grad(gv, ps)]

    eps = 1e-5
    _, gp = grad_at([t + eps * v for t, v in zip(theta, vec)])
    _, gm = grad_at([t - eps * v for t, v in zip(theta, vec)])
    fd = [(to_numpy(a) - to_numpy(b)) / (2 * eps) for a, b in zip(gp, gm)]
    for h, f in zip(hvp, fd):
        np.testing.assert_allclose(h, f, rtol=1e-6, atol=1e-8)
