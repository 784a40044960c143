// The examples' up-front path checks under MPI: each rank checks what it will read or write, and
// one collective tells every rank whether any check failed. Header-only because it needs kirzl's
// comm, which kirzl_example_args does not link.
//
// Note [paths checked by every rank]: only rank 0 writes the metrics log and the checkpoint, so
// only rank 0 can tell that their paths are wrong; if rank 0 alone stopped, the other ranks would
// wait in their first collective until the timeout. So right after comm::init every rank runs its
// checks and then joins one all-reduce (Min) of "the lowest rank with a problem, or world size":
// when any rank failed, that rank reports its problem (one line), and every other rank stops with
// StoppedByAnotherRank, which the example's main ends quietly with the same exit code.
#pragma once

#include <kirzl/comm.hpp>
#include <kirzl/kirzl.hpp>

#include <string>

#include "args.hpp"

namespace kirzl::examples {

/// Runs `check` (which throws ArgsError) on this rank, then one all-reduce with every other rank;
/// throws this rank's ArgsError when it is the lowest rank whose check failed, and
/// StoppedByAnotherRank when a check failed on another rank. See Note [paths checked by every rank].
template <class Check>
void check_paths_on_every_rank(const comm::ProcessGroup& world, Check check) {
  std::string problem;
  bool failed = false;
  try {
    check();
  } catch (const ArgsError& e) {
    failed = true;
    problem = e.what();
  }
  Tensor first = from_vector<double>({static_cast<double>(failed ? world.rank() : world.size())}, {1});
  world.communicator()->all_reduce(first, {.op = comm::ReduceOp::Min, .tag = "path checks"}).wait();
  const int first_failed = static_cast<int>(first.item());
  if (first_failed == world.size()) return;
  if (first_failed == world.rank()) throw ArgsError(problem);
  throw StoppedByAnotherRank(first_failed);
}

}  // namespace kirzl::examples
