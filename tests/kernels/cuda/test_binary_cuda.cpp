// CUDA binary elementwise kernels against the CPU kernels: every op and dtype, odd sizes,
// broadcasting, non-contiguous and misaligned operands, strided poisoned outputs; the ops with
// autograd on CUDA against the same ops on the CPU.
#include "kernels/binary.h"
#include "kernels/cuda/ew_test_util.hpp"

namespace kirzl {
namespace {

using kernels::BinaryOp;
using namespace kirzl::testing;

const BinaryOp kAllOps[] = {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Maximum, BinaryOp::Minimum,
                            BinaryOp::Eq,  BinaryOp::Ne,  BinaryOp::Lt,  BinaryOp::Le,  BinaryOp::Gt,      BinaryOp::Ge};

bool is_comparison(BinaryOp op) { return op >= BinaryOp::Eq; }

// Operands for `op`: integer divisors are kept nonzero (the CPU kernel throws on x / 0).
void make_operands(BinaryOp op, DType dt, const Shape& sa, const Shape& sb, uint64_t seed, Tensor& a, Tensor& b) {
  a = random_cpu(sa, dt, seed, 0, 50);
  b = random_cpu(sb, dt, seed + 1, op == BinaryOp::Div ? 1 : 0, 50);
}

// Runs the CUDA kernel on (ga, gb) into a poisoned output and the CPU kernel on (a, b).
void expect_binary_matches(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& ga, const Tensor& gb, bool strided_out,
                           const std::string& what) {
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), "test");
  const DType out_dt = is_comparison(op) ? DType::u8 : a.dtype();
  Tensor expected = empty(shape, {.dtype = out_dt});
  kernels::binary.kernel(DeviceType::CPU)(op, expected, a, b);
  Tensor out = poisoned_out(shape, out_dt, strided_out);
  kernels::binary(op, out, ga, gb);
  EXPECT_TRUE(all_close(out, expected, tolerance_for(out_dt))) << what << " op " << int(op) << " dtype " << name_of(a.dtype());
}

TEST(BinaryCuda, EveryOpEveryDtypeOddSizes) {
  KIRZL_REQUIRE_GPU();
  for (int64_t n : std::vector<int64_t>{1, 3, 17, 257, 4099, kBig})
    for (DType dt : all_dtypes())
      for (BinaryOp op : kAllOps) {
        if (n == kBig && dt != DType::f32 && dt != DType::bf16 && dt != DType::i32) continue;  // keep the CPU side short
        Tensor a, b;
        make_operands(op, dt, {n}, {n}, 100 + n, a, b);
        expect_binary_matches(op, a, b, a.to(kGpu), b.to(kGpu), false, "n=" + std::to_string(n));
      }
}

TEST(BinaryCuda, Broadcasting) {
  KIRZL_REQUIRE_GPU();
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3, 1, 5}, {1, 4, 1}}, {{}, {1001}}, {{1001}, {}}, {{37}, {29, 37}}, {{29, 37}, {37}}, {{1, 1}, {5, 1, 7}}, {{6, 1}, {1, 5}}};
  for (const auto& [sa, sb] : cases)
    for (DType dt : all_dtypes())
      for (BinaryOp op : kAllOps) {
        Tensor a, b;
        make_operands(op, dt, sa, sb, 7, a, b);
        expect_binary_matches(op, a, b, a.to(kGpu), b.to(kGpu), false, "broadcast " + sa.str() + " with " + sb.str());
        expect_binary_matches(op, a, b, a.to(kGpu), b.to(kGpu), true, "strided out, broadcast " + sa.str() + " with " + sb.str());
      }
}

TEST(BinaryCuda, NonContiguousAndMisalignedOperands) {
  KIRZL_REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::i64, DType::u8})
    for (BinaryOp op : kAllOps) {
      Tensor a, b;
      make_operands(op, dt, {33, 65}, {65, 33}, 11, a, b);
      Tensor bt = b.transpose(0, 1);  // [33, 65], transposed strides
      // Transposed b, stepped-slice a (every other element of a wider buffer).
      expect_binary_matches(op, a, bt, non_contiguous_copy(a.to(kGpu)), b.to(kGpu).transpose(0, 1), false, "transposed/stepped");
      expect_binary_matches(op, a, bt, a.to(kGpu), b.to(kGpu).transpose(0, 1), true, "transposed into strided out");
      // One misaligned operand (different alignments: the strided path) ...
      Tensor c, d;
      make_operands(op, dt, {kBig}, {kBig}, 12, c, d);
      expect_binary_matches(op, c, d, misaligned_gpu(c), d.to(kGpu), false, "a misaligned");
      // ... and all three misaligned alike (the vector path with a peeled head).
      const Shape s = c.shape();
      const DType out_dt = is_comparison(op) ? DType::u8 : dt;
      Tensor expected = empty(s, {.dtype = out_dt});
      kernels::binary.kernel(DeviceType::CPU)(op, expected, c, d);
      Tensor out = misaligned_gpu(zeros(s, {.dtype = out_dt}));
      poison(out);
      kernels::binary(op, out, misaligned_gpu(c), misaligned_gpu(d));
      EXPECT_TRUE(all_close(out, expected, tolerance_for(out_dt))) << "all misaligned, op " << int(op) << " " << name_of(dt);
      // A scalar operand broadcast on the vector path, misaligned tensor operand.
      Tensor e = random_cpu({}, dt, 13, 1, 9);
      expect_binary_matches(op, c, e, misaligned_gpu(c), e.to(kGpu), false, "misaligned with scalar");
    }
}

TEST(BinaryCuda, StridedOutputLeavesGapsAlone) {
  KIRZL_REQUIRE_GPU();
  if (kDryRun) GTEST_SKIP() << "the CPU kernels write contiguous outputs only";
  Tensor a = random_cpu({7, 9}, DType::f32, 1), b = random_cpu({7, 9}, DType::f32, 2);
  Tensor buf = full({7, 18}, 123.0, {.device = kGpu});
  Tensor out = buf.slice(1, 1, 18, 2);
  kernels::binary(BinaryOp::Add, out, a.to(kGpu), b.to(kGpu));
  Tensor gaps = buf.slice(1, 0, 18, 2);
  EXPECT_TRUE(all_close(gaps, full({7, 9}, 123.0), tolerance_for(DType::f32)));
  EXPECT_TRUE(all_close(out, a + b, tolerance_for(DType::f32)));
}

TEST(BinaryCuda, NaNPropagatesThroughMaximumMinimum) {
  KIRZL_REQUIRE_GPU();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor a = from_vector<double>({nan, 1.0, nan, -2.0, 0.0}, {5}).to(DType::f32);
  Tensor b = from_vector<double>({1.0, nan, nan, 3.0, -0.0}, {5}).to(DType::f32);
  for (BinaryOp op : kAllOps) expect_binary_matches(op, a, b, a.to(kGpu), b.to(kGpu), false, "NaN operands");
}

TEST(BinaryCuda, OpsWithAutogradMatchCpu) {
  KIRZL_REQUIRE_GPU();
  using Fn = Tensor (*)(const Tensor&, const Tensor&);
  const std::vector<std::pair<const char*, Fn>> fns = {{"add", add}, {"sub", sub}, {"mul", mul}, {"div", div}, {"maximum", maximum}, {"minimum", minimum}};
  const std::vector<std::pair<Shape, Shape>> shapes = {{{3, 1, 5}, {1, 4, 1}}, {{}, {257}}, {{17}, {9, 17}}, {{kBig}, {kBig}}};
  for (DType dt : {DType::f32, DType::bf16})
    for (const auto& [name, fn] : fns)
      for (const auto& [sa, sb] : shapes) {
        Tensor a = random_cpu(sa, dt, 21), b = random_cpu(sb, dt, 22);
        if (std::string(name) == "div") b = add(abs(b), 0.5);
        if (sa == sb) b = where(lt(b, zeros_like(b)), a, b);  // ties where b was negative: the gradient splits
        Tensor ac = a.clone().requires_grad_(true), bc = b.clone().requires_grad_(true);
        Tensor ag = a.to(kGpu).requires_grad_(true), bg = b.to(kGpu).requires_grad_(true);
        Tensor yc = fn(ac, bc), yg = fn(ag, bg);
        Tensor g = random_cpu(yc.shape(), dt, 23);
        yc.backward(g);
        yg.backward(g.to(kGpu));
        const Tolerance tol = tolerance_for(dt);
        EXPECT_TRUE(all_close(yg, yc, tol)) << name << " " << sa.str() << " " << sb.str() << " " << name_of(dt);
        EXPECT_TRUE(all_close(ag.grad(), ac.grad(), tol)) << name << " grad a " << sa.str() << " " << name_of(dt);
        EXPECT_TRUE(all_close(bg.grad(), bc.grad(), tol)) << name << " grad b " << sb.str() << " " << name_of(dt);
      }
}

TEST(BinaryCuda, ComparisonOpsProduceU8OnCuda) {
  KIRZL_REQUIRE_GPU();
  Tensor a = random_cpu({100}, DType::i32, 3, 0, 5), b = random_cpu({100}, DType::f32, 4);
  Tensor r = lt(a.to(kGpu), b.to(kGpu));  // promoted to f32 on the device
  EXPECT_EQ(r.dtype(), DType::u8);
  EXPECT_TRUE(all_close(r, lt(a, b)));
}

}  // namespace
}  // namespace kirzl
