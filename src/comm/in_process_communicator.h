// Internal: the in-process backend — N ranks as threads of one process.
#pragma once

#include <map>

#include "comm/queued_communicator.h"

namespace kirzl::comm::detail {

struct InProcessGroupState;

class InProcessCommunicator final : public QueuedCommunicator {
 public:
  InProcessCommunicator(std::shared_ptr<InProcessGroupState> group, int rank, std::chrono::milliseconds timeout);
  ~InProcessCommunicator() override;
  std::string backend() const override { return "inprocess"; }
  std::shared_ptr<Communicator> split(int color, int key) override;

 protected:
  void execute(Op& op) override;

 private:
  std::shared_ptr<InProcessGroupState> group_;
};

}  // namespace kirzl::comm::detail
