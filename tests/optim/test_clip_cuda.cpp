// clip_grad_norm_ on CUDA (one deterministic multi-tensor reduction, scaling by a kernel that
// reads the norm from device memory) against the CPU clip_grad_norm.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <kirzl/kirzl.hpp>

#include "support/cuda_compare.hpp"

namespace kirzl {
namespace {

using testing::all_close;

struct Twin {
  std::vector<Tensor> cpu, gpu;
};

/// Parameters of odd sizes with gradients (f32 and bf16 mixed), the same values on both sides.
Twin make_twin(uint64_t seed, double grad_scale, bool non_contiguous = false) {
  const std::vector<Shape> shapes = {{1}, {3}, {17, 3}, {257}, {1000003}, {65537}, {9, 2}};
  Generator gen(seed);
  Twin t;
  for (size_t k = 0; k < shapes.size(); ++k) {
    const DType dt = k % 3 == 1 ? DType::bf16 : DType::f32;
    Tensor pc = zeros(shapes[k], {.dtype = dt}).requires_grad_();
    Tensor pg = zeros(shapes[k], {.dtype = dt, .device = Device::cuda()}).requires_grad_();
    Tensor g = (randn(shapes[k], {}, &gen) * grad_scale).to(dt);
    pc.set_grad(g);
    Tensor gg = g.to(Device::cuda());
    pg.set_grad(non_contiguous && shapes[k].size() == 2 ? testing::non_contiguous_copy(gg) : gg);
    t.cpu.push_back(pc);
    t.gpu.push_back(pg);
  }
  // A parameter without gradient is skipped on both sides.
  t.cpu.push_back(zeros({4}).requires_grad_());
  t.gpu.push_back(zeros({4}, {.device = Device::cuda()}).requires_grad_());
  return t;
}

void expect_grads_close(const Twin& t) {
  for (size_t k = 0; k < t.cpu.size(); ++k) {
    if (!t.cpu[k].grad().defined()) {
      EXPECT_FALSE(t.gpu[k].grad().defined());
      continue;
    }
    Tensor c = t.cpu[k].grad();
    EXPECT_TRUE(all_close(t.gpu[k].grad(), c, testing::tolerance_for(c.dtype()))) << "gradient " << k;
  }
}

TEST(ClipGradNormCuda, MatchesTheCpuForEveryNormType) {
  KIRZL_REQUIRE_GPU();
  for (double norm_type : {2.0, 1.0, std::numeric_limits<double>::infinity(), 3.5}) {
    for (double max_norm : {0.5, 1e12}) {  // clips / leaves alone
      for (bool non_contiguous : {false, true}) {
        Twin t = make_twin(17, 0.01, non_contiguous);
        const double want = optim::clip_grad_norm(t.cpu, max_norm, norm_type);
        Tensor got = optim::clip_grad_norm_(t.gpu, max_norm, {.norm_type = norm_type});
        EXPECT_TRUE(got.device().is_cuda());
        EXPECT_EQ(got.dim(), 0);
        EXPECT_EQ(got.dtype(), DType::f32);
        EXPECT_NEAR(got.item(), want, 1e-6 * want) << "norm " << norm_type << " max " << max_norm;
        expect_grads_close(t);
      }
    }
  }
}

TEST(ClipGradNormCuda, IsDeterministic) {
  KIRZL_REQUIRE_GPU();
  Twin a = make_twin(3, 1.0), b = make_twin(3, 1.0);
  Tensor na = optim::clip_grad_norm_(a.gpu, 0.1), nb = optim::clip_grad_norm_(b.gpu, 0.1);
  EXPECT_EQ(na.item(), nb.item());
  for (size_t k = 0; k + 1 < a.gpu.size(); ++k)
    EXPECT_EQ(a.gpu[k].grad().to_vector<double>(), b.gpu[k].grad().to_vector<double>());
}

TEST(ClipGradNormCuda, DoubleApiSyncsAndAgrees) {
  KIRZL_REQUIRE_GPU();
  Twin t = make_twin(5, 0.02);
  const double want = optim::clip_grad_norm(t.cpu, 0.25);
  EXPECT_NEAR(optim::clip_grad_norm(t.gpu, 0.25), want, 1e-6 * want);
  expect_grads_close(t);
}

TEST(ClipGradNormCuda, NonFiniteLeavesGradientsAlone) {
  KIRZL_REQUIRE_GPU();
  Twin t = make_twin(8, 1.0);
  Tensor g = t.gpu[3].grad();
  g.copy_(full(g.shape(), std::numeric_limits<double>::infinity(), {.dtype = g.dtype()}));
  Tensor before = g.clone();
  Tensor n = optim::clip_grad_norm_(t.gpu, 0.1);
  EXPECT_TRUE(std::isinf(n.item()));
  EXPECT_TRUE(all_close(t.gpu[3].grad(), before.to(Device::cpu()), {0, 0}));
  EXPECT_TRUE(all_close(t.gpu[0].grad(), t.cpu[0].grad(), {0, 0})) << "no gradient may be scaled";
  try {
    optim::clip_grad_norm_(t.gpu, 0.1, {.error_if_nonfinite = true});
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
  }
}

TEST(ClipGradNormCuda, NoGradientsGiveZero) {
  KIRZL_REQUIRE_GPU();
  Tensor p = zeros({3}, {.device = Device::cuda()}).requires_grad_();
  EXPECT_EQ(optim::clip_grad_norm_({p}, 1.0).item(), 0.0);
}

}  // namespace
}  // namespace kirzl
