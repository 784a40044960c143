"""Sharded data parallelism (ZeRO) and DDP checkpoints from Python, on in-process ranks (Python
threads): the same names as in C++ (DistributedDataParallel(shard=...), make_optimizer,
clip_grad_norm_, kirzl.io.save_checkpoint(dir, ddp, opt), consolidate)."""

import numpy as np
import pytest

import kirzl
import kirzl.nn as nn
from rank_threads import run_ranks

GLOBAL_BATCH = 12


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 9)
        self.b = nn.Linear(9, 3)

    def forward(self, x):
        return self.b(kirzl.tanh(self.a(x)))


def batch(step, rank, n):
    rng = np.random.default_rng(100 + step)
    x = rng.standard_normal((GLOBAL_BATCH, 6)).astype(np.float32)
    y = rng.integers(0, 3, GLOBAL_BATCH)
    per = GLOBAL_BATCH // n
    return kirzl.tensor(x[per * rank:per * (rank + 1)]), kirzl.tensor(y[per * rank:per * (rank + 1)])


def train(ddp, opt, rank, n, steps, clip=None):
    for step in steps:
        x, y = batch(step, rank, n)
        opt.zero_grad()
        kirzl.cross_entropy(ddp(x), y).backward()
        if clip is not None:
            ddp.clip_grad_norm_(clip)
        opt.step()
    ddp.synchronize_parameters()


def params_of(model):
    return [p.numpy().copy() for p in model.parameters()]


def state_numel(opt):
    return sum(int(np.prod(t.shape)) for k, t in opt.state_dict().items() if k.startswith("state.") and not k.endswith(".step"))


def run(n, shard, steps=range(6), clip=0.5):
    def fn(r, comm):
        kirzl.manual_seed(3)
        model = Net()
        ddp = kirzl.DistributedDataParallel(model, comm, bucket_cap_mb=0.0001, first_bucket_cap_mb=0.0001, shard=shard)
        opt = ddp.make_optimizer(kirzl.optim.AdamW, lr=0.01, weight_decay=0.1)
        train(ddp, opt, r, n, steps, clip)
        return params_of(model), state_numel(opt)
    return run_ranks(n, fn)


def test_zero_equals_plain_ddp_and_keeps_a_share_of_the_state():
    plain = run(2, "none")
    for shard in ("optimizer", "gradients"):
        sharded = run(2, shard)
        for r in range(2):
            for a, b in zip(sharded[r][0], plain[r][0]):
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
        total = plain[0][1]  # the moments of every parameter
        assert sharded[0][1] + sharded[1][1] == total
        assert 0 < sharded[0][1] < total and 0 < sharded[1][1] < total


def test_a_checkpoint_of_two_sharded_ranks_resumes_at_one_and_consolidates(tmp_path):
    ckpt, single = str(tmp_path / "ckpt"), str(tmp_path / "one.safetensors")
    want = run(1, "none", range(6), clip=None)[0][0]

    def first(r, comm):
        kirzl.manual_seed(3)
        model = Net()
        ddp = kirzl.DistributedDataParallel(model, comm, bucket_cap_mb=0.0001, shard="gradients")
        opt = ddp.make_optimizer(kirzl.optim.AdamW, lr=0.01, weight_decay=0.1)
        train(ddp, opt, r, 2, range(3))
        kirzl.io.save_checkpoint(ckpt, ddp, opt, step=3, config={"run": "py"})
    run_ranks(2, first)

    def second(r, comm):
        kirzl.manual_seed(99)  # other weights: the checkpoint must replace them
        model = Net()
        ddp = kirzl.DistributedDataParallel(model, comm)
        opt = ddp.make_optimizer(kirzl.optim.AdamW, lr=0.5)
        info = kirzl.io.load_checkpoint(ckpt, ddp, opt)
        assert info.step == 3 and info.config["run"] == "py" and opt.lr() == pytest.approx(0.01)
        train(ddp, opt, r, 1, range(3, 6))
        return params_of(model)
    got = run_ranks(1, second)[0]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)

    kirzl.io.consolidate(ckpt, single, include_optimizer=False)
    tensors, metadata = kirzl.io.load_safetensors(single)
    assert metadata["world_size"] == "2" and metadata["shard"] == "gradients"
    assert sorted(tensors) == ["model.a.bias", "model.a.weight", "model.b.bias", "model.b.weight"]


def test_bad_shard_and_optimizer_class_are_errors():
    model = Net()
    with pytest.raises(kirzl.InvalidArgumentError, match="shard must be 'none', 'optimizer' or 'gradients'"):
        kirzl.DistributedDataParallel(model, shard="zero3")
    ddp = kirzl.DistributedDataParallel(model)
    with pytest.raises(kirzl.Error, match="did not build a kirzl optimizer"):
        ddp.make_optimizer(lambda groups, **kw: object())
    ddp.close()


class Peeker(nn.Module):
    """Reads its second layer's weights instead of calling it."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 9)
        self.b = nn.Linear(9, 3)

    def forward(self, x):
        return kirzl.linear(kirzl.tanh(self.a(x)), self.b.weight, self.b.bias)


def test_the_parameter_gather_overlaps_the_forward_of_a_python_module():
    # Net calls its children (module.__call__ runs their forward pre-hooks, where DDP waits for
    # each one's parameters): the same training with the gather overlapped and waited up front.
    def fn(r, comm, overlap):
        kirzl.manual_seed(3)
        model = Net()
        ddp = kirzl.DistributedDataParallel(model, comm, bucket_cap_mb=0.0001, first_bucket_cap_mb=0.0001,
                                            shard="gradients", overlap_parameter_gather=overlap)
        opt = ddp.make_optimizer(kirzl.optim.AdamW, lr=0.01, weight_decay=0.1)
        train(ddp, opt, r, 2, range(5))
        stats = ddp.last_step_stats()
        assert 0 <= stats.gather_wait_ms <= stats.forward_ms
        return params_of(model)
    on = run_ranks(2, lambda r, c: fn(r, c, True))
    off = run_ranks(2, lambda r, c: fn(r, c, False))
    for a, b in zip(on[1], off[0]):
        np.testing.assert_array_equal(a, b)


def test_a_parameter_read_past_its_module_is_an_error_unless_overlap_is_off():
    def fn(r, comm, overlap):
        kirzl.manual_seed(3)
        model = Peeker()
        ddp = kirzl.DistributedDataParallel(model, comm, bucket_cap_mb=0.0001, first_bucket_cap_mb=0.0001,
                                            shard="optimizer", overlap_parameter_gather=overlap)
        opt = ddp.make_optimizer(kirzl.optim.SGD, lr=0.1)
        x, y = batch(1, r, 2)
        kirzl.cross_entropy(ddp(x), y).backward()  # the first forward: nothing in flight yet
        opt.step()
        if overlap:
            with pytest.raises(kirzl.InvalidArgumentError, match="run_forward_pre_hooks"):
                ddp(x)
            model.b.run_forward_pre_hooks()  # the fix the message names
        return ddp(x).numpy()
    run_ranks(2, lambda r, c: fn(r, c, True))
    run_ranks(2, lambda r, c: fn(r, c, False))
