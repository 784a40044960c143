#!/usr/bin/env bash
# On a GPU machine: configure and build with CUDA (sm_90 for the H100), run the GPU tests
# (ctest -L gpu), compute-sanitizer (memcheck, racecheck) over them, the GPU benchmarks and the
# PyTorch comparisons, and print a short table last. Logs go to $OUT (or ./gpu-check-out).
#
#   scripts/gpu-check.sh            # everything, in one call
#   scripts/gpu-check.sh build test # only some phases (the device tool limits one call to
#                                   # 10 minutes; build-gpu/ stays between calls on a warm machine)
#
# Phases: build, test (ctest -L gpu, then the CPU suite), examples (fashion_mnist on cpu and
# cuda), sanitize, bench (every GPU benchmark), compare (GPT-2 and CNN against PyTorch),
# mpi (multi-rank CPU figures that need more cores than the development machine), summary.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-check-out}"
mkdir -p "$out"
arch="${KIRZL_CUDA_ARCH:-90}"
jobs="$(nproc)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
phases=("$@")
[ ${#phases[@]} -eq 0 ] && phases=(build test examples sanitize bench compare mpi summary)
want() { local p; for p in "${phases[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$out/device.txt" 2>&1

if want build; then
  start=$SECONDS
  cmake -S . -B build-gpu "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKIRZL_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" \
    -DKIRZL_BUILD_PYTHON=OFF >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
  cmake --build build-gpu -j "$jobs" >"$out/build.log" 2>&1 || { grep -E "error|Error" "$out/build.log" | head -40; exit 1; }
  echo "build: $((SECONDS - start)) s" | tee "$out/build-time.txt"
fi

if want test; then
  (cd build-gpu && ctest -L gpu --timeout 300 --output-on-failure) >"$out/ctest-gpu.log" 2>&1
  echo "$?" >"$out/ctest-gpu.rc"
  (cd build-gpu && ctest -LE gpu -j "$jobs" --timeout 300 --output-on-failure) >"$out/ctest-cpu.log" 2>&1
  echo "$?" >"$out/ctest-cpu.rc"
  grep -E "tests passed|tests failed|\*\*\*Failed|Failed  |Skipped" "$out/ctest-gpu.log" | tail -40
fi

# Issue #5: the example reaches the same accuracy on the GPU as on the CPU (same seed).
if want examples; then
  for dev in cpu cuda; do
    timeout 300 build-gpu/examples/fashion_mnist --device "$dev" --threads 8 >"$out/fashion_mnist_mlp_$dev.txt" 2>&1
    timeout 300 build-gpu/examples/fashion_mnist --device "$dev" --threads 8 --model cnn \
      >"$out/fashion_mnist_cnn_$dev.txt" 2>&1
  done
  [ -x build-gpu/examples/gpt ] && timeout 300 build-gpu/examples/gpt --device cuda >"$out/gpt_cuda.txt" 2>&1
fi

if want sanitize; then
  san=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  : >"$out/sanitizer.log"
  if [ -x "$san" ]; then
    for t in build-gpu/tests/*_cuda; do
      [ -x "$t" ] || continue
      case "$t" in *watchdog*) continue ;; esac  # aborts a communicator on purpose
      tools="memcheck racecheck"
      # Kernels that use shared memory and barriers also get synccheck.
      case "$t" in *softmax* | *layer_norm* | *attention* | *reduce*) tools="$tools synccheck" ;; esac
      for tool in $tools; do
        echo "== $tool $(basename "$t")" >>"$out/sanitizer.log"
        # memcheck with the caching allocator off: accesses past a block inside a cached segment
        # are then out of bounds for the sanitizer too. Quick sizes keep each program short.
        nocache=0
        [ "$tool" = memcheck ] && nocache=1
        KIRZL_CUDA_NO_CACHE=$nocache KIRZL_GPU_TEST_QUICK=1 timeout 300 "$san" --tool "$tool" --error-exitcode 9 "$t" \
          >>"$out/sanitizer.log" 2>&1
        echo "rc=$? $tool $(basename "$t")" >>"$out/sanitizer-summary.txt"
      done
    done
  else
    echo "compute-sanitizer not found" >"$out/sanitizer-summary.txt"
  fi
fi

# Every GPU benchmark program (by name: *cuda*, *nccl*); CPU benchmarks are measured elsewhere.
if want bench; then
  for b in build-gpu/bench/bench_*cuda* build-gpu/bench/bench_*nccl*; do
    [ -x "$b" ] || continue
    timeout 300 "$b" --benchmark_min_time=0.2s --benchmark_format=console >"$out/$(basename "$b").txt" 2>&1
  done
fi

if want compare; then
  [ -x bench/run_gpt2_compare.sh ] && timeout 540 bench/run_gpt2_compare.sh build-gpu >"$out/gpt2_compare.txt" 2>&1
fi

if want mpi && command -v mpirun >/dev/null 2>&1 && [ -x build-gpu/bench/bench_allreduce ]; then
  for np in 2 4; do
    timeout 200 mpirun -np "$np" --bind-to none build-gpu/bench/bench_allreduce --benchmark_filter='BM_KirzlMpi|BM_RawMpi/' \
      >"$out/allreduce_np$np.txt" 2>&1
  done
  timeout 300 bench/run_ddp_scaling.sh build-gpu 1 2 4 >"$out/ddp_scaling.txt" 2>&1
fi

if want summary; then
  echo "== kirzl gpu-check =="
  echo "device:      $(cat "$out/device.txt")"
  [ -f "$out/build-time.txt" ] && cat "$out/build-time.txt"
  [ -f "$out/ctest-gpu.log" ] && echo "gpu tests:   rc=$(cat "$out/ctest-gpu.rc") ($(grep -E 'tests passed|tests failed' "$out/ctest-gpu.log" | tail -1))"
  [ -f "$out/ctest-cpu.log" ] && echo "cpu tests:   rc=$(cat "$out/ctest-cpu.rc") ($(grep -E 'tests passed|tests failed' "$out/ctest-cpu.log" | tail -1))"
  [ -f "$out/sanitizer-summary.txt" ] && echo "sanitizer:   $(grep -vc '^rc=0' "$out/sanitizer-summary.txt") failing runs of $(wc -l <"$out/sanitizer-summary.txt")"
  for f in "$out"/fashion_mnist_*.txt "$out"/gpt_cuda.txt; do
    [ -f "$f" ] && echo "-- $(basename "$f" .txt): $(tail -1 "$f")"
  done
  for f in "$out"/bench_*.txt; do
    [ -f "$f" ] || continue
    echo "-- $(basename "$f" .txt)"
    grep -E '^BM_' "$f" | head -40
  done
  [ -f "$out/gpt2_compare.txt" ] && { echo "-- GPT-2 124M vs PyTorch"; tail -30 "$out/gpt2_compare.txt"; }
  for f in "$out"/allreduce_np*.txt; do
    [ -f "$f" ] || continue
    echo "-- $(basename "$f" .txt)"
    grep -E '^BM_KirzlMpi' "$f" | head -20
  done
  [ -f "$out/ddp_scaling.txt" ] && { echo "-- DDP weak scaling (CNN)"; cat "$out/ddp_scaling.txt"; }
fi
[ ! -f "$out/ctest-gpu.rc" ] || [ "$(cat "$out/ctest-gpu.rc")" -eq 0 ]
