"""autodiff.checkpoint: recomputed segments give the same gradients as the plain run."""
import gc
import weakref

import numpy as np
import pytest

import autodiff as ad
from autodiff.checkpoint import checkpoint, checkpoint_sequential
from tests.conftest import to_numpy


def _params(device, sizes=(5, 16, 16, 3), dtype=None):
    ps = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        ps.append((ad.randn(a, b, device=device, dtype=dtype) * 0.5).requires_grad_())
        ps.append(ad.zeros(b, device=device, dtype=dtype, requires_grad=True))
    return ps


def _layer(w, b):
    return lambda h: (h @ w + b).tanh()


@pytest.mark.parametrize("input_requires_grad", [True, False])
def test_checkpoint_grads_equal_plain(device, input_requires_grad):
    ps = _params(device)
    x = ad.randn(7, 5, device=device, requires_grad=input_requires_grad)
    layers = [_layer(ps[i], ps[i + 1]) for i in range(0, len(ps), 2)]

    def seg(h):
        return layers[1](layers[0](h))

    out = layers[2](checkpoint(seg, x, use_reentrant=False))
    (out ** 2).sum().backward()
    got = [to_numpy(p.grad).copy() for p in ps]
    gx = to_numpy(x.grad).copy() if input_requires_grad else None
    for p in ps:
        p.grad = None
    x.grad = None
    (layers[2](seg(x)) ** 2).sum().backward()
    for g, p in zip(got, ps):
        np.testing.assert_allclose(g, to_numpy(p.grad), rtol=1e-6, atol=1e-6)
    if input_requires_grad:
        np.testing.assert_allclose(gx, to_numpy(x.grad), rtol=1e-6, atol=1e-6)
    else:
        assert x.grad is None


def test_checkpoint_tuple_outputs_and_kwargs(device):
    w = ad.randn(4, 4, device=device, requires_grad=True)
    x = ad.randn(3, 4, device=device, requires_grad=True)

    def seg(h, scale=1.0):
        return (h @ w).relu() * scale, h.sum(dim=1)

    a, s = checkpoint(seg, x, scale=3.0)
    assert a.shape == (3, 4) and s.shape == (3,)
    ((a * a).sum() + (s * s).sum()).backward()
    gw, gx = to_numpy(w.grad).copy(), to_numpy(x.grad).copy()
    w.grad = x.grad = None
    a, s = seg(x, scale=3.0)
    ((a * a).sum() + (s * s).sum()).backward()
    np.testing.assert_allclose(gw, to_numpy(w.grad), rtol=1e-6)
    np.testing.assert_allclose(gx, to_numpy(x.grad), rtol=1e-6)


def test_checkpoint_gradcheck_float64(backend):
    w = ad.randn(3, 4, dtype=ad.float64)
    x = ad.randn(2, 3, dtype=ad.float64, requires_grad=True)
    wt = w.detach().requires_grad_()
    ad.gradcheck(lambda x, wt: checkpoint(lambda h, v: (h @ v).sigmoid() * h.sum(), x, wt), (x, wt))


def test_checkpoint_replays_rng_state():
    w = ad.randn(6, 6, requires_grad=True)
    x = ad.randn(4, 6)

    def seg(h):
        mask = (ad.rand(4, 6) > 0.5).float()  # dropout-like: a fresh random mask
        return (h @ w) * mask

    ad.manual_seed(3)
    checkpoint(seg, x).sum().backward()
    g = to_numpy(w.grad).copy()
    w.grad = None
    ad.manual_seed(3)
    seg(x).sum().backward()
    np.testing.assert_allclose(g, to_numpy(w.grad))


def test_checkpoint_frees_activations_and_no_grad_passthrough():
    w = ad.randn(8, 8, requires_grad=True)
    x = ad.randn(4, 8)
    refs = []

    def seg(h):
        y = (h @ w).tanh()
        refs.append(weakref.ref(y))
        return y.sum(dim=1)

    out = checkpoint(seg, x)
    gc.collect()
    assert refs[0]() is None  # the intermediate was not kept by the graph
    out.sum().backward()
    assert w.grad is not None
    with ad.no_grad():
        y = checkpoint(seg, x)
    assert y.grad_fn is None and not y.requires_grad


def test_checkpoint_sequential_and_errors():
    ps = _params("cpu", sizes=(4, 6, 6, 6, 2))
    fns = [_layer(ps[i], ps[i + 1]) for i in range(0, len(ps), 2)]
    x = ad.randn(3, 4)
    checkpoint_sequential(fns, 2, x).sum().backward()
    got = [to_numpy(p.grad).copy() for p in ps]
    for p in ps:
        p.grad = None
    h = x
    for f in fns:
        h = f(h)
    h.sum().backward()
    for g, p in zip(got, ps):
        np.testing.assert_allclose(g, to_numpy(p.grad), rtol=1e-6)
    with pytest.raises(TypeError, match="checkpoint: fn must return a Tensor"):
        checkpoint(lambda h: 3, x)
    with pytest.raises(TypeError, match="checkpoint: expected a callable"):
        checkpoint(5, x)
    y = ad.randn(3, requires_grad=True)
    z = y * 1
    out = checkpoint(lambda t: t * 2, z)
    z.data[0] = 5.0
    z._vc[0] += 1
    with pytest.raises(RuntimeError, match="modified in place"):
        out.sum().backward()


def test_checkpoint_nn_sequential_with_dropout_matches_plain():
    import nn
    ad.manual_seed(0)
    seg = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 6))
    head = nn.Linear(6, 2)
    x = ad.randn(8, 6, requires_grad=True)
    ad.manual_seed(5)
    head(checkpoint(seg, x)).sum().backward()
    got = [to_numpy(p.grad).copy() for p in list(seg.parameters()) + list(head.parameters())] + [to_numpy(x.grad)]
    seg.zero_grad()
    head.zero_grad()
    x.grad = None
    ad.manual_seed(5)
    head(seg(x)).sum().backward()
    ref = [to_numpy(p.grad) for p in list(seg.parameters()) + list(head.parameters())] + [to_numpy(x.grad)]
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert checkpoint_sequential(seg, 2, x).shape == (8, 6)
