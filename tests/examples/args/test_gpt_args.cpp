// gpt's flags (examples/args/gpt_args.hpp): good values, bad values per flag, the rules across
// flags, the help text with the defaults, unknown flags.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "argv.hpp"
#include "gpt_args.hpp"

using kirzl::examples::GptArgs;
using kirzl::examples::testing::ExampleParser;

namespace {

const ExampleParser<GptArgs> parse("gpt", kirzl::examples::parse_gpt_args);

std::string error_of(std::vector<std::string> words) { return parse.error_of(std::move(words)); }

}  // namespace

TEST(GptArgs, DefaultsAndGoodValues) {
  GptArgs d = parse({});
  EXPECT_EQ(d.steps, 600);
  EXPECT_EQ(d.n_embd % d.n_head, 0);
  EXPECT_EQ(d.cache_dir, "");  // default_gpt_cache_dir() at run time
  EXPECT_EQ(d.data_dir, "/usr/share/games/fortunes");
  EXPECT_EQ(d.shard, "none");
  EXPECT_EQ(parse({"--shard", "optimizer"}).shard, "optimizer");
  EXPECT_EQ(parse({"--shard=gradients"}).shard, "gradients");
  GptArgs a = parse({"--steps", "20", "--batch-size", "8", "--block-size", "32", "--n-layer", "2", "--n-head", "2",
                     "--n-embd", "48", "--dropout", "0.1", "--lr", "1e-2", "--min-lr", "0", "--warmup", "0",
                     "--weight-decay", "0", "--grad-clip", "0", "--cache-dir", "/c", "--seed", "5", "--threads", "1",
                     "--log-every", "1", "--eval-every", "4", "--eval-tokens", "100", "--stop-after", "10",
                     "--sample-tokens", "0", "--temperature", "0", "--top-k", "5", "--prompt", "--not a flag"});
  EXPECT_EQ(a.steps, 20);
  EXPECT_EQ(a.n_embd, 48);
  EXPECT_EQ(a.dropout, 0.1);
  EXPECT_EQ(a.min_lr, 0.0);
  EXPECT_EQ(a.grad_clip, 0.0);
  EXPECT_EQ(a.cache_dir, "/c");
  EXPECT_EQ(a.stop_after, 10);
  EXPECT_EQ(a.temperature, 0.0);
  EXPECT_EQ(a.top_k, 5);
  EXPECT_EQ(parse({"--prompt=--not a flag"}).prompt, "--not a flag");
  EXPECT_EQ(parse({"--steps", "20"}).warmup, 20);  // the default warm-up is clamped to a short run
  EXPECT_EQ(d.profile, 0);
  EXPECT_EQ(parse({"--profile", "5"}).profile, 5);
}

TEST(GptArgs, BadValuesNameTheFlag) {
  const std::vector<std::vector<std::string>> cases = {
      {"--steps", "nope"},         {"--steps", "0"},          {"--steps", "1e3"},         {"--batch-size", "-8"},
      {"--block-size", "0"},       {"--n-layer", "0"},        {"--n-head", "0"},          {"--n-embd", "12x"},
      {"--dropout", "1"},          {"--dropout", "-0.1"},     {"--dropout", "nan"},       {"--lr", "0"},
      {"--min-lr", "-1"},          {"--warmup", "-1"},        {"--weight-decay", "-0.1"}, {"--grad-clip", "inf"},
      {"--seed", "-3"},            {"--device", "tpu"},       {"--threads", "0"},         {"--log-every", "0"},
      {"--eval-every", "0"},       {"--eval-tokens", "0"},    {"--stop-after", "-1"},     {"--sample-tokens", "-1"},
      {"--temperature", "-0.5"},   {"--top-k", "-1"},         {"--shard", "bogus"},       {"--shard", "Optimizer"},
      {"--profile", "-2"},         {"--profile", "x"},
  };
  for (const auto& c : cases) {
    const std::string msg = error_of(c);
    EXPECT_NE(msg.find(c[0] + " '" + c[1] + "': expected"), std::string::npos) << c[0] << " " << c[1] << ": " << msg;
  }
}

TEST(GptArgs, RulesAcrossFlags) {
  EXPECT_EQ(error_of({"--n-embd", "100", "--n-head", "3"}), "--n-embd 100 must be divisible by --n-head 3");
  EXPECT_EQ(error_of({"--lr", "1e-4"}), "--min-lr 0.0003 must be at most --lr 0.0001");  // min-lr's default
  EXPECT_EQ(error_of({"--lr", "0.1", "--min-lr", "0.1"}), "");
}

TEST(GptArgs, UnknownFlagsAndHelp) {
  EXPECT_EQ(error_of({"--epochs", "3"}), "unknown flag --epochs (see --help)");
  EXPECT_NE(error_of({"--steps"}).find("--steps"), std::string::npos);
  try {
    parse({"-h"});
    ADD_FAILURE() << "no help";
  } catch (const kirzl::examples::HelpRequested& h) {
    for (const char* s : {"--steps INT [default: 600]", "--batch-size INT [default: 32]", "--block-size INT [default: 64]",
                          "--n-layer INT [default: 4]", "--n-head INT [default: 4]", "--n-embd INT [default: 128]",
                          "--dropout FLOAT [default: 0]", "--lr FLOAT [default: 0.003]", "--min-lr FLOAT [default: 0.0003]",
                          "--warmup INT [default: 50]", "--weight-decay FLOAT [default: 0.1]",
                          "--grad-clip FLOAT [default: 1]", "--data-dir TEXT [default: /usr/share/games/fortunes]",
                          "--cache-dir TEXT [default: <temp>/kirzl_gpt_fortunes]", "--seed UINT [default: 0]",
                          "--device cpu|cuda [default: cpu]", "--threads INT [default: kirzl's default]",
                          "--checkpoint TEXT [default: none]", "--resume TEXT [default: none]",
                          "--metrics TEXT [default: none]", "--log-every INT [default: 50]",
                          "--eval-every INT [default: 200]", "--eval-tokens INT [default: 32768]",
                          "--stop-after INT [default: 0 (never)]", "--sample-tokens INT [default: 400]",
                          "--temperature FLOAT [default: 0.8]", "--top-k INT [default: 0]", "--prompt TEXT",
                          "--shard none|optimizer|gradients [default: none]"})
      EXPECT_NE(h.help().find(s), std::string::npos) << s << " missing in\n" << h.help();
  }
}
