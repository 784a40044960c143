#!/usr/bin/env bash
# Weak scaling of DDP on the CPU: the CNN at 1, 2 and 4 ranks (per-rank batch 64, one thread per
# rank), kirzl with and without overlap, and PyTorch DDP (gloo) on the same model and batch where
# torch is importable. Efficiency = step time at 1 rank / step time at N ranks.
#   bench/run_ddp_scaling.sh [build-dir] [ranks...]      (defaults: build, 1 2 4)
# Meaningful only with at least as many free cores as ranks.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
shift || true
ranks=("${@:-1 2 4}")
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for n in ${ranks[@]}; do
  mpirun -np "$n" --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -x OMP_WAIT_POLICY=passive \
    "$build/bench/bench_ddp_cnn" --benchmark_format=json >"$out/kirzl_$n.json" 2>"$out/kirzl_$n.err" ||
    { cat "$out/kirzl_$n.err" >&2; exit 1; }
  mpirun -np "$n" --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -x KIRZL_PEER_PORT=$((29500 + n)) \
    python3 bench/peers/ddp_cnn_torch.py >"$out/torch_$n.json" 2>/dev/null || true
done
python3 - "$out" ${ranks[@]} <<'PY'
import json, sys
out, ranks = sys.argv[1], [int(r) for r in sys.argv[2:]]
def kirzl(n, mode):
    for b in json.load(open(f"{out}/kirzl_{n}.json"))["benchmarks"]:
        if b["name"].startswith(f"BM_CnnStep/mode:{mode}/") and not b.get("error_occurred"):
            return b["real_time"]
def torch(n):
    try:
        for line in open(f"{out}/torch_{n}.json"):
            if '"step_ms"' in line:
                return json.loads(line)["step_ms"]
    except OSError:
        pass
base = kirzl(1, 0)
k1, t1 = kirzl(ranks[0], 1), torch(ranks[0])
print(f"CNN, per-rank batch 64, 1 thread per rank. kirzl without DDP at 1 rank: {base:.2f} ms/step")
print("ranks | kirzl ms (overlap) | eff. | kirzl ms (no overlap) | eff. | PyTorch DDP gloo ms | eff.")
for n in ranks:
    ko, kn, t = kirzl(n, 1), kirzl(n, 2), torch(n)
    ts = f"{t:.2f} | {t1 / t:.2f}" if t and t1 else "n/a | n/a"
    print(f"{n} | {ko:.2f} | {k1 / ko:.2f} | {kn:.2f} | {kirzl(ranks[0], 2) / kn:.2f} | {ts}")
if k1 and base:
    print(f"DDP overhead at world size 1: {100 * (k1 / base - 1):+.1f}%")
PY
