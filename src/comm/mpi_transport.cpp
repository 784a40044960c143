// The ring's transport over MPI. See mpi_transport.h.
#include "comm/mpi_transport.h"

#include <climits>

#include "comm/mpi_check.h"
#include "comm/mpi_tags.h"
#include "kirzl/core/error.hpp"

namespace kirzl::comm::detail {

namespace {

int message_size(int64_t bytes) {
  KIRZL_CHECK_CODE(bytes >= 0 && bytes <= INT_MAX, ErrorCode::Internal, "MPI transport: a message of ", bytes,
                   " B does not fit an MPI count (the ring's pieces must be smaller)");
  return static_cast<int>(bytes);
}
}  // namespace

MpiTransport::MpiTransport(MpiRuntime& rt, MPI_Comm comm, MpiWaitAll wait_all, std::shared_ptr<void> keep)
    : rt_(rt), comm_(comm), wait_all_(std::move(wait_all)),
      hold_(std::make_shared<std::vector<std::shared_ptr<void>>>(1, std::move(keep))) {
  auto g = rt_.guard();
  KIRZL_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  KIRZL_MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

Transport::Request MpiTransport::send(int peer, const std::byte* data, int64_t bytes, int channel) {
  KIRZL_CHECK_CODE(channel >= 0 && channel < kChannels, ErrorCode::Internal, "MPI transport: no channel ", channel);
  MPI_Request req;
  auto g = rt_.guard();
  KIRZL_MPI_CHECK(MPI_Isend(data, message_size(bytes), MPI_BYTE, peer, kRingTag + channel, comm_, &req));
  reqs_.push_back(req);
  return reqs_.size() - 1;
}

Transport::Request MpiTransport::receive(int peer, std::byte* data, int64_t bytes, int channel) {
  KIRZL_CHECK_CODE(channel >= 0 && channel < kChannels, ErrorCode::Internal, "MPI transport: no channel ", channel);
  MPI_Request req;
  auto g = rt_.guard();
  KIRZL_MPI_CHECK(MPI_Irecv(data, message_size(bytes), MPI_BYTE, peer, kRingTag + channel, comm_, &req));
  reqs_.push_back(req);
  return reqs_.size() - 1;
}

void MpiTransport::wait(std::span<const Request> requests) { complete_(requests, true); }

bool MpiTransport::test(std::span<const Request> requests) { return complete_(requests, false); }

bool MpiTransport::complete_(std::span<const Request> requests, bool block) {
  // MPI tests an array: gather the requests, and put them back (completed ones are now null).
  batch_.clear();
  for (Request q : requests) batch_.push_back(reqs_.at(q));
  const bool done = wait_all_(batch_.data(), static_cast<int>(batch_.size()), block, hold_);
  for (size_t i = 0; i < requests.size(); ++i) reqs_[requests[i]] = batch_[i];
  return done;
}

}  // namespace kirzl::comm::detail
