// Internal (MPI backend only): which node each rank of an MPI communicator is on, for the
// hierarchical all-reduce (hierarchical.h). See Note [mpi nodes].
#pragma once

#include <mpi.h>

#include "comm/hierarchical.h"
#include "comm/mpi_runtime.h"

namespace kirzl::comm::detail {

// Collective over `comm` (blocking, on the caller's thread; takes the runtime's guard).
NodeMap mpi_node_map(MpiRuntime& rt, MPI_Comm comm);

}  // namespace kirzl::comm::detail
