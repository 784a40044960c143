// The MPI runtime. See mpi_runtime.h.
#include "comm/mpi_runtime.h"

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "comm/job_failure.h"
#include "comm/mpi_check.h"
#include "comm/mpi_communicator.h"
#include "kirzl/core/error.hpp"

namespace kirzl::comm::detail {

void mpi_fail(const char* call, int code) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) std::snprintf(text, sizeof text, "MPI error %d", code);
  // Note [abort on failure]: after an MPI error, MPI_Finalize may never return.
  mark_job_failed(std::string(call) + " failed: " + text);
  KIRZL_FAIL(ErrorCode::Mpi, call, " failed: ", text);
}

std::shared_ptr<MpiRuntime> MpiRuntime::get() {
  static std::mutex mu;
  static std::weak_ptr<MpiRuntime> current;
  std::lock_guard<std::mutex> lock(mu);
  if (auto rt = current.lock()) return rt;
  int finalized = 0;
  KIRZL_MPI_CHECK(MPI_Finalized(&finalized));
  KIRZL_CHECK_CODE(!finalized, ErrorCode::Mpi, "comm::init: MPI was already finalised in this process; it cannot be "
                   "initialised again (keep the ProcessGroup alive for the whole run)");
  auto rt = std::shared_ptr<MpiRuntime>(new MpiRuntime());
  current = rt;
  return rt;
}

MpiRuntime::MpiRuntime() {
  int initialized = 0;
  KIRZL_MPI_CHECK(MPI_Initialized(&initialized));
  if (!initialized) {
    KIRZL_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &level_));
    owns_ = true;
  } else {
    KIRZL_MPI_CHECK(MPI_Query_thread(&level_));
  }
  KIRZL_CHECK_CODE(level_ >= MPI_THREAD_SERIALIZED, ErrorCode::Unsupported,
                   "comm::init: the MPI library gives thread level ", level_,
                   "; kirzl's communication thread needs at least MPI_THREAD_SERIALIZED");
  serialize_ = level_ < MPI_THREAD_MULTIPLE;
  KIRZL_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  WorldPlace place;
  if (MPI_Comm_rank(MPI_COMM_WORLD, &place.rank) == MPI_SUCCESS && MPI_Comm_size(MPI_COMM_WORLD, &place.size) == MPI_SUCCESS)
    record_world_place(place);
}

MpiRuntime::~MpiRuntime() {
  int finalized = 0;
  MPI_Finalized(&finalized);  // teardown: on a failing call, `finalized` stays 0 and we try to finalise
  if (!owns_ || finalized) return;
  // Note [abort on failure]
  if (auto why = job_failure()) mpi_abort_job(*why);
  finalize_within(teardown_timeout_);
}

void MpiRuntime::finalize_within(std::chrono::milliseconds limit) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread watch([&] {
    std::unique_lock<std::mutex> lock(mu);
    if (cv.wait_for(lock, limit, [&] { return done; })) return;
    lock.unlock();
    mpi_abort_job("MPI_Finalize has waited " + std::to_string(limit.count() / 1000) +
                  " s (the collective timeout) for the other ranks: one has not reached the end of the program");
  });
  MPI_Finalize();  // teardown: nothing is left to report an error to
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  watch.join();
}

MpiWorldLayout MpiRuntime::world() {
  MpiWorldLayout w;
  auto g = guard();
  MPI_Comm node = MPI_COMM_NULL;
  KIRZL_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &w.comm));
  KIRZL_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  KIRZL_MPI_CHECK(MPI_Comm_rank(node, &w.local_rank));
  KIRZL_MPI_CHECK(MPI_Comm_size(node, &w.local_size));
  KIRZL_MPI_CHECK(MPI_Comm_free(&node));
  int size = 0, len = 0;
  KIRZL_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
  char name[MPI_MAX_PROCESSOR_NAME] = {0};
  KIRZL_MPI_CHECK(MPI_Get_processor_name(name, &len));
  std::vector<char> all(static_cast<size_t>(size) * MPI_MAX_PROCESSOR_NAME);
  KIRZL_MPI_CHECK(MPI_Allgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR,
                                MPI_COMM_WORLD));
  for (int r = 0; r < size; ++r) w.hosts.emplace_back(all.data() + static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME);
  char version[MPI_MAX_LIBRARY_VERSION_STRING] = {0};
  int vlen = 0;
  KIRZL_MPI_CHECK(MPI_Get_library_version(version, &vlen));
  std::string v(version);
  if (auto nl = v.find_first_of(",\n"); nl != std::string::npos) v.resize(nl);
  w.info = v + ", thread level " +
           (level_ == MPI_THREAD_MULTIPLE ? "MPI_THREAD_MULTIPLE" : "MPI_THREAD_SERIALIZED (MPI calls serialised)");
  return w;
}

int mpi_comm_rank(MPI_Comm comm) {
  int r = 0;
  KIRZL_MPI_CHECK(MPI_Comm_rank(comm, &r));
  return r;
}

int mpi_comm_size(MPI_Comm comm) {
  int n = 0;
  KIRZL_MPI_CHECK(MPI_Comm_size(comm, &n));
  return n;
}

void keep_forever(std::shared_ptr<void> p) {
  static std::mutex mu;
  static auto* graveyard = new std::vector<std::shared_ptr<void>>();  // intentionally leaked
  std::lock_guard<std::mutex> lock(mu);
  graveyard->push_back(std::move(p));
}

void mpi_abort_job(const std::string& why) {
  int initialized = 0, finalized = 0;
  // Best effort on the way out: if these calls fail, the flags stay 0 and _Exit ends the process.
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  // Recorded at init: during MPI_Finalize (the watched finalise) MPI may not answer any more.
  const WorldPlace place = world_place();
  std::fprintf(stderr, "kirzl: rank %d of %d: aborting the job (MPI_Abort): %s\n", place.rank, place.size,
               why.c_str());
  std::fflush(stderr);
  // If MPI_Abort itself hangs (its runtime is gone), the process still ends.
  std::thread([] {
    std::this_thread::sleep_for(kAbortGrace);
    std::_Exit(kAbortExitCode);
  }).detach();
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, kAbortExitCode);
  std::_Exit(kAbortExitCode);
}

}  // namespace kirzl::comm::detail
