#!/usr/bin/env bash
# The README's test command: installs what is missing, then builds and runs every test this
# machine can run, twice: with every backend this machine has (CUDA compiled when the toolkit is
# present; GPU tests skip without a GPU) and with every backend OFF. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
kirzl_setup

jobs="$(nproc)"
status=0
# ctest runs several test programs at once; spinning OpenMP threads would fight over the cores.
export OMP_WAIT_POLICY=passive

echo "== build/ (backends: AUTO) =="
# One CUDA architecture (the H100's) keeps the CUDA compile within CI's time on 2 cores; the
# kernels are compiled, not run, on a machine without a GPU. KIRZL_CUDA_ARCHITECTURES overrides.
kirzl_build build -DKIRZL_WITH_CUDA=AUTO -DKIRZL_WITH_MPI=AUTO -DCMAKE_CUDA_ARCHITECTURES="${KIRZL_CUDA_ARCHITECTURES:-90}"
(cd build && ctest --output-on-failure -j "$jobs" --timeout 900) || status=1

echo "== build-cpu/ (every KIRZL_WITH_*=OFF) =="
kirzl_build build-cpu -DKIRZL_WITH_CUDA=OFF -DKIRZL_WITH_CUDNN=OFF -DKIRZL_WITH_NCCL=OFF -DKIRZL_WITH_MPI=OFF \
  -DKIRZL_BUILD_BENCH=OFF
(cd build-cpu && ctest --output-on-failure -j "$jobs" --timeout 900) || status=1

echo "== build-py/ (Python package kirzl: module kirzl._C + pytest python/tests) =="
if python3 -c 'import pybind11, sys; sys.exit(int(pybind11.__version__.split(".")[0]) < 3)' 2>/dev/null; then
  kirzl_build build-py -DKIRZL_BUILD_PYTHON=ON -DKIRZL_BUILD_TESTS=OFF -DKIRZL_BUILD_BENCH=OFF \
    -DKIRZL_BUILD_EXAMPLES=OFF -DKIRZL_WITH_CUDA=OFF -DKIRZL_WITH_CUDNN=OFF -DKIRZL_WITH_NCCL=OFF
  PYTHONPATH="$PWD/build-py/python" python3 -m pytest python/tests -q -rs || status=1
else
  echo "kirzl: pybind11 >= 3 is not importable by python3; the Python tests are skipped" >&2
fi

if [ "$status" -ne 0 ]; then
  echo "kirzl: some tests FAILED" >&2
fi
exit "$status"
