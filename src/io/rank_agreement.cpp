#include "io/rank_agreement.h"

#include <algorithm>
#include <vector>

#include "kirzl/tensor.hpp"

namespace kirzl::io::detail {

namespace {

constexpr size_t kMaxMessageBytes = 4000;

// The collectives on the communicator's device (a CUDA-only NCCL communicator takes no CPU
// tensors); the results come back to the CPU, ordered after the collective.
Tensor reduce_on_device(comm::Communicator& comm, Tensor t, const std::string& tag) {
  const Device device = comm.device();
  if (!device.is_cpu()) t = t.to(device);
  comm.all_reduce(t, {.tag = tag, .blocking = true});
  return device.is_cpu() ? t : t.to(Device::cpu());
}

Tensor broadcast_on_device(comm::Communicator& comm, Tensor t, int root, const std::string& tag) {
  const Device device = comm.device();
  if (!device.is_cpu()) t = t.to(device);
  comm.broadcast(t, {.root = root, .tag = tag, .blocking = true});
  return device.is_cpu() ? t : t.to(Device::cpu());
}

}  // namespace

void agree(comm::Communicator& comm, const Outcome& mine, const std::string& who, const std::string& where,
           const std::string& phase, const std::string& consequence, const std::function<void()>& cleanup) {
  const int n = comm.size(), rank = comm.rank();
  std::string message = mine.message.substr(0, kMaxMessageBytes);
  if (mine.message.size() > kMaxMessageBytes) message += "...";
  Tensor status = zeros({n, 2}, {.dtype = DType::i64});
  status.data<int64_t>()[2 * rank] = mine.code + 1;
  status.data<int64_t>()[2 * rank + 1] = mine.code >= 0 ? static_cast<int64_t>(message.size()) : 0;
  status = reduce_on_device(comm, status, who + ": " + phase);
  const int64_t* s = status.data<int64_t>();
  std::vector<int> failed;
  bool io = false;
  for (int r = 0; r < n; ++r)
    if (s[2 * r] != 0) {
      failed.push_back(r);
      io = io || s[2 * r] - 1 == static_cast<int64_t>(ErrorCode::Io);
    }
  if (failed.empty()) return;

  const int first = failed.front();
  const int64_t length = s[2 * first + 1];
  std::string first_message;
  if (length > 0 && length <= static_cast<int64_t>(kMaxMessageBytes + 3)) {
    Tensor bytes = zeros({length}, {.dtype = DType::u8});
    if (rank == first) std::copy(message.begin(), message.end(), bytes.data<uint8_t>());
    bytes = broadcast_on_device(comm, bytes, first, who + ": " + phase + " (error message)");
    first_message.assign(reinterpret_cast<const char*>(bytes.data<uint8_t>()), static_cast<size_t>(length));
  }
  if (cleanup) cleanup();
  std::string ranks;
  for (int r : failed) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
  const ErrorCode code = io ? ErrorCode::Io : static_cast<ErrorCode>(s[2 * first] - 1);
  KIRZL_FAIL(code, who, ": ", where, ": ", phase, " failed on rank", failed.size() > 1 ? "s " : " ", ranks, " of ", n,
             "; ", consequence, ". Rank ", first, ": ", first_message);
}

}  // namespace kirzl::io::detail
