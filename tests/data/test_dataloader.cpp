#include "kirzl/data/dataloader.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "kirzl/kirzl.hpp"
#include "support/expect_error.hpp"

using namespace kirzl;
using namespace kirzl::data;

namespace {

TensorDataset numbered(int64_t n) { return TensorDataset(arange(n).to(DType::f32).reshape({n, 1}), arange(n)); }

std::vector<std::vector<int64_t>> epoch(DataLoader& loader) {
  std::vector<std::vector<int64_t>> batches;
  for (auto& [x, y] : loader) {
    EXPECT_EQ(x.size(0), y.size(0));
    EXPECT_EQ(x.to_vector<float>().size(), y.to_vector<int64_t>().size());
    // Inputs and targets stay paired.
    auto xs = x.to_vector<float>();
    auto ys = y.to_vector<int64_t>();
    for (size_t i = 0; i < ys.size(); ++i) EXPECT_EQ(xs[i], static_cast<float>(ys[i]));
    batches.push_back(ys);
  }
  return batches;
}

// Records which thread loads and can be made slow or failing.
class ProbeDataset : public Dataset {
 public:
  int64_t size() const override { return 8; }
  Example get(int64_t i) const override {
    if (i == fail_at) throw Error(ErrorCode::Io, "probe: example " + std::to_string(i) + " is unreadable");
    loads.fetch_add(1);
    {
      std::lock_guard<std::mutex> lock(mu);
      loader_thread = std::this_thread::get_id();
    }
    return {full({1}, static_cast<double>(i)), full({}, static_cast<double>(i), {.dtype = DType::i64})};
  }
  int64_t fail_at = -1;
  mutable std::atomic<int> loads{0};
  mutable std::mutex mu;
  mutable std::thread::id loader_thread;
};

}  // namespace

TEST(DataLoader, SequentialBatchesWithAndWithoutDropLast) {
  auto ds = numbered(10);
  DataLoader keep(ds, {.batch_size = 4});
  EXPECT_EQ(keep.num_batches(), 3);
  EXPECT_EQ(epoch(keep), (std::vector<std::vector<int64_t>>{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}}));
  DataLoader drop(ds, {.batch_size = 4, .drop_last = true});
  EXPECT_EQ(drop.num_batches(), 2);
  EXPECT_EQ(drop.num_examples(), 8);
  EXPECT_EQ(epoch(drop).size(), 2u);
}

TEST(DataLoader, ShuffleIsSeededAndChangesPerEpoch) {
  auto ds = numbered(50);
  DataLoader a(ds, {.batch_size = 8, .shuffle = true, .seed = 3});
  DataLoader b(ds, {.batch_size = 8, .shuffle = true, .seed = 3, .prefetch = 0});
  auto a0 = epoch(a), a1 = epoch(a);
  EXPECT_EQ(a0, epoch(b));  // same seed, same order: with or without the prefetch thread
  EXPECT_EQ(a1, epoch(b));
  EXPECT_NE(a0, a1);
  std::vector<int64_t> all;
  for (auto& batch : a0) all.insert(all.end(), batch.begin(), batch.end());
  std::sort(all.begin(), all.end());
  for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(all[static_cast<size_t>(i)], i);
  a.set_epoch(0);  // a resumed run replays the order of epoch 0
  EXPECT_EQ(epoch(a), a0);
}

TEST(DataLoader, FollowsADistributedSampler) {
  auto ds = numbered(11);
  DistributedSampler s(ds.size(), 1, 2, {.seed = 9});
  DataLoader loader(ds, {.batch_size = 4, .sampler = &s});
  EXPECT_EQ(loader.num_batches(), 2);  // 6 samples per rank
  std::vector<int64_t> seen;
  for (auto& b : epoch(loader)) seen.insert(seen.end(), b.begin(), b.end());
  EXPECT_EQ(seen, s.indices());
  s.set_epoch(1);
  std::vector<int64_t> next;
  for (auto& b : epoch(loader)) next.insert(next.end(), b.begin(), b.end());
  EXPECT_EQ(next, s.indices());
  EXPECT_NE(next, seen);
}

TEST(DataLoader, LoadsAheadOnABackgroundThread) {
  ProbeDataset ds;
  DataLoader loader(ds, {.batch_size = 2, .prefetch = 2});
  auto it = loader.begin();  // batch 0 consumed; batches 1 and 2 are prepared meanwhile
  // Waits (up to 30 s, for a loaded machine) until the loader has prepared what it may.
  for (int i = 0; i < 6000 && ds.loads.load() < 6; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(ds.loads.load(), 6);  // 3 batches of 2, and no more than prefetch ahead
  // Not synchronisation: a chance for a loader that ignored `prefetch` to load more.
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(ds.loads.load(), 6);
  ++it;
  EXPECT_EQ(it->target.to_vector<int64_t>(), (std::vector<int64_t>{2, 3}));
}

TEST(DataLoader, LoadsOnAnotherThreadUnlessPrefetchIsZero) {
  ProbeDataset ds;
  for (int prefetch : {0, 2}) {
    DataLoader loader(ds, {.batch_size = 4, .prefetch = prefetch});
    for (auto& b : loader) (void)b;
    std::lock_guard<std::mutex> lock(ds.mu);
    EXPECT_EQ(ds.loader_thread == std::this_thread::get_id(), prefetch == 0);
  }
}

TEST(DataLoader, LoadingErrorsReachTheIteratingThread) {
  ProbeDataset ds;
  ds.fail_at = 5;
  DataLoader loader(ds, {.batch_size = 2});
  int seen = 0;
  EXPECT_KIRZL_ERROR(
      [&] {
        for (auto& b : loader) {
          (void)b;
          ++seen;
        }
      }(),
      ErrorCode::Io, "example 5 is unreadable");
  EXPECT_EQ(seen, 2);
  ds.fail_at = -1;
  EXPECT_EQ(epoch(loader).size(), 4u);  // the next epoch starts afresh
}

TEST(DataLoader, BreakingEarlyAndRestartingIsSafe) {
  auto ds = numbered(100);
  DataLoader loader(ds, {.batch_size = 3, .prefetch = 3});
  for (int rep = 0; rep < 20; ++rep) {
    int k = 0;
    for (auto& b : loader) {
      (void)b;
      if (++k == 2) break;
    }
  }
  EXPECT_EQ(epoch(loader).size(), 34u);
}

TEST(DataLoader, RejectsBadOptions) {
  auto ds = numbered(4);
  EXPECT_KIRZL_ERROR(DataLoader(ds, {.batch_size = 0}), ErrorCode::InvalidArgument, "batch_size");
  DistributedSampler s(10, 0, 1);
  EXPECT_KIRZL_ERROR(DataLoader(ds, {.batch_size = 2, .sampler = &s}), ErrorCode::InvalidArgument, "index", "4 examples");
}
