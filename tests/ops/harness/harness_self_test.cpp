// Tests of the op table's own machinery: a row whose "kernel" leaves its last element unwritten,
// or computes a slightly wrong value, must fail its cpu case (and, under KIRZL_TEST_GPU_AS_CPU,
// its cuda case); the poisoned allocator blocks must be what makes the unwritten element visible.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "ops/harness/cases.hpp"
#include "ops/harness/poison.hpp"
#include "ops/harness/reference.hpp"
#include "support/cuda_compare.hpp"

using namespace kirzl;
using namespace kirzl::testing::op_table;

namespace {

// 40000 f32 = 160 KB: large enough for the CPU allocator's cache (Note [cpu caching allocator]),
// so that the poisoned block is the one the "kernel" gets.
constexpr int64_t kN = 40000;

/// exp, except that the last element of the output is never written.
Tensor exp_leaving_last_unwritten(const Tensor& x) {
  Tensor y = empty(x.shape(), {.dtype = x.dtype(), .device = x.device()});
  const int64_t n = x.numel();
  y.narrow(0, 0, n - 1).copy_(exp(x.narrow(0, 0, n - 1)));
  return y;
}

Row faulty_row(Call call) {
  Row r;
  r.op = "faulty_exp";
  r.variant = "self_test";
  r.args = {Arg{.shape = {kN}}};
  r.dtypes = {DType::f32};
  r.call = std::move(call);
  r.reference = [](const Inputs& in) { return kirzl::testing::ref::map(in[0], [](double x) { return std::exp(x); }); };
  r.differentiable = false;
  return r;
}

}  // namespace

TEST(OpTableSelfTest, PoisonedBlockMakesAnUnwrittenElementNaN) {
  Tensor x = full({kN}, 0.5, {.dtype = DType::f32});
  poison_free_blocks(Device::cpu(), {static_cast<size_t>(kN) * 4});
  Tensor y = exp_leaving_last_unwritten(x);
  EXPECT_TRUE(std::isnan(y.to_vector<float>().back())) << "the unwritten element should hold the poison";
  ::testing::AssertionResult r = kirzl::testing::all_close(y, exp(x));
  EXPECT_FALSE(r);
  EXPECT_NE(std::string(r.message()).find("first at flat index 39999"), std::string::npos) << r.message();
}

TEST(OpTableSelfTest, CpuCaseFailsForAnUnwrittenElement) {
  const Row row = faulty_row([](const Inputs& in) { return exp_leaving_last_unwritten(in[0]); });
  Timings timings;
  EXPECT_NONFATAL_FAILURE(run_case({&row, DType::f32, Mode::cpu}, timings), "1 of 40000 elements differ");
}

TEST(OpTableSelfTest, CpuCaseFailsForAWrongValue) {
  // exp(x) * (1 + 1e-4): within any float's reach, outside the f32 tolerance.
  const Row row = faulty_row([](const Inputs& in) { return mul(exp(in[0]), 1 + 1e-4); });
  Timings timings;
  EXPECT_NONFATAL_FAILURE(run_case({&row, DType::f32, Mode::cpu}, timings), "elements differ");
}

TEST(OpTableSelfTest, CpuCasePassesForTheCorrectKernel) {
  const Row row = faulty_row([](const Inputs& in) { return exp(in[0]); });
  Timings timings;
  run_case({&row, DType::f32, Mode::cpu}, timings);
}

TEST(OpTableSelfTest, GradcheckFailsForAWrongGradient) {
  // x * x.detach(): the value x^2, but a gradient of x instead of 2x.
  Row row;
  row.op = "wrong_grad";
  row.variant = "self_test";
  row.args = {Arg{.shape = {5}}};
  row.dtypes = {DType::f64};
  row.call = [](const Inputs& in) { return mul(in[0], in[0].detach()); };  // value x^2, gradient x
  row.reference = [](const Inputs& in) { return kirzl::testing::ref::map(in[0], [](double x) { return x * x; }); };
  Timings timings;
  EXPECT_NONFATAL_FAILURE(run_case({&row, DType::f64, Mode::gradcheck}, timings), "analytic");
}
