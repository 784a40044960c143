#!/usr/bin/env python3
"""kirzl's main demo in Python: Fashion-MNIST with an MLP or a small CNN, data-parallel on any
number of ranks. The twin of examples/fashion_mnist.cpp: same flags, defaults and output.

    python examples/python/fashion_mnist.py                     # one process, the MLP
    mpirun -np 2 python examples/python/fashion_mnist.py --model cnn

--batch-size is the *global* batch: each of N ranks takes batch/N examples per step and the
reducer averages their gradients, so one command trains the same model at any world size.
The last line printed is one JSON object with the final figures.
"""
from __future__ import annotations

import argparse
import sys
import time

import kirzl
from kirzl import data, io, models, optim


def parse(argv=None):
    p = argparse.ArgumentParser(prog="fashion_mnist", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
    p.add_argument("--epochs", type=int, default=0, help="0: the model's default (mlp 10, cnn 4)")
    p.add_argument("--batch-size", type=int, default=128, help="the global batch")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--optimizer", default="adamw", choices=["adamw", "sgd"])
    p.add_argument("--data-dir", default=data.kFashionMnistDir)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", default="")
    p.add_argument("--resume", default="")
    p.add_argument("--metrics", default="")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=0, help="0: kirzl's default")
    p.add_argument("--train-limit", type=int, default=0, help="use only the first N training examples")
    p.add_argument("--test-limit", type=int, default=0)
    p.add_argument("--log-every", type=int, default=50, help="metrics lines every N steps")
    p.add_argument("--stop-after", type=int, default=0,
                   help="end this run after N epochs, as if interrupted (the schedule still spans --epochs)")
    a = p.parse_args(argv)
    if a.epochs == 0:
        a.epochs = 10 if a.model == "mlp" else 4
    if a.epochs < 1 or a.batch_size < 1 or a.log_every < 1:
        p.error("--epochs, --batch-size and --log-every must be positive")
    return a


def make_optimizer(a, params):
    if a.optimizer == "sgd":
        return optim.SGD(params, lr=a.lr, momentum=0.9, nesterov=True)
    return optim.AdamW(params, lr=a.lr, weight_decay=0.01)


def run_config(a):
    """The run's settings that a checkpoint must agree with to be resumed (as the C++ example)."""
    return {"model": a.model, "optimizer": a.optimizer, "batch_size": str(a.batch_size),
            "lr": f"{a.lr:.6f}", "seed": str(a.seed), "epochs": str(a.epochs), "train_limit": str(a.train_limit)}


def evaluate(model, test, world, dev):
    """Each rank scores a contiguous share of the test set; the sums meet in one all_reduce."""
    with kirzl.no_grad():
        model.eval()
        n = len(test)
        begin, end = n * world.rank() // world.size(), n * (world.rank() + 1) // world.size()
        correct = loss_sum = 0.0
        inputs, targets = test.inputs(), test.targets()
        for i in range(begin, end, 1000):
            j = min(end, i + 1000)
            x, y = inputs[i:j].to(dev), targets[i:j].to(dev)
            logits = model(x)
            loss_sum += kirzl.cross_entropy(logits, y).item() * (j - i)
            correct += kirzl.sum(kirzl.eq(kirzl.argmax(logits, 1), y)).item()
        totals = kirzl.tensor([correct, loss_sum], dtype=kirzl.f64)
        kirzl.all_reduce(totals, op="sum", group=world)
        model.train()
    return totals[0].item() / n, totals[1].item() / n


def run(a):
    world = kirzl.init()
    lead = world.rank() == 0
    if a.threads > 0:
        kirzl.set_num_threads(a.threads)
    dev = kirzl.Device(f"cuda:{world.local_rank()}") if a.device == "cuda" else kirzl.Device("cpu")
    if a.batch_size % world.size() != 0:
        raise kirzl.InvalidArgumentError(f"fashion_mnist: --batch-size {a.batch_size} (the global batch) must be "
                                         f"divisible by the world size {world.size()}")
    local_batch = a.batch_size // world.size()

    train = data.FashionMNIST(a.data_dir, "train", limit=a.train_limit)
    test = data.FashionMNIST(a.data_dir, "test", limit=a.test_limit)

    kirzl.manual_seed(a.seed)  # the same initial model on every rank (DDP also broadcasts rank 0's)
    model = models.fashion_mlp() if a.model == "mlp" else models.fashion_cnn()
    model.to(dev)
    ddp = kirzl.DistributedDataParallel(model, world)
    opt = make_optimizer(a, model.parameters())

    sampler = data.DistributedSampler(len(train), world, shuffle=True, seed=a.seed, drop_last=True)
    loader = data.DataLoader(train, batch_size=local_batch, drop_last=True, sampler=sampler)
    steps_per_epoch = loader.num_batches()
    if steps_per_epoch <= 0:
        raise kirzl.InvalidArgumentError(f"fashion_mnist: {len(train)} training examples make no full batch of {a.batch_size}")
    schedule = optim.CosineWithWarmup(opt, warmup_steps=min(100, steps_per_epoch), total_steps=steps_per_epoch * a.epochs)

    start_epoch, step = 0, 0
    if a.resume:
        _, saved = io.load_safetensors(a.resume)
        for key, value in run_config(a).items():
            old = saved.get("config." + key)
            if old is not None and old != value:
                raise kirzl.InvalidArgumentError(f"fashion_mnist: --resume '{a.resume}' was written with {key} = {old} "
                                                 f"but this run has {key} = {value}")
        info = io.load_checkpoint(a.resume, model, opt)
        start_epoch, step = info.epoch, info.step
        for _ in range(step):
            schedule.step()
        if lead:
            print(f"resumed from {a.resume} at epoch {start_epoch}, step {step}", flush=True)
    metrics = io.MetricsLog(a.metrics if lead else "")

    if lead:
        print(f"fashion_mnist: {a.model}, {a.optimizer} lr {a.lr:g}, global batch {a.batch_size} ({local_batch} per rank), "
              f"{a.epochs} epochs, {world.size()} rank(s), {dev}", flush=True)
    start = time.perf_counter()
    train_seconds, samples = 0.0, 0
    accuracy = test_loss = 0.0
    end_epoch = min(a.epochs, a.stop_after) if a.stop_after > 0 else a.epochs
    for epoch in range(start_epoch, end_epoch):
        sampler.set_epoch(epoch)
        bar = io.ProgressBar(total_steps=steps_per_epoch, epoch=epoch + 1, epochs=a.epochs, label="train", enabled=lead)
        epoch_start = time.perf_counter()
        k = 0
        for x, y in loader:
            loss = kirzl.cross_entropy(ddp(x.to(dev)), y.to(dev))
            opt.zero_grad()
            loss.backward()  # buckets are all-reduced while backward runs
            with ddp.trace("optimizer step"):  # in the KIRZL_TIMELINE trace, when enabled
                opt.step()
            schedule.step()
            step += 1
            k += 1
            samples += a.batch_size
            rate = k * a.batch_size / max(time.perf_counter() - epoch_start, 1e-9)
            bar.update(k, loss.item(), rate)  # this rank's loss, shown on rank 0
            if step % a.log_every == 0:
                # The metrics log holds the loss of the global batch: the mean over ranks.
                global_loss = loss.detach().to(kirzl.f64).reshape(1)
                kirzl.all_reduce(global_loss, op="avg", group=world)
                stats = ddp.last_step_stats()
                metrics.log(step=step, epoch=epoch, loss=global_loss.item(), lr=opt.lr(), samples_per_second=rate,
                            elapsed_seconds=time.perf_counter() - start, comm_hidden_ms=stats.comm_hidden_ms,
                            comm_exposed_ms=stats.comm_exposed_ms)
        bar.finish()
        train_seconds += time.perf_counter() - epoch_start
        accuracy, test_loss = evaluate(model, test, world, dev)
        if lead:
            print(f"epoch {epoch + 1}/{a.epochs}  test accuracy {accuracy:.4f}  test loss {test_loss:.4f}  "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
            metrics.log(step=step, epoch=epoch, loss=test_loss, accuracy=accuracy, lr=opt.lr(),
                        elapsed_seconds=time.perf_counter() - start, split="test")
            if a.checkpoint:
                io.save_checkpoint(a.checkpoint, model, opt, step=step, epoch=epoch + 1, config=run_config(a))
        kirzl.barrier(group=world)  # a checkpoint is complete before anyone goes on
    if start_epoch >= end_epoch:
        accuracy, test_loss = evaluate(model, test, world, dev)
    if lead:
        rate = samples / train_seconds if train_seconds > 0 else 0.0
        print(f'{{"example": "fashion_mnist", "model": "{a.model}", "test_accuracy": {accuracy:.4f}, '
              f'"test_loss": {test_loss:.4f}, "epochs": {a.epochs}, "seconds": {time.perf_counter() - start:.2f}, '
              f'"samples_per_second": {rate:.0f}, "world_size": {world.size()}}}', flush=True)
    return 0


def main(argv=None):
    args = parse(argv)
    try:
        return run(args)
    except kirzl.Error as e:
        print(e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
