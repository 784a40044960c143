// Internal (MPI backend only): carries failure notices (failure_notice.h) between the ranks of one
// communicator, over a private duplicate of it, so that notices never match the communicator's
// collectives or ring messages. A receive is always posted; sends are nonblocking and retired as
// they finish.
#pragma once

#include <mpi.h>

#include <memory>
#include <utility>
#include <vector>

#include "comm/failure_notice.h"
#include "comm/mpi_runtime.h"

namespace kirzl::comm::detail {

class MpiNoticeChannel {
 public:
  // Duplicates `comm` and agrees on the channel's id with the other ranks (both collective over
  // it; Note [notice channel id]). Each method takes the runtime's guard itself.
  MpiNoticeChannel(std::shared_ptr<MpiRuntime> rt, MPI_Comm comm);
  MpiNoticeChannel(const MpiNoticeChannel&) = delete;
  MpiNoticeChannel& operator=(const MpiNoticeChannel&) = delete;
  // The owner calls close(); a channel left open is abandoned (its duplicate is never freed).
  ~MpiNoticeChannel() = default;

  // This channel's id, stamped on every notice it sends (Notice::channel).
  int64_t id() const { return id_; }

  void send(const Notice& n, int to);
  // Sends `n` to every rank of the communicator but `me`.
  void send_to_all(const Notice& n, int me, int size);
  // The notices of this channel that arrived since the last call, in arrival order (notices of
  // another channel are dropped); retires finished sends.
  std::vector<Notice> receive();
  // Teardown, best effort: sends `departure` to every other rank (Note [mpi departure]), cancels
  // the posted receive, gives sends in flight 200 ms and abandons the rest (their buffers kept
  // alive), and frees the duplicate when `free_comm` (not after a failure: MPI may still use it).
  void close(const Notice& departure, int me, int size, bool free_comm) noexcept;

 private:
  void post_receive();
  NoticeBytes encode_(const Notice& n) const;
  void retire_sends();

  std::shared_ptr<MpiRuntime> rt_;
  MPI_Comm ctrl_ = MPI_COMM_NULL;
  int64_t id_ = 0;
  NoticeBytes in_{};
  MPI_Request in_req_ = MPI_REQUEST_NULL;
  std::vector<std::pair<MPI_Request, std::shared_ptr<NoticeBytes>>> sends_;
};

}  // namespace kirzl::comm::detail
