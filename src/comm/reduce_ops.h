// Internal: element-wise reduction kernels shared by the communicator backends. Typed loops per
// dtype; bf16/f16 are widened to f32, reduced, and rounded once at the end. Integer Sum/Prod wrap
// around (computed in the unsigned type), Avg on integers truncates (C++ division).
#pragma once

#include <cstdint>

#include "kirzl/comm.hpp"

namespace kirzl::comm::detail {

// dst[i] = ((srcs[0][i] op srcs[1][i]) op srcs[2][i]) ... in source order; for Avg the sum is then
// divided by nsrc. dst may be the same buffer as srcs[0] (only). nsrc >= 1.
void reduce_sources(void* dst, const void* const* srcs, int nsrc, int64_t count, DType dtype, ReduceOp op);

// acc[i] = acc[i] op src[i] (Avg accumulates like Sum). 16-bit floats round after each step.
void reduce_into(void* acc, const void* src, int64_t count, DType dtype, ReduceOp op);

// data[i] /= divisor (Avg's final step).
void divide_by(void* data, int64_t count, DType dtype, int64_t divisor);

// Conversions between bf16/f16 and f32 (dtype must be bf16 or f16).
void widen_to_f32(const void* src, DType dtype, float* dst, int64_t count);
void narrow_from_f32(const float* src, DType dtype, void* dst, int64_t count);

inline bool is_half_float(DType t) { return t == DType::bf16 || t == DType::f16; }

}  // namespace kirzl::comm::detail
