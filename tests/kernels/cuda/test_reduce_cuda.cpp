// CUDA reductions against the CPU: sum over every subset of dims of 4-D tensors (contiguous and
// permuted), the one- and two-stage paths, integer sums, mean/var, max/min/argmax/argmin with
// ties and NaN (exactly the CPU's first-occurrence rules), and their gradients on CUDA.
#include <cmath>

#include "kernels/cuda/ew_test_util.hpp"
#include "kernels/reduce.h"

namespace kirzl {
namespace {

using namespace kirzl::testing;

// f32 sums accumulate in f32 on the GPU and in f64 on the CPU: allow a few ulps per addition
// level of the magnitude summed.
Tolerance sum_tol(DType dt, int64_t n_red) {
  Tolerance t = tolerance_for(dt);
  if (dt == DType::f32) t.atol = 2e-6 * std::sqrt(static_cast<double>(n_red)) * 4;
  if (dt == DType::bf16 || dt == DType::f16) t.atol = t.atol * std::sqrt(static_cast<double>(n_red));
  return t;
}

void expect_sum_matches(const Tensor& x_cpu, const Tensor& x_gpu, const std::vector<bool>& mask, const std::string& what) {
  Shape out_shape;
  int64_t n_red = 1;
  for (int64_t d = 0; d < x_cpu.dim(); ++d) {
    if (mask[d]) n_red *= x_cpu.size(d);
    else out_shape.push_back(x_cpu.size(d));
  }
  Tensor expected = empty(out_shape, {.dtype = x_cpu.dtype()});
  kernels::sum.kernel(DeviceType::CPU)(expected, x_cpu, mask);
  Tensor out = empty(out_shape, {.dtype = x_cpu.dtype(), .device = kGpu});
  poison(out);
  kernels::sum(out, x_gpu, mask);
  EXPECT_TRUE(all_close(out, expected, sum_tol(x_cpu.dtype(), n_red))) << what;
}

TEST(ReduceCuda, SumOverEverySubsetOfDims) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16, DType::f64, DType::i32, DType::i64, DType::u8})
    for (const Shape& shape : {Shape{3, 5, 7, 11}, Shape{2, 1, 33, 65}, Shape{40, 3, 1, 129}}) {
      Tensor x = random_cpu(shape, dt, 7, 0, 20);
      Tensor xg = x.to(kGpu);
      Tensor xp = x.permute({2, 0, 3, 1}), xpg = xg.permute({2, 0, 3, 1});
      for (int bits = 0; bits < 16; ++bits) {
        std::vector<bool> mask(4);
        for (int d = 0; d < 4; ++d) mask[d] = (bits >> d) & 1;
        const std::string what = shape.str() + " mask " + std::to_string(bits) + " " + name_of(dt);
        expect_sum_matches(x, xg, mask, what);
        expect_sum_matches(xp, xpg, mask, what + " permuted");
        expect_sum_matches(x, non_contiguous_copy(xg), mask, what + " stepped");
      }
    }
}

TEST(ReduceCuda, SumLargeAndOddShapes) {
  KIRZL_REQUIRE_GPU();
  const std::vector<std::pair<Shape, std::vector<bool>>> cases = {
      {{kBig}, {true}},                 // everything: two stages
      {{1000, 1003}, {false, true}},       // last dim, rows
      {{4097, 33}, {true, false}},         // leading dim, columns
      {{3, 100003, 5}, {false, true, false}},  // middle dim, few outputs: split columns
      {{7, 150001}, {false, true}},        // few long rows: split rows
      {{1, 1}, {true, true}},
      {{0, 5}, {true, false}},             // empty reduction: zeros
  };
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::f64, DType::i64})
    for (const auto& [shape, mask] : cases) {
      Tensor x = random_cpu(shape, dt, 8, 0, 20);
      expect_sum_matches(x, x.to(kGpu), mask, shape.str() + " " + name_of(dt));
      if (x.numel() > 1) expect_sum_matches(x, misaligned_gpu(x), mask, shape.str() + " misaligned " + name_of(dt));
    }
}

TEST(ReduceCuda, SumIsDeterministic) {
  KIRZL_REQUIRE_GPU();
  Tensor x = random_cpu({4001, 1001}, DType::f32, 9).to(kGpu);
  Tensor a = sum(x), b = sum(x);
  EXPECT_EQ(a.item(), b.item());
  Tensor c = sum(x, {0}), d = sum(x, {0});
  EXPECT_TRUE(all_close(c, d, {0, 0}));
}

TEST(ReduceCuda, OpsSumMeanVarWithAutograd) {
  KIRZL_REQUIRE_GPU();
  Tensor x = random_cpu({6, 7, 8}, DType::f32, 10);
  const std::vector<Dims> dims = {{}, {0}, {1}, {2}, {0, 2}, {-1, 0}};
  for (const Dims& d : dims)
    for (bool keepdim : {false, true}) {
      Tensor xc = x.detach().clone().requires_grad_(true), xg = x.detach().to(kGpu).requires_grad_(true);
      Tensor yc = add(add(sum(xc, d, keepdim), mean(xc, d, keepdim)), var(xc, d, 1, keepdim));
      Tensor yg = add(add(sum(xg, d, keepdim), mean(xg, d, keepdim)), var(xg, d, 1, keepdim));
      EXPECT_TRUE(all_close(yg, yc, sum_tol(DType::f32, 336)));
      Tensor g = random_cpu(yc.shape(), DType::f32, 11);
      yc.backward(g);
      yg.backward(g.to(kGpu));
      EXPECT_TRUE(all_close(xg.grad(), xc.grad(), sum_tol(DType::f32, 336)));
    }
  Tensor i = random_cpu({5, 9}, DType::i32, 12, -100, 100);
  Tensor si = sum(i.to(kGpu), {1});
  EXPECT_EQ(si.dtype(), DType::i64);
  EXPECT_TRUE(all_close(si, sum(i, {1})));
}

// Values with many ties (small integers) and, optionally, NaNs at chosen places.
Tensor tie_values(const Shape& s, DType dt, uint64_t seed, bool with_nan) {
  Tensor x = random_cpu(s, DType::i32, seed, -3, 4).to(DType::f64);
  if (with_nan) {
    Tensor flat = x.reshape({-1});
    for (int64_t k = 5; k < flat.numel(); k += 37) flat.narrow(0, k, 1).fill_(std::numeric_limits<double>::quiet_NaN());
  }
  return x.to(dt);
}

void expect_extremum_matches(bool is_max, const Tensor& x, int64_t dim, const std::string& what) {
  Shape kept = x.shape();
  kept.erase(dim);
  Tensor ev = empty(kept, {.dtype = x.dtype()}), ei = empty(kept, {.dtype = DType::i64});
  kernels::extremum.kernel(DeviceType::CPU)(is_max, ev, ei, x, dim);
  Tensor v = empty(kept, {.dtype = x.dtype(), .device = kGpu}), i = empty(kept, {.dtype = DType::i64, .device = kGpu});
  poison(v);
  poison(i);
  Tensor xg = x.to(kGpu);
  kernels::extremum(is_max, v, i, xg, dim);
  EXPECT_TRUE(all_close(v, ev, {0, 0})) << what << " values";
  EXPECT_TRUE(all_close(i, ei, {0, 0})) << what << " indices";
  // Values only and indices only.
  Tensor v2 = empty(kept, {.dtype = x.dtype(), .device = kGpu}), none;
  poison(v2);
  kernels::extremum(is_max, v2, none, xg, dim);
  Tensor ev2 = empty(kept, {.dtype = x.dtype()}), none_cpu;
  kernels::extremum.kernel(DeviceType::CPU)(is_max, ev2, none_cpu, x, dim);
  EXPECT_TRUE(all_close(v2, ev2, {0, 0})) << what << " values only";
  Tensor i2 = empty(kept, {.dtype = DType::i64, .device = kGpu});
  poison(i2);
  kernels::extremum(is_max, none, i2, xg, dim);
  EXPECT_TRUE(all_close(i2, ei, {0, 0})) << what << " indices only";
}

TEST(ReduceCuda, ExtremumEveryDimTiesAndNaN) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16, DType::f64, DType::i32, DType::u8, DType::i64})
    for (bool with_nan : {false, true}) {
      if (with_nan && !is_floating(dt)) continue;
      for (const Shape& shape : {Shape{3, 5, 7, 11}, Shape{2, 1, 4099, 3}, Shape{1, 9000}})
        for (int64_t dim = 0; dim < shape.size(); ++dim)
          for (bool is_max : {true, false}) {
            Tensor x = dt == DType::u8 ? random_cpu(shape, dt, 13, 0, 4) : tie_values(shape, dt, 13, with_nan);
            expect_extremum_matches(is_max, x, dim,
                                    shape.str() + " dim " + std::to_string(dim) + (is_max ? " max " : " min ") + name_of(dt) +
                                        (with_nan ? " nan" : ""));
          }
    }
}

TEST(ReduceCuda, ExtremumOfALongVector) {
  KIRZL_REQUIRE_GPU();
  for (bool with_nan : {false, true}) {
    Tensor x = tie_values({1000003}, DType::f32, 14, false);
    x.narrow(0, 777777, 1).fill_(50.0);  // one clear maximum late in the vector
    x.narrow(0, 900001, 1).fill_(50.0);  // and a tie after it: the first must win
    if (with_nan) {
      x.narrow(0, 654321, 1).fill_(std::numeric_limits<double>::quiet_NaN());
      x.narrow(0, 999999, 1).fill_(std::numeric_limits<double>::quiet_NaN());
    }
    for (bool is_max : {true, false}) expect_extremum_matches(is_max, x, 0, with_nan ? "long, NaN" : "long");
  }
}

TEST(ReduceCuda, MaxMinArgOpsWithAutograd) {
  KIRZL_REQUIRE_GPU();
  Tensor x = tie_values({6, 9, 5}, DType::f32, 15, false);
  for (int64_t dim : {0, 1, 2, -1}) {
    Tensor xc = x.detach().clone().requires_grad_(true), xg = x.detach().to(kGpu).requires_grad_(true);
    Tensor yc = add(max(xc, dim, true), min(xc, dim, true)), yg = add(max(xg, dim, true), min(xg, dim, true));
    EXPECT_TRUE(all_close(yg, yc));
    Tensor g = random_cpu(yc.shape(), DType::f32, 16);
    yc.backward(g);
    yg.backward(g.to(kGpu));
    EXPECT_TRUE(all_close(xg.grad(), xc.grad()));
    EXPECT_TRUE(all_close(argmax(x.to(kGpu), dim), argmax(x, dim)));
    EXPECT_TRUE(all_close(argmin(x.to(kGpu), dim), argmin(x, dim)));
  }
  // A permuted (non-contiguous) input goes through contiguous() on the device.
  EXPECT_TRUE(all_close(max(x.to(kGpu).permute({2, 0, 1}), 1), max(x.permute({2, 0, 1}), 1)));
  EXPECT_TRUE(all_close(max(x.to(kGpu)), max(x)));
  EXPECT_TRUE(all_close(min(x.to(DType::bf16).to(kGpu)), min(x.to(DType::bf16))));
}

}  // namespace
}  // namespace kirzl
