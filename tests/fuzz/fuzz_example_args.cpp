// Fuzz harness: the examples' command lines (examples/args/: fashion_mnist, gpt, spiral).
// The input is a command line: its first byte picks the example, the rest is split at NUL bytes
// into argv[1..]. Properties: a parser returns flags within the ranges it documents, or throws
// ArgsError with a one-line message that names a flag or the offending argument, or HelpRequested
// with help text that lists every flag; nothing else escapes (no std::invalid_argument from stoi,
// no CLI11 exception, no crash).
#include <cmath>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "fashion_mnist_args.hpp"
#include "fuzz_support.hpp"
#include "gpt_args.hpp"
#include "spiral_args.hpp"

namespace {

using namespace kirzl::examples;

// Splits `text` at NUL bytes; argv[0] is the program's name, as a shell would pass it.
std::vector<std::string> split_args(std::string_view program, std::string_view text) {
  std::vector<std::string> args{std::string(program)};
  size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    const size_t end = text.find('\0', start);
    args.emplace_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return args;
}

// A message a user can act on: one line, and it names a flag ("--...") or quotes what was given.
void check_message(const std::string& message, const std::vector<std::string>& args) {
  KIRZL_FUZZ_REQUIRE(!message.empty(), "an ArgsError has a message");
  bool names_something = message.find("--") != std::string::npos;
  for (size_t i = 1; i < args.size() && !names_something; ++i)
    names_something = !args[i].empty() && message.find(args[i]) != std::string::npos;
  // An argument that is not valid text may be shown escaped; a bare "-x" is named by CLI11 as is.
  KIRZL_FUZZ_REQUIRE(names_something || message.find("argument") != std::string::npos,
                     "the message names the flag or the argument: " + message);
}

void check_help(const std::string& help, std::initializer_list<const char*> flags) {
  for (const char* flag : flags) KIRZL_FUZZ_REQUIRE(help.find(flag) != std::string::npos, std::string("--help lists ") + flag);
}

void check_fashion_mnist(const FashionMnistArgs& a) {
  KIRZL_FUZZ_REQUIRE(a.model == "mlp" || a.model == "cnn", "--model is a choice");
  KIRZL_FUZZ_REQUIRE(a.optimizer == "adamw" || a.optimizer == "sgd", "--optimizer is a choice");
  KIRZL_FUZZ_REQUIRE(a.device == "cpu" || a.device == "cuda", "--device is a choice");
  KIRZL_FUZZ_REQUIRE(a.epochs >= 1 && a.epochs <= 1'000'000, "--epochs in range");
  KIRZL_FUZZ_REQUIRE(a.batch_size >= 1, "--batch-size >= 1");
  KIRZL_FUZZ_REQUIRE(std::isfinite(a.lr) && a.lr > 0, "--lr finite and > 0");
  KIRZL_FUZZ_REQUIRE(a.threads >= 0, "--threads >= 1 or the default");
  KIRZL_FUZZ_REQUIRE(a.train_limit >= 0 && a.test_limit >= 0, "limits >= 0");
  KIRZL_FUZZ_REQUIRE(a.log_every >= 1 && a.stop_after >= 0, "--log-every >= 1, --stop-after >= 0");
}

void check_gpt(const GptArgs& a) {
  KIRZL_FUZZ_REQUIRE(a.steps >= 1 && a.batch_size >= 1 && a.block_size >= 1, "sizes >= 1");
  KIRZL_FUZZ_REQUIRE(a.n_layer >= 1 && a.n_head >= 1 && a.n_embd >= 1, "model sizes >= 1");
  KIRZL_FUZZ_REQUIRE(a.n_embd % a.n_head == 0, "--n-head divides --n-embd");
  KIRZL_FUZZ_REQUIRE(std::isfinite(a.dropout) && a.dropout >= 0 && a.dropout < 1, "--dropout in [0, 1)");
  KIRZL_FUZZ_REQUIRE(std::isfinite(a.lr) && a.lr > 0, "--lr finite and > 0");
  KIRZL_FUZZ_REQUIRE(a.min_lr >= 0 && a.min_lr <= a.lr, "0 <= --min-lr <= --lr");
  KIRZL_FUZZ_REQUIRE(a.warmup >= 0 && a.warmup <= a.steps, "0 <= --warmup <= --steps");
  KIRZL_FUZZ_REQUIRE(a.weight_decay >= 0 && a.grad_clip >= 0 && a.temperature >= 0, "non-negative doubles");
  KIRZL_FUZZ_REQUIRE(std::isfinite(a.weight_decay) && std::isfinite(a.grad_clip) && std::isfinite(a.temperature),
                     "finite doubles");
  KIRZL_FUZZ_REQUIRE(a.device == "cpu" || a.device == "cuda", "--device is a choice");
  KIRZL_FUZZ_REQUIRE(a.eval_every >= 1 && a.eval_tokens >= 1 && a.log_every >= 1, "intervals >= 1");
  KIRZL_FUZZ_REQUIRE(a.stop_after >= 0 && a.sample_tokens >= 0 && a.top_k >= 0 && a.threads >= 0, "counts >= 0");
}

void check_spiral(const SpiralArgs& a) {
  KIRZL_FUZZ_REQUIRE(a.steps >= 1 && a.points_per_class >= 1 && a.hidden >= 1, "sizes >= 1");
  KIRZL_FUZZ_REQUIRE(std::isfinite(a.lr) && a.lr > 0, "--lr finite and > 0");
}

template <class Parse, class Check>
void run(std::string_view program, std::string_view text, Parse parse, Check check,
         std::initializer_list<const char*> help_flags) {
  const std::vector<std::string> args = split_args(program, text);
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  try {
    check(parse(static_cast<int>(args.size()), argv.data()));
  } catch (const HelpRequested& h) {
    check_help(h.help(), help_flags);
  } catch (const ArgsError& e) {
    check_message(e.what(), args);
  } catch (const std::exception& e) {
    KIRZL_FUZZ_REQUIRE(false, std::string("only ArgsError or HelpRequested escape a parser, not: ") + e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      run("fashion_mnist", text, parse_fashion_mnist_args, check_fashion_mnist, {"--epochs", "--model", "--metrics"});
      break;
    case 1:
      run("gpt", text, parse_gpt_args, check_gpt, {"--n-head", "--min-lr", "--prompt"});
      break;
    default:
      run("spiral", text, parse_spiral_args, check_spiral, {"--steps", "--lr"});
      break;
  }
  return 0;
}
