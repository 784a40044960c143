// The failure-notice protocol. See failure_notice.h.
#include "comm/failure_notice.h"

#include <algorithm>
#include <cstring>
#include <sstream>

namespace kirzl::comm::detail {

namespace {
constexpr size_t kKindAt = 0, kFromAt = 4, kSeqAt = 8, kLastAt = 16, kChannelAt = 24, kTextAt = 32;

template <typename T>
void put(NoticeBytes& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}
template <typename T>
T get(const NoticeBytes& b, size_t at) {
  T v;
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}
}  // namespace

const char* notice_kind_name(NoticeKind k) {
  switch (k) {
    case NoticeKind::Query: return "query";
    case NoticeKind::Answer: return "answer";
    case NoticeKind::Departure: return "departure";
  }
  return "unknown";
}

NoticeBytes encode_notice(const Notice& n) {
  NoticeBytes b{};
  put(b, kKindAt, static_cast<int32_t>(n.kind));
  put(b, kFromAt, n.from);
  put(b, kSeqAt, n.seq);
  put(b, kLastAt, n.last_started);
  put(b, kChannelAt, n.channel);
  std::memcpy(b.data() + kTextAt, n.text.data(), std::min(n.text.size(), kNoticeTextBytes - 1));  // NUL-terminated
  return b;
}

Notice decode_notice(const NoticeBytes& b) {
  const auto kind = get<int32_t>(b, kKindAt);
  KIRZL_CHECK_CODE(kind >= static_cast<int32_t>(NoticeKind::Query) && kind <= static_cast<int32_t>(NoticeKind::Departure),
                   ErrorCode::Internal, "failure notice: unknown kind ", kind, " (expected 1 = query, 2 = answer, ",
                   "3 = departure) from rank ", get<int32_t>(b, kFromAt));
  Notice n;
  n.kind = static_cast<NoticeKind>(kind);
  n.from = get<int32_t>(b, kFromAt);
  n.seq = get<int64_t>(b, kSeqAt);
  n.last_started = get<int64_t>(b, kLastAt);
  n.channel = get<int64_t>(b, kChannelAt);
  const auto* text = reinterpret_cast<const char*>(b.data() + kTextAt);
  n.text.assign(text, strnlen(text, kNoticeTextBytes - 1));
  return n;
}

Notice query_notice(int from, const CollectiveDesc& timed_out) {
  return {NoticeKind::Query, from, timed_out.seq, timed_out.seq, timed_out.long_str()};
}

Notice answer_notice(int from, const Notice& query, int64_t last_started, const std::string& where) {
  return {NoticeKind::Answer, from, query.seq, last_started, where};
}

Notice departure_notice(int from, int64_t last_started, const std::string& where) {
  return {NoticeKind::Departure, from, 0, last_started, where};
}

bool query_is_ahead(const Notice& query, const CollectiveDesc* current) {
  return query.kind == NoticeKind::Query && (!current || current->seq < query.seq);
}

std::string query_poison_message(const Notice& query, int me, const std::string& where) {
  return "rank " + std::to_string(query.from) + " timed out in " + query.text + " while this rank (" +
         std::to_string(me) + ") " + where;
}

bool departure_blocks(const Notice& gone, const CollectiveDesc& d) {
  return gone.kind == NoticeKind::Departure && gone.last_started < d.seq;
}

std::string departure_message(const Notice& gone, const CollectiveDesc& d, int me, const char* phase) {
  std::ostringstream os;
  os << d.long_str() << " can never complete on rank " << me << " (" << phase << "): rank " << gone.from
     << " has left the group (its communicator was destroyed, e.g. after an error on that rank); its last collective "
     << "was #" << gone.last_started << ", it " << gone.text << ".";
  return os.str();
}

std::chrono::milliseconds timeout_grace(std::chrono::milliseconds timeout) {
  return std::chrono::milliseconds(std::clamp<int64_t>(timeout.count() / 2, 200, 2000));
}

TimeoutRollCall::TimeoutRollCall(int size, int me, const CollectiveDesc& timed_out)
    : size_(size), me_(me), desc_(timed_out), heard_(size, false), where_(size), last_(size, -1) {
  heard_[me] = true;
}

void TimeoutRollCall::hear(const Notice& a) {
  if (a.kind == NoticeKind::Departure) return;
  if (a.from < 0 || a.from >= size_ || heard_[a.from]) return;
  if (a.kind == NoticeKind::Answer && a.seq != desc_.seq) return;
  heard_[a.from] = true;
  ++heard_count_;
  last_[a.from] = a.last_started;
  where_[a.from] = a.kind == NoticeKind::Answer ? a.text : "timed out in " + a.text;
}

std::vector<int> TimeoutRollCall::arrived() const {
  std::vector<int> v;
  for (int r = 0; r < size_; ++r)
    if (r == me_ || (heard_[r] && last_[r] >= desc_.seq)) v.push_back(r);
  return v;
}

std::vector<int> TimeoutRollCall::missing() const {
  std::vector<int> v;
  for (int r = 0; r < size_; ++r)
    if (r != me_ && heard_[r] && last_[r] < desc_.seq) v.push_back(r);
  return v;
}

std::vector<int> TimeoutRollCall::silent() const {
  std::vector<int> v;
  for (int r = 0; r < size_; ++r)
    if (!heard_[r]) v.push_back(r);
  return v;
}

std::string TimeoutRollCall::findings(const char* phase, const std::string& backend) const {
  std::ostringstream msg;
  msg << desc_.long_str() << " timed out after " << desc_.timeout.count() << " ms on rank " << me_ << " (" << phase
      << ", " << backend << ", " << size_ << " ranks).";
  const auto not_arrived = missing(), no_answer = silent();
  if (!not_arrived.empty()) {
    msg << " Not arrived:";
    for (size_t k = 0; k < not_arrived.size(); ++k)
      msg << (k ? ";" : "") << " rank " << not_arrived[k] << " " << where_[not_arrived[k]];
    msg << ".";
  }
  if (!no_answer.empty()) msg << " No answer from " << rank_list(no_answer) << " (hung in MPI or dead).";
  return msg.str();
}

std::string TimeoutRollCall::message(const char* phase, const std::string& backend) const {
  return findings(phase, backend) + " Arrived: " + rank_list(arrived()) + ".";
}

std::string TimeoutRollCall::report(const std::string& message, const std::string& backend) const {
  std::ostringstream report;
  report << "kirzl comm: collective timeout (backend " << backend << ", " << size_ << " ranks)\n" << message << "\n";
  for (int r = 0; r < size_; ++r)
    if (r != me_ && !where_[r].empty()) report << "rank " << r << ": " << where_[r] << "\n";
  return report.str();
}

std::string rank_list(const std::vector<int>& r) {
  std::ostringstream os;
  os << (r.size() == 1 ? "rank " : "ranks ");
  for (size_t i = 0; i < r.size(); ++i) os << (i ? ", " : "") << r[i];
  return os.str();
}

}  // namespace kirzl::comm::detail
