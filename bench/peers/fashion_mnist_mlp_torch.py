#!/usr/bin/env python3
"""The PyTorch peer of bench_fashion_mnist_epoch: the same MLP (784-256-128-10), AdamW
(lr 1e-3, weight decay 0.01), batch 128 and thread count, one epoch of Fashion-MNIST on the CPU.

Prints one JSON line {"samples_per_second": ..., "seconds": ..., "threads": ...}.
Exit code 3 when torch is not importable (the benchmark reports that as skipped)."""
import argparse
import json
import sys
import time

try:
    import torch
    from fashion_mnist_data import load_train
except ImportError as e:  # noqa: F841
    print(json.dumps({"skipped": f"not importable: {e}"}))
    sys.exit(3)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x, y = load_train(a.data_dir)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = x.shape[0] // a.batch_size * a.batch_size

    def epoch():
        perm = torch.randperm(x.shape[0])
        for i in range(0, n, a.batch_size):
            idx = perm[i : i + a.batch_size]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()

    for i in range(0, 10 * a.batch_size, a.batch_size):  # warm-up: allocator, thread pool
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x[i : i + a.batch_size]), y[i : i + a.batch_size]).backward()
        opt.step()
    start = time.perf_counter()
    for _ in range(a.epochs):
        epoch()
    seconds = time.perf_counter() - start
    print(json.dumps({"samples_per_second": a.epochs * n / seconds, "seconds": seconds, "threads": a.threads,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
