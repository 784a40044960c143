// spiral's flags (examples/args/spiral_args.hpp).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "argv.hpp"
#include "spiral_args.hpp"

using kirzl::examples::ArgsError;
using kirzl::examples::HelpRequested;
using kirzl::examples::SpiralArgs;
using kirzl::examples::testing::ExampleParser;

namespace {

const ExampleParser<SpiralArgs> parse("spiral", kirzl::examples::parse_spiral_args);

std::string error_of(std::vector<std::string> words) { return parse.error_of(std::move(words)); }

}  // namespace

TEST(SpiralArgs, DefaultsAndGoodValues) {
  SpiralArgs d = parse({});
  EXPECT_EQ(d.steps, 1500);
  EXPECT_EQ(d.lr, 0.5);
  EXPECT_EQ(d.seed, 0u);
  EXPECT_EQ(d.hidden, 64);
  SpiralArgs a = parse({"--steps", "20", "--lr", "0.1", "--seed", "3", "--hidden", "8"});
  EXPECT_EQ(a.steps, 20);
  EXPECT_EQ(a.lr, 0.1);
  EXPECT_EQ(a.seed, 3u);
  EXPECT_EQ(a.hidden, 8);
}

TEST(SpiralArgs, BadValuesNameTheFlag) {
  // atoi() used to turn these into 0 or 12 without a word.
  for (const auto& c : std::vector<std::vector<std::string>>{{"--steps", "abc"}, {"--steps", "12abc"}, {"--steps", "0"},
                                                             {"--lr", "0"}, {"--lr", "nan"}, {"--seed", "-1"},
                                                             {"--hidden", "0"}, {"--hidden", "2000000000"}}) {
    const std::string msg = error_of(c);
    EXPECT_NE(msg.find(c[0] + " '" + c[1] + "': expected"), std::string::npos) << msg;
  }
  EXPECT_EQ(error_of({"--epochs", "1"}), "unknown flag --epochs (see --help)");
}

TEST(SpiralArgs, HelpListsTheDefaults) {
  try {
    parse({"--help"});
    ADD_FAILURE() << "no help";
  } catch (const HelpRequested& h) {
    for (const char* s : {"--steps INT [default: 1500]", "--lr FLOAT [default: 0.5]", "--seed UINT [default: 0]",
                          "--hidden INT [default: 64]"})
      EXPECT_NE(h.help().find(s), std::string::npos) << s << " missing in\n" << h.help();
  }
}

// A fuzz harness may call the parsers with any argv: no crash, an ArgsError at most.
TEST(SpiralArgs, OddArgvIsAnErrorNotACrash) {
  EXPECT_EQ(kirzl::examples::parse_spiral_args(0, nullptr).steps, 1500);
  const char* with_null[] = {"spiral", "--steps", nullptr};
  EXPECT_THROW(kirzl::examples::parse_spiral_args(3, with_null), ArgsError);
  EXPECT_THROW(kirzl::examples::parse_spiral_args(-1, nullptr), ArgsError);
  const char* empty[] = {"spiral", "", "-", "--", "---x", "--steps="};
  EXPECT_THROW(kirzl::examples::parse_spiral_args(6, empty), ArgsError);
}
