// Standard layers. Each initialises itself as PyTorch documents it, from the default generator.
#pragma once

#include <array>
#include <cstdint>

#include "kirzl/nn/module.hpp"
#include "kirzl/ops/elementwise.hpp"
#include "kirzl/ops/nn.hpp"

namespace kirzl::nn {

struct LinearOptions {
  bool bias = true;
  DType dtype = DType::f32;
};
/// y = x W^T + b. weight [out, in] ~ U(-1/sqrt(in), 1/sqrt(in)) (Kaiming-uniform, a = sqrt(5)),
/// bias ~ U(-1/sqrt(in), 1/sqrt(in)).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, const LinearOptions& options = {});
  Tensor forward(const Tensor& x) override;
  std::string repr() const override;
  Tensor weight, bias;
  int64_t in_features, out_features;
};

struct Conv2dLayerOptions {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
  bool bias = true;
  DType dtype = DType::f32;
};
/// 2-D convolution; weight [out, in/groups, k, k] initialised like Linear with fan_in = in/groups*k*k.
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, std::array<int64_t, 2> kernel_size,
         const Conv2dLayerOptions& options = {});
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, const Conv2dLayerOptions& options = {})
      : Conv2d(in_channels, out_channels, {kernel_size, kernel_size}, options) {}
  Tensor forward(const Tensor& x) override;
  std::string repr() const override;
  Tensor weight, bias;
  int64_t in_channels, out_channels;
  std::array<int64_t, 2> kernel_size;
  Conv2dOptions conv;
};

struct BatchNormOptions {
  double eps = 1e-5;
  double momentum = 0.1;
  bool affine = true;
  bool track_running_stats = true;
};
/// Batch normalisation over [N, C, H, W]: weight ones, bias zeros; running_mean zeros,
/// running_var ones, num_batches_tracked (i64) as buffers.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, const BatchNormOptions& options = {});
  Tensor forward(const Tensor& x) override;
  std::string repr() const override;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  int64_t num_features;
  BatchNormOptions options;
};

struct LayerNormOptions {
  double eps = 1e-5;
  bool elementwise_affine = true;
};
class LayerNorm : public Module {
 public:
  explicit LayerNorm(const Shape& normalized_shape, const LayerNormOptions& options = {});
  explicit LayerNorm(int64_t dim, const LayerNormOptions& options = {}) : LayerNorm(Shape{dim}, options) {}
  Tensor forward(const Tensor& x) override;
  std::string repr() const override;
  Tensor weight, bias;
  Shape normalized_shape;
  LayerNormOptions options;
};

/// Lookup table [num_embeddings, dim] ~ N(0, 1); forward takes integer indices.
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim);
  Tensor forward(const Tensor& indices) override;
  std::string repr() const override;
  Tensor weight;
  int64_t num_embeddings, embedding_dim;
};

/// Dropout with probability p while training; identity in eval mode. Draws from `gen` (the default
/// generator when null; the generator must outlive the module).
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string repr() const override;
  double p;
  Generator* gen;
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
  std::string repr() const override { return "ReLU()"; }
};

class GELU : public Module {
 public:
  explicit GELU(GeluApproximation approximate = GeluApproximation::None) : approximate(approximate) {}
  Tensor forward(const Tensor& x) override { return gelu(x, approximate); }
  std::string repr() const override;
  GeluApproximation approximate;
};

/// Flattens dims start_dim..end_dim (default: all but the batch dim).
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& x) override { return x.flatten(start_dim, end_dim); }
  std::string repr() const override;
  int64_t start_dim, end_dim;
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0);
  explicit MaxPool2d(const Pool2dOptions& options) : options(options) {}
  Tensor forward(const Tensor& x) override { return max_pool2d(x, options); }
  std::string repr() const override;
  Pool2dOptions options;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0);
  explicit AvgPool2d(const Pool2dOptions& options) : options(options) {}
  Tensor forward(const Tensor& x) override { return avg_pool2d(x, options); }
  std::string repr() const override;
  Pool2dOptions options;
};

}  // namespace kirzl::nn
