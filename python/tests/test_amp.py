"""kirzl.amp.GradScaler and the optimizers' f32 master weights, from Python."""
import math
import threading

import numpy as np
import pytest

import kirzl
from kirzl import amp, optim


def _param(values):
    return kirzl.tensor(values, requires_grad=True)


def _np(t):
    return t.detach().numpy()


def test_scale_unscale_step():
    w = _param([1.0, 2.0, 3.0])
    opt = optim.SGD([w], lr=0.5)
    scaler = amp.GradScaler(init_scale=1024.0)
    x = kirzl.tensor([0.5, -1.0, 0.25])
    scaler.scale((w * x).sum()).backward()
    np.testing.assert_array_equal(w.grad.numpy(), [512.0, -1024.0, 256.0])
    assert scaler.step(opt)
    np.testing.assert_array_equal(w.grad.numpy(), [0.5, -1.0, 0.25])
    np.testing.assert_allclose(_np(w), [0.75, 2.5, 2.875])
    scaler.update()
    assert scaler.get_scale() == 1024.0
    assert scaler.growth_tracker() == 1


def test_overflow_skips_and_backs_off_then_grows():
    w = _param([1.0, -1.0])
    opt = optim.AdamW([w], lr=0.1)
    scaler = amp.GradScaler(init_scale=256.0, growth_interval=2)
    x = kirzl.tensor([1.0, 2.0])

    def iteration(inject):
        opt.zero_grad()
        scaler.scale((w * x).sum()).backward()
        if inject:
            w.grad.fill_(math.inf)
        stepped = scaler.step(opt)
        scaler.update()
        return stepped

    before = _np(w).copy()
    assert not iteration(True)
    assert scaler.last_step_skipped(opt)
    np.testing.assert_array_equal(_np(w), before)
    assert scaler.get_scale() == 128.0
    assert iteration(False) and iteration(False)
    assert scaler.get_scale() == 256.0


def test_state_dict_round_trip_and_validation():
    w = _param([1.0])
    opt = optim.SGD([w], lr=0.1)
    a = amp.GradScaler(init_scale=64.0, growth_interval=5)
    a.scale(w.sum()).backward()
    a.step(opt)
    a.update()
    b = amp.GradScaler()
    b.load_state_dict(a.state_dict())
    assert b.get_scale() == 64.0 and b.growth_tracker() == 1
    bad = a.state_dict()
    bad["scale"] = kirzl.tensor(-1.0)
    with pytest.raises(Exception, match="scale"):
        b.load_state_dict(bad)
    with pytest.raises(Exception, match="growth_interval"):
        amp.GradScaler(growth_interval=0)


def test_two_ranks_skip_alike():
    group = kirzl.comm.make_in_process_group(2)
    results = [None, None]

    def rank_main(rank):
        w = _param([0.5, -0.25, 1.0])
        opt = optim.Adam([w], lr=0.05)
        scaler = amp.GradScaler(init_scale=1024.0, growth_interval=2, comm=group[rank])
        stepped = []
        for s in range(5):
            opt.zero_grad()
            x = kirzl.tensor([1.0 + s, -2.0, 0.5])
            scaler.scale((w * x).sum()).backward()
            if rank == 1 and s == 2:
                w.grad.fill_(math.inf)
            stepped.append(scaler.step(opt))
            scaler.update()
        results[rank] = (stepped, scaler.get_scale(), _np(w).copy())

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0][0] == [True, True, False, True, True]
    assert results[0][0] == results[1][0]
    assert results[0][1] == results[1][1]
    np.testing.assert_array_equal(results[0][2], results[1][2])


def test_bfloat16_parameters_keep_float32_masters():
    w = kirzl.full([4], 1.0, dtype=kirzl.bfloat16).requires_grad_()
    opt = optim.SGD([w], lr=1e-3)
    for _ in range(20):
        w.grad = kirzl.ones([4], dtype=kirzl.bfloat16)
        opt.step()
    sd = opt.state_dict()
    master = sd["state.0.master"].numpy()
    assert sd["state.0.master"].dtype == kirzl.float32
    np.testing.assert_allclose(master, 0.98, atol=1e-5)  # bf16 alone would stay at 1.0
    np.testing.assert_array_equal(_np(w.to(kirzl.float32)), 0.98046875)
    # The masters come back with load_state_dict.
    w2 = kirzl.full([4], 1.0, dtype=kirzl.bfloat16).requires_grad_()
    opt2 = optim.SGD([w2], lr=1e-3)
    opt2.load_state_dict(sd)
    np.testing.assert_array_equal(opt2.state_dict()["state.0.master"].numpy(), master)


def test_clip_grad_norm_returns_a_tensor():
    w = _param([0.0, 0.0])
    w.grad = kirzl.tensor([3.0, 4.0])
    n = optim.clip_grad_norm_([w], 1.0)
    assert isinstance(n, kirzl.Tensor) and n.item() == pytest.approx(5.0)
    np.testing.assert_allclose(w.grad.numpy(), [0.6, 0.8], rtol=1e-5)
