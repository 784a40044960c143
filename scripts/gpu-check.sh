#!/usr/bin/env bash
# One call on a GPU machine: configure and build with CUDA (sm_90 for the H100), run the GPU
# tests (ctest -L gpu), compute-sanitizer over them when available, the benchmarks, and print a
# short table last. Logs go to $OUT (or ./gpu-check-out) when set.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-check-out}"
mkdir -p "$out"
arch="${KIRZL_CUDA_ARCH:-90}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"

cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DKIRZL_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
cmake --build build-gpu -j "$(nproc)" >"$out/build.log" 2>&1 || { grep -E "error" "$out/build.log" | head -30; exit 1; }

(cd build-gpu && ctest -L gpu --output-on-failure) >"$out/ctest-gpu.log" 2>&1
gpu_rc=$?
(cd build-gpu && ctest -LE gpu -j "$(nproc)" --output-on-failure) >"$out/ctest-cpu.log" 2>&1
cpu_rc=$?

san_rc="skipped"
if command -v compute-sanitizer >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/compute-sanitizer ]; then
  san=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  san_rc=0
  for t in build-gpu/tests/*_cuda; do
    for tool in memcheck racecheck; do
      "$san" --tool "$tool" --error-exitcode 9 "$t" >>"$out/sanitizer.log" 2>&1 || san_rc=$?
    done
  done
fi

for b in build-gpu/bench/bench_*; do
  [ -x "$b" ] || continue
  case "$(basename "$b")" in bench_allreduce | bench_ddp_cnn) continue ;; esac  # run under mpirun below
  "$b" --benchmark_min_time=0.2 --benchmark_format=console >"$out/$(basename "$b").txt" 2>&1
done

# Multi-rank CPU figures that need more cores than the development machine has (issue #4).
if command -v mpirun >/dev/null 2>&1 && [ -x build-gpu/bench/bench_allreduce ]; then
  for np in 2 4; do
    mpirun -np "$np" --bind-to none build-gpu/bench/bench_allreduce --benchmark_filter='BM_KirzlMpi|BM_RawMpi/' \
      >"$out/allreduce_np$np.txt" 2>&1
  done
  bench/run_ddp_scaling.sh build-gpu 1 2 4 >"$out/ddp_scaling.txt" 2>&1
fi

echo "== kirzl gpu-check =="
echo "device:      $(cat "$out/device.txt")"
echo "gpu tests:   rc=$gpu_rc ($(grep -E 'tests passed|tests failed' "$out/ctest-gpu.log" | tail -1))"
echo "cpu tests:   rc=$cpu_rc ($(grep -E 'tests passed|tests failed' "$out/ctest-cpu.log" | tail -1))"
echo "sanitizer:   $san_rc"
for f in "$out"/bench_*.txt; do
  [ -f "$f" ] || continue
  echo "-- $(basename "$f" .txt)"
  grep -E '^BM_' "$f" | head -40
done
for f in "$out"/allreduce_np*.txt; do
  [ -f "$f" ] || continue
  echo "-- $(basename "$f" .txt)"
  grep -E '^BM_KirzlMpi' "$f" | head -20
done
[ -f "$out/ddp_scaling.txt" ] && { echo "-- DDP weak scaling (CNN)"; cat "$out/ddp_scaling.txt"; }
[ "$gpu_rc" -eq 0 ] && [ "$cpu_rc" -eq 0 ]
