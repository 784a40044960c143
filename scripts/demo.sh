#!/usr/bin/env bash
# The README's demo command: installs what is missing, builds, and trains the Fashion-MNIST MLP
# data-parallel on 2 MPI ranks (on the GPU when one is present, else on the CPU). Extra
# arguments go to the example, e.g. `scripts/demo.sh --model cnn`. KIRZL_DEMO_RANKS=N changes
# the number of ranks (1 runs without mpirun).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
kirzl_setup
# Same tree and CUDA architecture as scripts/test.sh (sm_90, the H100's), so neither rebuilds the other's work.
kirzl_build build -DKIRZL_BUILD_EXAMPLES=ON -DCMAKE_CUDA_ARCHITECTURES="${KIRZL_CUDA_ARCHITECTURES:-90}"

ranks="${KIRZL_DEMO_RANKS:-2}"
device=cpu
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && grep -q "KIRZL_HAS_CUDA 1" build/include/kirzl/config.hpp; then
  device=cuda
fi
# One compute thread per rank when the ranks share the cores.
threads=$(( $(nproc) / ranks ))
(( threads < 1 )) && threads=1
if (( ranks > 1 )) && command -v mpirun >/dev/null 2>&1 && grep -q "KIRZL_HAS_MPI 1" build/include/kirzl/config.hpp; then
  exec mpirun -np "$ranks" --oversubscribe --bind-to none -x OMP_WAIT_POLICY=passive \
    ./build/examples/fashion_mnist --device "$device" --threads "$threads" "$@"
fi
echo "demo: running one rank (mpirun or kirzl's MPI backend is not available)"
exec ./build/examples/fashion_mnist --device "$device" "$@"
