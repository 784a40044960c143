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

// Which backend init() builds for `info` and InitOptions::backend `requested` ("auto", "mpi",
// "inprocess"). Throws Error{InvalidArgument} for an unknown name or "inprocess" with a multi-rank
// launcher, and Error{Unsupported, "kirzl was built without MPI ..."} when MPI is needed but
// `has_mpi` is false.
BackendChoice choose_backend(const LaunchInfo& info, const std::string& requested, bool has_mpi);

}  // namespace kirzl::comm::detail
