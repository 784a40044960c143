// Test support: an argv built from a list of words, as main() would receive it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "args.hpp"

namespace kirzl::examples::testing {

class Argv {
 public:
  Argv(std::string program, std::vector<std::string> words) : words_(std::move(words)) {
    words_.insert(words_.begin(), std::move(program));
    for (const auto& w : words_) ptrs_.push_back(w.c_str());
    ptrs_.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(words_.size()); }
  const char* const* argv() const { return ptrs_.data(); }

 private:
  std::vector<std::string> words_;
  std::vector<const char*> ptrs_;
};

// The ArgsError message of parse(words), or "" when the words parse.
template <class Parse>
std::string args_error(Parse&& parse, std::vector<std::string> words) {
  try {
    parse(std::move(words));
  } catch (const ArgsError& e) {
    return e.what();
  }
  return "";
}

// One example's parser, called as main() would call it:
//   const ExampleParser<GptArgs> parse("gpt", parse_gpt_args);
//   GptArgs a = parse({"--steps", "3"});  std::string message = parse.error_of({"--steps", "x"});
template <class Result>
class ExampleParser {
 public:
  ExampleParser(std::string program, Result (*parser)(int, const char* const*))
      : program_(std::move(program)), parser_(parser) {}
  Result operator()(std::vector<std::string> words) const {
    Argv a(program_, std::move(words));
    return parser_(a.argc(), a.argv());
  }
  // The ArgsError message of parsing `words`, or "" when they parse.
  std::string error_of(std::vector<std::string> words) const { return args_error(*this, std::move(words)); }

 private:
  std::string program_;
  Result (*parser_)(int, const char* const*);
};

}  // namespace kirzl::examples::testing
