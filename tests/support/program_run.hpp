// Test support for the example programs: run a command and keep its output, and read the JSON
// lines the examples print (their last line) and write (their metrics logs).
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kirzl::testing {

/// What a finished command left: its wait status and its stdout and stderr together.
struct ProgramRun {
  int status = -1;
  std::string output;
  /// The output's last non-empty line (the examples' JSON summary).
  std::string last_line() const {
    auto end = output.find_last_not_of('\n');
    if (end == std::string::npos) return "";
    auto begin = output.rfind('\n', end);
    begin = begin == std::string::npos ? 0 : begin + 1;
    return output.substr(begin, end - begin + 1);
  }
  /// The last line that starts with '{': the JSON summary of a run on several ranks, where the
  /// other ranks' stderr, forwarded by mpirun or srun, may arrive after rank 0's last line.
  std::string summary_line() const {
    for (size_t end = output.size(); end > 0;) {
      const size_t nl = output.rfind('\n', end - 1);
      const size_t begin = nl == std::string::npos ? 0 : nl + 1;
      if (begin < end && output[begin] == '{') return output.substr(begin, end - begin);
      if (nl == std::string::npos) break;
      end = nl;
    }
    return "";
  }
};

/// Runs `cmd` through the shell with stderr joined to stdout, and waits for it.
inline ProgramRun run_program(const std::string& cmd) {
  ProgramRun r;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen((cmd + " 2>&1").c_str(), "r"), &pclose);
  if (!pipe) return r;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe.get())) r.output += buf;
  r.status = pclose(pipe.release());
  return r;
}

/// The fixture of one example program's tests: skips, saying why, when the program is not built or
/// its data is missing, and gives each test a fresh temporary directory dir_, removed afterwards.
class ExampleProgramTest : public ::testing::Test {
 protected:
  /// `program`: the example's path; `data`: the file or folder it reads, `install`: how to get it.
  ExampleProgramTest(std::string program, std::string data, std::string install)
      : program_(std::move(program)), data_(std::move(data)), install_(std::move(install)) {}
  void SetUp() override {
    if (!std::filesystem::exists(program_)) GTEST_SKIP() << program_ << " is not built (KIRZL_BUILD_EXAMPLES=OFF)";
    if (!std::filesystem::exists(data_)) GTEST_SKIP() << data_ << " is missing: " << install_;
    const std::string name = std::filesystem::path(program_).filename().string();
    dir_ = std::filesystem::temp_directory_path() / ("kirzl_" + name + "_" + std::to_string(::getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;

 private:
  std::string program_, data_, install_;
};

#ifdef MPIEXEC_EXECUTABLE
/// The start of a command line that runs a program on `np` local ranks as the tests do: allowed as
/// root, oversubscribed, unbound, one OpenMP thread per rank waiting passively; `extra` adds
/// mpirun options (e.g. "-x KIRZL_TIMEOUT=60").
inline std::string mpirun_prefix(int np, const std::string& extra = "") {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 " +
         std::string(MPIEXEC_EXECUTABLE) + " -np " + std::to_string(np) +
         " --oversubscribe --bind-to none -x OMP_WAIT_POLICY=passive " + extra + " ";
}
#endif

/// A bad flag value: the example exited with status 2 and no uncaught exception, and its message
/// starts with "<program>: <the flag> " (the flag is the first word of `args`).
inline void expect_flag_error(const ProgramRun& r, const std::string& program, const std::string& args) {
  ASSERT_TRUE(WIFEXITED(r.status)) << r.output;
  EXPECT_EQ(WEXITSTATUS(r.status), 2) << r.output;
  EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << r.output;
  const std::string flag = args.substr(0, args.find(' '));
  EXPECT_EQ(r.output.rfind(program + ": " + flag + " ", 0), 0u) << r.output;
}

/// The number after the last `"key":` in `text` (spaces after the colon allowed; the examples'
/// summary lines have one, the metrics logs none), or NaN when the key is absent.
inline double json_number(const std::string& text, const std::string& key) {
  const std::string quoted = "\"" + key + "\":";
  auto p = text.rfind(quoted);
  return p == std::string::npos ? NAN : std::stod(text.substr(p + quoted.size()));
}

/// The lines of a metrics log that do not contain `"skip_key"` (e.g. the evaluation lines), each
/// cut to the part from "step" up to "lr", so wall-clock fields do not enter comparisons.
inline std::vector<std::string> metric_steps(const std::filesystem::path& metrics, const std::string& skip_key) {
  std::vector<std::string> v;
  std::ifstream in(metrics);
  for (std::string l; std::getline(in, l);) {
    if (l.find("\"" + skip_key + "\"") != std::string::npos) continue;
    auto a = l.find("\"step\""), b = l.find("\"lr\"");
    v.push_back(l.substr(a, b - a));
  }
  return v;
}

/// The "loss" of each line of a metrics log that does not contain `"skip_key"`.
inline std::vector<double> metric_losses(const std::filesystem::path& metrics, const std::string& skip_key) {
  std::vector<double> v;
  std::ifstream in(metrics);
  for (std::string l; std::getline(in, l);) {
    if (l.find("\"" + skip_key + "\"") != std::string::npos) continue;
    v.push_back(json_number(l, "loss"));
  }
  return v;
}

}  // namespace kirzl::testing
