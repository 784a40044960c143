// The fixtures of the example programs' tests (tests/examples/test_*.cpp): each skips, saying why,
// when its program is not built or its data is missing, and gives each test a fresh temporary
// directory dir_.
#pragma once

#include <string>

#include "support/program_run.hpp"

namespace kirzl::testing {

inline const std::string kFashionMnistProgram = std::string(KIRZL_BINARY_DIR) + "/examples/fashion_mnist";
inline const std::string kGptProgram = std::string(KIRZL_BINARY_DIR) + "/examples/gpt";

class FashionMnistExample : public ExampleProgramTest {
 protected:
  FashionMnistExample()
      : ExampleProgramTest(kFashionMnistProgram, "/usr/share/datasets/fashion-mnist",
                           "apt-get install dataset-fashion-mnist") {}
};

class GptExample : public ExampleProgramTest {
 protected:
  GptExample() : ExampleProgramTest(kGptProgram, "/usr/share/games/fortunes", "apt-get install fortunes") {}
  void SetUp() override {
    ExampleProgramTest::SetUp();
    if (IsSkipped()) return;
    small_ = "--batch-size 8 --block-size 32 --n-layer 2 --n-head 2 --n-embd 48 --warmup 5 --eval-tokens 2048 "
             "--sample-tokens 40 --log-every 1 --cache-dir " + (dir_ / "cache").string() + " ";
  }
  /// The flags of a GPT small enough to train in seconds, with its token cache in dir_.
  std::string small_;
};

}  // namespace kirzl::testing
