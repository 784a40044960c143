// Standard layers. Each initialises itself as PyTorch documents it, from the default generator.
#pragma once

#include <array>
#include <cstdint>

#include "kirzl/nn/module.hpp"
#include "kirzl/ops/elementwise.hpp"
#include "kirzl/ops/nn.hpp"

namespace kirzl::nn {

/// Options of Linear.
struct LinearOptions {
  bool bias = true;          ///< learn an additive bias
  DType dtype = DType::f32;  ///< dtype of the parameters
};
/// y = x W^T + b. weight [out, in] ~ U(-1/sqrt(in), 1/sqrt(in)) (Kaiming-uniform, a = sqrt(5)),
/// bias ~ U(-1/sqrt(in), 1/sqrt(in)).
class Linear : public Module {
 public:
  /// A layer from `in_features` to `out_features`, initialised from the default generator.
  Linear(int64_t in_features, int64_t out_features, const LinearOptions& options = {});
  Tensor forward(const Tensor& x) override;
  std::string repr() const override;
  Tensor weight;  ///< [out_features, in_features]
  Tensor bias;    ///< [out_features], or undefined without a bias
  int64_t in_features;   ///< size of the input's last dim
  int64_t out_features;  ///< size of the output's last dim
};

/// Options of Conv2d (those of the conv2d op, plus the parameters').
struct Conv2dLayerOptions {
  std::array<int64_t, 2> stride{1, 1};    ///< step of the window (height, width)
  std::array<int64_t, 2> padding{0, 0};   ///< zeros added on each side (height, width)
  std::array<int64_t, 2> dilation{1, 1};  ///< spacing of the kernel's taps (height, width)
  int64_t groups = 1;                     ///< channel groups; in and out channels must divide by it
  bool bias = true;                       ///< learn a bias per output channel
  DType dtype = DType::f32;               ///< dtype of the parameters
};
/// 2-D convolution; weight [out, in/groups, k, k] initialised like Linear with fan_in = in/groups*k*k.
class Conv2d : public Module {
 public:
  /// A convolution from `in_channels` to `out_channels` with a (height, width) kernel.
  Conv2d(int64_t in_channels, int64_t out_channels, std::array<int64_t, 2> kernel_size,
         const Conv2dLayerOptions& options = {});
  /// Same, with a square kernel.
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, const Conv2dLayerOptions& options = {})
      : Conv2d(in_channels, out_channels, {kernel_size, kernel_size}, options) {}
  Tensor forward(const Tensor& x) override;
  std::string repr() const override;
  Tensor weight;  ///< [out_channels, in_channels / groups, kh, kw]
  Tensor bias;    ///< [out_channels], or undefined without a bias
  int64_t in_channels;                 ///< channels of the input
  int64_t out_channels;                ///< channels of the output
  std::array<int64_t, 2> kernel_size;  ///< (height, width)
  Conv2dOptions conv;                  ///< stride, padding, dilation and groups passed to conv2d
};

/// Options of BatchNorm2d.
struct BatchNormOptions {
  double eps = 1e-5;               ///< added to the variance before the square root
  double momentum = 0.1;           ///< running = (1 - momentum) * running + momentum * batch statistic
  bool affine = true;              ///< learn a scale (weight) and shift (bias) per channel
  bool track_running_stats = true;  ///< keep running statistics for eval mode
};
/// Batch normalisation over [N, C, H, W]: weight ones, bias zeros; running_mean zeros,
/// running_var ones, num_batches_tracked (i64) as buffers.
class BatchNorm2d : public Module {
 public:
  /// Normalises `num_features` channels.
  explicit BatchNorm2d(int64_t num_features, const BatchNormOptions& options = {});
  Tensor forward(const Tensor& x) override;
  std::string repr() const override;
  Tensor weight;               ///< [C] scale (parameter; undefined without affine)
  Tensor bias;                 ///< [C] shift (parameter; undefined without affine)
  Tensor running_mean;         ///< [C] buffer
  Tensor running_var;          ///< [C] buffer
  Tensor num_batches_tracked;  ///< i64 scalar buffer: training batches seen
  int64_t num_features;        ///< C, the channels
  BatchNormOptions options;    ///< as constructed
};

/// Options of LayerNorm.
struct LayerNormOptions {
  double eps = 1e-5;               ///< added to the variance before the square root
  bool elementwise_affine = true;  ///< learn a scale and shift per normalised element
};
/// Layer normalisation over the trailing `normalized_shape` dims of its input: weight ones,
/// bias zeros (parameters of that shape).
class LayerNorm : public Module {
 public:
  /// Normalises over the trailing dims `normalized_shape`.
  explicit LayerNorm(const Shape& normalized_shape, const LayerNormOptions& options = {});
  /// Normalises over the last dim, of size `dim`.
  explicit LayerNorm(int64_t dim, const LayerNormOptions& options = {}) : LayerNorm(Shape{dim}, options) {}
  Tensor forward(const Tensor& x) override;
  std::string repr() const override;
  Tensor weight;              ///< scale, of normalized_shape (undefined without elementwise_affine)
  Tensor bias;                ///< shift, of normalized_shape (undefined without elementwise_affine)
  Shape normalized_shape;     ///< the trailing dims normalised over
  LayerNormOptions options;   ///< as constructed
};

/// Lookup table [num_embeddings, dim] ~ N(0, 1); forward takes integer indices.
class Embedding : public Module {
 public:
  /// A table of `num_embeddings` rows of `embedding_dim` values.
  Embedding(int64_t num_embeddings, int64_t embedding_dim);
  Tensor forward(const Tensor& indices) override;
  std::string repr() const override;
  Tensor weight;           ///< [num_embeddings, embedding_dim]
  int64_t num_embeddings;  ///< rows of the table
  int64_t embedding_dim;   ///< values per row
};

/// Dropout with probability p while training; identity in eval mode. Draws from `gen` (the default
/// generator when null; the generator must outlive the module).
class Dropout : public Module {
 public:
  /// Drops each element with probability `p` (in [0, 1)) while training.
  explicit Dropout(double p = 0.5, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string repr() const override;
  double p;       ///< drop probability
  Generator* gen;  ///< not owned; null: the default generator
};

/// max(x, 0), elementwise.
class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
  std::string repr() const override { return "ReLU()"; }
};

/// Gaussian error linear unit, exact (erf) or with the tanh approximation.
class GELU : public Module {
 public:
  /// The exact form by default; GeluApproximation::Tanh for the tanh approximation.
  explicit GELU(GeluApproximation approximate = GeluApproximation::None) : approximate(approximate) {}
  Tensor forward(const Tensor& x) override { return gelu(x, approximate); }
  std::string repr() const override;
  GeluApproximation approximate;  ///< as constructed
};

/// Flattens dims start_dim..end_dim (default: all but the batch dim).
class Flatten : public Module {
 public:
  /// Flattens dims start_dim..end_dim (negative counts from the end).
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& x) override { return x.flatten(start_dim, end_dim); }
  std::string repr() const override;
  int64_t start_dim;  ///< first dim flattened
  int64_t end_dim;    ///< last dim flattened (inclusive)
};

/// 2-D max pooling (max_pool2d).
class MaxPool2d : public Module {
 public:
  /// A square window; stride 0 means equal to kernel_size.
  explicit MaxPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0);
  /// Any window, stride and padding.
  explicit MaxPool2d(const Pool2dOptions& options) : options(options) {}
  Tensor forward(const Tensor& x) override { return max_pool2d(x, options); }
  std::string repr() const override;
  Pool2dOptions options;  ///< as constructed
};

/// 2-D average pooling (avg_pool2d).
class AvgPool2d : public Module {
 public:
  /// A square window; stride 0 means equal to kernel_size.
  explicit AvgPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0);
  /// Any window, stride, padding and count_include_pad.
  explicit AvgPool2d(const Pool2dOptions& options) : options(options) {}
  Tensor forward(const Tensor& x) override { return avg_pool2d(x, options); }
  std::string repr() const override;
  Pool2dOptions options;  ///< as constructed
};

}  // namespace kirzl::nn
