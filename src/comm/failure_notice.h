// Internal: the failure-notice protocol — how a rank whose collective timed out asks the others
// where they are, how they answer, and how a rank says that it has left the group. The messages
// and the decisions are here, independent of MPI; the MPI communicator carries them over a
// private control communicator (mpi_notice_channel.h).
//
// Note [mpi timeouts]: every wait polls MPI_Test until its deadline. A rank whose collective times
// out sends a query to all ranks over a private control communicator (a duplicate); every
// communicator answers queries from its polling loops and, when idle, from its worker every
// 20 ms, saying which collective it last started. The timed-out rank waits a short grace period
// for the answers (timeout_grace), then fails with a message naming the ranks that had not
// arrived (and where they are) and the ranks that did not answer (TimeoutRollCall). A rank that
// receives a query for a collective it has not started is poisoned too (its next collective fails
// at once with Error{Timeout}; query_is_ahead). Abandoned MPI requests cannot be cancelled (MPI
// forbids cancelling collectives), so their buffers are kept alive until exit and a poisoned
// communicator is never freed.
//
// Note [mpi departure]: a communicator that is destroyed tells the other ranks that it will never
// start a collective after its last one, so a peer already waiting for a later one (this rank
// failed, e.g. with an exception before its next collective) fails at once instead of at its
// timeout (departure_blocks).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "comm/collective.h"

namespace kirzl::comm::detail {

// What a notice says.
enum class NoticeKind : int32_t {
  Query = 1,      // "my collective `seq` timed out; where are you?"
  Answer = 2,     // the answer to a query: where the sender is
  Departure = 3,  // "my communicator is gone; my last collective was `last_started`"
};

// "query", "answer", "departure"; "unknown" for a value outside the enum.
const char* notice_kind_name(NoticeKind k);

struct Notice {
  NoticeKind kind = NoticeKind::Query;
  int32_t from = -1;         // the sender's rank
  int64_t seq = 0;           // query, answer: the collective that timed out
  int64_t last_started = 0;  // the sender's last started collective
  std::string text;          // query: the collective's description; answer, departure: where the sender is
  // The communicator the notice belongs to: its channel's id (Note [notice channel id],
  // mpi_notice_channel.cpp); set by the channel when it sends, checked when it receives.
  int64_t channel = 0;
};

// On the wire a notice has a fixed size, so a receive can always be posted in advance; the text
// is cut to kNoticeTextBytes - 1 bytes. Fields are in the machine's byte order (the ranks of one
// job share it).
inline constexpr size_t kNoticeTextBytes = 400;
inline constexpr size_t kNoticeBytes = 4 + 4 + 8 + 8 + 8 + kNoticeTextBytes;
using NoticeBytes = std::array<std::byte, kNoticeBytes>;

NoticeBytes encode_notice(const Notice& n);
// Error{Internal} naming the value when the kind is not a NoticeKind.
Notice decode_notice(const NoticeBytes& bytes);

// The notices a rank sends. `where` is the sender's FlightRecorder::where().
Notice query_notice(int from, const CollectiveDesc& timed_out);
Notice answer_notice(int from, const Notice& query, int64_t last_started, const std::string& where);
Notice departure_notice(int from, int64_t last_started, const std::string& where);

// Whether `query` is about a collective this rank has not started (`current`: the collective in
// progress, nullptr when idle): the group is broken ahead of this rank, which must fail fast.
bool query_is_ahead(const Notice& query, const CollectiveDesc* current);
// The poison of such a rank: "rank Q timed out in <collective> while this rank (R) <where>".
std::string query_poison_message(const Notice& query, int me, const std::string& where);

// Whether collective `d` can never complete because the sender of departure `gone` left before it.
bool departure_blocks(const Notice& gone, const CollectiveDesc& d);
std::string departure_message(const Notice& gone, const CollectiveDesc& d, int me, const char* phase);

// How long a timed-out rank waits for the answers: half the timeout, within [200 ms, 2 s] (every
// live rank answers within ~20 ms, its idle poll interval).
std::chrono::milliseconds timeout_grace(std::chrono::milliseconds timeout);

// What a timed-out rank learns from the answers to its query: which ranks arrived at the
// collective, which have not (and where they are), which did not answer.
class TimeoutRollCall {
 public:
  TimeoutRollCall(int size, int me, const CollectiveDesc& timed_out);
  // Takes an answer to this query, or another rank's own query (which says where that rank is);
  // ignores answers to other queries, repeats, departures and senders outside the group.
  void hear(const Notice& n);
  // Every rank has been heard from.
  bool complete() const { return heard_count_ == size_; }

  std::vector<int> arrived() const;  // this rank, and those whose last started collective is this one or later
  std::vector<int> missing() const;  // answered, but not there yet
  std::vector<int> silent() const;   // no answer (hung in MPI or dead)
  // What went wrong: "<collective> timed out after T ms on rank R (<phase>, <backend>, N ranks).
  // Not arrived: rank 2 <where>. No answer from rank 3 (hung in MPI or dead)."
  std::string findings(const char* phase, const std::string& backend) const;
  // The Error message: findings() and " Arrived: ranks 0, 1."
  std::string message(const char* phase, const std::string& backend) const;
  // The timeout report's header: the message, then where every other rank that answered is.
  std::string report(const std::string& message, const std::string& backend) const;

 private:
  const int size_, me_;
  const CollectiveDesc desc_;
  std::vector<bool> heard_;
  std::vector<std::string> where_;
  std::vector<int64_t> last_;
  int heard_count_ = 1;
};

// "rank 3" or "ranks 1, 2"
std::string rank_list(const std::vector<int>& ranks);

}  // namespace kirzl::comm::detail
