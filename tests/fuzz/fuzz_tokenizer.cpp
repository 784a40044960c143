// Fuzz harness: the tokenizers (data/tokenizer.hpp) on arbitrary bytes, checking the round trips
// the API promises rather than only looking for crashes:
//   - utf8_decode accepts exactly what utf8_append writes back byte for byte;
//   - ByteTokenizer: decode(encode(s)) == s for every s;
//   - CharTokenizer::from_text(s): decode(encode(s)) == s, and ids decode then encode to themselves;
//   - Tokenizer::deserialize / load: what they accept is what serialize() would write (each code
//     point as given, none dropped or wrapped), and serialize() reads back to the same tokenizer.
// Failures must be Error{InvalidArgument} (Error{Io} for load).
#include <cctype>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "kirzl/data/tokenizer.hpp"

namespace {

using namespace kirzl;
using data::Tokenizer;

void check_utf8(std::string_view text) {
  try {
    const std::u32string chars = data::utf8_decode(text);
    std::string back;
    for (char32_t c : chars) data::utf8_append(back, c);
    KIRZL_FUZZ_REQUIRE(back == text, "utf8_append(utf8_decode(s)) == s");
  } catch (const Error& e) {
    fuzz::require_code(e, {ErrorCode::InvalidArgument});
  }
}

void check_byte(std::string_view text) {
  const data::ByteTokenizer t;
  const std::vector<uint16_t> ids = t.encode(text);
  KIRZL_FUZZ_REQUIRE(ids.size() == text.size(), "one byte token per byte");
  KIRZL_FUZZ_REQUIRE(t.decode(ids) == text, "ByteTokenizer: decode(encode(s)) == s");
}

void check_char(std::string_view text, const uint8_t* raw, size_t size) {
  try {
    const data::CharTokenizer t = data::CharTokenizer::from_text(text);
    const std::vector<uint16_t> ids = t.encode(text);
    KIRZL_FUZZ_REQUIRE(t.decode(ids) == text, "CharTokenizer: decode(encode(s)) == s");
    // The raw bytes as ids (pairs, little-endian, reduced below the vocabulary when they are not
    // already): decoding them and encoding the text again gives the same ids.
    std::vector<int64_t> any;
    for (size_t i = 0; i + 1 < size; i += 2) any.push_back((raw[i] | (raw[i + 1] << 8)) % t.vocab_size());
    const std::string s = t.decode(any);
    const std::vector<uint16_t> again = t.encode(s);
    KIRZL_FUZZ_REQUIRE(std::vector<int64_t>(again.begin(), again.end()) == any, "CharTokenizer: encode(decode(ids)) == ids");
    std::vector<int64_t> bad = {t.vocab_size()};
    try {
      (void)t.decode(bad);
      KIRZL_FUZZ_REQUIRE(false, "decode rejects an id == vocab_size");
    } catch (const Error& e) {
      fuzz::require_code(e, {ErrorCode::InvalidArgument});
    }
  } catch (const Error& e) {
    fuzz::require_code(e, {ErrorCode::InvalidArgument});
  }
}

// The code points a "kirzl-char-tokenizer-1:" description lists, read here independently of the
// library: whitespace-separated decimal numbers; -1 for a token that is no such number or exceeds
// U+10FFFF (a description with one cannot describe a tokenizer).
std::vector<int64_t> listed_code_points(const std::string& text) {
  std::vector<int64_t> out;
  std::istringstream in(text.substr(std::string("kirzl-char-tokenizer-1:").size()));
  for (std::string tok; in >> tok;) {
    int64_t v = 0;
    for (char c : tok) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || v > 0x10FFFF) {
        v = -1;
        break;
      }
      v = v * 10 + (c - '0');
    }
    out.push_back(v > 0x10FFFF ? -1 : v);
  }
  return out;
}

void check_description(const std::unique_ptr<Tokenizer>& t, const std::string& text) {
  const std::string s = t->serialize();
  KIRZL_FUZZ_REQUIRE(Tokenizer::deserialize(s)->serialize() == s, "deserialize(serialize()) is the same tokenizer");
  if (t->kind() == "char") {
    const auto& vocab = static_cast<const data::CharTokenizer&>(*t).vocabulary();
    const std::vector<int64_t> listed = listed_code_points(text);
    KIRZL_FUZZ_REQUIRE(listed.size() == vocab.size(), "one vocabulary entry per listed code point");
    for (size_t i = 0; i < vocab.size(); ++i)
      KIRZL_FUZZ_REQUIRE(listed[i] == static_cast<int64_t>(vocab[i]), "each code point as written, not wrapped");
  }
}

void check_deserialize(const std::string& text) {
  try {
    check_description(Tokenizer::deserialize(text), text);
  } catch (const Error& e) {
    fuzz::require_code(e, {ErrorCode::InvalidArgument});
  }
}

void check_load(const uint8_t* data, size_t size) {
  const std::string& path = fuzz::input_file().write(data, size);
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string first_line = text.substr(0, text.find('\n'));
  try {
    const auto t = Tokenizer::load(path);
    check_description(t, first_line);
  } catch (const Error& e) {
    fuzz::require_code(e, {ErrorCode::Io});
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  check_utf8(text);
  check_byte(text);
  check_char(text, data, size);
  check_deserialize(text);
  check_load(data, size);
  return 0;
}
