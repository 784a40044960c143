// Internal: whether this process's distributed job can still end normally.
//
// Note [abort on failure]: MPI_Finalize (and ncclCommDestroy) are collective: they wait for every
// rank. After a rank has gone silent (stopped, hung, killed) or MPI itself has failed, a process
// that finalises waits for ever, and the launcher waits with it, burning the allocation after the
// timeout report was already printed. So the backends record here every failure that means a
// peer may never reach the end of the program — a timeout in which some rank gave no answer, an
// MPI error, an NCCL error or watchdog timeout — and the MPI runtime's teardown then aborts the
// job (MPI_Abort: the launcher kills every rank) instead of finalising. Failures that leave every
// rank alive and answering (a mismatch, which all ranks see; a timeout whose late ranks answered;
// a peer that left cleanly) still finalise, since every rank will get there; on the MPI backend,
// that is: the NCCL communicator aborts itself on every failure its watchdog sees, a mismatch
// included (peers may be inside NCCL kernels that only an abort ends), so it marks the job failed
// each time (abort_() in nccl_communicator.cpp). A finalise that does
// not return within the world's timeout aborts too (mpi_runtime.cpp), and an exception that
// escapes main() aborts at once (Note [uncaught exceptions], registry.cpp).
#pragma once

#include <optional>
#include <string>

namespace kirzl::comm::detail {

// Records that the job cannot end normally, and why; the first reason is kept. Thread-safe.
void mark_job_failed(const std::string& reason) noexcept;

// The recorded reason, if the job has failed.
std::optional<std::string> job_failure();

// This process's rank in the world and the world's size, recorded when MPI is initialised, for the
// abort report: once MPI_Finalize has begun (a finalise that waits too long is aborted), MPI can
// no longer be asked. {-1, 0} before.
struct WorldPlace {
  int rank = -1;
  int size = 0;
};
void record_world_place(WorldPlace place) noexcept;
WorldPlace world_place() noexcept;

}  // namespace kirzl::comm::detail
