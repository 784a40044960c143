// The in-process transport the ring is tested over: messages from one peer fill the receives in
// posting order, each channel on its own; test() completes what has arrived without blocking; and
// every misuse or failure — a wrong peer or channel, a size that does not match, a peer that never
// sends or has left, whether waited for or tested — is an Error naming the ranks and sizes, never a
// hang.
#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include "comm/in_process_transport.h"
#include "support/expect_error.hpp"

using namespace kirzl;
using namespace kirzl::comm::detail;
using namespace std::chrono_literals;

namespace {
std::array<std::byte, 4> bytes_of(uint32_t v) {
  std::array<std::byte, 4> b;
  std::memcpy(b.data(), &v, 4);
  return b;
}
uint32_t value_of(const std::array<std::byte, 4>& b) {
  uint32_t v;
  std::memcpy(&v, b.data(), 4);
  return v;
}
}  // namespace

TEST(InProcessTransport, MessagesFromOnePeerFillReceivesInPostingOrder) {
  auto t = make_in_process_transports(3);
  ASSERT_EQ(t[0]->size(), 3);
  EXPECT_EQ(t[2]->rank(), 2);
  const auto a = bytes_of(11), b = bytes_of(22), c = bytes_of(33);
  std::array<std::byte, 4> ra{}, rb{}, rc{};
  const auto qa = t[1]->receive(0, ra.data(), 4);
  const auto qc = t[1]->receive(2, rc.data(), 4);
  const auto qb = t[1]->receive(0, rb.data(), 4);
  t[0]->send(1, a.data(), 4);
  t[0]->send(1, b.data(), 4);
  t[2]->send(1, c.data(), 4);
  // Waiting for the second receive from rank 0 completes the first one too, in order.
  const Transport::Request second[] = {qb};
  t[1]->wait(second);
  EXPECT_EQ(value_of(ra), 11u);
  EXPECT_EQ(value_of(rb), 22u);
  const Transport::Request rest[] = {qa, qc};
  t[1]->wait(rest);
  EXPECT_EQ(value_of(rc), 33u);
}

TEST(InProcessTransport, EmptyMessagesAndSingleRankGroups) {
  auto t = make_in_process_transports(2);
  std::byte none{};
  const auto q = t[0]->receive(1, &none, 0);
  const auto s = t[1]->send(0, &none, 0);
  const Transport::Request both[] = {q};
  t[0]->wait(both);
  const Transport::Request sent[] = {s};
  t[1]->wait(sent);
  EXPECT_EQ(make_in_process_transports(1).size(), 1u);
  EXPECT_KIRZL_ERROR(make_in_process_transports(0), ErrorCode::InvalidArgument, "at least 1");
}

TEST(InProcessTransport, MisuseIsAnError) {
  auto t = make_in_process_transports(2);
  std::array<std::byte, 8> buf{};
  EXPECT_KIRZL_ERROR(t[0]->send(0, buf.data(), 8), ErrorCode::InvalidArgument, "rank 0 cannot send to rank 0");
  EXPECT_KIRZL_ERROR(t[0]->send(2, buf.data(), 8), ErrorCode::InvalidArgument, "rank 0 cannot send to rank 2",
                     "group of 2");
  EXPECT_KIRZL_ERROR(t[1]->receive(-1, buf.data(), 8), ErrorCode::InvalidArgument, "cannot receive from rank -1");
  const Transport::Request never[] = {5};
  EXPECT_KIRZL_ERROR(t[0]->wait(never), ErrorCode::Internal, "request 5", "never posted");
  // A message of another size than the receive posted for it.
  const auto q = t[1]->receive(0, buf.data(), 8);
  t[0]->send(1, buf.data(), 4);
  const Transport::Request mismatched[] = {q};
  EXPECT_KIRZL_ERROR(t[1]->wait(mismatched), ErrorCode::Internal, "receive of 8 B from rank 0", "has 4 B");
}

TEST(InProcessTransport, ASilentPeerTimesOut) {
  auto t = make_in_process_transports(2, {.timeout = 50ms});
  std::array<std::byte, 8> buf{};
  const Transport::Request q[] = {t[0]->receive(1, buf.data(), 8)};
  EXPECT_KIRZL_ERROR(t[0]->wait(q), ErrorCode::Timeout, "rank 0 waited 50 ms for 8 B from rank 1");
}

TEST(InProcessTransport, APeerThatLeftDeliversWhatItSentThenFailsTheRest) {
  auto t = make_in_process_transports(2);  // the default timeout: leaving, not waiting, ends the wait
  const auto a = bytes_of(7);
  std::array<std::byte, 4> ra{}, rb{};
  const Transport::Request first[] = {t[0]->receive(1, ra.data(), 4)};
  const Transport::Request second[] = {t[0]->receive(1, rb.data(), 4)};
  t[1]->send(0, a.data(), 4);
  t[1].reset();
  t[0]->wait(first);
  EXPECT_EQ(value_of(ra), 7u);
  EXPECT_KIRZL_ERROR(t[0]->wait(second), ErrorCode::InvalidArgument, "rank 0 needs 4 B from rank 1",
                     "has left the group");
}

TEST(InProcessTransport, ChannelsAreIndependentFifos) {
  auto t = make_in_process_transports(2);
  const auto a = bytes_of(1), b = bytes_of(2), c = bytes_of(3);
  std::array<std::byte, 4> r0{}, r1{}, r2{};
  // Posted in another order than sent: channel 2 first, then channel 0 twice.
  const auto q2 = t[1]->receive(0, r2.data(), 4, 2);
  const auto q0 = t[1]->receive(0, r0.data(), 4, 0);
  const auto q1 = t[1]->receive(0, r1.data(), 4, 0);
  t[0]->send(1, a.data(), 4, 0);
  t[0]->send(1, b.data(), 4, 0);
  t[0]->send(1, c.data(), 4, 2);
  const Transport::Request all[] = {q0, q1, q2};
  t[1]->wait(all);
  EXPECT_EQ(value_of(r0), 1u);
  EXPECT_EQ(value_of(r1), 2u);
  EXPECT_EQ(value_of(r2), 3u);
  std::array<std::byte, 4> buf{};
  EXPECT_KIRZL_ERROR(t[0]->send(1, buf.data(), 4, Transport::kChannels), ErrorCode::InvalidArgument, "channel 4");
  EXPECT_KIRZL_ERROR(t[0]->receive(1, buf.data(), 4, -1), ErrorCode::InvalidArgument, "channel -1");
}

TEST(InProcessTransport, TestCompletesWhatHasArrivedWithoutBlocking) {
  auto t = make_in_process_transports(2, {.timeout = 10s});
  const auto a = bytes_of(5), b = bytes_of(6);
  std::array<std::byte, 4> ra{}, rb{};
  const Transport::Request first[] = {t[0]->receive(1, ra.data(), 4, 1)};
  const Transport::Request second[] = {t[0]->receive(1, rb.data(), 4, 1)};
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(t[0]->test(first));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "test() blocked";
  t[1]->send(0, a.data(), 4, 1);
  EXPECT_FALSE(t[0]->test(second));  // completes the first on the way, in order
  EXPECT_EQ(value_of(ra), 5u);
  EXPECT_TRUE(t[0]->test(first));
  t[1]->send(0, b.data(), 4, 1);
  EXPECT_TRUE(t[0]->test(second));
  EXPECT_EQ(value_of(rb), 6u);
  const Transport::Request sent[] = {t[1]->send(0, a.data(), 4, 3)};
  EXPECT_TRUE(t[1]->test(sent));  // sends complete when posted
}

TEST(InProcessTransport, TestingASilentPeerTimesOutAndALeftPeerFails) {
  auto t = make_in_process_transports(3, {.timeout = 50ms});
  std::array<std::byte, 8> buf{};
  const Transport::Request q[] = {t[0]->receive(1, buf.data(), 8)};
  const auto start = std::chrono::steady_clock::now();
  bool done = false;
  const auto test_until_done = [&] {
    while (!done) done = t[0]->test(q);
  };
  EXPECT_KIRZL_ERROR(test_until_done(), ErrorCode::Timeout, "rank 0 tested for 50 ms without receiving anything");
  EXPECT_FALSE(done);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  const Transport::Request from2[] = {t[0]->receive(2, buf.data(), 8, 1)};
  t[2].reset();
  EXPECT_KIRZL_ERROR(t[0]->test(from2), ErrorCode::InvalidArgument, "rank 0 needs 8 B from rank 2", "has left the group");
}
