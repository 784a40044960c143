// fashion_mnist's flags (examples/args/fashion_mnist_args.hpp): good values, each kind of bad value
// with a message naming the flag, the help text with the defaults, unknown flags.
#include <gtest/gtest.h>

#include <kirzl/data/fashion_mnist.hpp>

#include <string>
#include <vector>

#include "argv.hpp"
#include "fashion_mnist_args.hpp"

using kirzl::examples::ArgsError;
using kirzl::examples::FashionMnistArgs;
using kirzl::examples::HelpRequested;
using kirzl::examples::testing::ExampleParser;

namespace {

const ExampleParser<FashionMnistArgs> parse("fashion_mnist", kirzl::examples::parse_fashion_mnist_args);

std::string error_of(std::vector<std::string> words) { return parse.error_of(std::move(words)); }

}  // namespace

TEST(FashionMnistArgs, Defaults) {
  FashionMnistArgs a = parse({});
  EXPECT_EQ(a.model, "mlp");
  EXPECT_EQ(a.epochs, 10);
  EXPECT_EQ(a.batch_size, 128);
  EXPECT_EQ(a.lr, 1e-3);
  EXPECT_EQ(a.optimizer, "adamw");
  EXPECT_EQ(a.data_dir, kirzl::data::kFashionMnistDir);
  EXPECT_EQ(a.threads, 0);
  EXPECT_EQ(a.log_every, 50);
  EXPECT_EQ(a.shard, "none");
  EXPECT_EQ(parse({"--model", "cnn"}).epochs, 4);  // the CNN's default
  EXPECT_EQ(parse({"--model", "cnn", "--epochs", "7"}).epochs, 7);
}

TEST(FashionMnistArgs, GoodValues) {
  FashionMnistArgs a = parse({"--model", "cnn", "--epochs", "3", "--batch-size", "256", "--lr", "0.01", "--optimizer",
                              "sgd", "--data-dir", "/d", "--seed", "18446744073709551615", "--device", "cuda",
                              "--checkpoint", "c.st", "--resume", "r.st", "--metrics", "m.jsonl", "--threads", "2",
                              "--train-limit", "1024", "--test-limit", "0", "--log-every", "1", "--stop-after=2",
                              "--shard", "gradients"});
  EXPECT_EQ(a.model, "cnn");
  EXPECT_EQ(a.epochs, 3);
  EXPECT_EQ(a.batch_size, 256);
  EXPECT_EQ(a.lr, 0.01);
  EXPECT_EQ(a.optimizer, "sgd");
  EXPECT_EQ(a.data_dir, "/d");
  EXPECT_EQ(a.seed, UINT64_MAX);
  EXPECT_EQ(a.device, "cuda");
  EXPECT_EQ(a.checkpoint, "c.st");
  EXPECT_EQ(a.resume, "r.st");
  EXPECT_EQ(a.metrics, "m.jsonl");
  EXPECT_EQ(a.threads, 2);
  EXPECT_EQ(a.train_limit, 1024);
  EXPECT_EQ(a.test_limit, 0);
  EXPECT_EQ(a.log_every, 1);
  EXPECT_EQ(a.stop_after, 2);
  EXPECT_EQ(a.shard, "gradients");
  EXPECT_EQ(parse({"--shard=optimizer"}).shard, "optimizer");
  EXPECT_EQ(parse({"--epochs", "1", "--epochs", "2"}).epochs, 2);  // the last one counts, as before
}

TEST(FashionMnistArgs, BadValuesNameTheFlag) {
  const std::vector<std::vector<std::string>> cases = {
      {"--epochs", "abc"},       {"--epochs", "12abc"},       {"--epochs", "1e3"},
      {"--epochs", "0"},         {"--epochs", "-1"},          {"--epochs", "99999999999"},
      {"--batch-size", "0"},     {"--batch-size", "1.5"},     {"--batch-size", "9223372036854775808"},
      {"--lr", "0"},             {"--lr", "-1e-3"},           {"--lr", "nan"},
      {"--lr", "inf"},           {"--lr", "fast"},            {"--seed", "-1"},
      {"--seed", "1.0"},         {"--threads", "0"},          {"--threads", "-2"},
      {"--train-limit", "-1"},   {"--test-limit", "x"},       {"--log-every", "0"},
      {"--stop-after", "-1"},    {"--model", "resnet"},       {"--optimizer", "adam"},
      {"--device", "gpu"},       {"--model", ""},             {"--shard", "bogus"},
      {"--shard", "zero2"},      {"--shard", ""},
  };
  for (const auto& c : cases) {
    const std::string msg = error_of(c);
    EXPECT_NE(msg.find(c[0] + " '" + c[1] + "': expected"), std::string::npos) << c[0] << " " << c[1] << ": " << msg;
  }
  EXPECT_EQ(error_of({"--model", "vit"}), "--model 'vit': expected one of mlp|cnn");
  EXPECT_EQ(error_of({"--shard", "bogus"}), "--shard 'bogus': expected one of none|optimizer|gradients");
}

TEST(FashionMnistArgs, MissingValueAndUnknownFlags) {
  EXPECT_NE(error_of({"--batch-size"}).find("--batch-size"), std::string::npos);
  EXPECT_EQ(error_of({"--epochs", "--lr", "1"}), "--epochs '--lr': expected an integer in [1, 1000000]");
  EXPECT_EQ(error_of({"--frobnicate"}), "unknown flag --frobnicate (see --help)");
  EXPECT_EQ(error_of({"--epochs", "2", "stray"}), "unexpected argument 'stray' (see --help)");
  EXPECT_NE(error_of({"--steps", "5"}).find("unknown flag --steps"), std::string::npos);  // gpt's, not this one's
}

TEST(FashionMnistArgs, HelpListsEveryFlagWithItsDefault) {
  for (const char* flag : {"--help", "-h"}) {
    try {
      parse({"--epochs", "abc", flag});  // help wins over a bad value
      ADD_FAILURE() << flag << " did not ask for help";
    } catch (const HelpRequested& h) {
      const std::string& text = h.help();
      for (const char* line : {"--model mlp|cnn [default: mlp]", "--epochs INT [default: 10 for mlp, 4 for cnn]",
                               "--batch-size INT [default: 128]", "--lr FLOAT [default: 0.001]",
                               "--optimizer adamw|sgd [default: adamw]", "--data-dir TEXT [default: /usr/share/datasets/fashion-mnist]",
                               "--seed UINT [default: 0]", "--device cpu|cuda [default: cpu]", "--checkpoint TEXT [default: none]",
                               "--resume TEXT [default: none]", "--metrics TEXT [default: none]",
                               "--threads INT [default: kirzl's default]", "--train-limit INT [default: 0 (all)]",
                               "--test-limit INT [default: 0 (all)]", "--log-every INT [default: 50]",
                               "--stop-after INT [default: 0 (never)]",
                               "--shard none|optimizer|gradients [default: none]"})
        EXPECT_NE(text.find(line), std::string::npos) << line << " missing in\n" << text;
    }
  }
}
