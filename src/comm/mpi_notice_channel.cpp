// The MPI carrier of failure notices. See mpi_notice_channel.h.
#include "comm/mpi_notice_channel.h"

#include "comm/flight_recorder.h"
#include "comm/mpi_check.h"

namespace kirzl::comm::detail {

namespace {
constexpr int kNoticeTag = 7301;
}  // namespace

MpiNoticeChannel::MpiNoticeChannel(std::shared_ptr<MpiRuntime> rt, MPI_Comm comm) : rt_(std::move(rt)) {
  auto g = rt_->guard();
  KIRZL_MPI_CHECK(MPI_Comm_dup(comm, &ctrl_));
  KIRZL_MPI_CHECK(MPI_Comm_set_errhandler(ctrl_, MPI_ERRORS_RETURN));
  post_receive();
}

void MpiNoticeChannel::post_receive() {
  KIRZL_MPI_CHECK(MPI_Irecv(in_.data(), static_cast<int>(in_.size()), MPI_BYTE, MPI_ANY_SOURCE, kNoticeTag, ctrl_, &in_req_));
}

void MpiNoticeChannel::send(const Notice& n, int to) {
  auto buf = std::make_shared<NoticeBytes>(encode_notice(n));
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
    got.push_back(decode_notice(bytes));
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
  const auto bye = std::make_shared<NoticeBytes>(encode_notice(departure));
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
