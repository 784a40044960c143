// Internal: the argument checks of the collectives, one set shared by every backend (the queued
// CPU-thread backends and NCCL), so the same mistake gets the same kirzl::Error everywhere. Each
// throws Error{InvalidArgument} (Unsupported for a device the backend cannot use) naming the op,
// the argument, its shape, dtype and device, and what was expected.
#pragma once

#include <cstdint>
#include <string>

#include "kirzl/comm.hpp"

namespace kirzl::comm::detail {

// `t` (called `name` in the message) is defined, and contiguous unless empty; a CUDA tensor's
// current stream is not being captured into a CUDA graph (Error{Unsupported}).
void check_tensor(const char* op, const Tensor& t, const char* name);

// `out` and `in` have the same dtype.
void check_same_dtype(const char* op, const Tensor& out, const Tensor& in);

// `root` is a rank of a communicator of `size` ranks; `t` is the broadcast tensor.
void check_root(const char* op, int root, int size, const Tensor& t);

// all_gather: `out` holds size * in.numel() elements.
void check_all_gather_sizes(const Tensor& out, const Tensor& in, int size);

// reduce_scatter: `in` holds size * out.numel() elements.
void check_reduce_scatter_sizes(const Tensor& out, const Tensor& in, int size);

// Backends that move host memory: `t` is on the CPU.
void check_cpu_device(const char* op, const Tensor& t, const std::string& backend);

// The NCCL backend: `t` (called `name`) is on cuda:`device`, the device of communicator rank `rank`.
void check_cuda_device(const char* op, const Tensor& t, const char* name, int device, int rank);

}  // namespace kirzl::comm::detail
