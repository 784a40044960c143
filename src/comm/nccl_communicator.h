// Internal: the entry point of the NCCL backend, callable without nccl.h. Only registry.cpp calls
// it, and only when KIRZL_HAS_NCCL. See Note [nccl work] in include/kirzl/comm.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "kirzl/comm.hpp"

namespace kirzl::comm::detail {

/// Copies `bytes` at `data` from rank 0 to every rank (blocking); used once, for ncclUniqueId.
using BootstrapBroadcast = std::function<void(void* data, size_t bytes)>;

/// Creates the NCCL communicator of `size` ranks, this one being `rank`, on CUDA device `device`
/// (collective: every rank calls it). `bootstrap` keeps whatever the broadcast needs alive for the
/// communicator's lifetime (e.g. the MPI world); may be null at size 1.
std::shared_ptr<Communicator> nccl_create(int rank, int size, int device, const BootstrapBroadcast& broadcast,
                                          std::chrono::milliseconds timeout, std::shared_ptr<void> bootstrap);

/// "NCCL 2.28.9".
std::string nccl_version();

}  // namespace kirzl::comm::detail
