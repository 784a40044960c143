// Fault injection under mpirun (label `faults`), at 2 and 4 ranks: one rank stops (SIGSTOP), is
// killed (SIGKILL), throws an exception nobody catches, issues a mismatched collective, or hangs in its own code. In every
// case the whole job must end, non-zero, within the collective timeout plus a few seconds, every
// rank's process must be gone, and the output must name the faulty rank (Note [abort on failure]).
// The Fashion-MNIST example is also stopped from outside, as a user would find it.
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

#include "kirzl/config.hpp"

#include "support/program_run.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kTimeoutSeconds = 3;  // KIRZL_TIMEOUT of the faulty jobs
// The job must be gone this long after the fault: the timeout, plus start-up, the report and the
// abort, with room for a loaded machine (ctest -j). Before the fix, the jobs never ended.
constexpr double kBoundSeconds = kTimeoutSeconds + 15;
// A hung job is killed after this long, so that the test fails rather than hangs.
constexpr int kKillAfterSeconds = 90;

const std::string kWorker = std::string(KIRZL_BINARY_DIR) + "/tests/fault_worker";
const std::string kExample = std::string(KIRZL_BINARY_DIR) + "/examples/fashion_mnist";

std::string mpirun(int np) {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 KIRZL_TIMEOUT=" + std::to_string(kTimeoutSeconds) +
         " OMP_WAIT_POLICY=passive timeout -s KILL " + std::to_string(kKillAfterSeconds) + " " + MPIEXEC_EXECUTABLE +
         " -np " + std::to_string(np) + " --oversubscribe --bind-to none -x KIRZL_TIMEOUT -x OMP_WAIT_POLICY ";
}

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
};

struct Ended {
  int status = -1;
  double seconds = 0;
  std::string output;
};

Ended run_timed(const std::string& cmd) {
  const auto t0 = Clock::now();
  auto r = kirzl::testing::run_program(cmd);
  return {r.status, std::chrono::duration<double>(Clock::now() - t0).count(), r.output};
}

void expect_job_failed_fast(const Ended& e, const Scratch& s, int np) {
  EXPECT_TRUE(WIFEXITED(e.status) && WEXITSTATUS(e.status) != 0)
      << "the job must end with a non-zero exit (status " << e.status << ")\n" << e.output;
  EXPECT_LT(e.seconds, kBoundSeconds) << "the job took " << e.seconds << " s to end (KIRZL_TIMEOUT=" << kTimeoutSeconds
                                      << ")\n" << e.output;
  const auto pids = s.pids();
  EXPECT_EQ(static_cast<int>(pids.size()), np) << "every rank writes its pid at start";
  for (int pid : pids) EXPECT_FALSE(Scratch::alive(pid)) << "process " << pid << " outlived the job\n" << e.output;
}

struct Fault {
  const char* name;
  int np;
  // What the output must say: the faulty rank named in the report.
  std::vector<std::string> (*expected)(int rank, int np);
};

// Stable test names (the default printer shows the struct's bytes, pointers included).
void PrintTo(const Fault& f, std::ostream* os) { *os << f.name << " at " << f.np << " ranks"; }

class FaultInjection : public ::testing::TestWithParam<Fault> {};

TEST_P(FaultInjection, EveryRankEndsNonZeroWithinTheTimeoutNamingTheRank) {
  if (!KIRZL_HAS_MPI) GTEST_SKIP() << "kirzl was built without MPI";
  ASSERT_TRUE(fs::exists(kWorker)) << kWorker;
  const Fault f = GetParam();
  const int faulty = f.np - 1;
  Scratch s(std::string(f.name) + std::to_string(f.np));
  const Ended e = run_timed(mpirun(f.np) + kWorker + " --fault " + f.name + " --rank " + std::to_string(faulty) +
                            " --step 5 --pid-dir " + s.dir.string());
  expect_job_failed_fast(e, s, f.np);
  for (const std::string& text : f.expected(faulty, f.np)) EXPECT_NE(e.output.find(text), std::string::npos)
      << "missing '" << text << "' in\n" << e.output;
}

std::string R(int rank) { return std::to_string(rank); }

std::vector<std::string> stopped(int r, int) {
  return {"No answer from rank " + R(r), "aborting the job (MPI_Abort)"};
}
// Open MPI's mpirun ends the job itself when a rank dies by a signal, and names it.
std::vector<std::string> killed(int r, int) { return {"rank " + R(r), "signal 9"}; }
std::vector<std::string> threw(int r, int np) {
  return {"kirzl: rank " + R(r) + " of " + R(np) + ": aborting the job (MPI_Abort): uncaught exception: injected fault on "
          "rank " + R(r)};
}
// The stuck rank answers the timed-out ranks' query (its communication thread is alive), so they
// do not abort at once; the job ends when MPI_Finalize has waited the timeout for it.
std::vector<std::string> stuck(int r, int) {
  return {"Not arrived: rank " + R(r), "MPI_Finalize has waited", "aborting the job (MPI_Abort)"};
}
std::vector<std::string> mismatched(int r, int) { return {"collective mismatch", "broadcast", "on rank " + R(r)}; }

INSTANTIATE_TEST_SUITE_P(Mpi, FaultInjection,
                         ::testing::Values(Fault{"stop", 2, stopped}, Fault{"stop", 4, stopped},
                                           Fault{"kill", 2, killed}, Fault{"kill", 4, killed},
                                           Fault{"throw", 2, threw}, Fault{"throw", 4, threw},
                                           Fault{"mismatch", 2, mismatched}, Fault{"mismatch", 4, mismatched},
                                           Fault{"hang", 2, stuck}, Fault{"hang", 4, stuck}),
                         [](const auto& info) { return std::string(info.param.name) + "_np" + std::to_string(info.param.np); });

TEST(FaultInjection, HealthyJobEndsZero) {
  if (!KIRZL_HAS_MPI) GTEST_SKIP() << "kirzl was built without MPI";
  Scratch s("none");
  const Ended e = run_timed(mpirun(2) + kWorker + " --fault none --steps 10 --pid-dir " + s.dir.string());
  EXPECT_TRUE(WIFEXITED(e.status) && WEXITSTATUS(e.status) == 0) << e.output;
  EXPECT_EQ(s.pids().size(), 2u);
}

// The report: a rank of the example, stopped from outside during training.
TEST(FaultInjection, StoppedRankOfTheExampleEndsTheJob) {
  if (!KIRZL_HAS_MPI) GTEST_SKIP() << "kirzl was built without MPI";
  if (!fs::exists(kExample)) GTEST_SKIP() << kExample << " is not built";
  if (!fs::exists("/usr/share/datasets/fashion-mnist")) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  Scratch s("example");
  // A token in the ranks' environment finds them among the machine's processes.
  const std::string token = "kirzl-fault-" + std::to_string(::getpid());
  const std::string cmd = "KIRZL_FAULT_TOKEN=" + token + " " + mpirun(2) + "-x KIRZL_FAULT_TOKEN " + kExample +
                          " --threads 1 --epochs 50 --train-limit 4096 --test-limit 500 2>&1";
  const auto t0 = Clock::now();
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), &pclose);
  ASSERT_TRUE(pipe);
  // Wait for the ranks to start, then stop rank 1 (their pids go to the scratch dir for the checks).
  int victim = 0;
  for (int tries = 0; tries < 300 && !victim; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (const auto& p : fs::directory_iterator("/proc")) {
      std::ifstream env(p.path() / "environ");
      std::stringstream text;
      text << env.rdbuf();
      const std::string vars = text.str();
      if (vars.find("KIRZL_FAULT_TOKEN=" + token) == std::string::npos ||
          vars.find("OMPI_COMM_WORLD_RANK=") == std::string::npos)
        continue;
      const std::string pid = p.path().filename().string();
      std::ofstream(s.dir / (pid + ".pid")) << pid << "\n";
      if (vars.find(std::string("OMPI_COMM_WORLD_RANK=1") + '\0') != std::string::npos) victim = std::stoi(pid);
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
  for (int pid : s.pids()) EXPECT_FALSE(Scratch::alive(pid)) << "process " << pid << " outlived the job";
  (void)t0;
}

}  // namespace
