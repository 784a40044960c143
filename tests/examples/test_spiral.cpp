// The spiral example's flags as a user meets them: a bad value exits 2 with one line naming the
// flag (atoi used to read "abc" as 0 steps), --help exits 0 with the defaults.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <filesystem>
#include <string>

#include "support/program_run.hpp"

namespace {
const std::string kExample = std::string(KIRZL_BINARY_DIR) + "/examples/spiral";
}  // namespace

TEST(SpiralExampleFlags, BadValueExitsTwoAndHelpZero) {
  if (!std::filesystem::exists(kExample)) GTEST_SKIP() << kExample << " is not built";
  for (const char* args : {"--steps abc", "--lr -1", "--hidden 0", "--frobnicate"}) {
    SCOPED_TRACE(args);
    auto r = kirzl::testing::run_program(kExample + " " + args);
    ASSERT_TRUE(WIFEXITED(r.status)) << r.output;
    EXPECT_EQ(WEXITSTATUS(r.status), 2) << r.output;
    const std::string flag = std::string(args).substr(0, std::string(args).find(' '));
    EXPECT_NE(r.output.find(flag), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("step "), std::string::npos) << r.output;
  }
  auto help = kirzl::testing::run_program(kExample + " --help");
  ASSERT_TRUE(WIFEXITED(help.status));
  EXPECT_EQ(WEXITSTATUS(help.status), 0) << help.output;
  EXPECT_NE(help.output.find("--steps INT [default: 1500]"), std::string::npos) << help.output;
}

TEST(SpiralExampleFlags, ShortRunStillTrains) {
  if (!std::filesystem::exists(kExample)) GTEST_SKIP() << kExample << " is not built";
  auto r = kirzl::testing::run_program(kExample + " --steps 20 --hidden 16");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.last_line().find("\"steps\": 20"), std::string::npos) << r.output;
}
