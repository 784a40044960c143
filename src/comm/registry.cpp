// Note [backend registry]: the one place that chooses communication backends, and the only
// `#if KIRZL_HAS_MPI` / `#if KIRZL_HAS_NCCL` in the comm code. The host backend (in-process at size
// 1, else MPI) is built first; NCCL then joins it when the ranks' vote says so (Note [nccl vote],
// detail::choose_nccl()), bootstrapped by a broadcast of its unique id over the host backend, and
// the world becomes a RoutedCommunicator (CUDA tensors to NCCL, CPU tensors to the host backend).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <optional>
#include <sstream>
#include <vector>

#include "comm/flight_recorder.h"
#include "comm/launcher.h"
#include "core/environment.h"
#include "comm/mpi_communicator.h"  // declarations only; defined when KIRZL_HAS_MPI
#include "comm/nccl_communicator.h"  // declarations only; defined when KIRZL_HAS_NCCL
#include "comm/routed_communicator.h"
#include "kirzl/comm.hpp"
#include "kirzl/config.hpp"
#include "kirzl/core/cuda.hpp"
#include "kirzl/core/parallel.hpp"


namespace kirzl::comm {

struct ProcessGroupBuilder {
  static ProcessGroup make(int rank, int size, int local_rank, int local_size, std::shared_ptr<Communicator> comm,
                           std::vector<std::string> hosts, std::string launcher) {
    ProcessGroup pg;
    pg.rank_ = rank;
    pg.size_ = size;
    pg.local_rank_ = local_rank;
    pg.local_size_ = local_size;
    pg.comm_ = std::move(comm);
    pg.hosts_ = std::move(hosts);
    pg.launcher_ = std::move(launcher);
    const int device = detail::choose_device(local_rank, cuda::device_count());
    pg.device_ = device >= 0 ? Device::cuda(device) : Device::cpu();
    return pg;
  }
};

std::string ProcessGroup::backend() const { return comm_ ? comm_->backend() : "none"; }

namespace {

// The process group is the one allowed global. Destroyed at exit: the world communicator goes
// first, which lets the MPI backend finalise MPI (see mpi_runtime.h).
struct World {
  std::mutex mu;
  std::optional<ProcessGroup> group;
  std::string backend_info;  // shown with KIRZL_VERBOSE
  std::terminate_handler previous_terminate = nullptr;  // Note [uncaught exceptions]
};
World& world() {
  static World w;
  return w;
}

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

// Every rank takes part (so that ranks need not agree on KIRZL_VERBOSE): a tiny all-reduce that
// proves the group works, then, when any rank asked for it, a timed ~4 MB all-reduce.
void preflight(const ProcessGroup& pg) {
  auto& c = *pg.communicator();
  Tensor flag = full({1}, env::flag("KIRZL_VERBOSE") ? 1 : 0, {.dtype = DType::i32});
  c.all_reduce(flag, {.op = ReduceOp::Max, .tag = "init preflight", .blocking = true});
  if (flag.item<int>() == 0) return;
  // Where every rank computes: gather (local rank, device type, device index).
  const int n = pg.size();
  Tensor mine = from_vector<int32_t>({pg.local_rank(), pg.device().is_cuda() ? 1 : 0, pg.device().index()});
  Tensor devices = zeros({3 * static_cast<int64_t>(n)}, {.dtype = DType::i32});
  c.all_gather(devices, mine, {.tag = "init preflight devices", .blocking = true});
  const auto dv = devices.to_vector<int32_t>();
  Tensor big = ones({1 << 20});  // 4 MiB of f32
  c.all_reduce(big, {.tag = "init preflight warm-up", .blocking = true});
  auto t0 = std::chrono::steady_clock::now();
  c.all_reduce(big, {.tag = "init preflight bandwidth", .blocking = true});
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (pg.rank() != 0) return;
  const double algbw = static_cast<double>(big.nbytes()) / s / 1e9;
  std::ostringstream os;
  os << "kirzl: backend " << pg.backend() << ", world size " << n << " (launcher " << pg.launcher() << ")";
  if (!world().backend_info.empty()) os << "; " << world().backend_info;
  os << "\n";
  for (int r = 0; r < n; ++r) {
    const Device d = dv[3 * r + 1] ? Device::cuda(dv[3 * r + 2]) : Device::cpu();
    os << "kirzl:   rank " << r << " on " << (r < static_cast<int>(pg.hosts().size()) ? pg.hosts()[r] : "?")
       << ", local rank " << dv[3 * r] << ", device " << d.str() << "\n";
  }
  os << "kirzl: preflight all-reduce of 4 MiB: " << s * 1e3 << " ms, algbw " << algbw << " GB/s, busbw "
     << (n > 1 ? algbw * 2.0 * (n - 1) / n : 0.0) << " GB/s; timeout " << c.default_timeout().count() / 1000.0
     << " s\n";
  std::fputs(os.str().c_str(), stderr);
}

// The host backend: in-process at world size 1 (unless MPI was asked for), else MPI.
ProcessGroup make_host_world(const detail::LaunchInfo& info, const std::string& requested, const InitOptions& options) {
  if (detail::choose_backend(info, requested, KIRZL_HAS_MPI != 0) == detail::BackendChoice::InProcess) {
    auto comm = make_in_process_group(1, {.timeout = options.timeout}).front();
    return ProcessGroupBuilder::make(0, 1, 0, 1, comm, {host_name()}, info.launcher);
  }
#if KIRZL_HAS_MPI
  detail::MpiWorld w = detail::mpi_create_world(options.timeout);
  world().backend_info = w.info;
  const int rank = w.comm->rank(), size = w.comm->size();
  KIRZL_CHECK(info.size < 0 || info.size == size, "comm::init: the launcher (", info.launcher, ") says world size ",
              info.size, " but MPI reports ", size, "; start the program with the MPI launcher (mpirun / srun --mpi)");
  return ProcessGroupBuilder::make(rank, size, w.local_rank, w.local_size, w.comm, std::move(w.hosts), info.launcher);
#else
  KIRZL_FAIL(ErrorCode::Internal, "comm::init: no backend was chosen");  // choose_backend threw already
#endif
}

// Note [device choice] (launcher.h): makes the rank's device current; returns it (-1: no GPU).
// cuda::device_count() is 0 in a build without CUDA, so no CUDA call is made there.
int select_device(int local_rank) {
  const int device = detail::choose_device(local_rank, cuda::device_count());
  if (device >= 0) cuda::set_device(device);
  return device;
}

// Note [nccl vote] (launcher.h): every rank's candidate, gathered over the host backend, as
// fixed-size records: the vote byte, then the PCI bus id, NUL-padded.
constexpr size_t kVoteBytes = 32;
std::vector<detail::NcclCandidate> gather_nccl_candidates(const ProcessGroup& host, const detail::NcclCandidate& me) {
  const int n = host.size();
  if (n == 1) return {me};
  std::vector<uint8_t> mine(kVoteBytes, 0);
  mine[0] = static_cast<uint8_t>(me.vote);
  std::memcpy(mine.data() + 1, me.gpu.data(), std::min(me.gpu.size(), kVoteBytes - 2));
  Tensor in = from_blob(mine.data(), {static_cast<int64_t>(kVoteBytes)}, DType::u8);
  Tensor all = zeros({static_cast<int64_t>(kVoteBytes) * n}, {.dtype = DType::u8});
  host.communicator()->all_gather(all, in, {.tag = "init NCCL vote", .blocking = true});
  const auto* bytes = static_cast<const uint8_t*>(all.data_ptr());
  std::vector<detail::NcclCandidate> out(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) {
    const uint8_t* rec = bytes + kVoteBytes * static_cast<size_t>(r);
    const uint8_t v = rec[0];
    KIRZL_CHECK_CODE(v >= 1 && v <= 4, ErrorCode::Internal, "comm::init: rank ", r, " sent NCCL vote ", int(v),
                     " (expected 1..4); are all ranks running the same kirzl?");
    out[r].vote = static_cast<detail::NcclCandidate::Vote>(v);
    out[r].gpu.assign(reinterpret_cast<const char*>(rec + 1), strnlen(reinterpret_cast<const char*>(rec + 1), kVoteBytes - 1));
    out[r].host = r < static_cast<int>(host.hosts().size()) ? host.hosts()[r] : "?";
  }
  return out;
}

ProcessGroup make_world(const InitOptions& options) {
  const detail::LaunchInfo info = detail::detect_launch([](const char* n) { return std::getenv(n); });
  const std::string requested = detail::requested_backend(options.backend, env::text("KIRZL_BACKEND").value_or("").c_str());
  // Note [device choice]: before MPI_Init when the launcher tells the local rank; otherwise as
  // soon as MPI has told it (the host backend creates no CUDA context).
  const int early = info.local_rank >= 0 ? select_device(info.local_rank) : -1;
  ProcessGroup host = make_host_world(info, requested, options);
  if (host.device().is_cuda() && host.device().index() != early) select_device(host.local_rank());
  detail::NcclCandidate me;
  me.vote = detail::nccl_vote(requested, KIRZL_HAS_NCCL != 0, cuda::device_count());
  me.host = host.rank() < static_cast<int>(host.hosts().size()) ? host.hosts()[host.rank()] : host_name();
  if (me.vote == detail::NcclCandidate::Vote::Able) me.gpu = cuda::device_properties(host.device().index()).pci_bus_id;
  const detail::NcclDecision nccl = detail::choose_nccl(requested, gather_nccl_candidates(host, me), host.rank());
  std::string& bi = world().backend_info;
  bi += std::string(bi.empty() ? "" : "; ") + (nccl.use ? "NCCL for CUDA tensors: " : "no NCCL: ") + nccl.reason;
  if (!nccl.use) return host;
#if KIRZL_HAS_NCCL
  auto host_comm = host.communicator();
  detail::BootstrapBroadcast bcast = [host_comm](void* data, size_t bytes) {
    Tensor t = from_blob(data, {static_cast<int64_t>(bytes)}, DType::u8);
    host_comm->broadcast(t, {.root = 0, .tag = "NCCL unique id", .blocking = true});
  };
  auto device_comm = detail::nccl_create(host.rank(), host.size(), host.device().index(), bcast, options.timeout, host_comm);
  bi += "; " + detail::nccl_version();
  auto routed = std::make_shared<detail::RoutedCommunicator>(host_comm, device_comm);
  return ProcessGroupBuilder::make(host.rank(), host.size(), host.local_rank(), host.local_size(), routed, host.hosts(),
                                   host.launcher());
#else
  KIRZL_FAIL(ErrorCode::Internal, "comm::init: NCCL was chosen in a build without it");  // choose_nccl said no
#endif
}

// Note [nccl teardown]: the world must be released before the CUDA runtime shuts down. The
// runtime tears itself down from an exit handler that it registers when it first initialises;
// left to static destruction, World (constructed before that) would be destroyed after it, and
// ncclCommDestroy would run on a dead runtime. Exit handlers and static destructors run in the
// reverse order of registration, so a handler registered here, after make_world() has
// initialised CUDA (cuda::set_device), runs before the runtime's teardown and releases the world
// there: NCCL first (finalised, or aborted if the world failed), then MPI (MPI_Finalize). A
// communicator the user still holds elsewhere is destroyed later; its destructor sees
// cudaErrorCudartUnloading and leaves it to the driver (nccl_communicator.cpp).
void release_world_at_exit() {
  try {
    std::optional<ProcessGroup> group;
    {
      std::lock_guard<std::mutex> lock(world().mu);
      group.swap(world().group);
    }
  } catch (...) {
    std::fputs("kirzl: releasing the process group at exit failed (ignored)\n", stderr);
  }
}

// Note [uncaught exceptions]: an exception that escapes main() on one rank calls std::terminate,
// and the process dies by SIGABRT without saying which rank it was; under a launcher that does not
// end the job when one task dies (srun without --kill-on-bad-exit), the other ranks would wait for
// it until their timeout. So a multi-rank world installs this handler: it names the rank and the
// exception, then aborts the whole job (Note [abort on failure]). Without MPI (one rank), the
// previous handler runs.
[[noreturn]] void terminate_with_report() {
  std::string what = "std::terminate was called without an active exception";
  if (std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      what = std::string("uncaught exception: ") + x.what();
    } catch (...) {
      what = "uncaught exception of a type not derived from std::exception";
    }
  }
#if KIRZL_HAS_MPI
  detail::mpi_abort_job(what);
#else
  std::fprintf(stderr, "kirzl: %s\n", what.c_str());
  if (world().previous_terminate) world().previous_terminate();
  std::abort();
#endif
}

}  // namespace

ProcessGroup init(const InitOptions& options) {
  World& w = world();
  std::lock_guard<std::mutex> lock(w.mu);
  if (w.group) return *w.group;
  ProcessGroup pg = make_world(options);
  if (options.share_cores) {
    const int threads = detail::shared_core_threads(detail::usable_cores(), pg.local_size(),
                                                    std::getenv("OMP_NUM_THREADS") != nullptr);
    if (threads > 0) set_num_threads(threads);
  }
  preflight(pg);
  w.group = pg;
  if (pg.size() > 1 && !w.previous_terminate) w.previous_terminate = std::set_terminate(terminate_with_report);
  static const bool registered = std::atexit(release_world_at_exit) == 0;
  if (!registered) std::fputs("kirzl: could not register the process group's exit handler\n", stderr);
  return pg;
}

}  // namespace kirzl::comm
