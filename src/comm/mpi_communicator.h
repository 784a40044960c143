// Internal: the entry point of the MPI backend, callable without mpi.h. Only registry.cpp calls
// it, and only when KIRZL_HAS_MPI.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "kirzl/comm.hpp"

namespace kirzl::comm::detail {

struct MpiWorld {
  std::shared_ptr<Communicator> comm;  // over MPI_COMM_WORLD (a duplicate of it)
  int local_rank = 0, local_size = 1;  // from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)
  std::vector<std::string> hosts;      // MPI_Get_processor_name of every rank
  std::string info;                    // library version and thread level, for KIRZL_VERBOSE
};

// Initialises MPI (once; with MPI_THREAD_MULTIPLE if available, at least SERIALIZED) and builds the
// world communicator. MPI is finalised when the last MPI communicator is destroyed.
MpiWorld mpi_create_world(std::chrono::milliseconds timeout);

// Note [abort on failure] (job_failure.h): writes "kirzl: rank R of N: aborting the job ..." with
// `why` to stderr and calls MPI_Abort, which makes the launcher end every rank. Never returns: if
// MPI_Abort has not ended the process within kAbortGrace (or MPI is not running), _Exit does.
[[noreturn]] void mpi_abort_job(const std::string& why);
inline constexpr int kAbortExitCode = 1;
inline constexpr std::chrono::seconds kAbortGrace{10};

}  // namespace kirzl::comm::detail
