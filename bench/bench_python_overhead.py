#!/usr/bin/env python3
"""Python-side twins of two C++ benchmarks, to measure what the binding costs.

1. Per-call time of kirzl.add(a, b) on 1-element f32 tensors (and 1024 elements), against
   bench/bench_op_overhead.cpp (Google Benchmark) run here as a child process when built.
2. One Fashion-MNIST epoch of the MLP (784-256-128-10, AdamW 1e-3 wd 0.01, batch 128, shuffled,
   drop_last, real data through the prefetching DataLoader) at 1 and 2 threads, against the C++
   bench_fashion_mnist_epoch (BM_MlpEpochKirzl, the same settings).

    PYTHONPATH=build-py/python python3 bench/bench_python_overhead.py [--build build] [--epochs 2]

Prints a table and, last, one JSON line with every figure and the Python/C++ ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import timeit

import kirzl
from kirzl import data, models, optim

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def per_call_us(stmt, number=200_000, repeat=5):
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number * 1e6


def cpp_benchmark(binary, bench_filter):
    """Runs a Google Benchmark binary and returns {name: (real_time in ns, counters)}."""
    if not os.path.exists(binary):
        return {}
    out = subprocess.run([binary, f"--benchmark_filter={bench_filter}", "--benchmark_format=json"],
                         capture_output=True, text=True, check=True).stdout
    res = {}
    for b in json.loads(out)["benchmarks"]:
        unit = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
        res[b["name"]] = (b["real_time"] * unit, b)
    return res


def python_epoch(threads, train, epochs):
    kirzl.set_num_threads(threads)
    kirzl.manual_seed(0)
    model = models.fashion_mlp()
    opt = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    loader = data.DataLoader(train, batch_size=128, shuffle=True, drop_last=True)
    best = 0.0
    for _ in range(epochs):
        samples = 0
        t0 = time.perf_counter()
        for x, y in loader:
            loss = kirzl.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            samples += x.shape[0]
        best = max(best, samples / (time.perf_counter() - t0))
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(ROOT, "build"), help="C++ build dir with bench/ binaries")
    p.add_argument("--epochs", type=int, default=2, help="epochs per thread count (the best is reported)")
    a = p.parse_args()
    figures = {}

    one_a, one_b = kirzl.ones(1), kirzl.ones(1)
    k_a, k_b = kirzl.ones(1024), kirzl.ones(1024)
    g_a = kirzl.ones(1, requires_grad=True)
    add = kirzl.add
    figures["py_add_1_us"] = per_call_us(lambda: add(one_a, one_b))
    figures["py_add_1024_us"] = per_call_us(lambda: add(k_a, k_b))
    figures["py_add_1_grad_us"] = per_call_us(lambda: add(g_a, one_b))
    figures["py_operator_plus_1_us"] = per_call_us(lambda: one_a + one_b)
    cpp = cpp_benchmark(os.path.join(a.build, "bench", "bench_op_overhead"), "BM_AddSmall")
    if cpp:
        figures["cpp_add_1_us"] = cpp["BM_AddSmall/1"][0] / 1e3
        figures["cpp_add_1024_us"] = cpp["BM_AddSmall/1024"][0] / 1e3
        figures["cpp_add_1_grad_us"] = cpp["BM_AddSmallRequiresGrad"][0] / 1e3
        figures["overhead_add_1_us"] = figures["py_add_1_us"] - figures["cpp_add_1_us"]
        figures["overhead_add_1_grad_us"] = figures["py_add_1_grad_us"] - figures["cpp_add_1_grad_us"]

    if os.path.isdir(data.kFashionMnistDir):
        train = data.FashionMNIST()
        for threads in (1, 2):
            figures[f"py_epoch_samples_per_second_t{threads}"] = python_epoch(threads, train, a.epochs)
        cpp = cpp_benchmark(os.path.join(a.build, "bench", "bench_fashion_mnist_epoch"), "BM_MlpEpochKirzl")
        for threads in (1, 2):
            name = f"BM_MlpEpochKirzl/threads:{threads}/iterations:2/real_time"
            if name in cpp:
                rate = cpp[name][1]["samples_per_second"]
                figures[f"cpp_epoch_samples_per_second_t{threads}"] = rate
                figures[f"epoch_ratio_py_over_cpp_t{threads}"] = figures[f"py_epoch_samples_per_second_t{threads}"] / rate

    width = max(map(len, figures))
    for k, v in figures.items():
        print(f"{k:<{width}}  {v:12.3f}")
    print(json.dumps({k: round(v, 4) for k, v in figures.items()}))


if __name__ == "__main__":
    sys.exit(main())
