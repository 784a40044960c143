// parse_untrusted(): nlohmann's parser with a callback that enforces kirzl's bounds.
#include <cstdint>
#include <iterator>
#include <limits>

#include "io/json.h"

namespace kirzl::io::json {

namespace {

// Note [byte offsets of callback errors]: nlohmann's parser callback is not told where in the
// input it is. The parser reads the text through this iterator, which records how far it has
// read, so that the errors the callback raises carry a byte offset like nlohmann's own.
class TrackingIterator {
 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  TrackingIterator(const char* p, const char** furthest) : p_(p), furthest_(furthest) {}
  reference operator*() const { return *p_; }
  TrackingIterator& operator++() {
    *furthest_ = ++p_;
    return *this;
  }
  TrackingIterator operator++(int) {
    TrackingIterator old = *this;
    ++*this;
    return old;
  }
  bool operator==(const TrackingIterator& o) const { return p_ == o.p_; }
  bool operator!=(const TrackingIterator& o) const { return p_ != o.p_; }

 private:
  const char* p_;
  const char** furthest_;
};

// An untrusted fragment for a message: printable ASCII as is, other bytes as \xNN, long text cut.
std::string printable(std::string_view s) {
  constexpr size_t kMax = 160;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    auto u = static_cast<unsigned char>(s[i]);
    if (u >= 0x20 && u < 0x7f) {
      out += s[i];
    } else {
      static const char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  if (s.size() > kMax) out += "...";
  return out;
}

[[noreturn]] void fail(size_t offset, const std::string& what) {
  throw ParseError(offset, "JSON error at byte " + std::to_string(offset) + ": " + what);
}

// nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 2: <reason>" without
// the part that repeats the offset.
std::string reason_of(const nlohmann::json::parse_error& e) {
  std::string_view w = e.what();
  auto at = w.find("parse error");
  if (at != std::string_view::npos) {
    auto colon = w.find(": ", at);
    if (colon != std::string_view::npos) w.remove_prefix(colon + 2);
  }
  return printable(w);
}

}  // namespace

nlohmann::ordered_json parse_untrusted(std::string_view text, const Limits& limits) {
  // nlohmann takes a NUL byte for the end of the input (as in a C string), so a NUL after a valid
  // document would hide what follows; JSON text never holds a NUL byte.
  if (auto nul = text.find('\0'); nul != std::string_view::npos) fail(nul, "NUL byte");

  const char* furthest = text.data();
  auto offset = [&] { return static_cast<size_t>(furthest - text.data()); };
  size_t elements = 0;
  struct Open {
    std::vector<std::string> keys;  // of an object; empty for an array
    std::string key;                // the member being parsed
  };
  std::vector<Open> open;  // the objects and arrays around the current value

  auto check_string = [&](const std::string& s) {
    if (s.size() > limits.max_string_bytes)
      fail(offset(), "string longer than " + std::to_string(limits.max_string_bytes) + " bytes");
  };
  auto count_element = [&] {
    if (++elements > limits.max_elements) fail(offset(), "more than " + std::to_string(limits.max_elements) + " values");
  };

  using Event = nlohmann::ordered_json::parse_event_t;
  auto callback = [&](int depth, Event event, nlohmann::ordered_json& parsed) {
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        count_element();
        if (static_cast<size_t>(depth) + 1 > limits.max_depth)
          fail(offset(), "nesting deeper than " + std::to_string(limits.max_depth));
        open.push_back({});
        break;
      case Event::object_end:
      case Event::array_end:
        open.pop_back();
        break;
      case Event::key: {
        const std::string& k = parsed.get_ref<const std::string&>();
        check_string(k);
        Open& o = open.back();
        for (const auto& seen : o.keys)
          if (seen == k) {
            std::vector<std::string> path;
            for (size_t i = 0; i + 1 < open.size(); ++i) path.push_back(open[i].key);
            throw DuplicateKeyError(offset(), "JSON error at byte " + std::to_string(offset()) + ": the key '" +
                                                  printable(k) + "' appears twice in one object",
                                    std::move(path), k);
          }
        o.keys.push_back(k);
        o.key = k;
        break;
      }
      case Event::value:
        count_element();
        if (parsed.is_string()) check_string(parsed.get_ref<const std::string&>());
        if (parsed.is_number_float()) fail(offset(), "only integers are accepted here, not fractions, exponents "
                                                     "or integers out of the 64-bit range");
        if (parsed.is_number_unsigned() &&
            parsed.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          fail(offset(), "integer out of the 64-bit range");
        break;
    }
    return true;
  };

  try {
    return nlohmann::ordered_json::parse(TrackingIterator(text.data(), &furthest),
                                         TrackingIterator(text.data() + text.size(), &furthest), callback);
  } catch (const nlohmann::json::parse_error& e) {
    size_t at = e.byte > 0 ? e.byte - 1 : 0;
    fail(at, reason_of(e));
  } catch (const nlohmann::json::out_of_range& e) {
    // A number beyond double's range ("1e400") is reported as out_of_range (406), not parse_error;
    // the parser has read one byte past the number to find its end.
    fail(offset() > 0 ? offset() - 1 : 0, "number out of range (" + std::string(e.what()) + ")");
  }
}

}  // namespace kirzl::io::json
