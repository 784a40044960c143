// All differentiable operations.
#pragma once

#include "kirzl/ops/elementwise.hpp"
#include "kirzl/ops/fused.hpp"
#include "kirzl/ops/linalg.hpp"
#include "kirzl/ops/nn.hpp"
#include "kirzl/ops/reduce.hpp"
#include "kirzl/ops/shape_ops.hpp"
