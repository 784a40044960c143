// JSON in the io layer (internal): nlohmann::json, plus what it does not do itself — bounds on
// untrusted input and the detection of duplicate keys. kirzl's public headers never include this.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace kirzl::io::json {

/// Bounds on what parse_untrusted() accepts.
struct Limits {
  size_t max_depth = 32;               ///< nesting of arrays/objects
  size_t max_string_bytes = 1 << 20;   ///< one decoded string or key
  size_t max_elements = 10'000'000;    ///< all values in the document together
};

/// Thrown by parse_untrusted(): `offset` is where the problem was found, from 0: a syntax error's
/// byte, or for a bound, duplicate key or number, the bytes read when the offending token was
/// complete (just after it; after a number one byte more). what() says "JSON error at byte N: ...".
class ParseError : public std::runtime_error {
 public:
  ParseError(size_t offset, const std::string& what) : std::runtime_error(what), offset_(offset) {}
  size_t offset() const noexcept { return offset_; }

 private:
  size_t offset_;
};

/// An object with the same key twice: `path` holds the keys leading from the root to that object
/// (empty: the root object), so that callers can say what the duplicate means to them.
class DuplicateKeyError : public ParseError {
 public:
  DuplicateKeyError(size_t offset, const std::string& what, std::vector<std::string> path, std::string key)
      : ParseError(offset, what), path_(std::move(path)), key_(std::move(key)) {}
  const std::vector<std::string>& path() const noexcept { return path_; }
  const std::string& key() const noexcept { return key_; }

 private:
  std::vector<std::string> path_;
  std::string key_;
};

/// Parses one JSON document from untrusted bytes (surrounding whitespace allowed) with nlohmann's
/// strict parser, and also rejects: nesting, strings or element counts beyond `limits`, a key
/// repeated in one object (DuplicateKeyError), numbers that are not integers in the int64 range
/// (a safetensors header holds no others), and NUL bytes. Members keep their order.
/// Throws ParseError.
nlohmann::ordered_json parse_untrusted(std::string_view text, const Limits& limits = {});

/// `s` as a quoted JSON string (nlohmann's escaping; invalid UTF-8 becomes U+FFFD).
inline std::string quote(std::string_view s) {
  return nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace kirzl::io::json
