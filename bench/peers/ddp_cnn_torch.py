#!/usr/bin/env python3
"""The PyTorch peer of bench_ddp_cnn: DistributedDataParallel over gloo, the same CNN
(conv32-pool-conv64-pool-fc128), AdamW, per-rank batch 64, one thread per rank.

Run under mpirun (rank and world size come from Open MPI's environment):
    mpirun -np 2 python3 bench/peers/ddp_cnn_torch.py
Rank 0 prints one JSON line {"world_size": N, "step_ms": ...}. Exit code 3 without torch."""
import json
import os
import sys
import time

try:
    import torch
    import torch.distributed as dist
except ImportError as e:
    print(json.dumps({"skipped": f"not importable: {e}"}))
    sys.exit(3)


def main():
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
    world = int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1"))
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", os.environ.get("KIRZL_PEER_PORT", "29517"))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64 * 7 * 7, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(rank + 1)
    xs = [torch.randn(64, 1, 28, 28, generator=g) for _ in range(4)]
    ys = [torch.randint(0, 10, (64,), generator=g) for _ in range(4)]
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(i):
        opt.zero_grad(set_to_none=True)
        loss_fn(ddp(xs[i % 4]), ys[i % 4]).backward()
        opt.step()

    for i in range(5):
        step(i)
    dist.barrier()
    iters = 40
    start = time.perf_counter()
    for i in range(iters):
        step(i)
    ms = (time.perf_counter() - start) / iters * 1e3
    if rank == 0:
        print(json.dumps({"peer": "pytorch-ddp-gloo", "world_size": world, "step_ms": ms, "torch": torch.__version__}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
