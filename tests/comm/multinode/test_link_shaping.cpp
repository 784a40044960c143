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
#include <map>
#include <memory>
#include <regex>
#include <string>

#include "support/program_run.hpp"

namespace {

using kirzl::testing::run_program;

const std::string kScript = std::string(KIRZL_SOURCE_DIR) + "/scripts/multinode.sh";
const std::string kProbe = std::string(KIRZL_BINARY_DIR) + "/tests/link_probe";
constexpr double kRttSlackUs = 300;
constexpr unsigned long long kBulkBytes = 16ull << 20;

// A number with one of tc's units (`units`, lower case), scaled; NaN when it is none.
double with_unit(const std::string& text, const std::map<std::string, double>& units) {
  std::smatch m;
  if (!std::regex_match(text, m, std::regex("([0-9]+(?:\\.[0-9]*)?)([a-zA-Z]*)"))) return NAN;
  std::string unit = m[2];
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto it = units.find(unit);
  return it == units.end() ? NAN : std::stod(m[1]) * it->second;
}

// tc's times ("200us", "1ms"; a bare number is microseconds), in microseconds.
double delay_us(const std::string& text) {
  return with_unit(text, {{"", 1}, {"us", 1}, {"usec", 1}, {"usecs", 1}, {"ms", 1e3}, {"msec", 1e3},
                          {"msecs", 1e3}, {"s", 1e6}, {"sec", 1e6}, {"secs", 1e6}});
}

// tc's rates ("1gbit", "100mbit", "10gbps" in bytes; a bare number is bits), in bits per second.
double rate_bps(const std::string& text) {
  std::map<std::string, double> units = {{"", 1}, {"bit", 1}, {"bps", 8}};
  const char* prefixes[] = {"k", "m", "g", "t"};
  for (int i = 0; i < 4; ++i) {
    const std::string p = prefixes[i];
    units[p + "bit"] = std::pow(1e3, i + 1);
    units[p + "ibit"] = std::pow(1024.0, i + 1);
    units[p + "bps"] = 8 * std::pow(1e3, i + 1);
    units[p + "ibps"] = 8 * std::pow(1024.0, i + 1);
  }
  return with_unit(text, units);
}

std::string read_word(const std::filesystem::path& file, int index) {
  std::ifstream in(file);
  std::string w;
  for (int i = 0; i <= index; ++i)
    if (!(in >> w)) return "";
  return w;
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
