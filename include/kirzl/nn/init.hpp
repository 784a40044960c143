// Parameter initialisation, in place and without recording autograd, from a seeded generator
// (the default one unless `gen` is given): the same seed gives the same model on every machine.
#pragma once

#include "kirzl/core/generator.hpp"
#include "kirzl/tensor.hpp"

namespace kirzl::nn::init {

void uniform_(Tensor& t, double low, double high, Generator* gen = nullptr);
void normal_(Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
void zeros_(Tensor& t);
void ones_(Tensor& t);
void constant_(Tensor& t, double value);
/// fan_in and fan_out of a weight: [out, in] for linear, [out, in/groups, kh, kw] for conv.
std::pair<int64_t, int64_t> fans(const Tensor& weight);
/// He/Kaiming uniform with negative slope `a` (leaky ReLU gain sqrt(2/(1+a^2))), fan_in mode:
/// bound = gain * sqrt(3 / fan_in). PyTorch's Linear/Conv default uses a = sqrt(5).
void kaiming_uniform_(Tensor& t, double a = 0.0, Generator* gen = nullptr);
/// Glorot/Xavier uniform: bound = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);

}  // namespace kirzl::nn::init
