#!/usr/bin/env python3
"""The PyTorch peer of bench_fashion_mnist_cnn_cuda: the same CNN (conv3x3 1->32 pad 1, ReLU,
maxpool 2, conv3x3 32->64 pad 1, ReLU, maxpool 2, flatten, 3136-128, ReLU, 128-10), AdamW
(lr 1e-3, weight decay 0.01), batch 128, one epoch of Fashion-MNIST. Each shuffled batch is
gathered on the host and copied to the device, as the kirzl side does.

Prints one JSON line {"images_per_second": ..., "seconds": ..., "device": ...}.
Exit code 3 when torch is not importable or the device is not available."""
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


def cnn():
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--device", default="cuda")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=128)
    a = p.parse_args()
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print(json.dumps({"skipped": "torch sees no CUDA device"}))
        sys.exit(3)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    x, y = load_train(a.data_dir)
    model = cnn().to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = x.shape[0] // a.batch_size * a.batch_size

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb.to(dev)), yb.to(dev))
        loss.backward()
        opt.step()

    for i in range(0, 10 * a.batch_size, a.batch_size):  # warm-up: cuDNN choice, allocator
        step(x[i : i + a.batch_size], y[i : i + a.batch_size])
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    perm = torch.randperm(x.shape[0])
    for i in range(0, n, a.batch_size):
        idx = perm[i : i + a.batch_size]
        step(x[idx], y[idx])
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(json.dumps({"images_per_second": n / seconds, "seconds": seconds, "device": a.device, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
