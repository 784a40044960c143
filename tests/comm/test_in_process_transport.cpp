// The in-process transport the ring is tested over: messages from one peer fill the receives in
// posting order, and every misuse or failure — a wrong peer, a size that does not match, a peer
// that never sends or has left — is an Error naming the ranks and sizes, never a hang.
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
