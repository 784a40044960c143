// Internal: the check every in-place Tensor method starts with (core's fill_/copy_ and the ops'
// add_/mul_ in src/ops/tensor_inplace.cpp).
#pragma once

#include "kirzl/tensor.hpp"

namespace kirzl::detail {

/// Throws Error{InvalidArgument} naming `op` when `t` is undefined, or is (part of) a recorded
/// graph that requires grad while grad mode is on.
void check_inplace(const Tensor& t, const char* op);

}  // namespace kirzl::detail
