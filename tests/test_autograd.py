"""The engine: traversal, memory, hooks, retain_grad, autodiff.grad, grad modes, in-place ops and
version counters, dtype promotion."""
import gc
import threading
import weakref

import numpy as np
import pytest

import autodiff as ad
from autodiff.autograd import Function
from conftest import to_numpy


def leaf(values, device="cpu", dtype=ad.float64):
    return ad.tensor(values, dtype=dtype, device=device, requires_grad=True)


# ----------------------------------------------------------------------------- traversal
def test_long_chain_backward_is_iterative():
    x = ad.ones(3, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0, 1.0])
    del y  # freeing a 100,000-node graph must not overflow the C stack either


def test_diamond_accumulates_before_node_backward(device):
    x = leaf([1.0, 2.0], device)
    a = x * 2
    b = a * a          # uses a twice
    c = a + b          # a reaches c directly and through b
    c.sum().backward()
    # dc/dx = 2 + 2*a*2 = 2 + 8x
    np.testing.assert_allclose(to_numpy(x.grad), [10.0, 18.0])


def test_leaf_grad_accumulates_across_backwards(device):
    x = leaf([1.0, 2.0], device)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [3 + 2.0, 3 + 4.0])


def test_grad_of_leaf_not_aliased_with_other_grads(device):
    x, y = leaf([1.0], device), leaf([2.0], device)
    (x + y).sum().backward()
    x.grad.data[0] = 100.0
    assert float(y.grad) == 1.0
    # two views of one gradient buffer reach two leaves
    a, b = leaf(np.ones((2, 3)), device), leaf(np.ones((3, 2)), device)
    (a + b.T).sum().backward()
    a.grad.data[0, 0] = 7.0
    assert to_numpy(b.grad).tolist() == [[1.0, 1.0]] * 3
    assert b.grad.data.flags.c_contiguous and a.grad.data.flags.c_contiguous
    # a gradient that is a broadcast view becomes a writable array
    c = leaf(np.ones(3), device)
    c.sum().backward()
    c.grad.data[0] = 2.0
    assert to_numpy(c.grad).tolist() == [2.0, 1.0, 1.0]


def test_broadcasting_undone(device):
    x = leaf(np.ones((3, 1)), device)
    b = leaf(np.ones(4), device)
    (x * b + b).sum().backward()
    assert x.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_allclose(to_numpy(x.grad), np.full((3, 1), 4.0))
    np.testing.assert_allclose(to_numpy(b.grad), np.full(4, 6.0))


def test_backward_non_scalar_with_gradient(device):
    x = leaf([1.0, 2.0, 3.0], device)
    y = x * x
    y.backward(ad.tensor([1.0, 0.0, 2.0], dtype=ad.float64, device=device))
    np.testing.assert_allclose(to_numpy(x.grad), [2.0, 0.0, 12.0])


def test_backward_with_inputs(device):
    x, y = leaf([1.0, 2.0], device), leaf([3.0], device)
    h = x * y
    loss = (h * h).sum()
    loss.backward(inputs=[x, h], retain_graph=True)
    assert y.grad is None
    np.testing.assert_allclose(to_numpy(x.grad), 2 * to_numpy(h.detach()) * 3.0)
    np.testing.assert_allclose(to_numpy(h.grad), 2 * to_numpy(h.detach()))
    loss.backward(inputs=y)
    np.testing.assert_allclose(to_numpy(y.grad), [2 * (3.0 + 12.0)])


def test_backward_function_and_multiple_roots(device):
    x = leaf([1.0, 2.0], device)
    a, b = (x * 2).sum(), (x * x).sum()
    ad.backward([a, b])
    np.testing.assert_allclose(to_numpy(x.grad), [4.0, 6.0])


def test_backward_runs_under_no_grad_unless_create_graph(device):
    x = leaf([1.0, 2.0], device)
    (x ** 3).sum().backward()
    assert x.grad.grad_fn is None and not x.grad.requires_grad
    x.grad = None
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.requires_grad


# ----------------------------------------------------------------------------- memory
def test_intermediates_freed_after_backward(device):
    x = leaf(np.ones(4), device)
    a = x * x
    b = a.sin()   # Sin saves a
    c = b.exp()   # Exp saves its output
    loss = c.sum()
    refs = [weakref.ref(a), weakref.ref(b)]
    node = c.grad_fn
    del a, b, c
    assert refs[0]() is not None  # kept alive as a saved tensor of Sin
    loss.backward()
    assert all(r() is None for r in refs)
    assert node.saved is None and node.out_data is None


def test_intermediates_kept_with_retain_graph(device):
    x = leaf(np.ones(4), device)
    a = x * x
    loss = a.sin().sum()
    r = weakref.ref(a)
    del a
    loss.backward(retain_graph=True)
    assert r() is not None
    loss.backward()
    np.testing.assert_allclose(to_numpy(x.grad), 2 * (2 * np.cos(1.0)) * np.ones(4))
    assert r() is None


def test_no_reference_cycles_keep_a_graph_alive(device):
    gc.collect()
    gc.disable()
    try:
        x = leaf(np.ones((2, 3)), device)
        y = (x * 2).exp().sum(1)
        v, i = (x * x).max(dim=1)
        z = (y + v).tanh().mean() + x[0, ::2].sum() + ad.where(x > 0, x, 0.0).sum()
        z2 = ad.cat([x, x], 0).reshape(-1).norm()
        refs = [weakref.ref(t) for t in (y, v, z, z2)] + [weakref.ref(z.grad_fn), weakref.ref(y.grad_fn)]
        z.backward()
        del y, v, i, z, z2
        assert all(r() is None for r in refs), "a reference cycle keeps part of the graph alive"
    finally:
        gc.enable()


def test_no_cycles_without_backward(device):
    gc.collect()
    gc.disable()
    try:
        x = leaf(np.ones(3), device)
        y = (x * x).sigmoid()
        y2 = y.detach()
        y.retain_grad()
        r = weakref.ref(y.grad_fn)
        del y, y2
        assert r() is None
    finally:
        gc.enable()


def test_second_backward_raises_clearly(device):
    x = leaf([1.0, 2.0], device)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_second_backward(device):
    x = leaf([1.0, 2.0], device)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    g1 = to_numpy(x.grad).copy()
    y.backward()
    np.testing.assert_allclose(to_numpy(x.grad), 2 * g1)


# ----------------------------------------------------------------------------- hooks, retain_grad
def test_hooks_on_leaf_and_nonleaf(device):
    x = leaf([1.0, 2.0], device)
    seen = []
    x.register_hook(lambda g: seen.append(("x", to_numpy(g).copy())))
    y = x * 3
    h = y.register_hook(lambda g: g * 2)  # replaces the gradient flowing on
    y.sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [6.0, 6.0])
    assert seen[0][0] == "x" and np.allclose(seen[0][1], [6.0, 6.0])
    h.remove()
    x.grad = None
    y2 = x * 3
    y2.sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [3.0, 3.0])


def test_leaf_hook_fires_as_soon_as_its_gradient_is_complete(device):
    """A leaf's hooks run (and .grad is stored) when its last consumer has run, before the rest of
    the backward pass: DDP overlaps gradient reduction with the remaining backward this way."""
    events = []
    x = leaf([1.0, 2.0], device)
    w = leaf([3.0, 4.0], device)
    w.register_hook(lambda g: events.append(("w", x.grad is None)))
    a = x * 2
    a.register_hook(lambda g: events.append(("a", w.grad is not None)))
    (a.exp() * w).sum().backward()
    assert events == [("w", True), ("a", True)]


def test_hook_requires_grad(device):
    with pytest.raises(RuntimeError, match="register_hook"):
        ad.ones(2, device=device).register_hook(lambda g: g)


def test_retain_grad(device):
    x = leaf([1.0, 2.0], device)
    y = x * x
    y.retain_grad()
    z = (y * 3).sum()
    z.backward()
    np.testing.assert_allclose(to_numpy(y.grad), [3.0, 3.0])
    np.testing.assert_allclose(to_numpy(x.grad), [6.0, 12.0])
    w = x * 2
    w.sum().backward()
    assert w.grad is None  # not retained


# ----------------------------------------------------------------------------- autodiff.grad
def test_grad_function(device):
    x, y = leaf([1.0, 2.0], device), leaf([3.0], device)
    z = (x * x * y).sum()
    gx, gy = ad.grad(z, [x, y])
    np.testing.assert_allclose(to_numpy(gx), [6.0, 12.0])
    np.testing.assert_allclose(to_numpy(gy), [5.0])
    assert x.grad is None and y.grad is None


def test_grad_nonleaf_input(device):
    x = leaf([1.0, 2.0], device)
    h = x * 2
    out = (h * h).sum()
    (gh,) = ad.grad(out, [h])
    np.testing.assert_allclose(to_numpy(gh), [4.0, 8.0])


def test_grad_allow_unused(device):
    x, u = leaf([1.0], device), leaf([1.0], device)
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        ad.grad(y, [x, u], retain_graph=True)
    gx, gu = ad.grad(y, [x, u], allow_unused=True)
    assert gu is None and float(gx) == 2.0


def test_grad_create_graph(device):
    x = leaf([2.0], device)
    y = (x ** 3).sum()
    (g,) = ad.grad(y, x, create_graph=True)
    assert g.requires_grad
    (g2,) = ad.grad(g.sum(), x)
    np.testing.assert_allclose(to_numpy(g2), [12.0])


def test_grad_with_grad_outputs(device):
    x = leaf([1.0, 2.0], device)
    (g,) = ad.grad(x * x, x, grad_outputs=ad.tensor([1.0, -1.0], dtype=ad.float64, device=device))
    np.testing.assert_allclose(to_numpy(g), [2.0, -4.0])


def test_custom_function():
    class Cube(Function):
        save_inputs = (0,)

        @staticmethod
        def forward(ctx, a):
            return a ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x * x

    x = leaf([1.0, 2.0])
    assert ad.gradcheck(lambda t: Cube.apply(t), (x,))
    assert ad.gradgradcheck(lambda t: Cube.apply(t), (x,))
    assert repr(Cube.apply(x).grad_fn) == "<CubeBackward0>"


def test_gradcheck_reports_wrong_gradient():
    class Wrong(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return g * 3

    with pytest.raises(ad.GradcheckError, match=r"wrong.*input 0 .*element \(0,\).*analytical.*numerical"):
        ad.gradcheck(lambda t: Wrong.apply(t), (leaf([0.0, 1.0]),), name="wrong")


# ----------------------------------------------------------------------------- grad modes
def test_no_grad_context_and_decorator(device):
    x = leaf([1.0], device)
    with ad.no_grad():
        y = x * 2
        assert not ad.is_grad_enabled()
    assert ad.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None

    @ad.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad and ad.is_grad_enabled()

    @ad.no_grad
    def f2(t):
        return t * 2

    assert not f2(x).requires_grad and f2.__name__ == "f2"


def test_enable_grad_inside_no_grad(device):
    x = leaf([1.0], device)
    with ad.no_grad():
        with ad.enable_grad():
            y = x * 2
        z = x * 2
    assert y.requires_grad and not z.requires_grad

    @ad.enable_grad()
    def f(t):
        return t * 2

    with ad.no_grad():
        assert f(x).requires_grad


def test_set_grad_enabled(device):
    x = leaf([1.0], device)
    with ad.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert ad.is_grad_enabled()
    ad.set_grad_enabled(False)
    try:
        assert not ad.is_grad_enabled()
    finally:
        ad.set_grad_enabled(True)

    @ad.set_grad_enabled(False)
    def f(t):
        return t * 2

    assert ad.is_grad_enabled(), "decorating must not switch the mode"
    assert not f(x).requires_grad and ad.is_grad_enabled()


def test_no_grad_is_thread_local():
    x = leaf([1.0])
    results = {}
    entered, done = threading.Event(), threading.Event()

    def worker():
        with ad.no_grad():
            entered.set()
            done.wait(5)
            results["worker"] = (x * 2).requires_grad

    t = threading.Thread(target=worker)
    t.start()
    entered.wait(5)
    results["main"] = (x * 2).requires_grad  # the other thread is inside no_grad right now
    done.set()
    t.join()
    assert results == {"main": True, "worker": False}

    # a thread started while the main thread is in no_grad starts with grad enabled
    with ad.no_grad():
        th = threading.Thread(target=lambda: results.__setitem__("fresh", ad.is_grad_enabled()))
        th.start()
        th.join()
    assert results["fresh"] is True


# ----------------------------------------------------------------------------- in-place ops
def test_inplace_on_saved_tensor_raises_at_backward(device):
    x = leaf([1.0, 2.0], device)
    y = x * 2
    z = y * y        # saves y
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.sum().backward()


def test_inplace_on_saved_output_raises(device):
    x = leaf([1.0, 2.0], device)
    y = x.exp()      # Exp saves its output
    y *= 2
    with pytest.raises(RuntimeError, match="in-place"):
        y.sum().backward()


def test_inplace_on_nonleaf_gives_right_gradient(device):
    x = leaf([1.0, 2.0], device)
    y = x * 2
    y.mul_(3)
    y += x
    y -= 1.0
    y /= 2
    y.sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [3.5, 3.5])
    assert y._version == 4


def test_inplace_on_view_of_tensor_requiring_grad_raises(device):
    x = leaf([1.0, 2.0, 3.0], device)
    v = x[0:2]
    with pytest.raises(RuntimeError, match=r"add_: in-place operation on a view .* of a leaf tensor"):
        v.add_(1.0)
    y = x * 2
    w = y.view(3, 1)
    with pytest.raises(RuntimeError, match=r"mul_: in-place operation on a view \(made by View\)"):
        w.mul_(2)
    with ad.no_grad():
        x[0:2].add_(1.0)  # allowed without autograd
    np.testing.assert_allclose(to_numpy(x.detach()), [2.0, 3.0, 3.0])
    # the common accumulate-into-a-buffer pattern goes through __setitem__ on the base and works
    out = ad.zeros(3, dtype=ad.float64, device=device)
    out[1] += x[2] * 2
    out.sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [0.0, 0.0, 2.0])


def test_setitem_with_autograd(device):
    x = leaf([1.0, 2.0, 3.0], device)
    v = leaf([10.0], device)
    y = x * 1
    y[0] = v[0] * 2
    y.sum().backward()
    np.testing.assert_allclose(to_numpy(y.detach()), [20.0, 2.0, 3.0])
    np.testing.assert_allclose(to_numpy(x.grad), [0.0, 1.0, 1.0])
    np.testing.assert_allclose(to_numpy(v.grad), [2.0])


def test_inplace_on_leaf_requiring_grad_raises(device):
    x = leaf([1.0, 2.0], device)
    for fn in (lambda: x.add_(1), lambda: x.zero_(), lambda: x.fill_(2.0), lambda: x.mul_(2),
               lambda: x.__setitem__(0, 5.0), lambda: x.copy_(ad.zeros(2, dtype=ad.float64, device=device))):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            fn()
    with ad.no_grad():
        x.add_(1.0)
        x[0] = 7.0
        x.mul_(2)
    np.testing.assert_allclose(to_numpy(x.detach()), [14.0, 6.0])
    assert x.is_leaf and x.requires_grad and x._version == 3


def test_inplace_without_grad_updates_version_and_views(device):
    x = ad.zeros(2, 3, device=device)
    row = x[1]
    x.fill_(1.0)
    x[0, 1] = 5.0
    row.add_(2.0)
    np.testing.assert_allclose(to_numpy(x), [[1, 5, 1], [3, 3, 3]])
    assert x._version == row._version == 3
    x.zero_()
    assert float(x.sum()) == 0.0
    y = ad.ones(3, device=device)
    y.copy_(ad.tensor([1.0, 2.0, 3.0], device=device))
    y.clamp_(max=2.0)
    np.testing.assert_allclose(to_numpy(y), [1.0, 2.0, 2.0])


def test_masked_fill_inplace(device):
    x = ad.tensor([1.0, -2.0, 3.0], device=device)
    out = x.masked_fill_(x < 0, 0.0)
    assert out is x
    np.testing.assert_allclose(to_numpy(x), [1.0, 0.0, 3.0])
    w = leaf([1.0, -2.0, 3.0], device)
    y = w * 1
    y.masked_fill_(y < 0, 9.0)
    y.sum().backward()
    np.testing.assert_allclose(to_numpy(w.grad), [1.0, 0.0, 1.0])
    with pytest.raises(RuntimeError, match="masked_fill_.*leaf"):
        w.masked_fill_(w > 0, 0.0)
    with ad.no_grad():
        assert w.masked_fill_(w > 2, 0.0) is w
    np.testing.assert_allclose(to_numpy(w.detach()), [1.0, -2.0, 0.0])
    z = ad.zeros(2, 3, device=device)
    z.masked_fill_(ad.tensor([True, False, True], device=device), ad.tensor(5.0, device=device))
    np.testing.assert_allclose(to_numpy(z), [[5, 0, 5], [5, 0, 5]])
    with pytest.raises(RuntimeError, match="masked_fill_: mask must be a bool tensor"):
        z.masked_fill_(z, 1.0)


def test_inplace_int_tensor_rejects_float_result(device):
    x = ad.tensor([1, 2], device=device)
    with pytest.raises(RuntimeError, match="can't be cast"):
        x += 1.5
    x += 1
    assert x.dtype == ad.int64 and x.tolist() == [2, 3]


def test_detach_shares_storage_and_version(device):
    x = leaf([1.0, 2.0], device)
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None
    with ad.no_grad():
        x.mul_(2)
    assert d._version == x._version
    np.testing.assert_allclose(to_numpy(d), [2.0, 4.0])


# ----------------------------------------------------------------------------- dtypes
def test_python_scalars_keep_dtype(device):
    x = ad.ones(3, device=device)  # float32
    for y in (x * 2.0, x + 1, 2.0 * x, x / 3, x - 1.5, 1 - x, x ** 2.0, 2 ** x, x * True):
        assert y.dtype == ad.float32
    h = ad.ones(2, dtype=ad.float16, device=device)
    assert (h * 2.5).dtype == ad.float16
    i = ad.tensor([1, 2], device=device)
    assert (i * 2).dtype == ad.int64 and (i * 2.0).dtype == ad.float32
    i32 = ad.tensor([1, 2], dtype=ad.int32, device=device)
    assert (i32 + 7).dtype == ad.int32
    b = ad.tensor([True, False], device=device)
    assert (b + 1).dtype == ad.int64 and (b * 1.5).dtype == ad.float32


@pytest.mark.parametrize("a,b,expected", [
    (ad.int64, ad.float32, ad.float32), (ad.float32, ad.float64, ad.float64), (ad.int32, ad.int64, ad.int64),
    (ad.float16, ad.float32, ad.float32), (ad.bool, ad.int32, ad.int32), (ad.bool, ad.float16, ad.float16),
    (ad.int8, ad.uint8, ad.int16), (ad.uint8, ad.float32, ad.float32),
])
def test_tensor_tensor_promotion(a, b, expected, device):
    x = ad.ones(2, dtype=a, device=device)
    y = ad.ones(2, dtype=b, device=device)
    assert (x + y).dtype == expected and (y * x).dtype == expected


def test_zero_dim_tensor_does_not_widen_same_category(device):
    x = ad.ones(3, device=device)                                # float32, 1-D
    s = ad.tensor(2.0, dtype=ad.float64, device=device)          # float64, 0-d
    assert (x * s).dtype == ad.float32
    i = ad.tensor(3, device=device)                              # int64 0-d
    assert (x * i).dtype == ad.float32                           # higher category wins
    xi = ad.ones(3, dtype=ad.int32, device=device)
    assert (xi + i).dtype == ad.int32
    assert (xi + ad.tensor(1.5, device=device)).dtype == ad.float32


def test_mixed_dtype_gradients_come_back_in_input_dtype(device):
    x = leaf([1.0, 2.0], device, dtype=ad.float32)
    y = leaf([3.0, 4.0], device, dtype=ad.float64)
    (x * y).sum().backward()
    assert x.grad.dtype == ad.float32 and y.grad.dtype == ad.float64
    np.testing.assert_allclose(to_numpy(x.grad), [3.0, 4.0])
    z = leaf([1.0], device, dtype=ad.float32)
    (z.double() * 2).sum().backward()
    assert z.grad.dtype == ad.float32 and float(z.grad) == 2.0


def test_device_memory_returns_to_baseline_after_a_step(device):
    """On CUDA, the CuPy pool's used bytes return to their baseline once a step's graph, gradients
    and intermediates are gone (on the CPU this checks the same through weakrefs above)."""
    if device == "cpu":
        pytest.skip("device memory pools exist only on CUDA")
    import cupy
    pool = cupy.get_default_memory_pool()
    w = leaf(np.ones((64, 32)), device)
    x = ad.randn(16, 64, dtype=ad.float64, device=device)
    cupy.cuda.Device().synchronize()
    base = pool.used_bytes()
    loss = ((x @ w).tanh() ** 2).mean()
    loss.backward()
    del loss
    w.grad = None
    gc.collect()
    cupy.cuda.Device().synchronize()
    assert pool.used_bytes() == base
