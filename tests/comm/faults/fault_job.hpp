// What the fault tests under mpirun (test_faults_mpi.cpp) and srun (test_faults_srun.cpp) share:
// running a faulty job of fault_worker (or the example) with a bound, and checking that it ended
// non-zero within the bound with every rank's process gone (Note [abort on failure]).
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/program_run.hpp"

namespace kirzl::testing::faults {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

inline constexpr int kTimeoutSeconds = 3;  // KIRZL_TIMEOUT of the faulty jobs
// The job must be gone this long after the fault: the timeout, plus start-up, the report and the
// abort, with room for a loaded machine (ctest -j). Before the fix, the jobs never ended.
inline constexpr double kBoundSeconds = kTimeoutSeconds + 15;
// A hung job is killed after this long, so that the test fails rather than hangs.
inline constexpr int kKillAfterSeconds = 90;
// How long a process of an ended job may take to be reaped (by its launcher, or by init once the
// launcher is gone) before it counts as having outlived the job.
inline constexpr auto kReapGrace = std::chrono::seconds(2);

inline const std::string kWorker = std::string(KIRZL_BINARY_DIR) + "/tests/fault_worker";
inline const std::string kExample = std::string(KIRZL_BINARY_DIR) + "/examples/fashion_mnist";
inline const char* const kDataset = "/usr/share/datasets/fashion-mnist";

// A scratch directory, removed with every process whose pid was recorded there still alive killed.
struct Scratch {
  fs::path dir;
  explicit Scratch(const std::string& name) {
    dir = fs::temp_directory_path() / ("kirzl_faults_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() {
    for (int pid : pids())
      if (alive(pid)) ::kill(pid, SIGKILL);
    fs::remove_all(dir);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  std::vector<int> pids() const {
    std::vector<int> v;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".pid") {
        int pid = 0;
        std::ifstream(e.path()) >> pid;
        if (pid > 0) v.push_back(pid);
      }
    return v;
  }
  // A process is alive when it exists and is not a zombie (a zombie has ended; its parent reaps it).
  static bool alive(int pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    if (!stat) return false;
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
  }
  // The recorded processes still alive after waiting up to `grace` for them to end: when the
  // launcher returns, its ranks may be in the middle of being killed.
  std::vector<int> survivors(std::chrono::milliseconds grace = kReapGrace) const {
    const auto deadline = Clock::now() + grace;
    for (;;) {
      std::vector<int> left;
      for (int pid : pids())
        if (alive(pid)) left.push_back(pid);
      if (left.empty() || Clock::now() >= deadline) return left;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
};

struct Ended {
  int status = -1;
  double seconds = 0;
  std::string output;
};

inline Ended run_timed(const std::string& cmd) {
  const auto t0 = Clock::now();
  auto r = run_program(cmd);
  return {r.status, std::chrono::duration<double>(Clock::now() - t0).count(), r.output};
}

inline void expect_no_survivors(const Scratch& s, const std::string& output) {
  for (int pid : s.survivors()) ADD_FAILURE() << "process " << pid << " outlived the job\n" << output;
}

inline void expect_job_failed_fast(const Ended& e, const Scratch& s, int np) {
  EXPECT_TRUE(WIFEXITED(e.status) && WEXITSTATUS(e.status) != 0)
      << "the job must end with a non-zero exit (status " << e.status << ")\n" << e.output;
  EXPECT_LT(e.seconds, kBoundSeconds) << "the job took " << e.seconds << " s to end (KIRZL_TIMEOUT=" << kTimeoutSeconds
                                      << ")\n" << e.output;
  EXPECT_EQ(static_cast<int>(s.pids().size()), np) << "every rank writes its pid at start";
  expect_no_survivors(s, e.output);
}

// One fault case: fault_worker's --fault, the ranks, and what the output must say (the faulty rank
// named in the report).
struct Fault {
  const char* name;
  int np;
  std::vector<std::string> (*expected)(int rank, int np);
};

// Stable test names (the default printer shows the struct's bytes, pointers included).
inline void PrintTo(const Fault& f, std::ostream* os) { *os << f.name << " at " << f.np << " ranks"; }

inline std::string fault_test_name(const ::testing::TestParamInfo<Fault>& info) {
  return std::string(info.param.name) + "_np" + std::to_string(info.param.np);
}

// The fault_worker command line that makes the last rank inject `f` at step 5.
inline std::string worker_args(const Fault& f, const Scratch& s) {
  return kWorker + " --fault " + f.name + " --rank " + std::to_string(f.np - 1) + " --step 5 --pid-dir " + s.dir.string();
}

// Runs `launch` + the worker for fault `f` and checks the job's end and its report.
inline void expect_fault_ends_job(const std::string& launch, const Fault& f) {
  ASSERT_TRUE(fs::exists(kWorker)) << kWorker;
  const int faulty = f.np - 1;
  Scratch s(std::string(f.name) + std::to_string(f.np));
  const Ended e = run_timed(launch + worker_args(f, s));
  expect_job_failed_fast(e, s, f.np);
  for (const std::string& text : f.expected(faulty, f.np))
    EXPECT_NE(e.output.find(text), std::string::npos) << "missing '" << text << "' in\n" << e.output;
}

// What the launcher-independent faults' reports say.
inline std::string R(int rank) { return std::to_string(rank); }

inline std::vector<std::string> stopped(int r, int) {
  return {"No answer from rank " + R(r), "aborting the job (MPI_Abort)"};
}
inline std::vector<std::string> threw(int r, int np) {
  return {"kirzl: rank " + R(r) + " of " + R(np) + ": aborting the job (MPI_Abort): uncaught exception: injected fault on "
          "rank " + R(r)};
}
// The stuck rank answers the timed-out ranks' query (its communication thread is alive), so they
// do not abort at once; the job ends when MPI_Finalize has waited the timeout for it, and the
// rank that aborts names itself (recorded at init: MPI no longer answers during MPI_Finalize).
inline std::vector<std::string> stuck(int r, int np) {
  return {"Not arrived: rank " + R(r), " of " + R(np) + ": aborting the job (MPI_Abort): MPI_Finalize has waited"};
}
inline std::vector<std::string> mismatched(int r, int) { return {"collective mismatch", "broadcast", "on rank " + R(r)}; }

// The report: rank 1 of the example, stopped from outside during training. `launch` starts
// two ranks of what follows it; `rank_var` is the variable that holds a rank's number in its
// environment (OMPI_COMM_WORLD_RANK, SLURM_PROCID). The ranks inherit KIRZL_FAULT_TOKEN from
// `launch`'s environment, which finds them among the machine's processes.
inline void expect_stopped_example_ends_job(const std::string& launch, const std::string& rank_var,
                                            const std::string& token) {
  Scratch s("example");
  const std::string cmd = launch + kExample + " --threads 1 --epochs 50 --train-limit 4096 --test-limit 500 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), &pclose);
  ASSERT_TRUE(pipe);
  // Wait for both ranks to start, then stop rank 1 (their pids go to the scratch dir for the checks).
  int victim = 0;
  for (int tries = 0; tries < 300 && (!victim || s.pids().size() < 2); ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (const auto& p : fs::directory_iterator("/proc")) {
      // Only the example itself (not the launcher's helpers, which may carry the variables).
      std::error_code ec;
      if (!fs::equivalent(p.path() / "exe", kExample, ec)) continue;
      std::ifstream env(p.path() / "environ");
      std::stringstream text;
      text << '\0' << env.rdbuf();  // every variable is then preceded by a '\0'
      const std::string vars = text.str();
      if (vars.find(std::string(1, '\0') + "KIRZL_FAULT_TOKEN=" + token + '\0') == std::string::npos ||
          vars.find('\0' + rank_var + "=") == std::string::npos)
        continue;
      const std::string pid = p.path().filename().string();
      std::ofstream(s.dir / (pid + ".pid")) << pid << "\n";
      if (vars.find('\0' + rank_var + "=1" + '\0') != std::string::npos) victim = std::stoi(pid);
    }
  }
  ASSERT_GT(victim, 0) << "rank 1 of the example did not start";
  std::this_thread::sleep_for(std::chrono::seconds(2));  // into training
  const auto stopped_at = Clock::now();
  ASSERT_EQ(::kill(victim, SIGSTOP), 0);
  std::string output;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe.get())) output += buf;
  const int status = pclose(pipe.release());
  const double after_stop = std::chrono::duration<double>(Clock::now() - stopped_at).count();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status << "\n" << output;
  EXPECT_LT(after_stop, kBoundSeconds) << output;
  EXPECT_NE(output.find("No answer from rank 1"), std::string::npos) << output;
  EXPECT_EQ(s.pids().size(), 2u) << "both ranks of the example found";
  expect_no_survivors(s, output);
}

// Every fault, at 2 and 4 ranks: the cases of each launcher's parameterised test. How a killed
// rank is reported is the launcher's own wording, so each launcher passes its expectation.
inline std::vector<Fault> all_faults(std::vector<std::string> (*killed)(int rank, int np)) {
  return {Fault{"stop", 2, stopped},       Fault{"stop", 4, stopped},         Fault{"kill", 2, killed},
          Fault{"kill", 4, killed},        Fault{"throw", 2, threw},          Fault{"throw", 4, threw},
          Fault{"mismatch", 2, mismatched}, Fault{"mismatch", 4, mismatched}, Fault{"hang", 2, stuck},
          Fault{"hang", 4, stuck}};
}

}  // namespace kirzl::testing::faults
