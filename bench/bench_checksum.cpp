// The checkpoints' CRC-32 (src/io/crc32.cpp, Note [crc32 folding]) beside zlib's crc32 on the same
// buffer in the same run: 1 MiB (the checksum chunk of the sharded checkpoints) and 64 MiB.
//
//   build-bench/bench/bench_checksum --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "io/crc32.h"

namespace {

std::vector<unsigned char> data_of(int64_t n) {
  std::vector<unsigned char> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<unsigned char>(i * 2654435761u >> 13);
  return v;
}

template <uint32_t (*Crc)(const void*, size_t)>
void BM_Crc32(benchmark::State& state) {
  const auto v = data_of(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(Crc(v.data(), v.size()));
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

}  // namespace

BENCHMARK(BM_Crc32<kirzl::io::detail::crc32>)->Name("BM_Crc32/kirzl")->Arg(1 << 20)->Arg(64 << 20);
BENCHMARK(BM_Crc32<kirzl::io::detail::crc32_zlib>)->Name("BM_Crc32/zlib")->Arg(1 << 20)->Arg(64 << 20);
