"""kirzl.cuda.Graph and capturable Adam/AdamW from Python (the C++ contract: include/kirzl/core/cuda_graph.hpp).

Without a GPU only the refusals and the capturable optimizers' numbers can be checked here; the
replay tests below run where kirzl sees a CUDA device."""
import numpy as np
import pytest

import kirzl
import kirzl.nn as nn
from kirzl import optim

needs_gpu = pytest.mark.skipif(not kirzl.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.skipif(kirzl.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_graph_refuses_without_a_gpu():
    with pytest.raises(kirzl.UnsupportedError, match="CUDA"):
        kirzl.cuda.Graph()
    assert kirzl.cuda.is_capturing(0) is False
    with pytest.raises(kirzl.UnsupportedError):
        kirzl.cuda.synchronize()


def _adam_run(cls, capturable, device="cpu"):
    kirzl.manual_seed(3)
    w = kirzl.randn(5, 4).to(device).requires_grad_()
    b = kirzl.randn(4).to(device).requires_grad_()
    opt = cls([w, b], lr=0.05, weight_decay=0.1, capturable=capturable)
    for step in range(6):
        if step == 3:
            opt.set_lr(0.01)  # a capturable optimizer keeps lr on the device: set_lr must reach it
        loss = ((w * w).sum(0) * b).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return opt, w.detach().to("cpu").numpy(), b.detach().to("cpu").numpy()


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
def test_capturable_adam_equals_plain(cls):
    plain, w0, b0 = _adam_run(cls, False)
    cap, w1, b1 = _adam_run(cls, True)
    assert plain.capturable is False and cap.capturable is True
    np.testing.assert_array_equal(w0, w1)
    np.testing.assert_array_equal(b0, b1)
    assert cap.step_count(0) == plain.step_count(0) == 6  # read from the device counters


def _mlp(device):
    kirzl.manual_seed(7)
    return nn.Sequential(nn.Linear(16, 32), nn.GELU("tanh"), nn.Linear(32, 4)).to(device)


def _train_step(model, opt, x, y):
    loss = kirzl.mse_loss(model(x), y)
    opt.zero_grad(set_to_none=False)  # keeps the gradient tensors: the graph writes into them
    loss.backward()
    opt.step()
    return loss


@needs_gpu
def test_replayed_steps_equal_eager_steps():
    kirzl.manual_seed(11)
    batches = [(kirzl.randn(8, 16), kirzl.randn(8, 4)) for _ in range(8)]
    eager, graphed = _mlp("cuda"), _mlp("cuda")
    opt_e = optim.AdamW(eager.parameters(), lr=1e-2, capturable=True)
    opt_g = optim.AdamW(graphed.parameters(), lr=1e-2, capturable=True)
    x, y = batches[0][0].to("cuda"), batches[0][1].to("cuda")
    for bx, by in batches[:2]:  # warm-up: optimizer state and workspaces exist before the capture
        _train_step(eager, opt_e, bx.to("cuda"), by.to("cuda"))
        x.copy_(bx.to("cuda")), y.copy_(by.to("cuda"))
        _train_step(graphed, opt_g, x, y)
    g = kirzl.cuda.Graph()
    loss = g.capture(lambda: _train_step(graphed, opt_g, x, y))
    assert g.captured and g.device == kirzl.cuda.current_device()
    for bx, by in batches[2:]:
        want = _train_step(eager, opt_e, bx.to("cuda"), by.to("cuda")).item()
        x.copy_(bx.to("cuda")), y.copy_(by.to("cuda"))
        g.replay()
        assert loss.item() == want
    for pe, pg in zip(eager.parameters(), graphed.parameters()):
        np.testing.assert_array_equal(pe.detach().to("cpu").numpy(), pg.detach().to("cpu").numpy())
    assert opt_g.step_count(0) == opt_e.step_count(0) == 8


@needs_gpu
def test_an_op_that_cannot_be_captured_names_itself_and_the_graph_stays_usable():
    x = kirzl.ones(4).to("cuda")
    g = kirzl.cuda.Graph()
    with pytest.raises(kirzl.UnsupportedError, match="item"):
        g.capture(lambda: (x * 2).sum().item())
    assert not g.captured and not kirzl.cuda.is_capturing(kirzl.cuda.current_device())
    with pytest.raises(ZeroDivisionError):  # a Python error inside the step ends the capture too
        g.capture(lambda: 1 / 0)
    out = g.capture(lambda: x * 3)
    g.replay()
    assert out.to("cpu").tolist() == [3.0, 3.0, 3.0, 3.0]
    with pytest.raises(kirzl.InvalidArgumentError):
        g.capture(lambda: x * 4)


@needs_gpu
def test_the_graph_keeps_its_step_and_the_tensors_it_holds_alive():
    import gc
    import weakref

    def make_step():
        x = kirzl.ones(1024).to("cuda")  # held only by the step's closure
        return lambda: (x * 2.0).sum()

    step = make_step()
    g = kirzl.cuda.Graph()
    loss = g.capture(step)
    ref = weakref.ref(step)
    del step
    gc.collect()
    assert ref() is not None, "the graph let go of its step, and with it of the memory its replays read"
    g.replay()
    assert loss.item() == 2048.0
