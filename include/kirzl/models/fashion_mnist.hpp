// The two Fashion-MNIST models of the examples and benchmarks, defined once.
#pragma once

#include <memory>

#include "kirzl/nn/containers.hpp"

namespace kirzl::models {

/// Flatten, then 784-256-128-10 with ReLU: input [N, 1, 28, 28] (or [N, 784]), logits [N, 10].
/// Initialised from the default generator (seed it with manual_seed for the same model everywhere).
std::shared_ptr<nn::Sequential> fashion_mlp();

/// conv3x3(1->32, pad 1) ReLU maxpool2, conv3x3(32->64, pad 1) ReLU maxpool2, flatten,
/// 3136-128 ReLU, 128-10: input [N, 1, 28, 28], logits [N, 10].
std::shared_ptr<nn::Sequential> fashion_cnn();

}  // namespace kirzl::models
