// CUDA softmax / log_softmax against the CPU kernels: warp-per-row and block-per-row paths,
// aligned and unaligned rows, non-last dims (strided path), poisoned outputs, and the public ops
// through autograd on non-contiguous inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "kernels/cuda/nn_cuda_test_util.hpp"
#include "kernels/softmax.h"

using namespace kirzl;
using namespace kirzl::testing;

namespace {

struct Case {
  Shape shape;
  int64_t dim;
};

// Short rows (warp per row), long rows (block per row), odd lengths (no 16-byte packs), non-last
// dims (strided), one element.
const Case kCases[] = {{{1, 1}, 1},      {{3, 17}, 1},  {{257, 1000}, 1}, {{5, 1003}, 1}, {{4, 4097}, 1},
                       {{2, 50304}, 1}, {{7, 33, 5}, 1}, {{9, 3, 2}, 0},  {{1}, 0},         {{6, 1025}, 0}};

std::string name(const Case& c, DType dt, bool log) {
  return c.shape.str() + " dim " + std::to_string(c.dim) + " " + dtype_name(dt) + (log ? " log" : "");
}

}  // namespace

TEST(SoftmaxCuda, KernelMatchesCpuWithPoisonedOutputs) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (const Case& c : kCases)
      for (bool log : {false, true}) {
        SCOPED_TRACE(name(c, dt, log));
        Tensor x = cpu_uniform(c.shape, dt, -8, 8);
        Tensor ref = empty(c.shape, {.dtype = dt});
        kernels::softmax.kernel(DeviceType::CPU)(ref, x, c.dim, log);
        Tensor xg = x.to(gpu());
        Tensor out = empty(c.shape, {.dtype = dt, .device = gpu()});
        poison(out);
        kernels::softmax(out, xg, c.dim, log);
        EXPECT_TRUE(all_close(out, ref));

        Tensor g = cpu_uniform(c.shape, dt, -1, 1, 3);
        Tensor gref = empty(c.shape, {.dtype = dt});
        kernels::softmax_backward.kernel(DeviceType::CPU)(gref, g, ref, c.dim, log);
        Tensor gx = empty(c.shape, {.dtype = dt, .device = gpu()});
        poison(gx);
        kernels::softmax_backward(gx, g.to(gpu()), ref.to(gpu()), c.dim, log);
        EXPECT_TRUE(all_close(gx, gref));
      }
}

TEST(SoftmaxCuda, InfinitiesAndNaNRowsLikeCpu) {
  KIRZL_REQUIRE_GPU();
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  // Row 0: all -inf (NaN out); row 1: some -inf (zero probability); row 2: a NaN (NaN row).
  std::vector<float> v = {float(-inf), float(-inf), float(-inf), float(-inf), 1.f, float(-inf), 2.f,
                          3.f,         4.f,         float(nan),  5.f,         6.f};
  Tensor x = from_vector<float>(v, {3, 4});
  for (bool log : {false, true}) {
    Tensor ref = empty({3, 4}, {.dtype = DType::f32});
    kernels::softmax.kernel(DeviceType::CPU)(ref, x, 1, log);
    Tensor out = empty({3, 4}, {.dtype = DType::f32, .device = gpu()});
    poison(out);
    kernels::softmax(out, x.to(gpu()), 1, log);
    EXPECT_TRUE(all_close(out, ref)) << (log ? "log_softmax" : "softmax");
  }
}

TEST(SoftmaxCuda, PublicOpsWithAutogradOnNonContiguousInputs) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16})
    for (const Case& c : {Case{{5, 300}, -1}, Case{{3, 2000}, 1}, Case{{4, 7, 3}, 1}, Case{{17}, 0}})
      for (bool log : {false, true})
        for (bool nc : {false, true}) {
          SCOPED_TRACE(name(c, dt, log) + (nc ? " non-contiguous" : ""));
          const int64_t dim = c.dim;
          expect_op_matches_cpu(
              [&](const std::vector<Tensor>& xs, Device) { return log ? log_softmax(xs[0], dim) : softmax(xs[0], dim); },
              {cpu_uniform(c.shape, dt, -4, 4)}, tolerance_for(dt), nc);
        }
}

TEST(SoftmaxCuda, RepeatedRunsAreBitwiseIdentical) {
  KIRZL_REQUIRE_GPU();
  Tensor x = cpu_uniform({64, 5000}, DType::f32).to(gpu());
  Tensor a = softmax(x, 1), b = softmax(x, 1);
  EXPECT_TRUE(bitwise_equal(a, b));
}
