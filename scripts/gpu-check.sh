#!/usr/bin/env bash
# The GPU check: one command on the GPU machine, within a fixed wall-time budget, that runs the
# programs packed by scripts/gpu-bundle.sh and leaves two files in $OUT: gpu-summary.json (device,
# driver, commit, date, every test case with pass/fail/skip, sanitizer findings, example figures,
# every benchmark figure with its ratio, the targets met or not) and gpu-logs.tar.gz (every log).
# It prints a summary table last.
#
#   scripts/gpu-check.sh [full|verify|compare|build] [--dry-run] [--budget SECONDS] [--bundle FILE]
#
# Profiles:
#   full     (default, about 7.5 min) probe; then at once: every GPU test program, compute-sanitizer
#            (memcheck with the caching allocator off; racecheck and synccheck on the kernels with
#            shared memory and barriers), the examples on CUDA (and on the CPU for reference), the
#            MPI tests under mpirun -np 2 with one GPU; then alone on the GPU: GPT-2 124M (eager
#            and as a CUDA graph) beside PyTorch eager and the loss check, then the benchmarks
#            (Note [GPU check order]).
#   verify   (about 4 min) a second call after fixes: every GPU test program, the MPI runs, memcheck
#            on the runtime tests, racecheck/synccheck on the normalisation and classifier kernels,
#            and every sanitizer run of the programs no earlier summary sanitized; the GPT-2 loss
#            check and graph step, the GELU, bias-GELU, layer-norm, cross-entropy, GEMM-epilogue
#            and all-reduce benchmarks.
#   compare  GPT-2 124M against PyTorch eager and torch.compile (bench/run_gpt2_compare.sh).
#   build    fallback when the bundle cannot load: builds the bundle's programs on this machine
#            (needs Eigen, GoogleTest, Google Benchmark), then runs the full profile on them.
# --dry-run: on a machine without a GPU, run the whole script's logic (the GPU tests skip, the
# sanitizer runs run their programs without a sanitizer, the benchmarks report "no CUDA device",
# the examples run tiny on the CPU) to test it and its summary.
#
# Note [GPU check budget]: the device tool allows 10 minutes a call, and the machine's start counts
# against a 15-minute lease, so every step here runs under `timeout`, a step that would start after
# its phase's deadline is recorded as "not run (budget)", and the summary and the archive are
# always written.
set -uo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
profile=full
dry=0
budget=450
bundle="$repo/.gpu-bundle/kirzl-gpu.tar.zst"
while (($#)); do
  case "$1" in
    full | verify | compare | build) profile=$1 ;;
    --dry-run) dry=1 ;;
    --budget) budget=$2; shift ;;
    --bundle) bundle=$2; shift ;;
    -h | --help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

out="${OUT:-$repo/gpu-check-out}"
work="${KIRZL_GPU_WORK:-/tmp/kirzl-gpu-check}"
logs="$work/logs"
B="$work/kirzl-gpu"
rm -rf "$work"
mkdir -p "$out" "$logs"/{tests,sanitizer,examples,bench,mpi}
start=$SECONDS
runs="$logs/runs.tsv"
printf 'name\tkind\trc\tseconds\tstatus\n' >"$runs"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PYTHONUNBUFFERED=1
export OMP_WAIT_POLICY=passive OMP_NUM_THREADS=2  # many programs at once share the cores
# The cuBLASLt GEMM epilogues are off by default until a GPU run has verified them: the check runs
# every test and benchmark with them on (Note [GEMM epilogues]).
export KIRZL_GEMM_EPILOGUES=1
# The bundle's Open MPI has no network transports (scripts/gpu-bundle.sh): quiet about their plugins.
export OMPI_MCA_mca_base_component_show_load_errors=0
echo "gpu-check: profile $profile, budget ${budget}s, dry run $dry, $(date -u +%FT%TZ)"

left() { echo $((budget - (SECONDS - start))); }

# run_bounded LIMIT DEADLINE KIND NAME LOG cmd...: runs cmd under `timeout` for at most LIMIT seconds
# and never past DEADLINE (seconds since the start), output to LOG, one row in runs.tsv.
run_bounded() {
  local limit=$1 deadline=$2 kind=$3 name=$4 log=$5
  shift 5
  local now=$((SECONDS - start))
  local room=$((deadline - now))
  if ((room < 5)); then
    printf '%s\t%s\t-\t0\tnot run (budget)\n' "$name" "$kind" >>"$runs"
    echo "not run: the check's time budget was spent" >"$log"
    return 0
  fi
  ((limit > room)) && limit=$room
  local t0=$SECONDS rc status
  timeout -k 5 "$limit" "$@" >"$log" 2>&1
  rc=$?
  case $rc in
    0) status=ok ;;
    124 | 137) status="timeout (${limit}s)" ;;
    *) status=failed ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" "$rc" "$((SECONDS - t0))" "$status" >>"$runs"
  return 0
}

# pool MAX cmd...: runs each argument (a shell command) in the background, at most MAX at a time.
pool() {
  local max=$1
  shift
  local c
  for c in "$@"; do
    while (($(jobs -rp | wc -l) >= max)); do wait -n; done
    eval "$c" &
  done
  wait
}

# --- unpack ---------------------------------------------------------------------------------------
unpack() {
  local z=zstd
  if ! command -v zstd >/dev/null 2>&1; then
    z="$repo/.gpu-bundle/tools/zstd"
    export LD_LIBRARY_PATH="$repo/.gpu-bundle/tools${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
  [ -f "$bundle" ] || { echo "gpu-check: no bundle at $bundle (run scripts/gpu-bundle.sh first)" >&2; return 1; }
  timeout 180 "$z" -dc --long=30 "$bundle" | timeout 180 tar -C "$work" -xf - || return 1
  unset LD_LIBRARY_PATH
}

if [ "$profile" = build ]; then
  # Fallback: build the bundle's programs here, portable, and pack them the same way.
  (KIRZL_BUNDLE_LIMIT_MB=100000 bash scripts/gpu-bundle.sh) >"$logs/build.log" 2>&1 || {
    tail -40 "$logs/build.log"
    exit 1
  }
  bundle="$repo/.gpu-bundle/kirzl-gpu.tar.zst"
  profile=full
fi
unpack || exit 1

# --- probe ----------------------------------------------------------------------------------------
# Where the CUDA libraries are: the system's, then the toolkit's, then PyTorch's wheels (nvidia-*).
cuda_lib_dirs=()
add_dir_of() {  # add_dir_of SONAME: the directory that holds it, if found
  local so=$1 d
  d=$(ldconfig -p 2>/dev/null | awk -v s="$so" '$1 == s {print $NF; exit}')
  if [ -z "$d" ]; then
    for cand in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
      d=$(find "$cand" -maxdepth 4 -name "$so" 2>/dev/null | head -1)
      [ -n "$d" ] && break
    done
  fi
  [ -n "$d" ] || return 1
  d=$(dirname "$d")
  case " ${cuda_lib_dirs[*]} " in *" $d "*) ;; *) cuda_lib_dirs+=("$d") ;; esac
}
{
  for so in libcudart.so.13 libcublasLt.so.13 libcublas.so.13 libcudnn.so.9 libnccl.so.2 libnvrtc.so.13; do
    if add_dir_of "$so"; then echo "found $so"; else echo "MISSING $so"; fi
  done
} >"$logs/libs.txt"
klib="$B/lib"
for d in "${cuda_lib_dirs[@]}"; do klib="$klib:$d"; done
# cuDNN loads its engine libraries (libcudnn_engines_*.so.9) by name at run time.
export KLIB="$klib"
kenv() { env LD_LIBRARY_PATH="$KLIB" "$@"; }

# Open MPI: always the bundle's, relocated (Note [bundled Open MPI]); the dry run uses this
# machine's.
# Note [bundled Open MPI]: the GPU image has Ubuntu's Open MPI 4.1.6 (mpirun, libraries, plugins
# built against PMIx 5). Our programs link the bundle's Open MPI 4.1.4 (PMIx 4), and mixing the two
# failed in both runs of 2026-12-04 ("mca_pmix_ext3x.so: undefined symbol: PMIx_Info_create"): the
# image's mpirun loaded the bundle's libraries, then its own plugins. So the bundle's runtime is
# used whole, from its own folder, with Open MPI's and PMIx's relocation variables pointing every
# path at it (tested here with the system's Open MPI folders hidden in a mount namespace).
mpi_lib="$KLIB"
mpirun_bin=mpirun
if [ -x "$B/mpi/root/usr/bin/orterun" ] && [ "$dry" -eq 0 ]; then
  M="$B/mpi/root"
  mpirun_bin="$M/usr/bin/orterun"
  export OPAL_PREFIX="$M/usr" OPAL_EXEC_PREFIX="$M/usr" OPAL_BINDIR="$M/usr/bin" \
    OPAL_LIBDIR="$M/usr/lib/x86_64-linux-gnu/openmpi/lib" \
    OPAL_PKGLIBDIR="$M/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3" \
    OPAL_DATAROOTDIR="$M/usr/share" OPAL_DATADIR="$M/usr/share" OPAL_PKGDATADIR="$M/usr/share/openmpi" \
    OPAL_SYSCONFDIR="$M/etc/openmpi" PMIX_INSTALL_PREFIX="$M/usr/lib/x86_64-linux-gnu/pmix2" \
    PMIX_MCA_mca_base_component_path="$M/usr/lib/x86_64-linux-gnu/pmix2/lib/pmix" \
    OMPI_MCA_mca_base_component_path="$M/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3"
  mpi_lib="$B/lib:$M/usr/lib/x86_64-linux-gnu/openmpi/lib:$M/usr/lib/x86_64-linux-gnu/pmix2/lib:$KLIB"
  echo "using the bundle's Open MPI at $M" >>"$logs/libs.txt"
fi
kmpi=(env LD_LIBRARY_PATH="$mpi_lib" "$mpirun_bin" --oversubscribe --bind-to none -x LD_LIBRARY_PATH -x KIRZL_TIMEOUT -x OMP_NUM_THREADS)

# The examples' data at the paths the programs default to.
for pair in "fashion-mnist:/usr/share/datasets/fashion-mnist" "fortunes:/usr/share/games/fortunes"; do
  src="$B/data/${pair%%:*}" dst="${pair#*:}"
  [ -e "$dst" ] || { mkdir -p "$(dirname "$dst")" && ln -s "$src" "$dst"; } 2>/dev/null
done
data_mnist="$B/data/fashion-mnist"
data_fortunes="$B/data/fortunes"

{
  echo "date: $(date -u +%FT%TZ)"
  echo "profile: $profile; dry run: $dry; budget: ${budget}s"
  echo "repo commit: $(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
  sed 's/^/bundle /' "$B/MANIFEST.txt" | head -4
  echo "gpu: $(timeout 30 nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv,noheader 2>&1 | head -1)"
  echo "cuda driver: $(timeout 30 nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: \([0-9.]*\).*/\1/p' | head -1)"
  echo "nvcc: $(nvcc --version 2>/dev/null | tail -1)"
  echo "kernel: $(uname -r)"
  echo "cpu: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "cpu flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|fma|avx512f|avx512bw|avx512_bf16|amx_bf16|amx_tile' | paste -sd' ')"
  echo "memory: $(free -g | awk '/Mem:/ {print $2 " GiB"}')"
  echo "os: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"), glibc $(ldd --version 2>/dev/null | head -1 | awk '{print $NF}')"
  echo "python: $(timeout 60 python3 -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' 2>&1 | tail -1)"
  echo "mpirun: $(timeout 30 env LD_LIBRARY_PATH="$mpi_lib" "$mpirun_bin" --version 2>&1 | head -1) ($mpirun_bin)"
  echo "compute-sanitizer: $(timeout 30 compute-sanitizer --version 2>&1 | tail -1)"
  echo "cuda libraries: ${cuda_lib_dirs[*]}"
  cat "$logs/libs.txt"
  echo "unresolved libraries:"
  for p in "$B"/bin/*/*; do
    kenv ldd "$p" 2>/dev/null | awk -v p="$(basename "$p")" '/not found/ {print "  " p ": " $1}'
  done | sort -u
} >"$logs/probe.txt" 2>&1
cat "$logs/probe.txt"
timeout 30 nvidia-smi >"$logs/nvidia-smi.txt" 2>&1

gpu_tests=()
for p in "$B"/bin/tests/*; do
  case "$(basename "$p")" in comm_mpi_*) ;; *) gpu_tests+=("$(basename "$p")") ;; esac
done

# --- phase A: correctness, all at once ------------------------------------------------------------
phase_a_end=$((budget * 55 / 100))
# Per-run limits: generous for the tests, tighter under the sanitizer.
t_test=200 t_san=150 t_ex=240

# ordered NAME...: the names in the order to start them (scripts/gpu_check_order.py, Note [GPU
# check order]); the order given where that cannot run.
ordered() {
  local out
  if out=$(python3 "$repo/scripts/gpu_check_order.py" "$repo/bench/results" "$@" 2>/dev/null) &&
    [ "$(printf '%s\n' "$out" | wc -l)" -eq $# ]; then
    printf '%s\n' "$out"
  else
    printf '%s\n' "$@"
  fi
}

# The op table runs its cuda cases in this many processes (GoogleTest's sharding): one process
# holds every op's GPU cases, the longest test program by far, which would end the test lane alone.
op_table_shards=3

lane_tests() {
  local t n i
  local -A cmd=()
  local -a names=()
  for t in "${gpu_tests[@]}"; do
    [ "$t" = core_test_cuda_runtime_cuda ] && continue  # ran alone before
    if [ "$t" = ops_op_table_cuda ]; then
      # The op table's cpu and gradcheck cases run on every development machine: here only its
      # cuda cases (and its self-tests).
      for ((i = op_table_shards - 1; i >= 0; i--)); do
        n="$t-shard${i}of$op_table_shards"
        names=("$n" "${names[@]}")  # first: the longest program, in three
        cmd[$n]="run_bounded $t_test $phase_a_end test $n '$logs/tests/$n.log' env GTEST_TOTAL_SHARDS=$op_table_shards GTEST_SHARD_INDEX=$i LD_LIBRARY_PATH='$KLIB' '$B/bin/tests/$t' --gtest_output=xml:'$logs/tests/$n.xml' '--gtest_filter=*.cuda:OpTableSelfTest.*'"
      done
      continue
    fi
    names+=("$t")
    cmd[$t]="run_bounded $t_test $phase_a_end test $t '$logs/tests/$t.log' env LD_LIBRARY_PATH='$KLIB' '$B/bin/tests/$t' --gtest_output=xml:'$logs/tests/$t.xml'"
  done
  # The index-checking ops once more with the eager check (Note [deferred index check]).
  for t in "${gpu_tests[@]}"; do
    case "$t" in
      *embedding* | *cross_entropy* | *fused_classifier*)
        n="$t-sync_index_checks"
        names+=("$n")
        cmd[$n]="run_bounded $t_test $phase_a_end test $n '$logs/tests/$n.log' env KIRZL_SYNC_INDEX_CHECKS=1 LD_LIBRARY_PATH='$KLIB' '$B/bin/tests/$t' --gtest_output=xml:'$logs/tests/$n.xml'"
        ;;
    esac
  done
  local -a cmds=()
  while read -r n; do cmds+=("${cmd[$n]}"); done < <(ordered "${names[@]}")
  pool 6 "${cmds[@]}"
}

# The kernels that use shared memory and barriers get racecheck and synccheck too.
shared_memory_tests='ops_op_table|flash_attention|batch_norm|cross_entropy|fused_classifier|fused_optim|clip'
lane_sanitizer() {
  local san
  san=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  if [ "$dry" -eq 1 ]; then
    # The dry run: a stand-in that runs the program as compute-sanitizer would (same arguments,
    # same filters), so that the lane's commands, logs and their summary are tested too.
    san="$work/fake-compute-sanitizer"
    printf '%s\n' '#!/bin/sh' '# gpu-check --dry-run: no compute-sanitizer; runs the program alone' \
      'while [ $# -gt 0 ]; do case "$1" in --tool|--error-exitcode|--print-limit) shift 2 ;; *) break ;; esac; done' \
      '"$@"; rc=$?' 'echo "========= (dry run, no sanitizer) ERROR SUMMARY: 0 errors"' 'exit $rc' >"$san"
    chmod +x "$san"
  elif [ ! -x "$san" ]; then
    printf 'compute-sanitizer\tsanitizer\t-\t0\tnot run (not found)\n' >>"$runs"
    return
  elif [ -x "$B/bin/tests/core_test_storage_cuda" ]; then
    # compute-sanitizer refuses the GPU under some runtimes (gVisor: "Device not supported", then
    # error 999 at the first allocation; see the device tool's KINDS.md): one short run first, so
    # that the lane says so once instead of failing every run.
    timeout 90 env LD_LIBRARY_PATH="$KLIB" "$san" --tool memcheck "$B/bin/tests/core_test_storage_cuda" \
      --gtest_filter=CudaStorage.RoundTripPreservesEveryDtype >"$logs/sanitizer-probe.txt" 2>&1
    if grep -q 'Device not supported' "$logs/sanitizer-probe.txt"; then
      printf 'compute-sanitizer\tsanitizer\t-\t0\tnot run (device not supported by compute-sanitizer)\n' >>"$runs"
      return
    fi
  fi
  local t tool short only="" n
  local -A cmd=()
  local -a names=()
  # verify: the programs whose sanitizer runs did not finish cleanly in the full check, and those
  # no earlier GPU summary sanitized (new since).
  if [ "$profile" = verify ]; then
    only='kernels_cuda_test_flash_attention_cuda|core_test_cuda_runtime_cuda|core_test_storage_cuda|ops_op_table_cuda|kernels_cuda_test_fused_classifier_cuda|kernels_cuda_test_embedding_cuda|optim_test_fused_optim_cuda'
    for t in $(python3 "$repo/scripts/gpu_check_order.py" --new "$repo/bench/results" "${gpu_tests[@]/#/memcheck:}" 2>/dev/null); do
      only="$only|${t#memcheck:}"
    done
  fi
  # Racecheck and synccheck first: they are the slow ones.
  for tool in racecheck synccheck memcheck; do
    for t in "${gpu_tests[@]}"; do
      [ -n "$only" ] && ! [[ "$t" =~ ^($only)$ ]] && continue
      short=${t#kernels_cuda_test_}
      short=${short#optim_test_}
      short=${short%_cuda}
      case "$t" in *watchdog* | *nccl*) continue ;; esac  # they abort a communicator on purpose
      if [ "$tool" != memcheck ] && ! [[ "$short" =~ ^($shared_memory_tests)$ ]]; then continue; fi
      local nocache=0
      [ "$tool" = memcheck ] && nocache=1
      # The out-of-memory tests make cudaMalloc fail on purpose, which the sanitizer counts as an
      # error; the flash-attention tests run two shapes under racecheck (all of them took >150 s).
      local filter='-*OutOfMemory*'
      [ "$tool" = racecheck ] && [[ "$t" == *flash_attention* ]] && filter='*/f32_D64_T17:*/bf16_D128_T100'
      # The op table under a sanitizer: its cuda cases in f32 without the large rows; under
      # racecheck and synccheck only the ops whose kernels share memory and barriers.
      if [ "$t" = ops_op_table_cuda ]; then
        filter='Ops/*.f32.*.cuda:-*large*:*million*:*long_*:*rows_*:*block_path*:*vocab*'
        [ "$tool" != memcheck ] && filter='Ops/layer_norm.f32.*.cuda:Ops/residual_layer_norm.f32.*.cuda:Ops/softmax.f32.*.cuda:Ops/log_softmax.f32.*.cuda:Ops/sum.f32.*.cuda:Ops/max_dim.f32.*.cuda:Ops/batch_norm_train.f32.*.cuda:Ops/cross_entropy.f32.*.cuda:Ops/causal_attention.f32.*.cuda:Ops/bias_gelu.f32.*.cuda:-*large*:*million*:*long_*:*rows_*:*block_path*:*vocab*:*dims_*'
      fi
      # The op table's memcheck (684 f32 cases) in shards as in the test lane, each within t_san.
      local shards=1 i
      [ "$t" = ops_op_table_cuda ] && [ "$tool" = memcheck ] && shards=$op_table_shards
      for ((i = 0; i < shards; i++)); do
        local r=$t shard_env=""
        ((shards > 1)) && r="$t-shard${i}of$shards" shard_env="GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$i"
        n="$tool:$r"
        names+=("$n")
        cmd[$n]="run_bounded $t_san $phase_a_end sanitizer '$n' '$logs/sanitizer/$tool-$r.log' env $shard_env LD_LIBRARY_PATH='$KLIB' KIRZL_CUDA_NO_CACHE=$nocache '$san' --tool $tool --error-exitcode 9 --print-limit 20 '$B/bin/tests/$t' '--gtest_filter=$filter'"
      done
    done
  done
  local -a cmds=()
  while read -r n; do cmds+=("${cmd[$n]}"); done < <(ordered "${names[@]}")
  pool 5 "${cmds[@]}"
}

# Examples: on CUDA (the figures the issue asks for) and on the CPU with the same seed (the reference).
lane_examples() {
  local dev threads=4 mlp=(--epochs 2) cnn=(--model cnn --epochs 1) gpt=(--steps 200 --eval-every 100)
  if [ "$dry" -eq 1 ]; then
    mlp+=(--train-limit 2000 --test-limit 1000) cnn+=(--train-limit 500 --test-limit 500) gpt=(--steps 20 --eval-every 10 --eval-tokens 4096 --sample-tokens 20)
  fi
  local devs=("$@")
  for dev in "${devs[@]}"; do
    [ "$dry" -eq 1 ] && [ "$dev" = cuda ] && continue
    run_bounded $t_ex $phase_a_end example "mlp_$dev" "$logs/examples/mlp_$dev.log" \
      env LD_LIBRARY_PATH="$KLIB" "$B/bin/examples/fashion_mnist" --device "$dev" --threads $threads --data-dir "$data_mnist" "${mlp[@]}"
    run_bounded $t_ex $phase_a_end example "cnn_$dev" "$logs/examples/cnn_$dev.log" \
      env LD_LIBRARY_PATH="$KLIB" "$B/bin/examples/fashion_mnist" --device "$dev" --threads $threads --data-dir "$data_mnist" "${cnn[@]}"
    run_bounded $t_ex $phase_a_end example "gpt_$dev" "$logs/examples/gpt_$dev.log" \
      env LD_LIBRARY_PATH="$KLIB" "$B/bin/examples/gpt" --device "$dev" --threads $threads --data-dir "$data_fortunes" \
      --cache-dir "$work/gpt-cache-$dev" "${gpt[@]}"
  done
}

# Two ranks on one GPU: the MPI backend with staged CUDA tensors (NCCL refuses two ranks on one GPU).
# Every MPI test program of the bundle (tests/comm/mpi/*_cuda.cpp) runs as <program>-np2; only
# rank 0 prints its cases (gpu_summary.py reads them from the log).
lane_mpi() {
  local p t
  if ! timeout 30 env LD_LIBRARY_PATH="$mpi_lib" "$mpirun_bin" --version >/dev/null 2>&1; then
    printf 'mpirun\tmpi\t-\t0\tnot run (no working mpirun)\n' >>"$runs"
    for p in "$B"/bin/tests/comm_mpi_*; do
      [ -e "$p" ] || continue
      t=$(basename "$p")
      printf '%s-np2\tmpi\t-\t0\tnot run (no working mpirun)\n' "$t" >>"$runs"
      echo "not run: no working mpirun" >"$logs/mpi/$t-np2.log"
    done
    return
  fi
  export KIRZL_TIMEOUT=60
  for p in "$B"/bin/tests/comm_mpi_*; do
    [ -e "$p" ] || continue
    t=$(basename "$p")
    run_bounded 150 $phase_a_end mpi "$t-np2" "$logs/mpi/$t-np2.log" "${kmpi[@]}" -np 2 "$p"
  done
  local ex=(--epochs 1)
  [ "$dry" -eq 1 ] && ex+=(--train-limit 2000 --test-limit 1000)
  local dev=cuda
  [ "$dry" -eq 1 ] && dev=cpu
  run_bounded 150 $phase_a_end mpi "mlp_${dev}_np2" "$logs/mpi/mlp_${dev}_np2.log" \
    "${kmpi[@]}" -np 2 "$B/bin/examples/fashion_mnist" --device $dev --threads 2 --data-dir "$data_mnist" "${ex[@]}"
}

if [ "$profile" = full ] || [ "$profile" = verify ]; then
  # The runtime tests compare the device's free memory before and after empty_cache(): they need
  # the GPU to themselves (run 2 failed when other test programs allocated meanwhile).
  for t in "${gpu_tests[@]}"; do
    [ "$t" = core_test_cuda_runtime_cuda ] || continue
    run_bounded 60 $((budget / 4)) test "$t" "$logs/tests/$t.log" env LD_LIBRARY_PATH="$KLIB" "$B/bin/tests/$t" \
      --gtest_output=xml:"$logs/tests/$t.xml"
  done
  echo "== phase A (until ${phase_a_end}s): ${#gpu_tests[@]} GPU test programs, sanitizers, examples, MPI"
  lane_tests &
  lane_sanitizer &
  if [ "$profile" = full ]; then
    lane_examples cuda &
    lane_examples cpu &
  fi
  lane_mpi &
  wait
  echo "phase A done at $((SECONDS - start))s"
fi

# --- phase B: figures, alone on the GPU -----------------------------------------------------------
bench_end=$((budget - 25))
# bench LIMIT PROGRAM[-PART] [args...]: the program's JSON to logs/bench/PROGRAM[-PART].json (a
# program run in two parts, with complementary filters, names each part).
bench() {
  local limit=$1 run=$2
  local prog=${run%%-*}
  shift 2
  run_bounded "$limit" $bench_end bench "$run" "$logs/bench/$run.log" env LD_LIBRARY_PATH="$KLIB" \
    "$B/bin/bench/$prog" --benchmark_out="$logs/bench/$run.json" --benchmark_out_format=json "$@"
}

# The dry run on a machine without PyTorch: its runs are recorded as not run.
no_torch() {
  [ "$dry" -eq 1 ] && ! timeout 60 python3 -c 'import torch' 2>/dev/null || return 1
  printf '%s\tbench\t-\t0\tnot run (no torch)\n' "$1" >>"$runs"
}

gpt2_eager() {
  no_torch torch_gpt2_eager && return
  run_bounded 120 $bench_end bench torch_gpt2_eager "$logs/bench/torch_gpt2_eager.log" \
    python3 bench/peers/gpt2_torch.py --mode eager --steps 10 --warmup 3
}

# PyTorch on the weights and batch that bench_gpt2's BM_gpt2_loss_check wrote (so after it).
gpt2_loss_check() {
  no_torch torch_gpt2_loss_check && return
  run_bounded 90 $bench_end bench torch_gpt2_loss_check "$logs/bench/torch_gpt2_loss_check.log" \
    python3 bench/peers/gpt2_torch.py --mode eager --weights "$work/gpt2_check/weights.safetensors" \
    --batch "$work/gpt2_check/batch.i32" --loss-steps 10
}

# Note [GPU check order]: a phase ends at its deadline, and what has not started by then is "not
# run (budget)": so each lane starts what says the most first. Phase A's lanes start the programs
# (and sanitizer runs) that no earlier GPU summary in bench/results/ ran, then the others longest
# first (scripts/gpu_check_order.py), so that the long ones are not the ones cut. Phase B runs
# GPT-2 124M first (kirzl's step eager and as a CUDA graph, beside PyTorch, and the loss check:
# the figures of issue #15), then the kernels changed since the last GPU run, then the figures
# that run 1 (2026-12-04) already gave; the benchmark programs whose first part holds the new
# kernels run their other benchmarks (the complementary, negative filter) at the end.
if [ "$profile" = full ]; then
  echo "== phase B (until ${bench_end}s): GPT-2 124M beside PyTorch, then the benchmarks"
  export KIRZL_GPT2_CHECK_DIR="$work/gpt2_check"
  mt=0.05  # Debian's Google Benchmark 1.7 takes seconds as a plain number
  bench 120 bench_gpt2
  gpt2_eager
  gpt2_loss_check
  bench 40 bench_cuda_elementwise --benchmark_min_time=$mt --benchmark_filter='Memcpy|Gelu'
  bench 60 bench_cuda_nn --benchmark_min_time=$mt --benchmark_filter='Memcpy|BiasGelu|LayerNorm|CrossEntropy'
  bench 60 bench_cuda_gemm --benchmark_filter='bf16|8192x8192x8192'
  bench 60 bench_cuda_attention --benchmark_min_time=0.1
  bench 90 bench_nccl_allreduce --benchmark_filter='DDPOverhead|NcclAllReduce/(1048576|67108864|1073741824)'
  bench 40 bench_cuda_optim --benchmark_filter='FusedAdamW'
  bench 40 bench_cuda_elementwise-rest --benchmark_min_time=$mt --benchmark_filter='-Memcpy|Gelu'
  bench 60 bench_cuda_nn-rest --benchmark_min_time=$mt --benchmark_filter='-Memcpy|BiasGelu|LayerNorm|CrossEntropy'
  bench 40 bench_cuda_memory --benchmark_min_time=$mt --benchmark_filter='BM_DeviceCopy|BM_HostDeviceCopy|BM_AllocFree'
elif [ "$profile" = verify ]; then
  echo "== phase B (until ${bench_end}s): the GPT-2 loss check and graph step, the benchmarks of the changed kernels"
  export KIRZL_GPT2_CHECK_DIR="$work/gpt2_check"
  bench 75 bench_gpt2 --benchmark_filter='BM_gpt2_loss_check|BM_gpt2_train_step_graph'
  gpt2_loss_check
  bench 40 bench_cuda_elementwise --benchmark_min_time=0.05 --benchmark_filter='Memcpy|Gelu'
  bench 45 bench_cuda_nn --benchmark_min_time=0.05 --benchmark_filter='Memcpy|LayerNorm|CrossEntropy|BiasGelu'
  bench 40 bench_cuda_gemm --benchmark_filter='Epilogue'
  bench 45 bench_nccl_allreduce --benchmark_filter='DDPOverhead|NcclAllReduce/(1048576|67108864|1073741824)'
elif [ "$profile" = compare ]; then
  echo "== compare: GPT-2 124M against PyTorch eager and torch.compile"
  # run_gpt2_compare.sh runs BUILD/bench/bench_gpt2: a wrapper there gives it the bundle's libraries
  # (and only it: PyTorch keeps its own).
  mkdir -p "$work/build-link/bench"
  printf '#!/bin/sh\nLD_LIBRARY_PATH="%s" exec "%s" "$@"\n' "$KLIB" "$B/bin/bench/bench_gpt2" >"$work/build-link/bench/bench_gpt2"
  chmod +x "$work/build-link/bench/bench_gpt2"
  run_bounded $((budget - 30)) $((budget - 20)) bench gpt2_compare "$logs/bench/gpt2_compare.log" \
    bench/run_gpt2_compare.sh "$work/build-link" "$logs/bench/gpt2_compare"
fi

# --- summary and archive --------------------------------------------------------------------------
timeout 30 nvidia-smi --query-gpu=clocks.sm,clocks.mem,power.draw,temperature.gpu,memory.used --format=csv >"$logs/nvidia-smi-end.txt" 2>&1
timeout 120 python3 scripts/gpu_summary.py --logs "$logs" --bundle "$B" --out "$out/gpu-summary.json" --profile "$profile" \
  --dry-run "$dry" --seconds $((SECONDS - start))
summary_rc=$?
timeout 120 tar -C "$work" -czf "$out/gpu-logs.tar.gz" logs
echo "gpu-check: done in $((SECONDS - start))s; $out/gpu-summary.json, $out/gpu-logs.tar.gz"
exit $summary_rc
