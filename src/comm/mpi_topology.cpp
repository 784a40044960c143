// The nodes of an MPI communicator. See mpi_topology.h.
//
// Note [mpi nodes]: a node is what MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) groups together (the
// ranks that can share memory: one host, or one emulated node of scripts/multinode.sh, whose
// ranks Open MPI starts through a daemon of their own). Each rank's key is the lowest
// MPI_COMM_WORLD rank of its group, gathered over the communicator (so a split communicator knows
// its own nodes). KIRZL_EMULATE_NODES=k replaces the key by world rank / k: consecutive blocks of k
// ranks act as nodes, which lets one machine test the hierarchical all-reduce. It changes only the
// all-reduce's view of the topology, not local_rank/local_size.
#include "comm/mpi_topology.h"

#include <vector>

#include "comm/mpi_check.h"
#include "core/environment.h"

namespace kirzl::comm::detail {

NodeMap mpi_node_map(MpiRuntime& rt, MPI_Comm comm) {
  static const auto emulate = env::integer("KIRZL_EMULATE_NODES");
  auto g = rt.guard();
  int world_rank = 0, size = 0;
  KIRZL_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank));
  KIRZL_MPI_CHECK(MPI_Comm_size(comm, &size));
  int64_t key = 0;
  if (emulate) {
    key = world_rank / *emulate;
  } else {
    MPI_Comm node = MPI_COMM_NULL;
    KIRZL_MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
    int lowest = world_rank;
    KIRZL_MPI_CHECK(MPI_Allreduce(&world_rank, &lowest, 1, MPI_INT, MPI_MIN, node));
    KIRZL_MPI_CHECK(MPI_Comm_free(&node));
    key = lowest;
  }
  std::vector<int64_t> keys(static_cast<size_t>(size));
  KIRZL_MPI_CHECK(MPI_Allgather(&key, 1, MPI_INT64_T, keys.data(), 1, MPI_INT64_T, comm));
  return NodeMap::from_keys(keys);
}

}  // namespace kirzl::comm::detail
