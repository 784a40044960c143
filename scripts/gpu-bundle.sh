#!/usr/bin/env bash
# Builds, on the development machine (no GPU needed), everything scripts/gpu-check.sh runs on the
# GPU machine, and packs it into one zstd archive: .gpu-bundle/kirzl-gpu.tar.zst (git-ignored).
#
#   scripts/gpu-bundle.sh              # build build-bundle/ and pack
#   scripts/gpu-bundle.sh --pack-only  # pack what build-bundle/ holds (no build)
#
# What goes in (Note [GPU bundle]):
#   lib/libkirzl.so the library, shared by every program below (Note [GPU bundle])
#   bin/tests/    every GPU test program (names ending in _cuda), stripped
#   bin/bench/    the GPU benchmarks (bench_cuda_*, bench_nccl_*, bench_gpt2, the CNN against PyTorch)
#   bin/examples/ fashion_mnist, gpt, spiral
#   lib/          the shared libraries they load that the GPU image may lack (libbenchmark, libgomp,
#                 Open MPI's libraries, hwloc, libevent, ...); never glibc, libstdc++ or the CUDA
#                 libraries, which gpu-check.sh finds there (the toolkit, or PyTorch's wheels)
#   mpi/root/     Open MPI's runtime (mpirun, its plugins and help files) in Debian's layout,
#                 used through Open MPI's relocation variables (OPAL_PREFIX, ...) where that machine
#                 has no mpirun of its own
#   data/         Fashion-MNIST and the fortunes corpus, the examples' data
#   MANIFEST.txt  commit, date, build settings, the program list
#
# Note [GPU bundle]: the GPU machine is lent for minutes at a time and may lack Eigen, GoogleTest,
# Google Benchmark and Open MPI; building there costs the lease. So the programs are built here,
# portable (KIRZL_NATIVE_ARCH=OFF: no AVX-512 or AMX the GPU host may lack), for sm_90 only, and
# carried with their libraries. kirzl is built as a shared library here: statically linked, each of
# the ~40 programs embedded its own 12 MB copy of the library and fatbin, at different addresses, so
# even zstd's long-range mode left 24 MB of them; shared, they are a few MB. The device tool carries
# at most 64 MiB a call, and Fashion-MNIST alone is 30 MB (gzip; it compresses no further).
# Open MPI's transports for networks (UCX, libfabric, verbs, PSM) are left out: one node needs only
# shared memory and TCP, and their plugins are dropped with them.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
pack_only=0
[ "${1:-}" = "--pack-only" ] && pack_only=1
build=build-bundle
out=.gpu-bundle
stage="$out/stage/kirzl-gpu"
limit_mb=${KIRZL_BUNDLE_LIMIT_MB:-40}

# GPU test programs, GPU benchmarks and examples, by target name (tests/CMakeLists.txt names a test
# tests/<dir>/test_x_cuda.cpp as <dir>_test_x_cuda).
bundle_targets() {
  ninja -C "$build" -t targets all | sed -n 's/^\([A-Za-z0-9_]*\): phony$/\1/p' |
    grep -E '_cuda$|^bench_cuda_|^bench_nccl_|^bench_gpt2$|^bench_fashion_mnist_cnn_cuda$|^(fashion_mnist|gpt|spiral)$' |
    grep -vE '^cmake_' | sort -u
}

if [ "$pack_only" -eq 0 ]; then
  source scripts/setup.sh
  kirzl_setup
  # Configured every time (seconds when nothing changed), so that a change of these settings
  # reaches an existing build-bundle/. CUDA code for sm_90 as machine code only ("90-real", no
  # PTX): the GPU machines are Hopper (H100, H200), which run sm_90 code as it is, and the PTX
  # that "90" adds for a JIT on later GPUs, compressed by nvcc so that zstd gains nothing on it,
  # made libkirzl's fatbin 4.1 MB of the archive instead of 1.75 MB: 40.9 MiB in all on 2026-12-07,
  # over the limit, and 38.7 MiB without it.
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKIRZL_NATIVE_ARCH=OFF \
    -DCMAKE_CUDA_ARCHITECTURES=90-real -DKIRZL_WITH_CUDA=ON -DKIRZL_WITH_CUDNN=ON -DKIRZL_WITH_NCCL=ON \
    -DKIRZL_WITH_MPI=ON -DKIRZL_BUILD_PYTHON=OFF -DBUILD_SHARED_LIBS=ON >/dev/null
  mapfile -t targets < <(bundle_targets)
  echo "gpu-bundle: building ${#targets[@]} programs in $build/"
  ninja -C "$build" -j "$(nproc)" "${targets[@]}"
fi
mapfile -t targets < <(bundle_targets)

rm -rf "$out/stage"
mkdir -p "$stage"/{bin/tests,bin/bench,bin/examples,lib,mpi,data}
programs=()
for t in "${targets[@]}"; do
  case "$t" in
    bench_*) sub=bench; f="$build/bench/$t" ;;
    fashion_mnist | gpt | spiral) sub=examples; f="$build/examples/$t" ;;
    *) sub=tests; f=$(find "$build/tests" -maxdepth 3 -type f -name "$t" -perm -u+x | head -1) ;;
  esac
  [ -n "$f" ] && [ -x "$f" ] || { echo "gpu-bundle: $t was not built" >&2; exit 1; }
  strip --strip-unneeded -o "$stage/bin/$sub/$t" "$f"
  programs+=("$stage/bin/$sub/$t")
done

# Shared libraries: everything the programs resolve here, except what every Linux has (glibc,
# libstdc++, libgcc_s) and the CUDA libraries (the GPU machine has its own, matching its driver).
# Network transports of Open MPI that one node does not need (and their plugins, below).
drop_lib='^(libefa|libfabric|libibverbs|libinfinipath|libpsm_infinipath|libpsm2|librdmacm|libucm|libucp|libucs|libuct|libmca_common_(ofi|ucx|verbs)|libnl-3|libnl-route-3|liboshmem|libmpi_mpifh)\.so'
skip_lib='^(linux-vdso|ld-linux|libc|libm|libpthread|libdl|librt|libresolv|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcublasLt|libcudnn.*|libnccl|libnvrtc|libnvJitLink)\.so'
for p in "${programs[@]}"; do ldd "$p"; done | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
  while read -r lib; do
    base=$(basename "$lib")
    [[ "$base" =~ $skip_lib || "$base" =~ $drop_lib ]] && continue
    cp -L "$lib" "$stage/lib/$base"
  done
strip --strip-unneeded "$stage"/lib/libkirzl.so*

# Open MPI 4 runtime at its own absolute paths (Debian's layout), and the libraries its plugins need.
if command -v mpirun >/dev/null 2>&1; then
  mpi_paths=(/usr/bin/orterun /usr/bin/orted /usr/lib/x86_64-linux-gnu/openmpi /usr/lib/x86_64-linux-gnu/pmix2
    /usr/share/openmpi /usr/share/pmix /etc/openmpi)
  for p in "${mpi_paths[@]}"; do
    [ -e "$p" ] || continue
    mkdir -p "$stage/mpi/root$(dirname "$p")"
    cp -a "$p" "$stage/mpi/root$p"
  done
  ln -sf orterun "$stage/mpi/root/usr/bin/mpirun"
  # Plugins that need a dropped transport library go too; the rest of the runtime loads them by name.
  find "$stage/mpi/root" -name '*.so' -path '*/openmpi3/*' -o -name '*.so' -path '*/pmix/*' | while read -r plugin; do
    if ldd "$plugin" 2>/dev/null | awk '{print $1}' | grep -qE "$drop_lib"; then rm -f "$plugin"; fi
  done
  find "$stage/mpi/root" -name 'liboshmem*' -o -name 'libmpi_mpifh*' -o -name '*.a' | xargs -r rm -f
  # Plugins' libraries that the programs themselves do not load (hwloc, libevent, pmix, ...).
  find /usr/lib/x86_64-linux-gnu/openmpi /usr/lib/x86_64-linux-gnu/pmix2 /usr/bin/orterun -name '*.so*' -o -name orterun |
    xargs ldd 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
    while read -r lib; do
      base=$(basename "$lib")
      [[ "$base" =~ $skip_lib || "$base" =~ $drop_lib ]] && continue
      [ -f "$stage/lib/$base" ] || cp -L "$lib" "$stage/lib/$base"
    done
fi

# The examples' data.
# Fashion-MNIST unpacked: zstd packs the raw IDX files tighter than their gzip (the reader takes both).
mkdir -p "$stage/data/fashion-mnist"
for f in /usr/share/datasets/fashion-mnist/*-ubyte.gz; do
  gzip -dc "$f" >"$stage/data/fashion-mnist/$(basename "$f" .gz)"
done
cp -a /usr/share/games/fortunes "$stage/data/fortunes"

{
  echo "commit: $(git -C "$root" rev-parse HEAD)$(git -C "$root" diff --quiet HEAD -- src include tests bench examples || echo ' (with uncommitted changes)')"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), $(gcc --version | head -1), $(nvcc --version | tail -1)"
  echo "settings: Release, KIRZL_NATIVE_ARCH=OFF, CMAKE_CUDA_ARCHITECTURES=$(sed -n 's/^CMAKE_CUDA_ARCHITECTURES:[A-Z]*=//p' "$build/CMakeCache.txt"), CUDA+cuDNN+NCCL+MPI"
  echo "cudnn: $(sed -n 's/^#define CUDNN_\(MAJOR\|MINOR\|PATCHLEVEL\) *\([0-9]*\).*/\2/p' /usr/local/cuda/include/cudnn_version.h 2>/dev/null | paste -sd.)"
  echo "programs:"
  for p in "${programs[@]}"; do echo "  ${p#"$stage"/}"; done
} >"$stage/MANIFEST.txt"

# zstd itself, with its libraries, for a GPU image that lacks it (gpu-check.sh uses it only then).
mkdir -p "$out/tools"
cp -L "$(command -v zstd)" "$out/tools/zstd"
ldd "$(command -v zstd)" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | grep -vE '/libc\.so' | xargs -r -I{} cp -L {} "$out/tools/"

tar -C "$out/stage" -cf - kirzl-gpu | zstd -q --long=30 -19 -T0 -f -o "$out/kirzl-gpu.tar.zst"
# The limit is checked on the bytes: a whole number of MiB (bytes / 1048576) rounded 40.9 MiB
# down to 40 and let it pass.
size=$(stat -c %s "$out/kirzl-gpu.tar.zst")
size_mib=$(awk -v b="$size" 'BEGIN {printf "%.2f", b / 1048576}')
echo "gpu-bundle: $out/kirzl-gpu.tar.zst, $size bytes ($size_mib MiB), ${#programs[@]} programs, $(ls "$stage/lib" | wc -l) libraries"
if [ "$size" -gt $((limit_mb * 1048576)) ]; then
  echo "gpu-bundle: the archive is over ${limit_mb} MiB" >&2
  exit 1
fi
