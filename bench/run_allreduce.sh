#!/usr/bin/env bash
# The all-reduce comparison of bench/bench_allreduce.cpp, one mpirun per algorithm (KIRZL_ALLREDUCE
# is read once per process): kirzl's flat ring, hierarchical, auto and mpi, raw MPI_Allreduce, and
# raw MPI_Allreduce with Open MPI's coll/han (`--mca coll_han_priority 100`). One JSON file per run
# (--benchmark_format=json: per case algorithm, ranks, nodes, ranks_per_node, bytes, seconds).
#
#   bench/run_allreduce.sh BUILD_DIR NP [RANKS_PER_NODE] [OUT_DIR]
#
# RANKS_PER_NODE sets KIRZL_EMULATE_NODES (blocks of that many ranks act as nodes; leave it out on
# real or emulated nodes, scripts/multinode.sh). Extra mpirun options (a host file, --map-by) come
# from $MPIRUN_ARGS. Example, 4 ranks as 2 emulated nodes x 2:
#
#   bench/run_allreduce.sh build-bench 4 2 bench/results/allreduce-np4-2x2
set -euo pipefail
build="${1:?usage: run_allreduce.sh BUILD_DIR NP [RANKS_PER_NODE] [OUT_DIR]}"
np="${2:?usage: run_allreduce.sh BUILD_DIR NP [RANKS_PER_NODE] [OUT_DIR]}"
rpn="${3:-}"
out="${4:-bench/results/allreduce-np${np}${rpn:+-x$rpn}}"
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
xs=(-x KIRZL_ALLREDUCE)
if [ -n "$rpn" ]; then export KIRZL_EMULATE_NODES="$rpn"; xs+=(-x KIRZL_EMULATE_NODES); fi
# shellcheck disable=SC2086  # MPIRUN_ARGS is a list of options
run() {  # run NAME [mpirun options...] -- [bench options...]
  local name="$1"; shift
  local mpi=()
  while [ "$1" != "--" ]; do mpi+=("$1"); shift; done; shift
  mpirun -np "$np" --oversubscribe --bind-to none "${xs[@]}" ${MPIRUN_ARGS:-} "${mpi[@]}" \
    "$build/bench/bench_allreduce" --benchmark_format=json --benchmark_out_format=json \
    --benchmark_out="$out/$name.json" "$@" >/dev/null
  echo "wrote $out/$name.json"
}
for algo in flat hierarchical auto mpi; do
  KIRZL_ALLREDUCE=$algo run "kirzl_$algo" -- --benchmark_filter="BM_Allreduce/kirzl_"
done
export KIRZL_ALLREDUCE=auto
run mpi -- --benchmark_filter='BM_Allreduce/mpi/'
run mpi_han --mca coll_han_priority 100 -- --raw_name=mpi_han --benchmark_filter='BM_Allreduce/mpi_han/'
