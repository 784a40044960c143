// Op table rows: conv2d, max_pool2d and avg_pool2d (include/kirzl/ops/nn.hpp): stride, padding,
// dilation, groups, an unbatched input, a 1x1 kernel; pooling with padding and
// count_include_pad false.
#include <cmath>
#include <limits>

#include "ops/harness/op_table.hpp"
#include "ops/harness/reference.hpp"

namespace kirzl::testing::op_table {

namespace {

/// Direct convolution (cross-correlation) of x [N, Cin, H, W] with w [Cout, Cin/g, kH, kW].
Tensor ref_conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, const Conv2dOptions& o) {
  const bool unbatched = x_in.dim() == 3;
  const Shape xs = unbatched ? Shape{1, x_in.size(0), x_in.size(1), x_in.size(2)} : x_in.shape();
  const int64_t N = xs[0], Ci = xs[1], H = xs[2], W = xs[3];
  const int64_t Co = w_in.size(0), Cg = w_in.size(1), kh = w_in.size(2), kw = w_in.size(3), G = o.groups;
  const int64_t Ho = (H + 2 * o.padding[0] - o.dilation[0] * (kh - 1) - 1) / o.stride[0] + 1;
  const int64_t Wo = (W + 2 * o.padding[1] - o.dilation[1] * (kw - 1) - 1) / o.stride[1] + 1;
  const std::vector<double> x = ref::values(x_in), w = ref::values(w_in);
  const std::vector<double> b = b_in.defined() ? ref::values(b_in) : std::vector<double>(Co, 0.0);
  std::vector<double> y;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t co = 0; co < Co; ++co)
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j) {
          double s = b[co];
          const int64_t g = co / (Co / G);
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t p = 0; p < kh; ++p)
              for (int64_t q = 0; q < kw; ++q) {
                const int64_t h = i * o.stride[0] - o.padding[0] + p * o.dilation[0];
                const int64_t v = j * o.stride[1] - o.padding[1] + q * o.dilation[1];
                if (h < 0 || h >= H || v < 0 || v >= W) continue;
                s += x[((n * Ci + g * Cg + c) * H + h) * W + v] * w[((co * Cg + c) * kh + p) * kw + q];
              }
          y.push_back(s);
        }
  return ref::make(unbatched ? Shape{Co, Ho, Wo} : Shape{N, Co, Ho, Wo}, y);
}

/// Max or average pooling of x [N, C, H, W] (or [C, H, W]).
Tensor ref_pool2d(const Tensor& x_in, const Pool2dOptions& o, bool is_max) {
  const Shape& xs = x_in.shape();
  const int64_t lead = ref::numel_of(xs) / (xs[xs.size() - 2] * xs[xs.size() - 1]);
  const int64_t H = xs[xs.size() - 2], W = xs[xs.size() - 1];
  const int64_t kh = o.kernel_size[0], kw = o.kernel_size[1];
  const int64_t sh = o.stride[0] ? o.stride[0] : kh, sw = o.stride[1] ? o.stride[1] : kw;
  const int64_t Ho = (H + 2 * o.padding[0] - kh) / sh + 1, Wo = (W + 2 * o.padding[1] - kw) / sw + 1;
  const std::vector<double> x = ref::values(x_in);
  std::vector<double> y;
  for (int64_t l = 0; l < lead; ++l)
    for (int64_t i = 0; i < Ho; ++i)
      for (int64_t j = 0; j < Wo; ++j) {
        double m = -std::numeric_limits<double>::infinity(), s = 0;
        int64_t count = 0;
        for (int64_t p = 0; p < kh; ++p)
          for (int64_t q = 0; q < kw; ++q) {
            const int64_t h = i * sh - o.padding[0] + p, v = j * sw - o.padding[1] + q;
            if (h < 0 || h >= H || v < 0 || v >= W) continue;
            const double e = x[(l * H + h) * W + v];
            m = std::isnan(m) || std::isnan(e) ? NAN : std::max(m, e), s += e, ++count;
          }
        y.push_back(is_max ? m : s / double(o.count_include_pad ? kh * kw : count));
      }
  std::vector<int64_t> out(xs.begin(), xs.end());
  out[out.size() - 2] = Ho, out[out.size() - 1] = Wo;
  return ref::make(Shape(out), y);
}

}  // namespace

void add_conv_pool_rows(std::vector<Row>& rows) {
  struct Conv {
    const char* variant;
    Shape x, w;
    Conv2dOptions o;
    bool bias;
  };
  const Conv convs[] = {
      {"odd_2x4x7x6_6x4x3x3", {2, 4, 7, 6}, {6, 4, 3, 3}, {}, true},
      {"stride2_pad1", {2, 4, 7, 6}, {6, 4, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}}, true},
      {"dilation2_no_bias", {1, 3, 9, 8}, {5, 3, 3, 2}, {.dilation = {2, 2}}, false},
      {"groups2", {2, 4, 6, 5}, {6, 2, 3, 3}, {.padding = {1, 0}, .groups = 2}, true},
      {"unbatched_4x7x6", {4, 7, 6}, {3, 4, 2, 2}, {}, true},
      {"1x1_2x8x5x5", {2, 8, 5, 5}, {4, 8, 1, 1}, {}, true},
  };
  for (const Conv& c : convs) {
    Row r;
    r.op = "conv2d";
    r.variant = c.variant;
    r.args = {Arg{.shape = c.x}, Arg{.shape = c.w, .lo = -1, .hi = 1}};
    if (c.bias) r.args.push_back(Arg{.shape = {c.w[0]}});
    r.dtypes = float_dtypes();
    const Conv2dOptions o = c.o;
    r.call = [o](const Inputs& in) { return conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), o); };
    r.reference = [o](const Inputs& in) { return ref_conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), o); };
    r.tol.reference = 20;
    r.tol.cuda = 50;  // cuDNN sums in another order
    r.tol.low_precision = 2;
    rows.push_back(r);
  }
  struct Pool {
    const char* variant;
    Arg x;
    Pool2dOptions o;
  };
  const Pool pools[] = {
      {"k2_2x3x7x6", {.shape = {2, 3, 7, 6}}, {}},
      {"k3_s2_pad1", {.shape = {2, 3, 7, 6}}, {.kernel_size = {3, 3}, .stride = {2, 2}, .padding = {1, 1}}},
      {"k3_s2_pad1_exclude_pad", {.shape = {2, 3, 7, 6}},
       {.kernel_size = {3, 3}, .stride = {2, 2}, .padding = {1, 1}, .count_include_pad = false}},
      {"unbatched_strided_3x8x9", {.shape = {3, 8, 9}, .strided = true}, {.kernel_size = {2, 3}}},
  };
  for (bool is_max : {true, false})
    for (const Pool& p : pools) {
      if (is_max && !p.o.count_include_pad) continue;  // an avg_pool2d option
      Row r;
      r.op = is_max ? "max_pool2d" : "avg_pool2d";
      r.variant = p.variant;
      r.args = {p.x};
      r.dtypes = float_dtypes();
      const Pool2dOptions o = p.o;
      r.call = [o, is_max](const Inputs& in) { return is_max ? max_pool2d(in[0], o) : avg_pool2d(in[0], o); };
      r.reference = [o, is_max](const Inputs& in) { return ref_pool2d(in[0], o, is_max); };
      rows.push_back(r);
    }
  // The geometries of the CUDA pooling kernels, on small integers so that windows hold ties (max
  // pooling's gradient goes to the same element on every device), and with NaN (max pooling
  // propagates it).
  struct Geo {
    const char* name;
    int64_t H, W, kh, kw, sh, sw, ph, pw;
  };
  const Geo geos[] = {
      {"cnn_8x8_k2_s2", 8, 8, 2, 2, 2, 2, 0, 0},          {"odd_7x9_k2_s2", 7, 9, 2, 2, 2, 2, 0, 0},
      {"overlap_7x9_k3_s1_p1", 7, 9, 3, 3, 1, 1, 1, 1},   {"rect_17x5_k3x2_s2x1_p1x0", 17, 5, 3, 2, 2, 1, 1, 0},
      {"border_5x5_k5_s1_p2", 5, 5, 5, 5, 1, 1, 2, 2},    {"pixel_1x1_k1", 1, 1, 1, 1, 1, 1, 0, 0},
      {"mixed_13x11_k4x3_s3x2_p2x1", 13, 11, 4, 3, 3, 2, 2, 1},
  };
  for (const Geo& g : geos)
    for (int kind = 0; kind < 3; ++kind) {  // max with ties, max with NaN, avg
      Row r;
      r.op = kind < 2 ? "max_pool2d" : "avg_pool2d";
      r.variant = std::string(kind == 0 ? "ties_" : kind == 1 ? "nan_" : "geometry_") + g.name;
      r.args = {Arg{.shape = {2, 3, g.H, g.W}, .lo = -4, .hi = 4, .specials = kind == 1, .integral = kind < 2}};
      r.dtypes = kind == 1 ? std::vector<DType>{DType::f32, DType::bf16} : float_dtypes();
      const Pool2dOptions o{.kernel_size = {g.kh, g.kw}, .stride = {g.sh, g.sw}, .padding = {g.ph, g.pw}};
      const bool is_max = kind < 2;
      r.call = [o, is_max](const Inputs& in) { return is_max ? max_pool2d(in[0], o) : avg_pool2d(in[0], o); };
      r.reference = [o, is_max](const Inputs& in) { return ref_pool2d(in[0], o, is_max); };
      if (kind < 2) r.no_gradcheck = "ties and NaN: max pooling is not differentiable there";
      rows.push_back(r);
    }
}

}  // namespace kirzl::testing::op_table
