#include "kirzl/nn/layers.hpp"

#include <cmath>

#include "kirzl/autograd.hpp"
#include "kirzl/nn/init.hpp"
#include "kirzl/ops/linalg.hpp"

namespace kirzl::nn {

namespace {
std::string b(bool v) { return v ? "true" : "false"; }
std::string pair_str(const std::array<int64_t, 2>& p) { return detail::str_cat("(", p[0], ", ", p[1], ")"); }
// PyTorch's default for Linear and Conv: kaiming_uniform(a = sqrt(5)) for the weight, i.e.
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias.
void default_init(Tensor& weight, Tensor& bias) {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    double bound = 1.0 / std::sqrt(static_cast<double>(init::fans(weight).first));
    init::uniform_(bias, -bound, bound);
  }
}
}  // namespace

Linear::Linear(int64_t in, int64_t out, const LinearOptions& o) : in_features(in), out_features(out) {
  KIRZL_CHECK(in > 0 && out > 0, "Linear: in_features and out_features must be positive, got ", in, " and ", out);
  KIRZL_CHECK(is_floating(o.dtype), "Linear: dtype must be floating, got ", dtype_name(o.dtype));
  weight = register_parameter("weight", empty({out, in}, {.dtype = o.dtype}));
  if (o.bias) bias = register_parameter("bias", empty({out}, {.dtype = o.dtype}));
  default_init(weight, bias);
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

std::string Linear::repr() const {
  return "Linear(in_features=" + std::to_string(in_features) + ", out_features=" + std::to_string(out_features) +
         ", bias=" + b(bias.defined()) + ")";
}

Conv2d::Conv2d(int64_t in, int64_t out, std::array<int64_t, 2> k, const Conv2dLayerOptions& o)
    : in_channels(in), out_channels(out), kernel_size(k) {
  KIRZL_CHECK(in > 0 && out > 0 && k[0] > 0 && k[1] > 0, "Conv2d: channels and kernel size must be positive, got in=", in,
              " out=", out, " kernel=", pair_str(k));
  KIRZL_CHECK(o.groups > 0 && in % o.groups == 0 && out % o.groups == 0, "Conv2d: groups=", o.groups,
              " must divide in_channels=", in, " and out_channels=", out);
  conv = {.stride = o.stride, .padding = o.padding, .dilation = o.dilation, .groups = o.groups};
  weight = register_parameter("weight", empty({out, in / o.groups, k[0], k[1]}, {.dtype = o.dtype}));
  if (o.bias) bias = register_parameter("bias", empty({out}, {.dtype = o.dtype}));
  default_init(weight, bias);
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, conv); }

std::string Conv2d::repr() const {
  return "Conv2d(" + std::to_string(in_channels) + ", " + std::to_string(out_channels) + ", kernel_size=" +
         pair_str(kernel_size) + ", stride=" + pair_str(conv.stride) + ", padding=" + pair_str(conv.padding) +
         (conv.groups != 1 ? ", groups=" + std::to_string(conv.groups) : "") + ", bias=" + b(bias.defined()) + ")";
}

BatchNorm2d::BatchNorm2d(int64_t c, const BatchNormOptions& o) : num_features(c), options(o) {
  KIRZL_CHECK(c > 0, "BatchNorm2d: num_features must be positive, got ", c);
  KIRZL_CHECK(o.momentum >= 0 && o.momentum <= 1, "BatchNorm2d: momentum must be in [0, 1], got ", o.momentum);
  KIRZL_CHECK(o.eps > 0, "BatchNorm2d: eps must be positive, got ", o.eps);
  if (o.affine) {
    weight = register_parameter("weight", ones({c}));
    bias = register_parameter("bias", zeros({c}));
  }
  if (o.track_running_stats) {
    running_mean = register_buffer("running_mean", zeros({c}));
    running_var = register_buffer("running_var", ones({c}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, {.dtype = DType::i64}));
  }
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  KIRZL_CHECK(x.defined() && x.dim() == 4, "BatchNorm2d: expected a 4-D input [N, C, H, W], got ", x.describe());
  KIRZL_CHECK(x.size(1) == num_features, "BatchNorm2d: input has ", x.size(1), " channels but the layer expects ",
              num_features, " (input ", x.describe(), ")");
  bool use_batch_stats = is_training() || !options.track_running_stats;
  if (is_training() && options.track_running_stats) {
    NoGradGuard g;
    num_batches_tracked.add_(ones({}, {.dtype = DType::i64, .device = num_batches_tracked.device()}));
  }
  // running_* are undefined without track_running_stats; then batch statistics are used always.
  return batch_norm(x, running_mean, running_var, weight, bias, use_batch_stats, options.momentum, options.eps);
}

std::string BatchNorm2d::repr() const {
  return "BatchNorm2d(" + std::to_string(num_features) + ", eps=" + std::to_string(options.eps) +
         ", momentum=" + std::to_string(options.momentum) + ", affine=" + b(options.affine) + ")";
}

LayerNorm::LayerNorm(const Shape& shape, const LayerNormOptions& o) : normalized_shape(shape), options(o) {
  KIRZL_CHECK(shape.size() > 0 && shape.numel() > 0, "LayerNorm: normalized_shape must be non-empty, got ", shape.str());
  if (o.elementwise_affine) {
    weight = register_parameter("weight", ones(shape));
    bias = register_parameter("bias", zeros(shape));
  }
}

Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, normalized_shape, weight, bias, options.eps); }

std::string LayerNorm::repr() const {
  return "LayerNorm(" + normalized_shape.str() + ", eps=" + std::to_string(options.eps) +
         ", elementwise_affine=" + b(options.elementwise_affine) + ")";
}

Embedding::Embedding(int64_t num, int64_t dim) : num_embeddings(num), embedding_dim(dim) {
  KIRZL_CHECK(num > 0 && dim > 0, "Embedding: sizes must be positive, got ", num, " x ", dim);
  weight = register_parameter("weight", empty({num, dim}));
  init::normal_(weight);
}

Tensor Embedding::forward(const Tensor& indices) { return embedding(weight, indices); }

std::string Embedding::repr() const {
  return "Embedding(" + std::to_string(num_embeddings) + ", " + std::to_string(embedding_dim) + ")";
}

Dropout::Dropout(double p, Generator* gen) : p(p), gen(gen) {
  KIRZL_CHECK(p >= 0 && p <= 1, "Dropout: p must be in [0, 1], got ", p);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, is_training(), gen); }

std::string Dropout::repr() const { return "Dropout(p=" + std::to_string(p) + ")"; }

std::string GELU::repr() const {
  return std::string("GELU(approximate=") + (approximate == GeluApproximation::Tanh ? "tanh" : "none") + ")";
}

std::string Flatten::repr() const {
  return "Flatten(start_dim=" + std::to_string(start_dim) + ", end_dim=" + std::to_string(end_dim) + ")";
}

namespace {
Pool2dOptions pool_options(int64_t k, int64_t s, int64_t p, const char* name) {
  KIRZL_CHECK(k > 0 && s >= 0 && p >= 0, name, ": kernel_size must be positive and stride/padding non-negative, got ", k,
              ", ", s, ", ", p);
  return {.kernel_size = {k, k}, .stride = {s, s}, .padding = {p, p}};
}
}  // namespace

MaxPool2d::MaxPool2d(int64_t k, int64_t s, int64_t p) : options(pool_options(k, s, p, "MaxPool2d")) {}
AvgPool2d::AvgPool2d(int64_t k, int64_t s, int64_t p) : options(pool_options(k, s, p, "AvgPool2d")) {}
std::string MaxPool2d::repr() const { return "MaxPool2d(kernel_size=" + pair_str(options.kernel_size) + ")"; }
std::string AvgPool2d::repr() const { return "AvgPool2d(kernel_size=" + pair_str(options.kernel_size) + ")"; }

}  // namespace kirzl::nn
