// Fuzz harness: the JSON reader that safetensors headers go through (src/io/json.h, parse_untrusted).
// Properties: failures are json::ParseError at an offset inside the text; what parses respects the
// limits it was given (depth, string length, element count), holds only valid UTF-8, and writes
// back (by nlohmann's dump) to text that parses to the same value.
//
// The one call of the reader is parse_json() below: switching to another reader (parse_untrusted)
// changes that function only.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "io/json.h"
#include "kirzl/data/tokenizer.hpp"

namespace {

using namespace kirzl;
namespace json = io::json;

nlohmann::ordered_json parse_json(std::string_view text, const json::Limits& limits) {
  return json::parse_untrusted(text, limits);
}

// Checks `v` against `limits`; returns the number of values in it.
size_t check_value(const nlohmann::ordered_json& v, const json::Limits& limits, size_t depth) {
  size_t count = 1;
  auto check_string = [&](const std::string& s) {
    KIRZL_FUZZ_REQUIRE(s.size() <= limits.max_string_bytes, "strings within max_string_bytes");
    try {
      (void)data::utf8_decode(s);
    } catch (const Error&) {
      KIRZL_FUZZ_REQUIRE(false, "strings are valid UTF-8");
    }
  };
  if (v.is_string()) check_string(v.get_ref<const std::string&>());
  if (v.is_number()) KIRZL_FUZZ_REQUIRE(v.is_number_integer(), "numbers are integers");
  if (v.is_array() || v.is_object()) KIRZL_FUZZ_REQUIRE(depth < limits.max_depth, "nesting within max_depth");
  if (v.is_array())
    for (const auto& e : v) count += check_value(e, limits, depth + 1);
  if (v.is_object())
    for (const auto& [k, e] : v.items()) {
      check_string(k);
      count += check_value(e, limits, depth + 1);
    }
  return count;
}

std::string write(const nlohmann::ordered_json& v) { return v.dump(); }

void check(std::string_view text, const json::Limits& limits) {
  try {
    const nlohmann::ordered_json v = parse_json(text, limits);
    KIRZL_FUZZ_REQUIRE(check_value(v, limits, 0) <= limits.max_elements, "values within max_elements");
    const std::string again = write(v);
    KIRZL_FUZZ_REQUIRE(write(parse_json(again, limits)) == again, "written back, it parses to the same value");
  } catch (const json::ParseError& e) {
    KIRZL_FUZZ_REQUIRE(e.offset() <= text.size(), "the error offset is inside the text");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check(text, json::Limits{});
  check(text, json::Limits{.max_depth = 3, .max_string_bytes = 16, .max_elements = 20});
  return 0;
}
