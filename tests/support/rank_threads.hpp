// Runs a function as every rank of an in-process group, one thread per rank: the tests' stand-in
// for N processes under mpirun.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <kirzl/comm.hpp>
#include <kirzl/core/generator.hpp>

namespace kirzl::testing {

/// Calls fn(rank, communicator) on n threads of comm::make_in_process_group(n), each with its own
/// default generator as a process would have (Note [per-thread default generator]); joins them
/// all, then rethrows the first rank's failure (by rank order).
inline void run_rank_threads(int n, const std::function<void(int, std::shared_ptr<comm::Communicator>)>& fn) {
  auto group = comm::make_in_process_group(n);
  std::vector<std::thread> threads;
  std::vector<std::exception_ptr> errors(n);
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      GeneratorScope rng;
      try {
        fn(r, group[r]);
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace kirzl::testing
