// CUDA fused softmax-cross-entropy against the CPU kernels and op: [N, C] rows (warp and block
// paths, aligned and odd C) and [N, C, S] (strided path), i32/i64 targets, ignore_index (outside
// and inside the class range), label smoothing, per-row and scalar upstream gradients, every
// reduction through autograd, poisoned outputs, and out-of-range targets.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "kernels/cross_entropy.h"
#include "kernels/cuda/nn_cuda_test_util.hpp"
#include "support/expect_error.hpp"

using namespace kirzl;
using namespace kirzl::testing;

namespace {

// Targets for logits of `shape` (class dim 1, or 0 for [C]); every third one is `ignore`.
Tensor make_targets(const Shape& logits_shape, DType dt, int64_t ignore) {
  Shape ts = logits_shape;
  const int64_t classes = logits_shape.size() == 1 ? logits_shape[0] : logits_shape[1];
  ts.erase(logits_shape.size() == 1 ? 0 : 1);
  Generator gen(5);
  Tensor t = randint(0, classes, ts, {.dtype = DType::i64}, &gen);
  auto v = t.to_vector<int64_t>();
  for (size_t i = 0; i < v.size(); i += 3) v[i] = ignore;
  return from_vector<int64_t>(v, ts).to(dt);
}

const Shape kShapes[] = {{1, 1}, {4, 3}, {33, 1000}, {5, 1003}, {6, 5003}, {3, 50304}, {3, 5, 7}, {17}};

}  // namespace

TEST(CrossEntropyCuda, KernelsMatchCpuWithPoisonedOutputs) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (const Shape& s : kShapes)
      for (DType tdt : {DType::i64, DType::i32})
        for (int64_t ignore : {int64_t{-100}, int64_t{0}})
          for (double smoothing : {0.0, 0.1}) {
            SCOPED_TRACE(s.str() + " " + dtype_name(dt) + " targets " + dtype_name(tdt) + " ignore " +
                         std::to_string(ignore) + " smoothing " + std::to_string(smoothing));
            Tensor x = cpu_uniform(s, dt, -6, 6);
            Tensor t = make_targets(s, tdt, ignore);
            const int64_t rows = t.numel();
            Tensor loss_ref = empty({rows}, {.dtype = DType::f32}), lse_ref = empty({rows}, {.dtype = DType::f32});
            kernels::cross_entropy_forward.kernel(DeviceType::CPU)(loss_ref, lse_ref, x, t, ignore, smoothing);
            Tensor xg = x.to(gpu()), tg = t.to(gpu());
            Tensor loss = empty({rows}, {.dtype = DType::f32, .device = gpu()});
            Tensor lse = empty({rows}, {.dtype = DType::f32, .device = gpu()});
            poison(loss);
            poison(lse);
            kernels::cross_entropy_forward(loss, lse, xg, tg, ignore, smoothing);
            const Tolerance tol{1e-5, 1e-5};  // f32 statistics for every input dtype
            EXPECT_TRUE(all_close(loss, loss_ref, tol)) << "losses";
            EXPECT_TRUE(all_close(lse, lse_ref, tol)) << "lse";

            for (bool per_row : {true, false}) {
              Tensor grad = cpu_uniform({per_row ? rows : 1}, dt, 0.5, 2, 9);
              Tensor gx_ref = empty(s, {.dtype = dt});
              kernels::cross_entropy_backward.kernel(DeviceType::CPU)(gx_ref, x, t, lse_ref, grad, 0.25, ignore, smoothing);
              Tensor gx = empty(s, {.dtype = dt, .device = gpu()});
              poison(gx);
              kernels::cross_entropy_backward(gx, xg, tg, lse_ref.to(gpu()), grad.to(gpu()), 0.25, ignore, smoothing);
              EXPECT_TRUE(all_close(gx, gx_ref)) << (per_row ? "per-row grad" : "scalar grad");
            }
          }
}

TEST(CrossEntropyCuda, OpWithEveryReductionThroughAutograd) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16})
    for (const Shape& s : {Shape{8, 1000}, Shape{3, 4, 5}, Shape{5, 2049}})
      for (Reduction red : {Reduction::Mean, Reduction::Sum, Reduction::None})
        for (bool nc : {false, true}) {
          SCOPED_TRACE(s.str() + " " + dtype_name(dt) + " reduction " + std::to_string(static_cast<int>(red)) +
                       (nc ? " non-contiguous" : ""));
          Tensor t = make_targets(s, DType::i64, -100);
          const CrossEntropyOptions o{.ignore_index = -100, .label_smoothing = 0.05, .reduction = red};
          expect_op_matches_cpu(
              [&](const std::vector<Tensor>& xs, Device d) { return cross_entropy(xs[0], t.to(d), o); },
              {cpu_uniform(s, dt, -5, 5)}, tolerance_for(dt), nc);
        }
}

TEST(CrossEntropyCuda, AllIgnoredMeanIsNaNWithZeroGradient) {
  KIRZL_REQUIRE_GPU();
  Tensor x = cpu_uniform({4, 10}, DType::f32).to(gpu()).requires_grad_();
  Tensor t = full({4}, -100, {.dtype = DType::i64, .device = gpu()});
  Tensor loss = cross_entropy(x, t);
  EXPECT_TRUE(std::isnan(loss.item()));
  loss.backward();
  EXPECT_TRUE(all_close(x.grad(), zeros({4, 10})));
}

TEST(CrossEntropyCuda, OutOfRangeTargetIsRejected) {
  KIRZL_REQUIRE_GPU();
  Tensor x = cpu_uniform({4, 10}, DType::f32).to(gpu());
  Tensor t = from_vector<int64_t>({1, 2, 10, -1}).to(gpu());
  // At the call (dry run, KIRZL_SYNC_INDEX_CHECKS=1) or at item(), the next synchronising point.
  EXPECT_KIRZL_ERROR(cross_entropy(x, t).item(), ErrorCode::InvalidArgument,
                     "cross_entropy: target 10 at position [2] is out of range for 10 classes (expected 0 .. 9 or "
                     "ignore_index -100)");
  Tensor t32 = from_vector<int32_t>({1, -5, 3, 4}).to(gpu());
  EXPECT_KIRZL_ERROR(cross_entropy(x, t32).item(), ErrorCode::InvalidArgument, "target -5 at position [1]");
  if (kNnDryRun || cuda::sync_index_checks()) {
    EXPECT_KIRZL_ERROR(cross_entropy(x, t), ErrorCode::InvalidArgument, "target 10 at position [2]");
    return;
  }
  // Deferred (Note [deferred index check]): the call and backward return without waiting; the
  // loss is NaN, and the error comes at the next synchronising point, once.
  Tensor xg = x.detach().requires_grad_();
  Tensor loss;
  ASSERT_NO_THROW(loss = cross_entropy(xg, from_vector<int64_t>({1, 2, 3, 20}).to(gpu())));
  ASSERT_NO_THROW(loss.backward());
  EXPECT_KIRZL_ERROR(cuda::synchronize(0), ErrorCode::InvalidArgument, "target 20 at position [3]");
  EXPECT_TRUE(std::isnan(loss.item()));
  EXPECT_NO_THROW(cuda::synchronize(0));
}

TEST(CrossEntropyCuda, DeferredCheckKeepsTheMeanOnTheDevice) {
  // The mean's divisor (targets not ignored) stays on the device with the deferred check: the
  // same loss and gradient as the CPU, for every reduction, with ignored targets.
  KIRZL_REQUIRE_GPU();
  Tensor t = from_vector<int64_t>({1, -100, 3, 9, -100, 0});
  for (Reduction red : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    const CrossEntropyOptions o{.reduction = red};
    expect_op_matches_cpu([&](const std::vector<Tensor>& xs, Device d) { return cross_entropy(xs[0], t.to(d), o); },
                          {cpu_uniform({6, 10}, DType::f32)}, tolerance_for(DType::f32), false);
  }
}

TEST(CrossEntropyCuda, KernelCalledWithABadTargetWritesNaNAndStaysInBounds) {
  KIRZL_REQUIRE_GPU();
  if (kNnDryRun) GTEST_SKIP() << "a property of the CUDA kernels that the CPU kernels do not share";
  Tensor x = cpu_uniform({3, 10}, DType::f32).to(gpu());
  Tensor t = from_vector<int64_t>({1, 1000000, 2}).to(gpu());
  Tensor loss = empty({3}, {.dtype = DType::f32, .device = gpu()}), lse = empty({3}, {.dtype = DType::f32, .device = gpu()});
  kernels::cross_entropy_forward(loss, lse, x, t, -100, 0.0);
  auto l = loss.to_vector<float>();
  EXPECT_FALSE(std::isnan(l[0]));
  EXPECT_TRUE(std::isnan(l[1]));
  EXPECT_FALSE(std::isnan(l[2]));
}
