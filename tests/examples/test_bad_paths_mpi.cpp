// The examples under mpirun when rank 0's output path cannot be written: only rank 0 writes (and
// checks) it, yet every rank must stop at once with the same exit status instead of waiting in
// its first collective (Note [paths checked by every rank], examples/args/path_checks.hpp).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "kirzl/config.hpp"

#include "support/program_run.hpp"

namespace fs = std::filesystem;

namespace {

// Runs `program args` on 2 ranks, each wrapped in a shell that prints "rank R exit S" and then
// exits 0, so that mpirun does not end the other rank when the first one exits non-zero.
// KIRZL_TIMEOUT bounds a run that waits for a rank that has gone (what this test rules out).
kirzl::testing::ProgramRun run_two_ranks(const std::string& program, const std::string& args) {
  return kirzl::testing::run_program(kirzl::testing::mpirun_prefix(2, "-x KIRZL_TIMEOUT=30") + "sh -c '" + program +
                                     " " + args + "; echo \"rank $OMPI_COMM_WORLD_RANK exit $?\"'");
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST(ExampleBadPathsMpi, EveryRankStopsWhenRankZerosMetricsPathIsUnwritable) {
  if (!KIRZL_HAS_MPI) GTEST_SKIP() << "kirzl was built without MPI";
  const std::string dir = std::string(KIRZL_BINARY_DIR) + "/examples/";
  struct Case {
    std::string program, args, data;
  };
  const fs::path cache = fs::temp_directory_path() / ("kirzl_bad_paths_mpi_" + std::to_string(::getpid()));
  for (const Case& c : {Case{"fashion_mnist", "--threads 1 --train-limit 1024 --test-limit 500 --epochs 1",
                             "/usr/share/datasets/fashion-mnist"},
                        Case{"gpt", "--threads 1 --steps 4 --batch-size 8 --block-size 32 --n-layer 1 --n-head 2 "
                                    "--n-embd 16 --cache-dir " + cache.string(),
                             "/usr/share/games/fortunes"}}) {
    SCOPED_TRACE(c.program);
    if (!fs::exists(dir + c.program)) GTEST_SKIP() << dir + c.program << " is not built";
    if (!fs::exists(c.data)) GTEST_SKIP() << c.data << " is missing (scripts/setup.sh installs it)";
    auto r = run_two_ranks(dir + c.program, c.args + " --metrics /proc/x/metrics.jsonl");
    EXPECT_NE(r.output.find("rank 0 exit 2"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("rank 1 exit 2"), std::string::npos) << r.output;
    // Rank 0 says what is wrong, once; rank 1 stops quietly.
    EXPECT_EQ(count(r.output, c.program + ": --metrics '/proc/x/metrics.jsonl': the directory '/proc/x' does not exist"), 1u)
        << r.output;
    // Rank 1 did not start training and run into a collective that rank 0 never joined (before,
    // it failed there with "kirzl::Error [Timeout] ... rank 0 has left the group").
    EXPECT_EQ(r.output.find("kirzl::Error"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("aborting the job"), std::string::npos) << r.output;
  }
  fs::remove_all(cache);
}
