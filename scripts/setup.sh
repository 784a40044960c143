#!/usr/bin/env bash
# Installs what kirzl needs to build and test, when it is missing. Idempotent: with everything
# present it only checks (a second or so). Sourced by test.sh and demo.sh.
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# dataset-fashion-mnist and fortunes are the corpora of the examples (and of their tests); doxygen
# builds the API reference (scripts/api-docs.sh), python3-matplotlib draws the tutorial's plots;
# clang and its runtime libraries (libFuzzer, the sanitizers' runtimes; Debian 12 ships clang 14)
# build the fuzz harnesses of scripts/fuzz.sh.
KIRZL_APT_PACKAGES=(cmake g++ ninja-build libeigen3-dev libopenmpi-dev openmpi-bin libgtest-dev libcli11-dev
  libbenchmark-dev pybind11-dev zlib1g-dev nlohmann-json3-dev dataset-fashion-mnist fortunes doxygen python3-matplotlib
  clang libclang-rt-14-dev)
# Python packages of the Python tests (tests/io/safetensors_interop.py, pytest); those tests skip
# with the reason when the packages are missing. pybind11 (>= 3, for py::smart_holder; Debian's
# pybind11-dev is 2.10) builds the Python module kirzl._C; scikit-build-core drives `pip install .`.
# matplotlib: scripts/plot_metrics.py and plot_timeline.py, for a python3 that is not the system's.
KIRZL_PIP_PACKAGES=(safetensors numpy pytest "pybind11>=3" scikit-build-core matplotlib)
# The cuDNN frontend's C++ headers (the wheel's include/), for the cuDNN attention kernels of CUDA
# builds (src/kernels/cuda/*_cudnn_frontend.cpp); CMake finds them in this python3's site-packages.
# Installed on its own: a platform without the wheel must not cost the packages above.
KIRZL_PIP_CUDNN_FRONTEND=nvidia-cudnn-frontend

kirzl_setup() {
  local missing=()
  for p in "${KIRZL_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  KIRZL_SCRIPT="kirzl setup" kirzl_apt_install "${missing[@]}"
  kirzl_setup_python
  # Open MPI refuses to run as root unless told; containers and CI run as root.
  if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  fi
}

# Installs KIRZL_PIP_PACKAGES for the python3 on PATH when one of them cannot be imported. Never
# fails the setup: without them (no pip, no network) the Python tests skip.
kirzl_setup_python() {
  command -v python3 >/dev/null 2>&1 || return 0
  kirzl_pip_install_one "$KIRZL_PIP_CUDNN_FRONTEND" \
    "import importlib.metadata as m; m.distribution('$KIRZL_PIP_CUDNN_FRONTEND')" \
    "CUDA builds will use the flash attention kernels only"
  python3 -c 'import safetensors, numpy, pytest, scikit_build_core, pybind11, matplotlib, sys
sys.exit(int(pybind11.__version__.split(".")[0]) < 3)' >/dev/null 2>&1 && return 0
  echo "kirzl setup: installing Python packages ${KIRZL_PIP_PACKAGES[*]}"
  # A distribution's python3 refuses pip installs outside a venv (PEP 668, "externally-managed-
  # environment"); then install for this interpreter anyway, as the build machines are dedicated.
  python3 -m pip install --quiet "${KIRZL_PIP_PACKAGES[@]}" >/dev/null 2>&1 ||
    python3 -m pip install --quiet --break-system-packages "${KIRZL_PIP_PACKAGES[@]}" ||
    echo "kirzl setup: could not install ${KIRZL_PIP_PACKAGES[*]} with pip; the Python tests will skip" >&2
}

# kirzl_pip_install_one PACKAGE CHECK CONSEQUENCE: pip-installs PACKAGE for the python3 on PATH
# unless the Python statement CHECK succeeds; never fails (says CONSEQUENCE instead).
kirzl_pip_install_one() {
  python3 -c "$2" >/dev/null 2>&1 && return 0
  echo "kirzl setup: installing Python package $1"
  python3 -m pip install --quiet "$1" >/dev/null 2>&1 ||
    python3 -m pip install --quiet --break-system-packages "$1" >/dev/null 2>&1 ||
    echo "kirzl setup: could not install $1 with pip; $3" >&2
}

# Configures (once) and builds a tree: kirzl_build DIR [cmake args...]
kirzl_build() {
  local dir="$1"
  shift
  local jobs
  jobs="$(nproc)"
  if [ ! -f "$dir/build.ninja" ]; then
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
  else
    cmake "$dir" "$@" >/dev/null
  fi
  cmake --build "$dir" -j "$jobs"
}
