#!/usr/bin/env python3
"""Two or more bench_allreduce variants, alternated run by run on one machine, medians per case.

    python3 bench/ab_allreduce.py REPS FILTER LABEL=SPEC...

Each of REPS rounds runs every variant once, in the order given, as
`mpirun -np 2 --oversubscribe --bind-to none BIN --benchmark_repetitions=3 --benchmark_filter=FILTER`,
so that slow drifts of a shared machine reach every variant alike. SPEC is a comma-separated list
of KEY:VALUE; KEY BIN names the binary (default build/bench/bench_allreduce), NP the rank count
(default 2), any other KEY is set in the environment of that variant's run (e.g.
KIRZL_MPI_RING_PIECE_BYTES:1048576). For each case and variant it prints the median over all
samples of kirzl's time per call and of raw MPI_Allreduce's, interleaved in the same run (Note
[interleaved timing]), their difference and their ratio (MPI / kirzl; 1.0 = no overhead).

Example (the 2026-12-07 comparison in bench/RESULTS.md):
    python3 bench/ab_allreduce.py 8 'BM_Allreduce/kirzl_[a-z]+/(8|1024|4096|16384|1048576)/' \
        base=BIN:/tmp/base/build/bench/bench_allreduce new=BIN:build/bench/bench_allreduce
Open MPI as root also needs OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1.
"""
import json
import os
import statistics
import subprocess
import sys


def parse_variant(arg):
    label, _, spec = arg.partition("=")
    if not label:
        sys.exit(f"ab_allreduce: a variant needs a label: {arg!r}")
    binary, np, env = "build/bench/bench_allreduce", "2", {}
    for item in filter(None, spec.split(",")):
        key, sep, value = item.partition(":")
        if not sep:
            sys.exit(f"ab_allreduce: {item!r} in {arg!r} is not KEY:VALUE")
        if key == "BIN":
            binary = value
        elif key == "NP":
            np = value
        else:
            env[key] = value
    return label, binary, np, env


def run_once(binary, np, env, case_filter):
    cmd = ["mpirun", "-np", np, "--oversubscribe", "--bind-to", "none", binary,
           "--benchmark_filter=" + case_filter, "--benchmark_format=json", "--benchmark_repetitions=3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
    out = proc.stdout
    if proc.returncode != 0 or "{" not in out:
        sys.exit(f"ab_allreduce: {' '.join(cmd)} failed (status {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(out[out.index("{"):])["benchmarks"]  # the first line is the benchmark's banner


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    reps, case_filter = int(sys.argv[1]), sys.argv[2]
    variants = [parse_variant(a) for a in sys.argv[3:]]
    samples = {}  # (case, label) -> [(kirzl seconds, raw MPI seconds)]
    for _ in range(reps):
        for label, binary, np, env in variants:
            for b in run_once(binary, np, env, case_filter):
                if b.get("run_type") == "aggregate":
                    continue
                kirzl = b.get("seconds", b["real_time"] * 1e-6)
                mpi = b.get("mpi_seconds", b.get("mpi_us", 0) * 1e-6)
                samples.setdefault((b["run_name"], label), []).append((kirzl, mpi))
    for (case, label), v in sorted(samples.items()):
        k = statistics.median(x[0] for x in v)
        m = statistics.median(x[1] for x in v)
        ratio = f"{m / k:.3f}" if m > 0 else "-"
        print(f"{case:60s} {label:8s} kirzl {k * 1e6:10.2f} us  mpi {m * 1e6:10.2f} us  "
              f"diff {(k - m) * 1e6:8.2f} us  ratio {ratio}  n={len(v)}")


if __name__ == "__main__":
    main()
