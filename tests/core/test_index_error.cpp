// The bad-index record behind the deferred CUDA index checks (Note [deferred index check]):
// first error wins, the message, and the check-at-sync hook, on a host-memory flag.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include <kirzl/kirzl.hpp>

#include "core/index_error.h"
#include "support/expect_error.hpp"

namespace kirzl::index_error {
namespace {

IndexErrorRecord ce_record(int64_t position, int64_t value) {
  return make_record(IndexOp::CrossEntropy, Shape{2, 3}, static_cast<int32_t>(DType::i64), 0, position, value, 10,
                     -100);
}

TEST(IndexErrorMessage, NamesTheOpTheValueWhereAndTheRange) {
  EXPECT_EQ(index_error_message(make_record(IndexOp::Embedding, Shape{3}, static_cast<int32_t>(DType::i64), 0, 2, 10,
                                            10, 0)),
            "embedding: index 10 at flat position 2 of indices i64[3] on cuda:0 is out of range for a weight with 10 "
            "rows (expected 0 .. 9)");
  EXPECT_EQ(index_error_message(ce_record(4, -5)),
            "cross_entropy: target -5 at position [1, 1] is out of range for 10 classes (expected 0 .. 9 or "
            "ignore_index -100)");
  EXPECT_EQ(index_error_message(make_record(IndexOp::LinearCrossEntropy, Shape{4}, static_cast<int32_t>(DType::i32), 1,
                                            3, 7, 5, -1)),
            "linear_cross_entropy: target 7 at row 3 is out of range for 5 classes (expected 0 .. 4 or ignore_index -1)");
}

TEST(IndexErrorMessage, EagerCpuChecksGiveTheSameText) {
  // The CPU check throws at the call with the message the deferred CUDA check throws later.
  Tensor w = zeros({10, 4});
  EXPECT_KIRZL_ERROR(embedding(w, from_vector<int64_t>({1, 2, 10})), ErrorCode::InvalidArgument,
                     "embedding: index 10 at flat position 2 of indices i64[3] on cpu is out of range for a weight "
                     "with 10 rows (expected 0 .. 9)");
  EXPECT_KIRZL_ERROR(cross_entropy(zeros({2, 3, 2}), from_vector<int64_t>({0, 1, 2, 3}).reshape({2, 2})),
                     ErrorCode::InvalidArgument, "cross_entropy: target 3 at position [1, 1] is out of range for 3 "
                     "classes (expected 0 .. 2 or ignore_index -100)");
  EXPECT_KIRZL_ERROR(linear_cross_entropy(zeros({3, 2}), zeros({4, 2}), from_vector<int32_t>({0, -100, 4})),
                     ErrorCode::InvalidArgument, "linear_cross_entropy: target 4 at row 2 is out of range for 4 "
                     "classes (expected 0 .. 3 or ignore_index -100)");
}

TEST(HostIndexErrorFlag, EmptyFlagThrowsNothing) {
  HostIndexErrorFlag flag;
  EXPECT_FALSE(flag.take().has_value());
  EXPECT_NO_THROW(throw_if_index_error(flag));
}

TEST(HostIndexErrorFlag, FirstErrorWinsUntilTaken) {
  HostIndexErrorFlag flag;
  EXPECT_TRUE(flag.publish(ce_record(1, 11)));
  EXPECT_FALSE(flag.publish(ce_record(0, 12)));  // a later error, even at a lower position, is dropped
  std::optional<IndexErrorRecord> r = flag.take();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->op, IndexOp::CrossEntropy);
  EXPECT_EQ(r->position, 1);
  EXPECT_EQ(r->value, 11);
  EXPECT_EQ(r->limit, 10);
  EXPECT_EQ(r->ignore_index, -100);
  ASSERT_EQ(r->ndim, 2);
  EXPECT_EQ(r->shape[0], 2);
  EXPECT_EQ(r->shape[1], 3);
  EXPECT_FALSE(flag.take().has_value()) << "taking clears the flag";
  // Cleared, the flag takes the next error.
  EXPECT_TRUE(flag.publish(ce_record(5, 99)));
  EXPECT_EQ(flag.take()->value, 99);
}

TEST(HostIndexErrorFlag, CheckAtSyncThrowsOnceWithTheRecordsMessage) {
  HostIndexErrorFlag flag;
  flag.publish(ce_record(2, 10));
  EXPECT_KIRZL_ERROR(throw_if_index_error(flag), ErrorCode::InvalidArgument,
                     "cross_entropy: target 10 at position [0, 2] is out of range for 10 classes (expected 0 .. 9 or "
                     "ignore_index -100)");
  EXPECT_NO_THROW(throw_if_index_error(flag)) << "each error is reported once";
}

TEST(HostIndexErrorFlag, ConcurrentPublishersLeaveExactlyOneWholeRecord) {
  // As check kernels on several streams of one device: one claim succeeds, and the record taken
  // is entirely that publisher's (never fields of two).
  for (int round = 0; round < 20; ++round) {
    HostIndexErrorFlag flag;
    std::atomic<int> winners{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
      threads.emplace_back([&, t] {
        if (flag.publish(ce_record(t, 1000 + t))) winners.fetch_add(1);
      });
    for (std::thread& th : threads) th.join();
    EXPECT_EQ(winners.load(), 1);
    std::optional<IndexErrorRecord> r = flag.take();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->value, 1000 + r->position);
  }
}

TEST(TakeRecord, AClaimedRecordStillBeingWrittenIsNotTaken) {
  // A check kernel on another stream may hold the claim and be writing the fields when a
  // synchronising point looks: nothing is reported until `ready` is set.
  IndexErrorRecord shared = ce_record(1, 11);
  shared.ready = 0;
  EXPECT_FALSE(take_record(&shared).has_value());
  shared.ready = 1;
  std::optional<IndexErrorRecord> r = take_record(&shared);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->value, 11);
  EXPECT_EQ(shared.ready, 0);
}

TEST(SyncIndexChecks, DeferredUnlessTheEnvironmentAsks) {
  const char* v = std::getenv("KIRZL_SYNC_INDEX_CHECKS");
  const bool asked = v != nullptr && v[0] != '\0' && v[0] != '0';
  EXPECT_EQ(cuda::sync_index_checks(), asked);
}

}  // namespace
}  // namespace kirzl::index_error
