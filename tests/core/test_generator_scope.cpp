// GeneratorScope: per-thread default generators, so that in-process ranks draw as processes would
// (Note [per-thread default generator]).
#include <gtest/gtest.h>

#include <barrier>
#include <exception>
#include <thread>
#include <vector>

#include <kirzl/kirzl.hpp>

namespace kirzl {
namespace {

// What one "rank" draws from the default generator: randn, a dropout mask, rand, in `rounds`
// rounds; `between` runs before every draw (a barrier, to interleave the threads' draws).
template <class Between>
std::vector<std::vector<float>> draws(int rounds, Between&& between) {
  std::vector<std::vector<float>> out;
  for (int i = 0; i < rounds; ++i) {
    between();
    out.push_back(randn({16}).to_vector<float>());
    between();
    out.push_back(dropout(ones({32}), 0.5).to_vector<float>());
    between();
    out.push_back(rand({8}).to_vector<float>());
  }
  return out;
}

constexpr int kRounds = 4;
constexpr uint64_t kSeed = 5;

// The reference: one thread, one process-like stream seeded kSeed.
std::vector<std::vector<float>> single_thread_draws() {
  std::vector<std::vector<float>> ref;
  std::thread([&] {
    GeneratorScope scope(kSeed);
    ref = draws(kRounds, [] {});
  }).join();
  return ref;
}

TEST(GeneratorScope, RankThreadsDrawLikeSeparateProcesses) {
  const auto ref = single_thread_draws();
  const int n = 4;
  std::barrier sync(n);
  std::vector<std::vector<std::vector<float>>> got(n);
  std::vector<std::exception_ptr> errors(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      try {
        GeneratorScope scope(kSeed);
        // Every thread makes its k-th draw between the same two barriers: with a shared stream
        // they would take turns on it and no two would see the reference.
        got[r] = draws(kRounds, [&] { sync.arrive_and_wait(); });
      } catch (...) {
        errors[r] = std::current_exception();
        sync.arrive_and_drop();
      }
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < n; ++r) {
    if (errors[r]) std::rethrow_exception(errors[r]);
    EXPECT_EQ(got[r], ref) << "rank thread " << r << " drew other numbers than a single thread seeded " << kSeed;
  }
}

TEST(GeneratorScope, WithoutAScopeEveryThreadSharesTheProcessDefault) {
  Generator* main_default = &default_generator();
  Generator* other_default = nullptr;
  std::thread([&] { other_default = &default_generator(); }).join();
  EXPECT_EQ(other_default, main_default);

  // A scope on another thread neither replaces nor advances this thread's default.
  manual_seed(21);
  const uint64_t offset = default_generator().offset();
  std::thread([&] {
    GeneratorScope scope(21);
    manual_seed(99);
    randn({64});
  }).join();
  EXPECT_EQ(&default_generator(), main_default);
  EXPECT_EQ(default_generator().seed(), 21u);
  EXPECT_EQ(default_generator().offset(), offset);
}

TEST(GeneratorScope, NestedScopesRestoreTheirPredecessor) {
  Generator* process = &default_generator();
  manual_seed(3);
  const auto process_first = randn({4}).to_vector<float>();
  {
    GeneratorScope outer(8);
    EXPECT_EQ(&default_generator(), &outer.generator());
    const auto a = randn({4}).to_vector<float>();
    {
      Generator mine(8);
      GeneratorScope inner(mine);
      EXPECT_EQ(&default_generator(), &mine);
      EXPECT_EQ(randn({4}).to_vector<float>(), a) << "a borrowed generator seeded alike starts alike";
      manual_seed(1234);  // re-seeds `mine`, not the outer scope's
      EXPECT_EQ(mine.seed(), 1234u);
    }
    EXPECT_EQ(&default_generator(), &outer.generator());
    EXPECT_EQ(outer.generator().seed(), 8u);
    // The outer stream continues where it was: its second draw, not a repeat of the first.
    Generator check(8);
    randn({4}, {}, &check);
    EXPECT_EQ(randn({4}).to_vector<float>(), randn({4}, {}, &check).to_vector<float>());
  }
  EXPECT_EQ(&default_generator(), process);
  manual_seed(3);
  EXPECT_EQ(randn({4}).to_vector<float>(), process_first);
}

}  // namespace
}  // namespace kirzl
