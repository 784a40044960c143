// Internal: finding rank and world size from the launcher's environment (testable with any
// getenv-like lookup).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

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
// override), Open MPI (OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK/LOCAL_SIZE), an srun step
// (SLURM_PROCID/SLURM_STEP_NUM_TASKS/SLURM_LOCALID/SLURM_STEP_TASKS_PER_NODE, Note [srun]),
// PMIx (PMIX_RANK), PMI (PMI_RANK/PMI_SIZE, MPI_LOCALRANKID/MPI_LOCALNRANKS), SLURM without a
// step (SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID). Throws Error{InvalidArgument} naming the
// variable for a malformed or inconsistent value.
//
// Note [srun]: srun starts every rank itself (no mpirun) and hands Open MPI its rank through
// its MPI plugin: mpi/pmix exports PMIX_RANK and PMIX_NAMESPACE ("slurm.pmix.<job>.<step>"),
// mpi/pmi2 PMI_RANK. Neither gives the world size or the node-local layout, which SLURM's own
// variables do, so a step's task is recognised by SLURM_PROCID with SLURM_STEP_NUM_TASKS (set
// only in tasks of a step: not in a batch script, where a plain program is not part of a world)
// and reported as launcher "slurm"; the step's counts, not the job's SLURM_NTASKS, since a step
// may use part of its allocation. A failed job ends under srun as under mpirun (Note [abort on
// failure]): MPI_Abort, a rank's death, or a rank's exit without finalising makes SLURM cancel
// the step and kill its tasks (seen with mpi/pmix, Slurm 22.05; tests/comm/faults/test_faults_srun.cpp).
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

// Note [device choice]: rank r of a node uses CUDA device local_rank % visible_devices, made the
// process's current device by comm::init() before anything else touches CUDA (before MPI_Init
// when the launcher tells the local rank, since a CUDA-aware MPI may create a context on the
// current device): otherwise every rank would first create a context on device 0. Returns -1
// when no device is visible; an unknown local rank (< 0) counts as 0.
int choose_device(int local_rank, int visible_devices);

// InitOptions::share_cores: the CPU threads of each of `local_size` ranks on a node whose process
// may use `cores` cores; 0 means "leave the thread count alone" (one rank per node, an unknown
// local size, or OMP_NUM_THREADS set by the user).
int shared_core_threads(int cores, int local_size, bool omp_num_threads_set);
// The cores this process may run on (its CPU affinity, which launchers and cgroups narrow), at least 1.
int usable_cores();

// Whether init() runs the world's collectives on NCCL, and why (shown by KIRZL_VERBOSE).
struct NcclDecision {
  bool use = false;
  std::string reason;
};

// Note [nccl vote]: the ranks decide together, or some would wait in NCCL for ranks that went to
// MPI. Each rank brings a candidate (its own vote and the physical identity of its GPU); init()
// all-gathers them over the host backend and every rank runs choose_nccl on the same list, so
// every rank reaches the same decision: NCCL when every rank can use it and no two ranks of one
// node picked the same physical GPU (NCCL refuses two ranks on one GPU). Comparing PCI bus ids
// rather than counting GPUs lets one GPU per rank through CUDA_VISIBLE_DEVICES (each rank sees
// only its own, as cuda:0) still use NCCL.
struct NcclCandidate {
  enum class Vote : uint8_t { Able = 1, OtherBackend = 2, NoNccl = 3, NoDevice = 4 };
  Vote vote = Vote::NoDevice;
  std::string host;  // node name (the process group's hosts())
  std::string gpu;   // PCI bus id of the rank's device ("0000:3b:00.0"); empty unless Able
};

// This rank's vote: `requested` as from requested_backend(), `device_count` visible GPUs.
NcclCandidate::Vote nccl_vote(const std::string& requested, bool has_nccl, int device_count);

// The decision of rank `rank` from every rank's candidate (indexed by rank). The same on every
// rank for `use`; the reason is told from `rank`'s point of view. Throws Error{Unsupported} with
// the reason when `requested` is "nccl" and NCCL cannot be used ("kirzl was built without NCCL"
// when this rank's build lacks it).
NcclDecision choose_nccl(const std::string& requested, const std::vector<NcclCandidate>& ranks, int rank);

}  // namespace kirzl::comm::detail
