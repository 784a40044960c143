// Internal helpers shared by op implementations: argument checks and dimension handling.
#pragma once

#include <initializer_list>
#include <string>

#include "kirzl/tensor.hpp"

namespace kirzl::ops {

/// Throws unless every defined tensor is on the same device as the first; names op and all tensors.
void check_same_device(const char* op, std::initializer_list<const Tensor*> tensors);
/// Throws unless t is defined.
void check_defined(const char* op, const Tensor& t, const char* name);
/// Throws unless t has a floating dtype.
void check_floating(const char* op, const Tensor& t, const char* name);
/// Wraps a possibly negative dim into [0, ndim); throws naming op and t when out of range.
int64_t wrap_dim(const char* op, int64_t dim, int64_t ndim, const Tensor& t);
/// "a f32[2, 3] on cpu, b f32[4] on cpu" for error messages.
std::string describe_all(std::initializer_list<std::pair<const char*, const Tensor*>> named);

}  // namespace kirzl::ops
