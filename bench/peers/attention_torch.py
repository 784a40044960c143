#!/usr/bin/env python3
"""The PyTorch peer of bench_attention: causal scaled_dot_product_attention forward + backward on
the CPU, f32 q, k, v of shape [B, H, T, D], at the given thread count.

Prints one JSON line {"calls_per_second": ..., "seconds": ..., "calls": ..., "threads": ...}.
Exit code 3 when torch is not importable (the benchmark reports that as skipped)."""
import argparse
import importlib
import json
import sys
import time


def torch_or_skip():
    """torch, or exit 3 with the JSON line that bench/peer_run.hpp reports as the skip reason."""
    try:
        return importlib.import_module("torch")
    except ImportError as e:
        print(json.dumps({"skipped": f"not importable: {e}"}))
        sys.exit(3)


def main():
    torch = torch_or_skip()
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--heads", type=int, required=True)
    p.add_argument("--seq", type=int, required=True)
    p.add_argument("--head-dim", type=int, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--min-time", type=float, default=0.5, help="seconds of timed calls, at least")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    shape = (a.batch, a.heads, a.seq, a.head_dim)
    q, k, v = (torch.randn(shape, requires_grad=True) for _ in range(3))
    g = torch.randn(shape)

    def call():
        for t in (q, k, v):
            t.grad = None
        torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True).backward(g)

    for _ in range(3):  # warm-up: allocator, thread pool
        call()
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < a.min_time:
        call()
        calls += 1
    seconds = time.perf_counter() - start
    print(json.dumps({"calls_per_second": calls / seconds, "seconds": seconds, "calls": calls, "threads": a.threads}))


if __name__ == "__main__":
    main()
