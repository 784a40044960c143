// The in-process transport. See in_process_transport.h.
#include "comm/in_process_transport.h"

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>

#include "comm/flight_recorder.h"
#include "kirzl/core/error.hpp"

namespace kirzl::comm::detail {

struct InProcessMailboxes {
  explicit InProcessMailboxes(int n)
      : size(n), boxes(static_cast<size_t>(n) * n * Transport::kChannels), departed(n, false) {}
  std::deque<std::vector<std::byte>>& box(int from, int to, int channel) {
    return boxes[(static_cast<size_t>(from) * size + to) * Transport::kChannels + channel];
  }

  const int size;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::deque<std::vector<std::byte>>> boxes;  // [(from * size + to) * kChannels + channel]: in send order
  std::vector<bool> departed;
};

InProcessTransport::InProcessTransport(std::shared_ptr<InProcessMailboxes> boxes, int rank, InProcessTransportOptions options)
    : boxes_(std::move(boxes)), rank_(rank), options_(options) {}

InProcessTransport::~InProcessTransport() {
  {
    std::lock_guard<std::mutex> lock(boxes_->mu);
    boxes_->departed[rank_] = true;
  }
  boxes_->cv.notify_all();
}

int InProcessTransport::size() const { return boxes_->size; }

namespace {
void check_channel(int channel, int rank) {
  KIRZL_CHECK(channel >= 0 && channel < Transport::kChannels, "in-process transport: rank ", rank, " used channel ",
              channel, " (channels 0 to ", Transport::kChannels - 1, ")");
}
}  // namespace

Transport::Request InProcessTransport::send(int peer, const std::byte* data, int64_t bytes, int channel) {
  KIRZL_CHECK(peer >= 0 && peer < size() && peer != rank_, "in-process transport: rank ", rank_, " cannot send to rank ",
              peer, " (group of ", size(), ")");
  check_channel(channel, rank_);
  {
    std::lock_guard<std::mutex> lock(boxes_->mu);
    boxes_->box(rank_, peer, channel).emplace_back(data, data + bytes);
  }
  boxes_->cv.notify_all();
  posted_.push_back({-1, channel, nullptr, bytes, true});
  return posted_.size() - 1;
}

Transport::Request InProcessTransport::receive(int peer, std::byte* data, int64_t bytes, int channel) {
  KIRZL_CHECK(peer >= 0 && peer < size() && peer != rank_, "in-process transport: rank ", rank_,
              " cannot receive from rank ", peer, " (group of ", size(), ")");
  check_channel(channel, rank_);
  posted_.push_back({peer, channel, data, bytes, false});
  return posted_.size() - 1;
}

const InProcessTransport::Posted& InProcessTransport::posted(Request q) const {
  KIRZL_CHECK_CODE(q < posted_.size(), ErrorCode::Internal, "in-process transport: rank ", rank_, " waits for request ",
                   q, ", which was never posted");
  return posted_[q];
}

void InProcessTransport::wait(std::span<const Request> requests) {
  const auto deadline = Clock::now() + options_.timeout;
  for (const Request q : requests)
    if (const Posted& p = posted(q); !p.done) complete_receives(p.peer, p.channel, q, deadline);
}

bool InProcessTransport::test(std::span<const Request> requests) {
  const int64_t before = received_;
  bool all = true;
  for (const Request q : requests)
    if (const Posted& p = posted(q); !p.done) all = complete_receives(p.peer, p.channel, q, std::nullopt) && all;
  if (all || received_ != before) {
    stalled_since_.reset();
    return all;
  }
  const auto now = Clock::now();
  if (!stalled_since_) stalled_since_ = now;
  KIRZL_CHECK_CODE(now - *stalled_since_ < options_.timeout, ErrorCode::Timeout, "in-process transport: rank ", rank_,
                   " tested for ", options_.timeout.count(), " ms without receiving anything (the peers did not send)");
  return false;
}

bool InProcessTransport::complete_receives(int peer, int channel, Request upto, std::optional<Clock::time_point> deadline) {
  std::unique_lock<std::mutex> lock(boxes_->mu);
  auto& box = boxes_->box(peer, rank_, channel);
  for (Request q = first_open_; q <= upto; ++q) {
    Posted& p = posted_[q];
    if (p.done || p.peer != peer || p.channel != channel) continue;
    if (!deadline && box.empty() && !boxes_->departed[peer]) return false;  // test(): not yet
    const bool arrived = !deadline || boxes_->cv.wait_until(lock, *deadline, [&] { return !box.empty() || boxes_->departed[peer]; });
    KIRZL_CHECK_CODE(arrived, ErrorCode::Timeout, "in-process transport: rank ", rank_, " waited ", options_.timeout.count(),
                     " ms for ", p.bytes, " B from rank ", peer, ", which did not send them");
    KIRZL_CHECK(!box.empty(), "in-process transport: rank ", rank_, " needs ", p.bytes, " B from rank ", peer,
                ", which has left the group (its transport was destroyed, e.g. after an error on that rank)");
    std::vector<std::byte> msg = std::move(box.front());
    box.pop_front();
    KIRZL_CHECK_CODE(static_cast<int64_t>(msg.size()) == p.bytes, ErrorCode::Internal, "in-process transport: rank ", rank_,
                     " posted a receive of ", p.bytes, " B from rank ", peer, ", whose message has ", msg.size(), " B");
    if (p.bytes) std::memcpy(p.data, msg.data(), static_cast<size_t>(p.bytes));
    p.done = true;
    ++received_;
  }
  while (first_open_ < posted_.size() && posted_[first_open_].done) ++first_open_;
  return true;
}

std::vector<std::unique_ptr<InProcessTransport>> make_in_process_transports(int n, InProcessTransportOptions options) {
  KIRZL_CHECK(n >= 1, "make_in_process_transports: the group size must be at least 1, got ", n);
  auto boxes = std::make_shared<InProcessMailboxes>(n);
  std::vector<std::unique_ptr<InProcessTransport>> group;
  for (int r = 0; r < n; ++r) group.push_back(std::make_unique<InProcessTransport>(boxes, r, options));
  return group;
}

}  // namespace kirzl::comm::detail
