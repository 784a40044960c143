// parse_untrusted(): the bounds on untrusted JSON (depth, string bytes, element count), duplicate
// keys, numbers and NUL bytes, each reported as a ParseError with the byte offset. The offsets of
// the bounds are the bytes read when the offending token was complete: just after it, or one byte
// further after a number (the parser reads one byte ahead to find its end).
#include <gtest/gtest.h>

#include <string>

#include "io/json.h"

namespace kirzl::io::json {
namespace {

// The ParseError of parse_untrusted(text, limits); fails the test when there is none.
ParseError error_of(const std::string& text, const Limits& limits = {}) {
  try {
    parse_untrusted(text, limits);
  } catch (const ParseError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << text;
  return ParseError(0, "");
}

void expect_error(const std::string& text, const Limits& limits, size_t offset, const std::string& word) {
  SCOPED_TRACE(text);
  ParseError e = error_of(text, limits);
  EXPECT_EQ(e.offset(), offset) << e.what();
  EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("byte " + std::to_string(offset)), std::string::npos) << e.what();
}

TEST(ParseUntrusted, KeepsMemberOrderAndValues) {
  nlohmann::ordered_json j = parse_untrusted(" {\"b\": [1, -2, true, null], \"a\": \"x\\u00e9\"} ");
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.begin().key(), "b");
  EXPECT_EQ(j["b"][1].get<int64_t>(), -2);
  EXPECT_EQ(j["a"], "x\xc3\xa9");
}

TEST(ParseUntrusted, DepthIsBounded) {
  const Limits limits{.max_depth = 3};
  EXPECT_NO_THROW(parse_untrusted("[[[1]]]", limits));
  EXPECT_NO_THROW(parse_untrusted("{\"a\": {\"b\": []}}", limits));
  expect_error("[[[[1]]]]", limits, 4, "nesting deeper than 3");
  expect_error("{\"a\": {\"b\": {\"c\": {}}}}", limits, 19, "nesting deeper than 3");
  // Far beyond the bound: no deep recursion, one clear error.
  expect_error(std::string(100000, '['), {}, 33, "nesting deeper than 32");
}

TEST(ParseUntrusted, StringsAreBounded) {
  const Limits limits{.max_string_bytes = 4};
  EXPECT_NO_THROW(parse_untrusted("[\"abcd\"]", limits));
  expect_error("[\"abcde\"]", limits, 8, "string longer than 4 bytes");
  expect_error("{\"abcde\": 1}", limits, 8, "string longer than 4 bytes");  // keys too
  // Decoded bytes count: \u00e9 is two bytes of UTF-8.
  expect_error("[\"abc\\u00e9\"]", limits, 12, "string longer than 4 bytes");
}

TEST(ParseUntrusted, ElementsAreBounded) {
  const Limits limits{.max_elements = 4};
  EXPECT_NO_THROW(parse_untrusted("[1, 2, 3]", limits));  // the array and its three values
  expect_error("[1, 2, 3, 4]", limits, 12, "more than 4 values");
  expect_error("{\"a\": {}, \"b\": [], \"c\": [1]}", limits, 27, "more than 4 values");
}

TEST(ParseUntrusted, DuplicateKeysAreRejectedWithTheirPlace) {
  EXPECT_NO_THROW(parse_untrusted("{\"a\": {\"a\": 1}, \"b\": [{\"a\": 1}, {\"a\": 2}]}"));
  try {
    parse_untrusted("{\"t\": {\"x\": 1, \"y\": {\"k\": 1, \"k\": 2}}}");
    FAIL() << "accepted";
  } catch (const DuplicateKeyError& e) {
    EXPECT_EQ(e.key(), "k");
    EXPECT_EQ(e.path(), (std::vector<std::string>{"t", "y"}));
    EXPECT_EQ(e.offset(), 32u);
    EXPECT_NE(std::string(e.what()).find("'k' appears twice"), std::string::npos) << e.what();
  }
  try {
    parse_untrusted("{\"a\": 1, \"a\": 1}");
    FAIL() << "accepted";
  } catch (const DuplicateKeyError& e) {
    EXPECT_TRUE(e.path().empty());
  }
}

TEST(ParseUntrusted, OnlyInt64Numbers) {
  EXPECT_EQ(parse_untrusted("[9223372036854775807]")[0].get<int64_t>(), INT64_MAX);
  EXPECT_EQ(parse_untrusted("[-9223372036854775808]")[0].get<int64_t>(), INT64_MIN);
  expect_error("[9223372036854775808]", {}, 21, "64-bit range");
  expect_error("[1.5]", {}, 5, "only integers");
  expect_error("[1e3]", {}, 5, "only integers");
  // Beyond double's range, nlohmann throws out_of_range rather than parse_error (found by fuzz_json).
  expect_error("[1e400]", {}, 6, "number out of range");
  expect_error("[0,-1e999999]", {}, 12, "number out of range");
}

TEST(ParseUntrusted, SyntaxErrorsCarryTheOffset) {
  expect_error("{\"a\": 1,}", {}, 8, "expected string literal");
  expect_error("[1] x", {}, 4, "expected end of input");
  expect_error("[\"\xff\"]", {}, 2, "UTF-8");
  // A NUL byte would end nlohmann's input early, hiding what follows.
  expect_error(std::string("{}\0{\"a\": 1}", 11), {}, 2, "NUL byte");
}

}  // namespace
}  // namespace kirzl::io::json
