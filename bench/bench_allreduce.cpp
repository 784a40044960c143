// All-reduce bandwidth: kirzl's MPI backend (all_reduce + wait) against raw MPI_Allreduce in the
// same run, f32 sum, 8 B to 256 MB. Run under MPI (only rank 0 reports):
//
//   OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 2 --oversubscribe build-comm/bench/bench_allreduce
//
// Counters (as nccl-tests defines them): algbw = bytes / time, busbw = algbw * 2 (n - 1) / n, both
// GB/s; mpi_busbw is raw MPI_Allreduce of the same buffer size, interleaved with kirzl's calls,
// ratio = busbw / mpi_busbw (1.0 = no overhead). BM_Header is the cost of the per-collective
// mismatch check alone (the 4 x int64 MPI_MIN all-reduce kirzl runs before the data, see Note
// [mpi collective protocol]), BM_RawMpiNonblockingWithHeader vs BM_RawMpiNonblocking what it adds to
// a nonblocking all-reduce, BM_KirzlBarrier (header only, through kirzl's communication thread)
// minus BM_Header the cost of the asynchronous hand-off; BM_InProcess is the in-process backend
// with 2 threads (rank 0 only).
//
// Every rank must run the same collectives, so iteration counts are fixed per size (no adaptive
// iteration search, which could differ between ranks).
#include <benchmark/benchmark.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include <kirzl/comm.hpp>

namespace {

using Clock = std::chrono::steady_clock;

kirzl::comm::ProcessGroup& world() {
  static kirzl::comm::ProcessGroup pg;
  return pg;
}

int64_t iterations_for(int64_t bytes) { return std::clamp<int64_t>(2'000'000'000 / std::max<int64_t>(bytes, 1), 5, 20000); }

void set_counters(benchmark::State& state, int64_t bytes, int n, double seconds_kirzl, double seconds_mpi) {
  const double iters = static_cast<double>(state.iterations());
  const double algbw = bytes * iters / seconds_kirzl / 1e9;
  const double factor = n > 1 ? 2.0 * (n - 1) / n : 1.0;
  state.counters["algbw"] = algbw;
  state.counters["busbw"] = algbw * factor;
  state.counters["bytes"] = static_cast<double>(bytes);
  if (seconds_mpi > 0) {
    const double mpi_busbw = bytes * iters / seconds_mpi / 1e9 * factor;
    state.counters["mpi_busbw"] = mpi_busbw;
    state.counters["ratio"] = algbw * factor / mpi_busbw;
    state.counters["mpi_us"] = seconds_mpi / iters * 1e6;
  }
}

// kirzl all_reduce + wait, and raw MPI_Allreduce of the same size interleaved with it iteration by
// iteration, so both see the same machine load; the reported time is kirzl's.
void BM_KirzlMpi(benchmark::State& state) {
  const int64_t bytes = state.range(0);
  const int64_t count = std::max<int64_t>(bytes / 4, 1);
  auto& c = *world().communicator();
  kirzl::Tensor t = kirzl::ones({count});
  std::vector<float> raw(static_cast<size_t>(count), 1.0f);
  c.all_reduce(t).wait();  // warm-up
  MPI_Allreduce(MPI_IN_PLACE, raw.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  double kirzl_s = 0, mpi_s = 0;
  for (auto _ : state) {
    auto t0 = Clock::now();
    c.all_reduce(t).wait();
    auto t1 = Clock::now();
    MPI_Allreduce(MPI_IN_PLACE, raw.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    auto t2 = Clock::now();
    const double k = std::chrono::duration<double>(t1 - t0).count();
    kirzl_s += k;
    mpi_s += std::chrono::duration<double>(t2 - t1).count();
    state.SetIterationTime(k);
  }
  set_counters(state, count * 4, world().size(), kirzl_s, mpi_s);
}

void BM_RawMpi(benchmark::State& state) {
  const int64_t count = std::max<int64_t>(state.range(0) / 4, 1);
  std::vector<float> raw(static_cast<size_t>(count), 1.0f);
  MPI_Allreduce(MPI_IN_PLACE, raw.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Barrier(MPI_COMM_WORLD);
  auto t0 = Clock::now();
  for (auto _ : state) MPI_Allreduce(MPI_IN_PLACE, raw.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  set_counters(state, count * 4, world().size(), std::chrono::duration<double>(Clock::now() - t0).count(), 0);
}

// Raw MPI_Iallreduce + MPI_Wait: the nonblocking collective kirzl's communication thread drives.
void BM_RawMpiNonblocking(benchmark::State& state) {
  const int64_t count = std::max<int64_t>(state.range(0) / 4, 1);
  std::vector<float> raw(static_cast<size_t>(count), 1.0f);
  MPI_Barrier(MPI_COMM_WORLD);
  auto t0 = Clock::now();
  for (auto _ : state) {
    MPI_Request req;
    MPI_Iallreduce(MPI_IN_PLACE, raw.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
    MPI_Wait(&req, MPI_STATUS_IGNORE);
  }
  set_counters(state, count * 4, world().size(), std::chrono::duration<double>(Clock::now() - t0).count(), 0);
}

// What the mismatch check costs without kirzl's thread: the header all-reduce (4 x int64, MPI_MIN)
// followed by the data all-reduce, both nonblocking — compare with BM_RawMpiNonblocking.
void BM_RawMpiNonblockingWithHeader(benchmark::State& state) {
  const int64_t count = std::max<int64_t>(state.range(0) / 4, 1);
  std::vector<float> raw(static_cast<size_t>(count), 1.0f);
  int64_t h[4];
  MPI_Barrier(MPI_COMM_WORLD);
  auto t0 = Clock::now();
  for (auto _ : state) {
    h[0] = 1, h[1] = 2, h[2] = -1, h[3] = -2;
    MPI_Request req;
    MPI_Iallreduce(MPI_IN_PLACE, h, 4, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD, &req);
    MPI_Wait(&req, MPI_STATUS_IGNORE);
    MPI_Iallreduce(MPI_IN_PLACE, raw.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
    MPI_Wait(&req, MPI_STATUS_IGNORE);
  }
  set_counters(state, count * 4, world().size(), std::chrono::duration<double>(Clock::now() - t0).count(), 0);
}

// The header exchange alone: what the mismatch check adds to every collective.
void BM_Header(benchmark::State& state) {
  int64_t h[4] = {1, 2, -1, -2};
  MPI_Barrier(MPI_COMM_WORLD);
  for (auto _ : state) MPI_Allreduce(MPI_IN_PLACE, h, 4, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD);
}

// kirzl barrier = the header exchange through the communication thread (no data phase).
void BM_KirzlBarrier(benchmark::State& state) {
  auto& c = *world().communicator();
  MPI_Barrier(MPI_COMM_WORLD);
  for (auto _ : state) c.barrier().wait();
}

// In-process backend, 2 ranks as threads (rank 0 of the MPI job only).
void BM_InProcess(benchmark::State& state) {
  const int64_t count = std::max<int64_t>(state.range(0) / 4, 1);
  auto group = kirzl::comm::make_in_process_group(2);
  const int64_t iters = state.max_iterations;
  std::thread peer([&] {
    kirzl::Tensor t = kirzl::ones({count});
    for (int64_t i = 0; i < iters + 1; ++i) group[1]->all_reduce(t).wait();
  });
  kirzl::Tensor t = kirzl::ones({count});
  group[0]->all_reduce(t).wait();
  auto t0 = Clock::now();
  for (auto _ : state) group[0]->all_reduce(t).wait();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  peer.join();
  set_counters(state, count * 4, 2, s, 0);
}

class NullReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace

int main(int argc, char** argv) {
  world() = kirzl::comm::init({.backend = "mpi"});
  benchmark::Initialize(&argc, argv);
  std::vector<int64_t> sizes;
  for (int64_t b = 8; b <= (int64_t{128} << 20); b *= 4) sizes.push_back(b);
  sizes.push_back(int64_t{256} << 20);
  for (int64_t b : sizes) {
    benchmark::RegisterBenchmark("BM_KirzlMpi", BM_KirzlMpi)->Arg(b)->Iterations(iterations_for(b))->UseManualTime()->Unit(benchmark::kMicrosecond);
  }
  for (int64_t b : sizes)
    benchmark::RegisterBenchmark("BM_RawMpi", BM_RawMpi)->Arg(b)->Iterations(iterations_for(b))->UseRealTime()->Unit(benchmark::kMicrosecond);
  for (int64_t b : sizes)
    benchmark::RegisterBenchmark("BM_RawMpiNonblocking", BM_RawMpiNonblocking)->Arg(b)->Iterations(iterations_for(b))->UseRealTime()->Unit(benchmark::kMicrosecond);
  for (int64_t b : {int64_t{8}, int64_t{8192}})
    benchmark::RegisterBenchmark("BM_RawMpiNonblockingWithHeader", BM_RawMpiNonblockingWithHeader)->Arg(b)->Iterations(iterations_for(b))->UseRealTime()->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_Header", BM_Header)->Iterations(20000)->UseRealTime()->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_KirzlBarrier", BM_KirzlBarrier)->Iterations(20000)->UseRealTime()->Unit(benchmark::kMicrosecond);
  if (world().rank() == 0)
    for (int64_t b : sizes)
      if (b <= (int64_t{32} << 20))
        benchmark::RegisterBenchmark("BM_InProcess", BM_InProcess)->Arg(b)->Iterations(iterations_for(b))->UseRealTime()->Unit(benchmark::kMicrosecond);
  if (world().rank() == 0) {
    std::printf("kirzl all-reduce benchmark: %d ranks, backend %s\n", world().size(), world().backend().c_str());
    benchmark::RunSpecifiedBenchmarks();
  } else {
    NullReporter null;
    benchmark::RunSpecifiedBenchmarks(&null);
  }
  benchmark::Shutdown();
  world() = kirzl::comm::ProcessGroup();
  return 0;
}
