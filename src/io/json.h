// A small strict JSON reader and the writing helpers the io layer shares (internal).
//
// The reader accepts exactly what a safetensors header needs — objects, arrays, strings (with
// every escape, including \uXXXX and surrogate pairs), integers, true/false/null — and nothing
// more: no fractions or exponents, no comments, no trailing commas, no invalid UTF-8. Its input is
// untrusted, so nesting depth, string length and element counts are bounded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kirzl::io::json {

/// A parsed JSON value. Object members keep their order and duplicates (the caller decides what a
/// duplicate key means).
struct Value {
  enum class Kind { Null, Bool, Int, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  int64_t integer = 0;
  std::string string;
  std::vector<Value> array;
  std::vector<std::pair<std::string, Value>> object;

  // User-provided, not implicit: clang 14 with libstdc++ 12 checks the implicit one's properties
  // while Value is still incomplete and then rejects std::pair<std::string, Value> (the fuzz build).
  Value() noexcept {}

  bool is_object() const { return kind == Kind::Object; }
  bool is_array() const { return kind == Kind::Array; }
  bool is_string() const { return kind == Kind::String; }
  bool is_int() const { return kind == Kind::Int; }
};

/// "object", "string", ... for error messages.
const char* kind_name(Value::Kind kind);

/// Bounds on what parse() accepts.
struct Limits {
  size_t max_depth = 32;               ///< nesting of arrays/objects
  size_t max_string_bytes = 1 << 20;   ///< one decoded string
  size_t max_elements = 10'000'000;    ///< all values in the document together
};

/// Thrown by parse(): `offset` is the byte where the problem was found.
class ParseError : public std::runtime_error {
 public:
  ParseError(size_t offset, const std::string& what) : std::runtime_error(what), offset_(offset) {}
  size_t offset() const noexcept { return offset_; }

 private:
  size_t offset_;
};

/// Parses one JSON document (surrounding whitespace allowed). Throws ParseError.
Value parse(std::string_view text, const Limits& limits = {});

/// `s` as a quoted JSON string: '"', '\\' and control characters escaped; other bytes as they are.
std::string quote(std::string_view s);

/// `v` with enough digits to read back the same double ("%.17g" trimmed to the shortest form that
/// round-trips); "null" for NaN and infinities, which JSON cannot express.
std::string number(double v);

}  // namespace kirzl::io::json
