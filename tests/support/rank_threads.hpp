// Runs a function as every rank of an in-process group, one thread per rank: the tests' stand-in
// for N processes under mpirun.
#pragma once

#include <exception>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

#include <kirzl/comm.hpp>
#include <kirzl/core/generator.hpp>

namespace kirzl::testing {

/// Calls fn(rank, communicator) on n threads of comm::make_in_process_group(n, options), each
/// with its own default generator as a process would have (Note [per-thread default generator]);
/// joins them all and returns each rank's exception (null where fn returned). fn takes the
/// communicator as `comm::Communicator&` or as `std::shared_ptr<comm::Communicator>` (what DDP
/// and the optimizers keep). A finite options.timeout turns a hang into Error{Timeout}.
template <typename F>
std::vector<std::exception_ptr> rank_thread_errors(int n, F&& fn, comm::InProcessOptions options = {}) {
  auto group = comm::make_in_process_group(n, options);
  std::vector<std::thread> threads;
  std::vector<std::exception_ptr> errors(n);
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      GeneratorScope rng;
      try {
        if constexpr (std::is_invocable_v<F&, int, comm::Communicator&>) fn(r, *group[r]);
        else fn(r, group[r]);
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

/// rank_thread_errors, then rethrows the first rank's failure (by rank order).
template <typename F>
void run_rank_threads(int n, F&& fn, comm::InProcessOptions options = {}) {
  for (auto& e : rank_thread_errors(n, std::forward<F>(fn), options))
    if (e) std::rethrow_exception(e);
}

}  // namespace kirzl::testing
