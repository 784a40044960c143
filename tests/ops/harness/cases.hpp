// The test cases of the op table: a row, a dtype and a mode (Note [op table]), and how each
// mode runs.
#pragma once

#include <map>
#include <string>

#include "ops/harness/op_table.hpp"

namespace kirzl::testing::op_table {

enum class Mode { cpu, cuda, gradcheck };

struct Case {
  const Row* row;
  DType dtype;
  Mode mode;
};

/// "<op>.<dtype>.<variant>": the row and dtype part of a case's name.
std::string row_key(const Case& c);
/// "cpu", "cuda", "gradcheck".
const char* mode_name(Mode m);

/// Per-row timings of `--timing` (microseconds per call, forward only), by row_key.
struct Timings {
  bool enabled = false;
  std::map<std::string, double> cpu_us, cuda_us;
};

/// The body of one case: GoogleTest assertions, or GTEST_SKIP with the reason.
void run_case(const Case& c, Timings& timings);

}  // namespace kirzl::testing::op_table
