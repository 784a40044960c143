// The op table: every op of the public API registered once, as rows that the harness
// (tests/ops/harness/harness_main.cpp) runs on every device. See Note [op table].
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <kirzl/kirzl.hpp>

namespace kirzl::testing::op_table {

// Note [op table]
// ~~~~~~~~~~~~~~~
// A row names one public-API call on one family of input shapes. The harness expands each row
// into test cases, one per (dtype, mode), named Ops/<op>.<dtype>.<variant>.<mode>:
//   cpu        the call on CPU tensors of the row's dtype against `reference`, an independent
//              float64 implementation (plain loops over the inputs rounded to the dtype);
//   cuda       the same call on CUDA tensors against the CPU result, forward and the gradient of
//              every differentiable input, with the caching allocator's free blocks filled with
//              NaN first so that an element a kernel leaves unwritten is caught (poison.hpp);
//   gradcheck  (f64 only) the analytic gradient against central differences
//              (tests/support/gradcheck.hpp), for rows whose op is differentiable.
// A case that cannot run says why with GTEST_SKIP (no CUDA, not differentiable, too large for
// finite differences), and the program prints a table of every row and its outcome at the end.
// `--timing` adds a CPU-vs-CUDA time per row to that table.
// Every function declared in include/kirzl/ops/ must have a row: the ctest
// ops_op_table_covers_every_op (check_coverage.py) fails for an op without one.

/// How the harness makes one input of a row.
struct Arg {
  Shape shape;
  double lo = -2, hi = 2;  ///< uniform in [lo, hi); integers in [lo, hi) for index args
  /// The arg's dtype when it is not the row's (indices: i64, masks: u8, f32 parameters of a bf16
  /// op); such args are never strided, and in the gradcheck a floating one is f64 like the rest.
  std::optional<DType> dtype;
  bool strided = false;  ///< pass a non-contiguous view (every other element of the last dim)
  /// Pass a view starting one element into its buffer: its data pointer is not 16-byte aligned,
  /// which the vectorised CUDA kernels must handle (their scalar path).
  bool misaligned = false;
  /// The first elements are NaN, -inf, inf, 0, -0, 1, -1 (as many as fit): special values must
  /// propagate as the reference says.
  bool specials = false;
  /// Round the values to integers (toward zero) before the cast: ties for max/argmax/pooling.
  bool integral = false;
  /// Fixed values (row-major, as many as the shape holds) instead of random ones.
  std::vector<double> values;
  /// Or a function that makes them when the case runs (for large fixed inputs: a row is built in
  /// every process that lists the cases, a case only in the one that runs it).
  std::function<std::vector<double>()> generate;
  bool grad = true;      ///< a differentiable input (floating args only)
};

/// Inputs of a reference (float64, contiguous, CPU) and of a call (the row's dtype, any device).
using Inputs = std::vector<Tensor>;
using Call = std::function<Tensor(const Inputs&)>;
/// A property check of the output, for an op without a deterministic reference (dropout): returns
/// "" or what is wrong. Gets the f64 inputs and the f64 output.
using Check = std::function<std::string(const Inputs&, const Tensor&)>;

/// Tolerance multipliers on the per-dtype defaults (run_cases.cpp). The defaults of bf16/f16 are
/// a few units in the last place of the result, which a different summation order does not
/// exceed; those of f32/f64 are tighter, and sums of many terms (GEMM, reductions) need `reference`
/// and `cuda` scales that apply to f32/f64 only; `low_precision` scales bf16/f16 in both modes.
struct TolScale {
  double reference = 1;      ///< cpu case against the reference (f32/f64)
  double cuda = 1;           ///< cuda case against the CPU (f32/f64)
  double low_precision = 1;  ///< both cases (bf16/f16)
};

struct Row {
  std::string op;       ///< e.g. "layer_norm"
  std::string variant;  ///< the shape family, e.g. "odd_3x7x5", "strided", "broadcast", "empty"
  std::vector<Arg> args;
  std::vector<DType> dtypes;  ///< the dtypes the floating args take
  Call call;                  ///< the public-API call under test
  Call reference;             ///< float64 loops; unset when `check` is set
  Check check;                ///< instead of a reference
  TolScale tol;
  bool differentiable = true;  ///< gradcheck, and the cuda case compares gradients
  std::string no_cuda;         ///< why the row has no cuda case ("" = it has one)
  std::string no_gradcheck;    ///< why a differentiable row is not gradchecked ("" = it is)
  /// The cuda case also runs the call (and backward) a second time and expects the same bits:
  /// for kernels that promise a fixed summation order (no atomics in the result).
  bool deterministic = false;
  double gradcheck_rtol = 1e-4;
};

/// The rows, grouped by op family; each rows_<family>.cpp defines one of these.
void add_unary_rows(std::vector<Row>& rows);
void add_binary_rows(std::vector<Row>& rows);
void add_reduce_rows(std::vector<Row>& rows);
void add_linalg_rows(std::vector<Row>& rows);
void add_nn_rows(std::vector<Row>& rows);
void add_conv_pool_rows(std::vector<Row>& rows);
void add_loss_rows(std::vector<Row>& rows);
void add_attention_rows(std::vector<Row>& rows);
void add_fused_rows(std::vector<Row>& rows);
void add_copy_shape_rows(std::vector<Row>& rows);

/// Every row of every family.
std::vector<Row> all_rows();

/// "3x5x7" for a variant name ("scalar" for 0-d).
inline std::string shape_name(const Shape& s) {
  std::string r;
  for (int64_t d = 0; d < s.size(); ++d) {
    if (d) r += 'x';
    r += std::to_string(s[d]);
  }
  return s.size() ? r : "scalar";
}

/// The floating dtypes most rows run on.
inline std::vector<DType> float_dtypes() { return {DType::f32, DType::f64, DType::bf16, DType::f16}; }

}  // namespace kirzl::testing::op_table
