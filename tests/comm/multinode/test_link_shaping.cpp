// The links between the emulated nodes carry the delay and the rate that scripts/multinode.sh was
// asked for (label `multinode`; issue #17; Note [emulated nodes] there). Between a process on
// kirzl-node1 and one on kirzl-node2 (link_probe, started inside the nodes with nsenter): the
// median TCP round trip of 64 bytes lies within [2 delay, 2 delay + 300 us] (the delay is added
// once each way; the 300 us are what the two TCP stacks, the wake-ups and, with linkemu, the
// emulator may add), and 16 MiB sent one way move at 0.5-1.1 times the rate. The delay and the
// rate are read from the state files `up` wrote ($STATE/link, $STATE/shaping); with tbf, which
// applies no delay, the round trip is not checked. Skips when the nodes are not up.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>

#include "../../../scripts/multinode/tc_units.hpp"
#include "support/program_run.hpp"

namespace {

using kirzl::testing::run_program;

const std::string kScript = std::string(KIRZL_SOURCE_DIR) + "/scripts/multinode.sh";
const std::string kProbe = std::string(KIRZL_BINARY_DIR) + "/tests/link_probe";
constexpr double kRttSlackUs = 300;
constexpr unsigned long long kBulkBytes = 16ull << 20;

// tc's times in microseconds and rates in bits per second (scripts/multinode/tc_units.hpp); NaN
// when malformed.
double delay_us(const std::string& text) {
  const double ns = tc_units::time_ns(text);
  return ns < 0 ? NAN : ns / 1e3;
}
double rate_bps(const std::string& text) {
  const double bps = tc_units::rate_bps(text);
  return bps < 0 ? NAN : bps;
}

std::string read_word(const std::filesystem::path& file, int index) {
  std::ifstream in(file);
  std::string w;
  for (int i = 0; i <= index; ++i)
    if (!(in >> w)) return "";
  return w;
}

// The parser is shared with the emulator, so the link tests below cannot catch a unit it gets
// wrong: its spellings are checked here against tc's meaning.
TEST(TcUnits, ParseTcSpellings) {
  EXPECT_EQ(rate_bps("1gbit"), 1e9);
  EXPECT_EQ(rate_bps("100mbit"), 1e8);
  EXPECT_EQ(rate_bps("10GBPS"), 8e10);  // bytes per second
  EXPECT_EQ(rate_bps("1kibit"), 1024);
  EXPECT_EQ(rate_bps("2500"), 2500);  // a bare number: bits per second
  EXPECT_EQ(delay_us("200us"), 200);
  EXPECT_EQ(delay_us("1.5ms"), 1500);
  EXPECT_EQ(delay_us("0.5s"), 5e5);
  EXPECT_EQ(delay_us("300"), 300);  // a bare number: microseconds
  EXPECT_EQ(delay_us("500ns"), 0.5);
  for (const char* bad : {"", "fast", "-1gbit", "1 gbit", "1gbitx", "nan"}) {
    EXPECT_TRUE(std::isnan(rate_bps(bad))) << bad;
    EXPECT_TRUE(std::isnan(delay_us(bad))) << bad;
  }
}

class LinkShaping : public ::testing::Test {
 protected:
  // Skips unless 2 nodes are up; reads their holders' pids, node 2's address and the state files.
  void SetUp() override {
    const auto status = run_program(kScript + " status");
    std::smatch m;
    if (!WIFEXITED(status.status) || WEXITSTATUS(status.status) != 0 ||
        !std::regex_search(status.output, m, std::regex("multinode: ([0-9]+) nodes, .*state in (\\S+)")) ||
        std::stoi(m[1]) < 2)
      GTEST_SKIP() << "the emulated nodes are not up: run `scripts/multinode.sh up 2` as root (" << status.output << ")";
    const std::filesystem::path state = m[2].str();
    for (int i = 1; i <= 2; ++i) {
      const std::regex node("kirzl-node" + std::to_string(i) + ": holder pid ([0-9]+), \\S+, ([0-9.]+)/");
      ASSERT_TRUE(std::regex_search(status.output, m, node)) << status.output;
      holder_[i - 1] = m[1];
      address_[i - 1] = m[2];
    }
    shaping_ = read_word(state / "shaping", 0);
    rate_text_ = read_word(state / "link", 0);
    delay_text_ = read_word(state / "link", 1);
    rate_ = rate_bps(rate_text_);
    delay_ = delay_us(delay_text_);
    ASSERT_TRUE(shaping_ == "netem" || shaping_ == "linkemu" || shaping_ == "tbf") << state / "shaping" << ": " << shaping_;
    ASSERT_TRUE(std::isfinite(rate_) && rate_ > 0) << state / "link" << ": rate '" << rate_text_ << "'";
    ASSERT_TRUE(std::isfinite(delay_)) << state / "link" << ": delay '" << delay_text_ << "'";
    ASSERT_TRUE(std::filesystem::exists(kProbe)) << kProbe;
  }

  // `link_probe serve` on kirzl-node2, then `link_probe <client> <node 2's address> <port> <arg>`
  // on kirzl-node1: the client's output, after checking that both ended with status 0.
  std::string probe(const std::string& client, const std::string& arg) {
    const std::string in_node = "nsenter --net --uts -t ";
    std::unique_ptr<FILE, int (*)(FILE*)> server(
        popen((in_node + holder_[1] + " -- timeout 60 " + kProbe + " serve 2>&1").c_str(), "r"), &pclose);
    if (!server) {
      ADD_FAILURE() << "popen failed";
      return "";
    }
    char line[256] = {};
    int port = 0;
    if (!std::fgets(line, sizeof line, server.get()) || std::sscanf(line, "port %d", &port) != 1) {
      ADD_FAILURE() << "link_probe serve on kirzl-node2 said: " << line;
      return "";
    }
    const auto r = run_program(in_node + holder_[0] + " -- timeout 60 " + kProbe + " " + client + " " + address_[1] +
                               " " + std::to_string(port) + " " + arg);
    std::string said;
    while (std::fgets(line, sizeof line, server.get())) said += line;
    const int server_status = pclose(server.release());
    EXPECT_EQ(server_status, 0) << "link_probe serve on kirzl-node2: " << said;
    EXPECT_EQ(r.status, 0) << "link_probe " << client << " on kirzl-node1: " << r.output;
    return r.output;
  }

  std::string holder_[2], address_[2], shaping_, rate_text_, delay_text_;
  double rate_ = 0, delay_ = 0;  // bits per second, microseconds
};

// The delay is added once each way: a round trip between two nodes takes it twice.
TEST_F(LinkShaping, RoundTripBetweenNodesTakesTheDelayTwice) {
  if (shaping_ == "tbf")
    GTEST_SKIP() << "the links are shaped by tbf, which applies no delay (chosen where the kernel has no sch_netem "
                    "and no TAP device can be made, or by KIRZL_MULTINODE_SHAPER=tbf): the delay "
                 << delay_text_ << " is not on the links";
  const std::string out = probe("ping", "200");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("rtt_us median ([0-9.]+) min ([0-9.]+) max ([0-9.]+)"))) << out;
  const double median = std::stod(m[1]);
  std::printf("round trip kirzl-node1 -> kirzl-node2 -> kirzl-node1 (%s, delay %s one way): median %.1f us of 200, "
              "min %s, max %s\n", shaping_.c_str(), delay_text_.c_str(), median, m[2].str().c_str(), m[3].str().c_str());
  EXPECT_GE(median, 2 * delay_) << "the delay " << delay_text_ << " is not applied each way (" << shaping_ << ")";
  EXPECT_LE(median, 2 * delay_ + kRttSlackUs) << "the round trip takes more than twice the delay " << delay_text_
                                               << " and " << kRttSlackUs << " us (" << shaping_ << ")";
}

// One TCP stream between two nodes moves at the rate of their links.
TEST_F(LinkShaping, BulkTransferBetweenNodesMovesAtTheRate) {
  const std::string out = probe("bulk", std::to_string(kBulkBytes));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("seconds ([0-9.]+) bits_per_second ([0-9.]+)"))) << out;
  const double bps = std::stod(m[2]);
  std::printf("bulk kirzl-node1 -> kirzl-node2 (%s, rate %s): %llu bytes in %s s, %.3f Gbit/s, %.3f of the rate\n",
              shaping_.c_str(), rate_text_.c_str(), kBulkBytes, m[1].str().c_str(), bps / 1e9, bps / rate_);
  EXPECT_GE(bps, 0.5 * rate_) << "slower than half the rate " << rate_text_ << " (" << shaping_ << ")";
  EXPECT_LE(bps, 1.1 * rate_) << "faster than the rate " << rate_text_ << " (" << shaping_ << "): not limited";
}

}  // namespace
