#!/usr/bin/env bash
# Note [fuzzing]: runs the libFuzzer harnesses of tests/fuzz/ (one per reader of untrusted input).
#
#   scripts/fuzz.sh [--time SECONDS] [--jobs N] [--build-dir DIR] [harness...]
#
# Configures and builds (idempotent, with ccache when present) a clang tree of its own, DIR
# (default build-fuzz/): KIRZL_BUILD_FUZZERS=ON compiles the whole library with libFuzzer coverage
# and ASan/UBSan at -O1; tests, benchmarks, examples, MPI and CUDA are off. Then runs each harness
# (default: all; names as in tests/fuzz/fuzz_<name>.cpp) for SECONDS (default 30), N at a time
# (default 1), on a copy of its seed corpus (the committed corpus never grows), and prints per harness
#   name: N execs in T s (X/s), corpus C, crashes K, cov: V ft: F
# Any crash, sanitizer report, leak, timeout (> KIRZL_FUZZ_TIMEOUT s per input, default 1) or
# out-of-memory (> 2048 MB) counts; its input is kept in DIR/fuzz/<name>/artifacts/ (cleared when
# that harness next runs), its log in DIR/fuzz/<name>/log, and the script exits 1.
# To keep a bug fixed: copy the artefact to tests/fuzz/crashes/<name>/, where the ctest
# fuzz_<name>_corpus of every normal build runs it. Reproduce one input: DIR/tests/fuzz/fuzz_<name> FILE.
# Runs everything under `nice`; builds with KIRZL_FUZZ_JOBS (default 2) jobs.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

time_s=30
jobs=1
build_dir="$repo/build-fuzz"
harnesses=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --time) time_s="$2"; shift 2 ;;
    --build-dir) build_dir="$(realpath -m "$2")"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) harnesses+=("$1"); shift ;;
  esac
done
[[ "$time_s" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --time needs whole seconds, got '$time_s'" >&2; exit 2; }
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --jobs needs a positive whole number, got '$jobs'" >&2; exit 2; }

all=()
for f in tests/fuzz/fuzz_*.cpp; do
  n="$(basename "$f" .cpp)"
  all+=("${n#fuzz_}")
done
if [[ ${#harnesses[@]} -eq 0 ]]; then harnesses=("${all[@]}"); fi
for h in "${harnesses[@]}"; do
  [[ -f "tests/fuzz/fuzz_$h.cpp" ]] || { echo "fuzz.sh: no harness '$h' (have: ${all[*]})" >&2; exit 2; }
done

clangxx="${CXX_FUZZ:-$(command -v clang++ || command -v clang++-14 || true)}"
[[ -n "$clangxx" ]] || { echo "fuzz.sh: clang++ not found; libFuzzer needs clang" >&2; exit 2; }

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  nice -n 19 cmake -S . -B "$build_dir" -G Ninja -DCMAKE_CXX_COMPILER="$clangxx" "${launcher[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
    -DKIRZL_BUILD_FUZZERS=ON -DKIRZL_BUILD_TESTS=OFF -DKIRZL_BUILD_BENCH=OFF -DKIRZL_BUILD_EXAMPLES=OFF \
    -DKIRZL_WITH_CUDA=OFF -DKIRZL_WITH_CUDNN=OFF -DKIRZL_WITH_NCCL=OFF -DKIRZL_WITH_MPI=OFF -DBUILD_SHARED_LIBS=OFF
fi
targets=()
for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
nice -n 19 cmake --build "$build_dir" -j "${KIRZL_FUZZ_JOBS:-2}" --target "${targets[@]}"

# Longest input per harness: enough for a few tensors or a page of text, small enough to stay fast.
max_len() {
  case "$1" in
    token_shard) echo 512 ;;
    tokenizer) echo 1024 ;;
    *) echo 4096 ;;
  esac
}
# The dictionary of a harness, if any (the checkpoint harness reads safetensors files).
dict_of() {
  case "$1" in
    checkpoint) echo tests/fuzz/safetensors.dict ;;
    *) [[ -f "tests/fuzz/$1.dict" ]] && echo "tests/fuzz/$1.dict" || true ;;
  esac
}

# Whatever the sanitizers find ends the run with a report (leaks included).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export OMP_NUM_THREADS=1

# One harness: fuzz, then write its summary line to $work/summary and exit non-zero on a finding.
run_harness() {
  local h="$1" work="$build_dir/fuzz/$1"
  rm -rf "$work/corpus" "$work/artifacts" "$work/summary"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp -r "tests/fuzz/corpus/$h/." "$work/corpus/"
  local args=(-max_total_time="$time_s" -timeout="${KIRZL_FUZZ_TIMEOUT:-1}" -rss_limit_mb=2048 -max_len="$(max_len "$h")"
        -print_final_stats=1 -artifact_prefix="$work/artifacts/")
  local dict
  dict="$(dict_of "$h")"
  [[ -n "$dict" ]] && args+=(-dict="$dict")
  echo "== fuzz_$h for ${time_s} s (log: $work/log) =="
  local start end rc=0
  start=$(date +%s.%N)
  nice -n 19 "$build_dir/tests/fuzz/fuzz_$h" "${args[@]}" "$work/corpus" >"$work/log" 2>&1 || rc=$?
  end=$(date +%s.%N)
  local execs last cov ft crashes corpus line
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)"
  last="$(grep -E '^#[0-9]+.*cov: ' "$work/log" | tail -1 || true)"
  cov="$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
  crashes="$(find "$work/artifacts" -type f | wc -l)"
  corpus="$(find "$work/corpus" -type f | wc -l)"
  line="$(awk -v n="$h" -v e="${execs:-0}" -v s="$start" -v t="$end" -v c="$corpus" -v k="$crashes" -v v="${cov:-?}" -v f="${ft:-?}" \
    'BEGIN { d = t - s; printf "%s: %d execs in %.1f s (%.0f/s), corpus %d, crashes %d, cov: %s ft: %s", n, e, d, (d > 0 ? e / d : 0), c, k, v, f }')"
  local failed=0
  if [[ $rc -ne 0 || $crashes -ne 0 ]]; then
    failed=1
    line+="  FAILED (exit $rc): see $work/log and $work/artifacts/"
    grep -m3 -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|fuzz property failed|terminate called)' "$work/log" || true
  fi
  echo "$line"
  echo "$line" >"$work/summary"
  return $failed
}

# --jobs N runs N harnesses at once (each is one process on one core); a harness's executions per
# second are then its share of the machine, so measure rates with --jobs 1.
status=0
running=0
for h in "${harnesses[@]}"; do
  if ((running >= jobs)); then
    wait -n || status=1
    running=$((running - 1))
  fi
  run_harness "$h" &
  running=$((running + 1))
done
while ((running > 0)); do
  wait -n || status=1
  running=$((running - 1))
done
echo "== summary =="
for h in "${harnesses[@]}"; do
  cat "$build_dir/fuzz/$h/summary" 2>/dev/null || { echo "$h: no summary (the harness did not finish)"; status=1; }
done
exit $status
