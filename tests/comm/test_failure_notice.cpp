// The failure-notice protocol (Note [mpi timeouts], Note [mpi departure]) without MPI: every kind
// survives encoding, a bad kind is refused, and the decisions a rank takes from notices — answer
// and poison on a query, fail on a departure, the verdict of a timeout's roll call.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "comm/failure_notice.h"
#include "support/expect_error.hpp"

using namespace kirzl;
using namespace kirzl::comm::detail;
using namespace std::chrono_literals;

namespace {

CollectiveDesc all_reduce_desc(int64_t seq) {
  CollectiveDesc d;
  d.kind = OpKind::AllReduce;
  d.seq = seq;
  d.dtype = DType::f32;
  d.count = 1000;
  d.tag = "bucket 0";
  d.timeout = 500ms;
  return d;
}

Notice round_trip(const Notice& n) { return decode_notice(encode_notice(n)); }

void expect_same(const Notice& a, const Notice& b) {
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.from, b.from);
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.last_started, b.last_started);
  EXPECT_EQ(a.text, b.text);
  EXPECT_EQ(a.channel, b.channel);
}

}  // namespace

TEST(FailureNotice, EveryKindSurvivesEncoding) {
  const CollectiveDesc d = all_reduce_desc(12);
  const Notice q = query_notice(3, d);
  EXPECT_EQ(q.kind, NoticeKind::Query);
  EXPECT_EQ(q.from, 3);
  EXPECT_EQ(q.seq, 12);
  EXPECT_EQ(q.last_started, 12);
  EXPECT_EQ(q.text, d.long_str());
  expect_same(round_trip(q), q);

  const Notice a = answer_notice(1, q, 11, "is idle after all_reduce #11");
  EXPECT_EQ(a.kind, NoticeKind::Answer);
  EXPECT_EQ(a.from, 1);
  EXPECT_EQ(a.seq, 12);  // answers the query about #12
  EXPECT_EQ(a.last_started, 11);
  expect_same(round_trip(a), a);

  Notice bye = departure_notice(2, 7, "is idle after barrier #7");
  bye.channel = 0x123456789;  // the communicator it belongs to travels with it
  EXPECT_EQ(bye.kind, NoticeKind::Departure);
  EXPECT_EQ(bye.last_started, 7);
  expect_same(round_trip(bye), bye);

  Notice empty = departure_notice(0, 0, "");
  expect_same(round_trip(empty), empty);
}

TEST(FailureNotice, KindsHaveNames) {
  EXPECT_STREQ(notice_kind_name(NoticeKind::Query), "query");
  EXPECT_STREQ(notice_kind_name(NoticeKind::Answer), "answer");
  EXPECT_STREQ(notice_kind_name(NoticeKind::Departure), "departure");
  EXPECT_STREQ(notice_kind_name(static_cast<NoticeKind>(9)), "unknown");
}

TEST(FailureNotice, LongTextIsCutToTheWireSize) {
  Notice n = departure_notice(1, 2, std::string(1000, 'x') + "tail");
  const Notice back = round_trip(n);
  EXPECT_EQ(back.text, std::string(kNoticeTextBytes - 1, 'x'));
  EXPECT_EQ(back.from, 1);
  EXPECT_EQ(back.last_started, 2);
}

TEST(FailureNotice, UnknownKindIsRefused) {
  NoticeBytes b = encode_notice(departure_notice(5, 1, "gone"));
  for (int32_t bad : {0, 4, -1}) {
    std::memcpy(b.data(), &bad, sizeof bad);
    EXPECT_KIRZL_ERROR(decode_notice(b), ErrorCode::Internal, "failure notice", "unknown kind " + std::to_string(bad),
                       "from rank 5");
  }
}

TEST(FailureNotice, AQueryPoisonsOnlyARankThatHasNotReachedItsCollective) {
  const Notice q = query_notice(2, all_reduce_desc(5));
  EXPECT_TRUE(query_is_ahead(q, nullptr));  // idle
  const CollectiveDesc behind = all_reduce_desc(4), same = all_reduce_desc(5), later = all_reduce_desc(6);
  EXPECT_TRUE(query_is_ahead(q, &behind));
  EXPECT_FALSE(query_is_ahead(q, &same));  // this rank is in it: its own wait times out
  EXPECT_FALSE(query_is_ahead(q, &later));
  EXPECT_FALSE(query_is_ahead(answer_notice(2, q, 9, ""), nullptr));  // only queries
  EXPECT_EQ(query_poison_message(q, 0, "is idle after all_reduce #4"),
            "rank 2 timed out in " + all_reduce_desc(5).long_str() + " while this rank (0) is idle after all_reduce #4");
}

TEST(FailureNotice, ADepartureBlocksOnlyLaterCollectives) {
  const Notice bye = departure_notice(3, 6, "is idle after all_reduce #6");
  EXPECT_FALSE(departure_blocks(bye, all_reduce_desc(6)));  // it took part in #6
  EXPECT_TRUE(departure_blocks(bye, all_reduce_desc(7)));
  EXPECT_FALSE(departure_blocks(answer_notice(3, query_notice(0, all_reduce_desc(7)), 6, ""), all_reduce_desc(7)));
  const std::string m = departure_message(bye, all_reduce_desc(7), 1, "exchanging data");
  for (const char* w : {"all_reduce #7", "can never complete on rank 1 (exchanging data)", "rank 3 has left the group",
                        "last collective was #6", "it is idle after all_reduce #6."})
    EXPECT_NE(m.find(w), std::string::npos) << w << " in " << m;
}

TEST(FailureNotice, GraceIsHalfTheTimeoutWithinBounds) {
  EXPECT_EQ(timeout_grace(100ms), 200ms);
  EXPECT_EQ(timeout_grace(1000ms), 500ms);
  EXPECT_EQ(timeout_grace(60s), 2000ms);
}

TEST(FailureNotice, RollCallSortsRanksIntoArrivedMissingAndSilent) {
  const CollectiveDesc d = all_reduce_desc(5);
  TimeoutRollCall roll(5, 1, d);  // rank 1 timed out in #5
  EXPECT_FALSE(roll.complete());
  const Notice q = query_notice(1, d);
  roll.hear(answer_notice(0, q, 5, "is in all_reduce #5"));  // arrived
  roll.hear(answer_notice(2, q, 4, "is idle after all_reduce #4"));  // not arrived
  roll.hear(answer_notice(2, q, 5, "repeat"));  // a second answer from rank 2 is ignored
  roll.hear(answer_notice(3, query_notice(1, all_reduce_desc(4)), 5, "stale"));  // answers another query
  roll.hear(departure_notice(3, 9, "gone"));
  roll.hear(answer_notice(7, q, 5, "outside the group"));
  EXPECT_EQ(roll.arrived(), (std::vector<int>{0, 1}));
  EXPECT_EQ(roll.missing(), (std::vector<int>{2}));
  EXPECT_EQ(roll.silent(), (std::vector<int>{3, 4}));
  EXPECT_FALSE(roll.complete());
  // Rank 3's own query (it timed out in #5 too) counts as its answer.
  roll.hear(query_notice(3, d));
  roll.hear(answer_notice(4, q, 5, "is in all_reduce #5"));
  EXPECT_TRUE(roll.complete());
  EXPECT_EQ(roll.arrived(), (std::vector<int>{0, 1, 3, 4}));
  EXPECT_TRUE(roll.silent().empty());
}

TEST(FailureNotice, RollCallMessageNamesEveryGroup) {
  const CollectiveDesc d = all_reduce_desc(5);
  TimeoutRollCall roll(4, 0, d);
  const Notice q = query_notice(0, d);
  roll.hear(answer_notice(1, q, 4, "is idle after all_reduce #4"));
  roll.hear(answer_notice(2, q, 5, "is in all_reduce #5"));
  const std::string findings = roll.findings("exchanging data", "mpi");
  EXPECT_EQ(findings, d.long_str() + " timed out after 500 ms on rank 0 (exchanging data, mpi, 4 ranks). Not arrived: "
                                     "rank 1 is idle after all_reduce #4. No answer from rank 3 (hung in MPI or dead).");
  EXPECT_EQ(roll.message("exchanging data", "mpi"), findings + " Arrived: ranks 0, 2.");
  const std::string report = roll.report("MSG", "mpi");
  EXPECT_EQ(report, "kirzl comm: collective timeout (backend mpi, 4 ranks)\nMSG\nrank 1: is idle after all_reduce #4\n"
                    "rank 2: is in all_reduce #5\n");
  EXPECT_EQ(rank_list({3}), "rank 3");
  EXPECT_EQ(rank_list({0, 2}), "ranks 0, 2");
}
