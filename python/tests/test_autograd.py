"""Gradients through the Python API against central finite differences (float64)."""
import numpy as np
import pytest

import kirzl


def numeric_grad(f, x: np.ndarray, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        fp = f(x)
        x[i] = old - eps
        fm = f(x)
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


CASES = {
    "mul_add": lambda t: ((t * t + 3 * t) / 2).sum(),
    "tanh_exp": lambda t: kirzl.tanh(t).exp().mean(),
    "matmul": lambda t: (t @ t.t()).sum(),
    "softmax": lambda t: (kirzl.softmax(t, 1) * kirzl.arange(4, dtype=kirzl.f64)).sum(),
    "slice": lambda t: (t[:, 1:3] * t[:, 0:2]).sum(),
    "gelu_sigmoid": lambda t: kirzl.sigmoid(kirzl.gelu(t, "tanh")).sum(),
    "log_softmax_ce": lambda t: kirzl.cross_entropy(t, kirzl.tensor([1, 3, 0])),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_grad_matches_finite_differences(name):
    f = CASES[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    t = kirzl.tensor(x.copy(), requires_grad=True)
    f(t).backward()
    expected = numeric_grad(lambda a: f(kirzl.tensor(a.copy())).item(), x)
    np.testing.assert_allclose(t.grad.numpy(), expected, rtol=1e-5, atol=1e-7)


def test_linear_layer_grads():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3))
    w = rng.standard_normal((2, 3))
    tw = kirzl.tensor(w.copy(), requires_grad=True)
    f = lambda W: kirzl.linear(kirzl.tensor(x), W).pow(2).sum()  # noqa: E731
    f(tw).backward()
    expected = numeric_grad(lambda a: f(kirzl.tensor(a.copy())).item(), w)
    np.testing.assert_allclose(tw.grad.numpy(), expected, rtol=1e-5)


def test_no_grad_and_requires_grad():
    x = kirzl.ones(3, requires_grad=True)
    assert x.requires_grad and x.is_leaf and x.grad is None
    with kirzl.no_grad():
        y = x * 2
        assert not kirzl.grad_enabled()
    assert kirzl.grad_enabled()
    assert not y.requires_grad and y.grad_fn is None

    @kirzl.no_grad()
    def f():
        return x * 3
    assert not f().requires_grad
    z = (x * 2).sum()
    assert z.grad_fn is not None and "Sum" in z.grad_fn.name() or z.grad_fn.name()
    z.backward()
    assert x.grad.tolist() == [2, 2, 2]
    x.grad = None
    assert x.grad is None
    x.requires_grad = False
    assert not x.requires_grad


def test_hooks_run_with_gil_from_backward():
    x = kirzl.ones(3, requires_grad=True)
    seen = []
    h = x.register_hook(lambda g: (seen.append(g.tolist()), g * 10)[1])
    post = []
    x.register_post_accumulate_grad_hook(lambda leaf: post.append(leaf.grad.tolist()))
    (x * 2).sum().backward()
    assert seen == [[2, 2, 2]] and post == [[20, 20, 20]]
    assert x.grad.tolist() == [20, 20, 20]
    assert x.remove_hook(h)


def test_hook_exception_propagates():
    x = kirzl.ones(2, requires_grad=True)

    def bad(g):
        raise RuntimeError("from the hook")
    x.register_hook(bad)
    with pytest.raises(RuntimeError, match="from the hook"):
        x.sum().backward()


def test_autograd_grad_function():
    x = kirzl.tensor([1.0, 2.0], requires_grad=True)
    y = kirzl.tensor([3.0], requires_grad=True)
    (gx, gy) = kirzl.autograd.grad([(x * x).sum()], [x, y])
    assert gx.tolist() == [2, 4] and gy is None and x.grad is None
