// Internal (MPI backend only): checking MPI return codes.
#pragma once

#include <mpi.h>

#include <string>

namespace kirzl::comm::detail {
// Throws Error{Mpi, "<call> failed: <MPI_Error_string>"}.
[[noreturn]] void mpi_fail(const char* call, int code);
}  // namespace kirzl::comm::detail

/// Runs an MPI call and turns a non-success return code into kirzl::Error{Mpi}. The communicators
/// use MPI_ERRORS_RETURN, so failures come back as codes instead of aborting the job.
#define KIRZL_MPI_CHECK(call)                                                   \
  do {                                                                          \
    int kirzl_mpi_rc_ = (call);                                                 \
    if (kirzl_mpi_rc_ != MPI_SUCCESS) ::kirzl::comm::detail::mpi_fail(#call, kirzl_mpi_rc_); \
  } while (0)
