// The MPI carrier of failure notices. See mpi_notice_channel.h.
//
// Note [notice channel id]: a notice may outlive its channel. A departure sent at destruction can
// still be unmatched when the peers have freed their duplicates, and MPI may give a later
// communicator the same context id, whose posted receive then matches the stale notice (seen with
// Open MPI at 4 ranks: a departure "from the last collective #N" of a destroyed split communicator
// failed the next one). So every notice carries its channel's id, and receive() drops the others.
// The id is agreed at construction: the maximum over the ranks of each process's next unused id,
// after which each process's next id is one past it. A process's ids only grow, so a channel on a
// process never shares an id with an earlier channel on it, and a stale notice never matches.
#include "comm/mpi_notice_channel.h"

#include <atomic>

#include "comm/flight_recorder.h"
#include "comm/mpi_check.h"
#include "comm/mpi_tags.h"

namespace kirzl::comm::detail {

namespace {

// The next channel id this process may use (Note [notice channel id]).
std::atomic<int64_t> next_channel_id{1};
}  // namespace

MpiNoticeChannel::MpiNoticeChannel(std::shared_ptr<MpiRuntime> rt, MPI_Comm comm) : rt_(std::move(rt)) {
  auto g = rt_->guard();
  KIRZL_MPI_CHECK(MPI_Comm_dup(comm, &ctrl_));
  KIRZL_MPI_CHECK(MPI_Comm_set_errhandler(ctrl_, MPI_ERRORS_RETURN));
  int64_t mine = next_channel_id.load();
  KIRZL_MPI_CHECK(MPI_Allreduce(&mine, &id_, 1, MPI_INT64_T, MPI_MAX, ctrl_));
  // Channels may be built on several threads: only ever raise the next id.
  for (int64_t next = next_channel_id.load(); next <= id_ && !next_channel_id.compare_exchange_weak(next, id_ + 1);) {
  }
  post_receive();
}

NoticeBytes MpiNoticeChannel::encode_(const Notice& n) const {
  Notice stamped = n;
  stamped.channel = id_;
  return encode_notice(stamped);
}

void MpiNoticeChannel::post_receive() {
  KIRZL_MPI_CHECK(MPI_Irecv(in_.data(), static_cast<int>(in_.size()), MPI_BYTE, MPI_ANY_SOURCE, kNoticeTag, ctrl_, &in_req_));
}

void MpiNoticeChannel::send(const Notice& n, int to) {
  auto buf = std::make_shared<NoticeBytes>(encode_(n));
  MPI_Request req;
  auto g = rt_->guard();
  KIRZL_MPI_CHECK(MPI_Isend(buf->data(), static_cast<int>(buf->size()), MPI_BYTE, to, kNoticeTag, ctrl_, &req));
  sends_.emplace_back(req, buf);
}

void MpiNoticeChannel::send_to_all(const Notice& n, int me, int size) {
  for (int r = 0; r < size; ++r)
    if (r != me) send(n, r);
}

std::vector<Notice> MpiNoticeChannel::receive() {
  std::vector<Notice> got;
  auto g = rt_->guard();
  for (;;) {
    int flag = 0;
    KIRZL_MPI_CHECK(MPI_Test(&in_req_, &flag, MPI_STATUS_IGNORE));
    if (!flag) break;
    const NoticeBytes bytes = in_;
    post_receive();
    Notice n = decode_notice(bytes);
    if (n.channel == id_) got.push_back(std::move(n));  // else: a stale notice (Note [notice channel id])
  }
  retire_sends();
  return got;
}

void MpiNoticeChannel::retire_sends() {
  for (size_t i = 0; i < sends_.size();) {
    int flag = 0;
    KIRZL_MPI_CHECK(MPI_Test(&sends_[i].first, &flag, MPI_STATUS_IGNORE));
    if (flag) {
      sends_[i] = sends_.back();
      sends_.pop_back();
    } else {
      ++i;
    }
  }
}

void MpiNoticeChannel::close(const Notice& departure, int me, int size, bool free_comm) noexcept {
  // Teardown cannot throw: failing MPI calls here are skipped, and what they leave is abandoned.
  auto g = rt_->guard();
  const auto bye = std::make_shared<NoticeBytes>(encode_(departure));
  for (int r = 0; r < size; ++r)
    if (r != me) {
      MPI_Request req;
      if (MPI_Isend(bye->data(), static_cast<int>(bye->size()), MPI_BYTE, r, kNoticeTag, ctrl_, &req) == MPI_SUCCESS)
        sends_.emplace_back(req, bye);
    }
  if (in_req_ != MPI_REQUEST_NULL) {
    if (MPI_Cancel(&in_req_) == MPI_SUCCESS) MPI_Wait(&in_req_, MPI_STATUS_IGNORE);  // else: abandoned
  }
  // Answers still in flight get a moment, then are abandoned (their buffers kept alive).
  const auto until = Clock::now() + std::chrono::milliseconds(200);
  for (auto& s : sends_) {
    int flag = 0;
    while (!flag && Clock::now() < until)
      if (MPI_Test(&s.first, &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS) break;
    if (!flag) keep_forever(s.second);
  }
  sends_.clear();
  if (free_comm) MPI_Comm_free(&ctrl_);  // a failure leaks the duplicate, nothing more
}

}  // namespace kirzl::comm::detail
