#!/usr/bin/env bash
# Installs what kirzl needs to build and test, when it is missing. Idempotent: with everything
# present it only checks (a second or so). Sourced by test.sh and demo.sh.
set -euo pipefail

KIRZL_APT_PACKAGES=(cmake g++ ninja-build libeigen3-dev libopenmpi-dev openmpi-bin libgtest-dev
  libbenchmark-dev pybind11-dev zlib1g-dev dataset-fashion-mnist)

kirzl_setup() {
  local missing=()
  for p in "${KIRZL_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "kirzl setup: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # Open MPI refuses to run as root unless told; containers and CI run as root.
  if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  fi
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
