// Internal: finding rank and world size from the launcher's environment (testable with any
// getenv-like lookup).
#pragma once

#include <functional>
#include <string>

namespace kirzl::comm::detail {

struct LaunchInfo {
  std::string launcher = "none";  // "kirzl", "openmpi", "pmix", "pmi", "slurm" or "none"
  int rank = 0;
  int size = 1;          // -1: the launcher does not say (PMIx): ask MPI
  int local_rank = -1;   // -1: unknown (computed by the backend)
  int local_size = -1;
};

// Returns nullptr for an unset variable, like std::getenv.
using EnvLookup = std::function<const char*(const char*)>;

// Checks, in order: KIRZL_RANK/KIRZL_WORLD_SIZE/KIRZL_LOCAL_RANK/KIRZL_LOCAL_SIZE (an explicit
// override), Open MPI (OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK/LOCAL_SIZE), PMIx (PMIX_RANK),
// PMI (PMI_RANK/PMI_SIZE, MPI_LOCALRANKID/MPI_LOCALNRANKS), SLURM (SLURM_PROCID/SLURM_NTASKS/
// SLURM_LOCALID). Throws Error{InvalidArgument} naming the variable for a malformed or
// inconsistent value.
LaunchInfo detect_launch(const EnvLookup& getenv);

enum class BackendChoice { InProcess, Mpi };

// Which host backend init() builds for `info` and InitOptions::backend `requested` ("auto", "mpi",
// "inprocess", or "nccl", which needs what "auto" needs: MPI for several ranks, to broadcast
// NCCL's unique id). Throws Error{InvalidArgument} for an unknown name or "inprocess" with a
// multi-rank launcher, and Error{Unsupported, "kirzl was built without MPI ..."} when MPI is needed
// but `has_mpi` is false.
BackendChoice choose_backend(const LaunchInfo& info, const std::string& requested, bool has_mpi);

// The backend name init() works with: InitOptions::backend, unless it is "auto" and KIRZL_BACKEND
// (`env_backend`, nullptr when unset) names one; an explicit option wins over the environment.
std::string requested_backend(const std::string& option, const char* env_backend);

// Whether init() runs the world's collectives on NCCL, and why (shown by KIRZL_VERBOSE).
struct NcclDecision {
  bool use = false;
  std::string reason;
};

// `requested` as from requested_backend(); `local_size`: ranks on this node (-1: unknown, taken
// as 1). NCCL is used for "auto" and "nccl" when kirzl has NCCL, a GPU is visible, and the node's
// ranks get distinct GPUs (local_rank % device_count is distinct iff local_size <= device_count;
// NCCL refuses two ranks on one GPU). Throws Error{Unsupported} with the reason when "nccl" was
// asked for and cannot be used ("kirzl was built without NCCL" when `has_nccl` is false).
NcclDecision choose_nccl(const std::string& requested, bool has_nccl, int device_count, int local_size);

}  // namespace kirzl::comm::detail
