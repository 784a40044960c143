// The three modes of an op-table case (Note [op table]).
#include <gtest/gtest.h>

#include <chrono>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "ops/harness/cases.hpp"
#include "ops/harness/poison.hpp"
#include "ops/harness/reference.hpp"
#include "support/cuda_compare.hpp"
#include "support/gradcheck.hpp"

namespace kirzl::testing::op_table {

std::string row_key(const Case& c) {
  return c.row->op + "." + dtype_name(c.mode == Mode::gradcheck ? DType::f64 : c.dtype) + "." + c.row->variant;
}

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::cpu: return "cpu";
    case Mode::cuda: return "cuda";
    case Mode::gradcheck: return "gradcheck";
  }
  return "?";
}

namespace {

DType dtype_of_arg(const Arg& a, DType row_dtype) { return a.dtype.value_or(row_dtype); }

bool wants_grad(const Row& row, const Arg& a, DType row_dtype) {
  return row.differentiable && a.grad && is_floating(row_dtype) && is_floating(dtype_of_arg(a, row_dtype));
}

/// The row's inputs as contiguous CPU tensors of their dtypes, from fixed seeds: floats uniform in
/// [lo, hi) drawn in f64 and rounded to the dtype; other args integers in [lo, hi).
std::vector<Tensor> make_inputs(const Row& row, DType dt) {
  std::vector<Tensor> in;
  for (size_t i = 0; i < row.args.size(); ++i) {
    const Arg& a = row.args[i];
    Generator gen(1000 + i);
    DType adt = dtype_of_arg(a, dt);
    if (dt == DType::f64 && is_floating(adt)) adt = DType::f64;  // the gradcheck (and f64 rows): all f64
    if (is_floating(adt)) {
      Tensor t = uniform(a.shape, a.lo, a.hi, {.dtype = DType::f64}, &gen);
      if (a.integral) t = t.to(DType::i64).to(DType::f64);
      if (!a.values.empty()) t = from_vector<double>(a.values, a.shape);
      if (a.generate) t = from_vector<double>(a.generate(), a.shape);
      if (a.specials) {
        const double inf = std::numeric_limits<double>::infinity();
        const double special[] = {std::numeric_limits<double>::quiet_NaN(), -inf, inf, 0.0, -0.0, 1.0, -1.0};
        std::vector<double> v = t.to_vector<double>();
        for (size_t k = 0; k < v.size() && k < std::size(special); ++k) v[k] = special[k];
        t = from_vector<double>(v, a.shape);
      }
      in.push_back(t.to(adt));
    } else if (!a.values.empty() || a.generate) {
      in.push_back(from_vector<double>(a.generate ? a.generate() : a.values, a.shape).to(adt));
    } else {
      in.push_back(randint(static_cast<int64_t>(a.lo), static_cast<int64_t>(a.hi), a.shape, {.dtype = adt}, &gen));
    }
  }
  return in;
}

/// `t` on `device`, as a non-contiguous view when the arg asks for one; a fresh leaf.
Tensor place(const Tensor& t, const Arg& a, Device device) {
  Tensor on = t.to(device).detach();
  if (a.strided && !a.dtype) on = non_contiguous_copy(on).detach();
  if (a.misaligned) {
    Tensor buf = empty({on.numel() + 1}, {.dtype = on.dtype(), .device = device});
    poison(buf);
    Tensor view = buf.narrow(0, 1, on.numel()).view(on.shape());
    view.copy_(on);
    on = view.detach();
  }
  if (on.data_ptr() == t.data_ptr()) on = on.clone();  // never share storage with the CPU input
  return on;
}

bool low_precision(DType dt) { return dt == DType::bf16 || dt == DType::f16; }

/// Per-dtype tolerance of a CPU result against the float64 reference.
Tolerance reference_tolerance(DType dt, const TolScale& s) {
  const double scale = low_precision(dt) ? s.low_precision : s.reference;
  Tolerance t{0, 0};
  switch (dt) {
    case DType::f64: t = {1e-10, 1e-12}; break;
    case DType::f32: t = {1e-5, 1e-6}; break;
    case DType::bf16: t = {1e-2, 1e-2}; break;
    case DType::f16: t = {2e-3, 1e-3}; break;
    default: break;  // integers: exact
  }
  return {t.rtol * scale, t.atol * scale};
}

Tolerance scaled(Tolerance t, double s) { return {t.rtol * s, t.atol * s}; }

/// Microseconds per forward call of the row on these inputs (at least 20 ms or 1000 calls).
double time_call(const Row& row, const std::vector<Tensor>& in, Device device) {
  NoGradGuard no_grad;
  (void)device;  // used only with CUDA
  auto sync = [&] {
#if KIRZL_HAS_CUDA
    if (device.is_cuda()) cuda::synchronize(device.index());
#endif
  };
  row.call(in);  // warm-up
  sync();
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  int n = 0;
  double elapsed = 0;
  while (n < 1000 && elapsed < 0.02) {
    row.call(in);
    ++n;
    if (n % 10 == 0 || n < 10) {
      sync();
      elapsed = std::chrono::duration<double>(clock::now() - t0).count();
    }
  }
  sync();
  elapsed = std::chrono::duration<double>(clock::now() - t0).count();
  return elapsed / n * 1e6;
}

void run_cpu(const Case& c, Timings& timings) {
  const Row& row = *c.row;
  const std::vector<Tensor> in = make_inputs(row, c.dtype);
  std::vector<Tensor> args, ref_in;
  for (size_t i = 0; i < in.size(); ++i) {
    args.push_back(place(in[i], row.args[i], Device::cpu()));
    ref_in.push_back(is_floating(in[i].dtype()) ? in[i].to(DType::f64) : in[i]);
  }
  poison_free_blocks(Device::cpu(), byte_sizes(in));
  const Tensor y = row.call(args);
  ASSERT_TRUE(y.defined());
  EXPECT_EQ(y.device(), Device::cpu());
  if (row.check) {
    EXPECT_EQ(row.check(ref_in, y.to(DType::f64)), "") << "property check of " << row.op;
  } else {
    const Tensor expected = row.reference(ref_in);
    EXPECT_TRUE(all_close(y, expected, reference_tolerance(c.dtype, row.tol)))
        << row.op << " on the CPU against the float64 reference";
  }
  if (timings.enabled) timings.cpu_us[row_key(c)] = time_call(row, args, Device::cpu());
}

/// The deterministic rows' second run on the device under test: the same output and gradients,
/// bit for bit, as the first (`y`, and the gradients of `leaves`).
void expect_same_bits_again(const Case& c, const std::vector<Tensor>& in, const Tensor& y, const std::vector<Tensor>& leaves) {
  const Row& row = *c.row;
  const Device gpu = test_gpu();
  std::vector<Tensor> again;
  for (size_t i = 0; i < in.size(); ++i) {
    Tensor t = place(in[i], row.args[i], gpu);
    if (wants_grad(row, row.args[i], c.dtype)) t.requires_grad_();
    again.push_back(t);
  }
  Tensor y2 = row.call(again);
  EXPECT_TRUE(bitwise_equal(y2, y)) << row.op << ": a second run gave other bits";
  if (!y2.requires_grad()) return;
  Generator gen(77);
  y2.backward(uniform(y2.shape(), -1, 1, {.dtype = DType::f64}, &gen).to(y2.dtype()).to(gpu));
  for (size_t i = 0; i < in.size(); ++i) {
    if (!wants_grad(row, row.args[i], c.dtype)) continue;
    EXPECT_TRUE(bitwise_equal(again[i].grad(), leaves[i].grad())) << "gradient of input " << i << ": a second run gave other bits";
  }
}

void run_cuda(const Case& c, Timings& timings) {
  const Row& row = *c.row;
  if (!row.no_cuda.empty()) GTEST_SKIP() << "cuda: skipped: " << row.no_cuda;
#ifndef KIRZL_TEST_GPU_AS_CPU
  const std::string reason = no_gpu_reason();
  if (!reason.empty()) GTEST_SKIP() << "cuda: skipped: " << reason;
#endif
  const Device gpu = test_gpu();
  const std::vector<Tensor> in = make_inputs(row, c.dtype);
  std::vector<Tensor> xc, xg;
  for (size_t i = 0; i < in.size(); ++i) {
    Tensor a = place(in[i], row.args[i], Device::cpu()), b = place(in[i], row.args[i], gpu);
    if (wants_grad(row, row.args[i], c.dtype)) a.requires_grad_(), b.requires_grad_();
    xc.push_back(a);
    xg.push_back(b);
  }
  Tensor yc = row.call(xc);
  poison_free_blocks(gpu, byte_sizes({yc}));
  Tensor yg = row.call(xg);
  ASSERT_TRUE(yg.defined());
  ASSERT_EQ(yg.device(), gpu) << yg.describe();
  const Tolerance tol = scaled(tolerance_for(c.dtype), low_precision(c.dtype) ? row.tol.low_precision : row.tol.cuda);
  EXPECT_TRUE(all_close(yg, yc, tol)) << row.op << " forward on CUDA against the CPU";
  if (row.differentiable && is_floating(yc.dtype()) && yc.requires_grad()) {
    Generator gen(77);
    const Tensor gout = uniform(yc.shape(), -1, 1, {.dtype = DType::f64}, &gen).to(yc.dtype());
    yc.backward(gout);
    poison_free_blocks(gpu, byte_sizes(in));
    yg.backward(gout.to(gpu));
    for (size_t i = 0; i < in.size(); ++i) {
      if (!wants_grad(row, row.args[i], c.dtype)) continue;
      ASSERT_TRUE(xg[i].grad().defined()) << "input " << i << " has no gradient on CUDA";
      EXPECT_EQ(xg[i].grad().device(), gpu);
      EXPECT_TRUE(all_close(xg[i].grad(), xc[i].grad(), tol)) << "gradient of input " << i << " on CUDA against the CPU";
    }
  }
  if (row.deterministic) expect_same_bits_again(c, in, yg, xg);
  if (timings.enabled) {
    for (Tensor& t : xc) t = t.detach();
    for (Tensor& t : xg) t = t.detach();
    timings.cpu_us[row_key(c)] = time_call(row, xc, Device::cpu());
    timings.cuda_us[row_key(c)] = time_call(row, xg, gpu);
  }
}

/// Finite differences cost two calls per input element: rows larger than this are left to the
/// smaller rows of the same op.
constexpr int64_t kMaxGradcheckElements = 600;

void run_gradcheck(const Case& c) {
  const Row& row = *c.row;
  if (!row.differentiable) GTEST_SKIP() << "gradcheck: skipped: the op is not differentiable (an integer, boolean or copied result)";
  if (!row.no_gradcheck.empty()) GTEST_SKIP() << "gradcheck: skipped: " << row.no_gradcheck;
  int64_t n = 0;
  for (const Arg& a : row.args)
    if (wants_grad(row, a, DType::f64)) n += ref::numel_of(a.shape);
  if (n > kMaxGradcheckElements)
    GTEST_SKIP() << "gradcheck: skipped: more than " << kMaxGradcheckElements
                 << " input elements, too many for finite differences (the op's smaller rows are checked); here " << n;
  const std::vector<Tensor> in = make_inputs(row, DType::f64);
  std::vector<Tensor> leaves;
  for (size_t i = 0; i < in.size(); ++i) {
    Tensor t = place(in[i], row.args[i], Device::cpu());
    if (wants_grad(row, row.args[i], DType::f64)) t.requires_grad_();
    leaves.push_back(t);
  }
  GradcheckOptions o;
  o.rtol = row.gradcheck_rtol;
  EXPECT_EQ(gradcheck_message(row.call, leaves, o), "") << "gradcheck of " << row.op;
}

}  // namespace

void run_case(const Case& c, Timings& timings) {
  switch (c.mode) {
    case Mode::cpu: run_cpu(c, timings); break;
    case Mode::cuda: run_cuda(c, timings); break;
    case Mode::gradcheck: run_gradcheck(c); break;
  }
}

}  // namespace kirzl::testing::op_table
