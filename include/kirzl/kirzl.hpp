// The whole public API of kirzl.
#pragma once

#include "kirzl/autograd.hpp"
#include "kirzl/config.hpp"
#include "kirzl/core/allocator.hpp"
#include "kirzl/core/device.hpp"
#include "kirzl/core/dtype.hpp"
#include "kirzl/core/error.hpp"
#include "kirzl/core/generator.hpp"
#include "kirzl/core/parallel.hpp"
#include "kirzl/data.hpp"
#include "kirzl/io.hpp"
#include "kirzl/nn.hpp"
#include "kirzl/ops.hpp"
#include "kirzl/optim.hpp"
#include "kirzl/state_dict.hpp"
#include "kirzl/tensor.hpp"
