// Test support for the communicator tests: closed-form expectations shared by the in-process and
// MPI suites. Rank r holds f(r, i) (or g(r, i) for Prod); small integers, so results are exact in
// every dtype (also bf16 and u8) at up to 4 ranks.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <kirzl/comm.hpp>

namespace kirzl::testing::comm_cases {

using comm::ReduceOp;

inline const DType kAllDtypes[] = {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8, DType::u16};
inline const ReduceOp kAllOps[] = {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Min, ReduceOp::Max, ReduceOp::Prod};

// Rank r's element i: small integers, exact in every dtype (also bf16 and u8) after reduction.
inline double f(int r, int64_t i) { return (r + 1) + static_cast<double>(i % 5); }
// For Prod: 1 or 2, so that products of 4 ranks stay exact.
inline double g(int r, int64_t i) { return 1 + ((r + i) % 2); }

inline Tensor make(int64_t n, DType dt, const std::function<double(int64_t)>& v) {
  std::vector<double> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[i] = v(i);
  return from_vector<double>(x, Shape{n}, {.dtype = dt});
}

inline double expected_reduce(ReduceOp op, DType dt, int n, int64_t i) {
  switch (op) {
    case ReduceOp::Sum: {
      double s = 0;
      for (int r = 0; r < n; ++r) s += f(r, i);
      return s;
    }
    case ReduceOp::Avg: {
      double s = 0;
      for (int r = 0; r < n; ++r) s += f(r, i);
      return is_floating(dt) ? s / n : static_cast<double>(static_cast<int64_t>(s) / n);
    }
    case ReduceOp::Min: return f(0, i);
    case ReduceOp::Max: return f(n - 1, i);
    case ReduceOp::Prod: {
      double p = 1;
      for (int r = 0; r < n; ++r) p *= g(r, i);
      return p;
    }
  }
  return 0;
}

inline double tolerance(DType dt) {
  if (dt == DType::bf16) return 1e-2;
  if (dt == DType::f16) return 1e-3;
  if (dt == DType::f32) return 1e-6;
  return is_floating(dt) ? 1e-12 : 0;
}

inline void expect_close(double got, double want, DType dt, const std::string& what) {
  EXPECT_NEAR(got, want, tolerance(dt) * std::max(1.0, std::abs(want))) << what;
}


}  // namespace kirzl::testing::comm_cases
