// The op-table test program: registers one GoogleTest case per (row, dtype, mode) of the op table
// (Note [op table]) as Ops/<op>.<dtype>.<variant>.<mode>, runs them, and prints every row's
// outcome at the end: what ran, what was skipped and why.
//
//   ops_op_table_cuda [--timing] [gtest flags]
//
// --timing: also time each row's forward call (CPU, and CUDA where it runs) and print the times.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "ops/harness/cases.hpp"

using namespace kirzl::testing::op_table;

namespace {

class OpCaseTest : public ::testing::Test {
 public:
  OpCaseTest(Case c, Timings* timings) : case_(c), timings_(timings) {}
  void TestBody() override { run_case(case_, *timings_); }

 private:
  Case case_;
  Timings* timings_;
};

/// Collects the outcome of every Ops/ case and prints the table at the end of the program.
class SummaryPrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit SummaryPrinter(const Timings* timings) : timings_(timings) {}

  void OnTestEnd(const ::testing::TestInfo& info) override {
    const std::string suite = info.test_suite_name();
    if (suite.rfind("Ops/", 0) != 0) return;
    // Test name "<dtype>.<variant>.<mode>": the row key is "<op>.<dtype>.<variant>".
    const std::string name = info.name();
    const size_t dot = name.rfind('.');
    const std::string key = suite.substr(4) + "." + name.substr(0, dot), mode = name.substr(dot + 1);
    const ::testing::TestResult& r = *info.result();
    std::string status = r.Failed() ? "FAILED" : r.Skipped() ? "skipped" : "passed";
    if (r.Skipped())
      for (int i = 0; i < r.total_part_count(); ++i)
        if (r.GetTestPartResult(i).skipped()) ++skip_reasons_[first_line(r.GetTestPartResult(i).message())];
    ++counts_[status];
    if (keys_.emplace(key, keys_.size()).second) order_.push_back(key);
    outcome_[key][mode] = status;
  }

  void OnTestProgramEnd(const ::testing::UnitTest&) override {
    if (order_.empty()) return;
    std::printf("\n[op table] %zu (row, dtype) pairs: %d cases passed, %d failed, %d skipped\n", order_.size(),
                counts_["passed"], counts_["FAILED"], counts_["skipped"]);
    std::printf("  %-44s %-8s %-8s %-10s", "op.dtype.variant", "cpu", "cuda", "gradcheck");
    if (timings_->enabled) std::printf(" %12s %12s %8s", "cpu us", "cuda us", "cpu/cuda");
    std::printf("\n");
    for (const std::string& key : order_) {
      auto& o = outcome_[key];
      auto get = [&](const char* m) { return o.count(m) ? o[m] : std::string("-"); };
      std::printf("  %-44s %-8s %-8s %-10s", key.c_str(), get("cpu").c_str(), get("cuda").c_str(),
                  get("gradcheck").c_str());
      if (timings_->enabled) {
        auto cpu = timings_->cpu_us.find(key), gpu = timings_->cuda_us.find(key);
        if (cpu != timings_->cpu_us.end()) std::printf(" %12.1f", cpu->second);
        else std::printf(" %12s", "-");
        if (gpu != timings_->cuda_us.end()) std::printf(" %12.1f", gpu->second);
        else std::printf(" %12s", "-");
        if (cpu != timings_->cpu_us.end() && gpu != timings_->cuda_us.end() && gpu->second > 0)
          std::printf(" %8.1f", cpu->second / gpu->second);
      }
      std::printf("\n");
    }
    if (!skip_reasons_.empty()) {
      std::printf("[op table] skipped, by reason:\n");
      for (const auto& [reason, n] : skip_reasons_) std::printf("  %4d x %s\n", n, reason.c_str());
    }
    std::fflush(stdout);
  }

 private:
  static std::string first_line(const std::string& s) {
    std::string line = s.substr(0, s.find('\n'));
    // GTEST_SKIP's message starts with "Skipped"; keep only what the case said, up to "; here".
    const size_t at = line.find("Skipped");
    if (at == 0) line = line.substr(std::strlen("Skipped"));
    while (!line.empty() && (line[0] == ' ' || line[0] == '\n')) line.erase(0, 1);
    return line.substr(0, line.find("; here"));
  }

  const Timings* timings_;
  std::map<std::string, size_t> keys_;
  std::vector<std::string> order_;
  std::map<std::string, std::map<std::string, std::string>> outcome_;
  std::map<std::string, int> skip_reasons_;
  std::map<std::string, int> counts_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  Timings timings;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--timing") == 0) {
      timings.enabled = true;
    } else {
      std::fprintf(stderr, "ops_op_table: unknown argument '%s' (--timing, or GoogleTest flags)\n", argv[i]);
      return 2;
    }
  }
  // The rows live until the program ends: every case points at its row.
  static const std::vector<Row> rows = all_rows();
  for (const Row& row : rows) {
    std::vector<Case> cases;
    for (kirzl::DType dt : row.dtypes) {
      cases.push_back({&row, dt, Mode::cpu});
      cases.push_back({&row, dt, Mode::cuda});
    }
    cases.push_back({&row, kirzl::DType::f64, Mode::gradcheck});
    for (const Case& c : cases) {
      const std::string suite = "Ops/" + row.op;
      const std::string key = row_key(c);
      const std::string name = key.substr(row.op.size() + 1) + "." + mode_name(c.mode);
      ::testing::RegisterTest(suite.c_str(), name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                              [c, &timings]() -> ::testing::Test* { return new OpCaseTest(c, &timings); });
    }
  }
  ::testing::UnitTest::GetInstance()->listeners().Append(new SummaryPrinter(&timings));
  return RUN_ALL_TESTS();
}
