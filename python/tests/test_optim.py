import numpy as np
import pytest

import kirzl
from kirzl import optim


def quadratic_steps(opt_factory, steps=200):
    x = kirzl.tensor([3.0, -2.0], requires_grad=True)
    opt = opt_factory([x])
    for _ in range(steps):
        loss = (x * x).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return x


@pytest.mark.parametrize("factory", [
    lambda p: optim.SGD(p, lr=0.1),
    lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    lambda p: optim.Adam(p, lr=0.1),
    lambda p: optim.AdamW(p, lr=0.1, weight_decay=0.0),
    lambda p: optim.LAMB(p, lr=0.05, weight_decay=0.0),
])
def test_optimizers_minimise(factory):
    x = quadratic_steps(factory)
    assert np.abs(x.detach().numpy()).max() < 0.05


def test_sgd_matches_formula_in_place():
    w = kirzl.tensor([1.0, 2.0], requires_grad=True)
    view = w.detach().numpy()  # shares memory: the optimizer updates in place
    opt = optim.SGD([w], lr=0.5)
    (w * kirzl.tensor([1.0, 3.0])).sum().backward()
    opt.step()
    assert w.tolist() == [0.5, 0.5] and view.tolist() == [0.5, 0.5]


def test_param_groups_and_lr():
    a = kirzl.ones(2, requires_grad=True)
    b = kirzl.ones(2, requires_grad=True)
    opt = optim.AdamW([{"params": [a], "lr": 0.1}, {"params": [b]}], lr=1e-3)
    assert opt.num_groups() == 2 and opt.lr(0) == pytest.approx(0.1) and opt.lr(1) == pytest.approx(1e-3)
    opt.set_lr(0.5)
    assert opt.lr(1) == 0.5 and opt.name == "AdamW"
    with pytest.raises(ValueError):
        optim.SGD([a], lr=-1.0)


def test_schedulers():
    p = kirzl.ones(1, requires_grad=True)
    opt = optim.SGD([p], lr=1.0)
    s = optim.CosineWithWarmup(opt, warmup_steps=2, total_steps=4)
    lrs = [opt.lr()]
    for _ in range(4):
        s.step()
        lrs.append(opt.lr())
    assert lrs == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0])
    opt2 = optim.SGD([p], lr=1.0)
    st = optim.StepLR(opt2, step_size=2, gamma=0.5)
    for _ in range(2):
        st.step()
    assert opt2.lr() == 0.5 and st.last_step() == 2


def test_state_dict_and_clip():
    p = kirzl.ones(3, requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    (p * 2).sum().backward()
    opt.step()
    sd = opt.state_dict()
    assert "state.0.exp_avg" in sd and sd["state.0.step"].item() == 1
    opt2 = optim.Adam([kirzl.ones(3, requires_grad=True)], lr=0.1)
    opt2.check_state_dict(sd)  # changes nothing
    assert opt2.step_count(0) == 0
    bad = dict(sd)
    bad["options.beta1"] = kirzl.tensor([1.5], dtype=kirzl.float64)
    with pytest.raises(kirzl.InvalidArgumentError, match="1.5"):
        opt2.check_state_dict(bad)
    opt2.load_state_dict(sd)
    assert opt2.step_count(0) == 1
    norm = optim.clip_grad_norm([p], 1.0)
    assert norm == pytest.approx(12 ** 0.5)
    assert np.linalg.norm(p.grad.numpy()) == pytest.approx(1.0, rel=1e-4)
