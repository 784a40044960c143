// Internal (MPI backend only): the MPI runtime — initialising and finalising MPI, the thread level
// and the serialisation it needs, the world, and where abandoned request buffers live. The
// communicators (mpi_communicator.cpp) hold a shared_ptr to it; the last one to go finalises MPI.
// MPI return codes are checked everywhere with KIRZL_MPI_CHECK (mpi_check.h), except in teardown,
// which cannot throw and says so where it ignores one.
#pragma once

#include <mpi.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kirzl::comm::detail {

// What MPI_COMM_WORLD looks like from this rank.
struct MpiWorldLayout {
  MPI_Comm comm = MPI_COMM_NULL;       // a duplicate of MPI_COMM_WORLD, errors returned as codes
  int local_rank = 0, local_size = 1;  // from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)
  std::vector<std::string> hosts;      // MPI_Get_processor_name of every rank
  std::string info;                    // library version and thread level
};

// Initialises MPI once per process and finalises it when the last communicator using it is gone.
class MpiRuntime {
 public:
  // The process's runtime: initialises MPI (MPI_THREAD_MULTIPLE if available, at least
  // SERIALIZED) on first use. Error{Mpi} when MPI was already finalised, Error{Unsupported} when
  // the thread level is too low.
  static std::shared_ptr<MpiRuntime> get();
  // Note [abort on failure] (job_failure.h): aborts the job instead of finalising after a failure,
  // and aborts a finalise that waits longer than the teardown timeout.
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  // Collective over MPI_COMM_WORLD (blocking, on the caller's thread): duplicates the world and
  // describes it.
  MpiWorldLayout world();
  // How long MPI_Finalize may wait for the other ranks before the job is aborted: the world's
  // collective timeout (a rank that does not reach the end of the program within it has failed).
  void set_teardown_timeout(std::chrono::milliseconds t) { teardown_timeout_ = t; }
  // Serialises MPI calls when MPI gave less than MPI_THREAD_MULTIPLE.
  std::unique_lock<std::mutex> guard() {
    return serialize_ ? std::unique_lock<std::mutex>(mu_) : std::unique_lock<std::mutex>();
  }
  int thread_level() const { return level_; }

 private:
  MpiRuntime();
  // MPI_Finalize, watched: if it has not returned within `limit`, the job is aborted.
  static void finalize_within(std::chrono::milliseconds limit);

  std::chrono::milliseconds teardown_timeout_{std::chrono::minutes(5)};
  int level_ = 0;
  bool owns_ = false;
  bool serialize_ = false;
  std::mutex mu_;
};

// This process's rank in `comm` and its size; Error{Mpi} when MPI fails.
int mpi_comm_rank(MPI_Comm comm);
int mpi_comm_size(MPI_Comm comm);

// Buffers of requests abandoned after a timeout: MPI may still write them, so they live until exit.
void keep_forever(std::shared_ptr<void> p);

}  // namespace kirzl::comm::detail
