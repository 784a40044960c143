// Internal: the CUDA runtime calls the core needs. Implemented in src/core/cuda/ when kirzl is
// built with CUDA and in src/core/no_cuda/ otherwise (where each call throws Unsupported).
#pragma once

#include <cstddef>

#include "kirzl/core/dtype.hpp"

namespace kirzl::cuda_rt {

/// Throws Error{Unsupported/Cuda} naming `what` unless CUDA device `index` exists.
void require_device(int index, const char* what);
void* malloc(size_t nbytes, int device);
/// Never throws (runs in destructors); a failure is reported once to stderr.
void free(void* ptr, int device) noexcept;
enum class CopyKind { HostToDevice, DeviceToHost, DeviceToDevice };
/// Synchronous copy; for DeviceToDevice, `device` is the destination's.
void memcpy(void* dst, const void* src, size_t nbytes, CopyKind kind, int device);
/// Sets `count` contiguous elements of `dtype` at `dst` to `value`.
void fill(void* dst, DType dtype, size_t count, double value, int device);
/// Converts `count` contiguous elements between dtypes on one device.
void cast(void* dst, DType dst_dtype, const void* src, DType src_dtype, size_t count, int device);

}  // namespace kirzl::cuda_rt
