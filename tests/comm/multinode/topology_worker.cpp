// A rank that says where it runs, for the multinode tests (test_multinode.cpp). Under mpirun:
//   topology_worker
// Every rank prints one line:
//   topology: rank R of S local_rank L local_size LS host H nodes N
// where L and LS are what kirzl::comm::init() detected from the launcher, H is this process's host
// name (gethostname) and N the number of distinct host names in ProcessGroup::hosts() (gathered by
// init() from every rank). The line is written whole, so that ranks' lines do not interleave.
#include <unistd.h>

#include <cstdio>
#include <set>
#include <string>

#include "kirzl/kirzl.hpp"

int main() {
  try {
    auto pg = kirzl::comm::init();
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    const std::set<std::string> nodes(pg.hosts().begin(), pg.hosts().end());
    std::printf("topology: rank %d of %d local_rank %d local_size %d host %s nodes %zu\n", pg.rank(), pg.size(),
                pg.local_rank(), pg.local_size(), host, nodes.size());
    std::fflush(stdout);
    pg.barrier().wait();
  } catch (const kirzl::Error& e) {
    std::fprintf(stderr, "topology_worker: %s\n", e.what());
    return 1;
  }
  return 0;
}
