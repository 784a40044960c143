import numpy as np
import pytest

import kirzl
import kirzl.nn as nn


class Scale(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.fc = nn.Linear(n, n)
        self.scale = nn.Parameter(kirzl.ones(n))
        self.register_buffer("calls", kirzl.zeros(1))

    def forward(self, x):
        return kirzl.relu(self.fc(x)) * self.scale


def test_layers_and_sequential():
    kirzl.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    y = model(kirzl.randn(4, 1, 28, 28))
    assert y.shape == (4, 10)
    assert [n for n, _ in model.named_parameters()] == ["1.weight", "1.bias", "3.weight", "3.bias"]
    assert model.num_parameters() == 784 * 32 + 32 + 32 * 10 + 10
    assert isinstance(model[1], nn.Linear) and model[1].in_features == 784 and len(model) == 4
    assert "Linear(in_features=784" in repr(model)
    conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.MaxPool2d(2), nn.GELU("tanh"))
    assert conv(kirzl.randn(2, 1, 8, 8)).shape == (2, 4, 4, 4)
    assert nn.LayerNorm(8)(kirzl.randn(3, 8)).shape == (3, 8)
    assert nn.Embedding(10, 4)(kirzl.tensor([1, 2, 3])).shape == (3, 4)
    d = nn.Dropout(0.5)
    d.eval()
    assert not d.training and d(kirzl.ones(4)).tolist() == [1, 1, 1, 1]


def test_python_module_registers_parameters_in_order():
    m = Scale(3)
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "fc.weight", "fc.bias"]  # own parameters first, then children (C++ order)
    assert [n for n, _ in m.named_buffers()] == ["calls"]
    assert set(m.state_dict()) == {"fc.weight", "fc.bias", "scale", "calls"}
    y = m(kirzl.ones(2, 3))
    y.sum().backward()
    assert m.scale.grad is not None and m.fc.weight.grad.shape == (3, 3)
    assert repr(m).startswith("Scale()")
    m.scale = m.scale  # the same tensor again: fine
    with pytest.raises(ValueError, match="already registered"):
        m.scale = nn.Parameter(kirzl.zeros(3))


def test_python_module_inside_cpp_container():
    seq = nn.Sequential(Scale(4), nn.Linear(4, 2))
    out = seq(kirzl.ones(5, 4))  # C++ Sequential calls the Python forward through the trampoline
    assert out.shape == (5, 2)
    assert [n for n, _ in seq.named_parameters()][:3] == ["0.scale", "0.fc.weight", "0.fc.bias"]
    import gc
    gc.collect()
    assert seq(kirzl.ones(1, 4)).shape == (1, 2)  # the Python object outlives its last Python reference


def test_models_and_to_dtype():
    kirzl.manual_seed(0)
    m = kirzl.models.fashion_mlp()
    assert m(kirzl.zeros(2, 1, 28, 28)).shape == (2, 10)
    m.to(kirzl.f64)
    assert all(p.dtype == kirzl.f64 for p in m.parameters())


def test_state_dict_round_trip_and_load_numpy():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    assert np.array_equal(a.weight.numpy(), b.weight.numpy())
    b.load_state_dict({"weight": np.zeros((2, 3), np.float32), "bias": np.ones(2, np.float32)})
    assert b.weight.sum().item() == 0 and b.bias.tolist() == [1, 1]
    with pytest.raises(kirzl.InvalidArgumentError, match="weight"):
        b.load_state_dict({"weight": np.zeros((3, 3), np.float32), "bias": np.ones(2, np.float32)})
    # check_state_dict: the same error, and a fitting dict passes without being copied.
    with pytest.raises(kirzl.InvalidArgumentError, match="weight"):
        b.check_state_dict({"weight": np.zeros((3, 3), np.float32), "bias": np.ones(2, np.float32)})
    b.check_state_dict({"weight": np.ones((2, 3), np.float32), "bias": np.ones(2, np.float32)})
    assert b.weight.sum().item() == 0


def test_init_functions():
    t = kirzl.empty(4, 5)
    nn.init.constant_(t, 2.0)
    assert t.sum().item() == 40
    nn.init.kaiming_uniform_(t, a=5 ** 0.5)
    assert abs(t.numpy()).max() <= 1 / 5 ** 0.5 + 1e-6
    assert nn.init.fans(t) == (5, 4)


def test_forward_pre_hooks_run_before_forward_in_order_and_from_children():
    log = []

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 4)
            self.b = nn.Sequential(nn.ReLU(), nn.Linear(4, 2))

        def forward(self, x):
            return self.b(self.a(x))

    m = Two()
    ha = m.a.register_forward_pre_hook(lambda mod: log.append(("a", mod is m.a)))
    m.b[1].register_forward_pre_hook(lambda mod: log.append(("b1", True)))
    hm = m.register_forward_pre_hook(lambda mod: log.append(("m", True)))
    m.register_forward_pre_hook(lambda mod: log.append(("m2", True)))
    m(kirzl.ones([2, 3]))
    assert log == [("m", True), ("m2", True), ("a", True), ("b1", True)]
    log.clear()
    m.forward(kirzl.ones([2, 3]))  # forward itself runs the children's hooks, not its own
    assert log == [("a", True), ("b1", True)]
    assert m.remove_forward_pre_hook(hm) and m.a.remove_forward_pre_hook(ha)
    assert not m.remove_forward_pre_hook(hm)
    log.clear()
    m(kirzl.ones([2, 3]))
    assert log == [("m2", True), ("b1", True)]
    log.clear()
    m.a.run_forward_pre_hooks()
    m.b.run_forward_pre_hooks()
    assert log == []

    def refuse(mod):
        raise RuntimeError("hook says no")
    m.a.register_forward_pre_hook(refuse)
    with pytest.raises(RuntimeError, match="hook says no"):
        m(kirzl.ones([2, 3]))


def test_gpt_call_runs_its_hooks():
    gpt = kirzl.models.GPT(kirzl.models.GPTConfig(vocab_size=11, block_size=6, n_layer=1, n_head=2, n_embd=8))
    calls = []
    gpt.register_forward_pre_hook(lambda mod: calls.append("gpt"))
    gpt(kirzl.tensor(np.zeros((1, 4), dtype=np.int64)))
    assert calls == ["gpt"]
