// ByteTokenizer, CharTokenizer and UTF-8 conversion.
#include "kirzl/data/tokenizer.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include "io/atomic_file.h"
#include "kirzl/core/error.hpp"

namespace kirzl::data {

namespace {
const std::string kCharPrefix = "kirzl-char-tokenizer-1:";
const std::string kByteName = "kirzl-byte-tokenizer-1";

bool valid_scalar(char32_t c) { return c <= 0x10FFFF && (c < 0xD800 || c > 0xDFFF); }
}  // namespace

std::u32string utf8_decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    int len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
    char32_t c = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    bool ok = len > 0 && i + static_cast<size_t>(len) <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      ok = (b >> 6) == 0x2;
      c = (c << 6) | (b & 0x3F);
    }
    static constexpr char32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};  // shortest form of each length
    ok = ok && c >= kMin[len] && valid_scalar(c);
    KIRZL_CHECK(ok, "utf8_decode: invalid UTF-8 at byte offset ", i, " (byte 0x", std::hex, static_cast<int>(b0), ")");
    out.push_back(c);
    i += static_cast<size_t>(len);
  }
  return out;
}

void utf8_append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

std::string Tokenizer::decode(std::span<const uint16_t> ids) const {
  std::vector<int64_t> wide(ids.begin(), ids.end());
  return decode(std::span<const int64_t>(wide));
}

std::unique_ptr<Tokenizer> Tokenizer::deserialize(const std::string& text) {
  if (text == kByteName) return std::make_unique<ByteTokenizer>();
  if (text.rfind(kCharPrefix, 0) == 0) {
    std::istringstream in(text.substr(kCharPrefix.size()));
    std::vector<char32_t> chars;
    for (std::string tok; in >> tok;) {
      // Decimal digits only, and no wrap-around: std::stoul took "+97", "-18446744073709551519"
      // and 2^32 + 97 for 'a' (tests/fuzz/fuzz_tokenizer.cpp checks that this stays so).
      uint32_t v = 0;
      const auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
      KIRZL_CHECK(ec == std::errc() && end == tok.data() + tok.size() && tok[0] != '-' && valid_scalar(v),
                  "Tokenizer::deserialize: '", tok, "' is not a code point (a decimal Unicode scalar value)");
      chars.push_back(static_cast<char32_t>(v));
    }
    return std::make_unique<CharTokenizer>(std::move(chars));
  }
  KIRZL_FAIL(ErrorCode::InvalidArgument, "Tokenizer::deserialize: not a kirzl tokenizer description: '",
             text.substr(0, 40), text.size() > 40 ? "...'" : "'");
}

void Tokenizer::save(const std::string& path) const {
  io::detail::AtomicFile f(path, "Tokenizer::save");
  const std::string s = serialize() + "\n";
  f.write(s.data(), s.size());
  f.commit();
}

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& path) {
  std::ifstream in(path);
  KIRZL_CHECK_CODE(in.good(), ErrorCode::Io, "Tokenizer::load: cannot open '", path, "'");
  std::string line;
  std::getline(in, line);
  try {
    return deserialize(line);
  } catch (const Error& e) {
    KIRZL_FAIL(ErrorCode::Io, "Tokenizer::load: '", path, "': ", e.what());
  }
}

std::vector<uint16_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<uint16_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(std::span<const int64_t> ids) const {
  std::string out(ids.size(), '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    KIRZL_CHECK(ids[i] >= 0 && ids[i] < 256, "ByteTokenizer::decode: id ", ids[i], " at position ", i,
                " is outside [0, 256)");
    out[i] = static_cast<char>(ids[i]);
  }
  return out;
}

CharTokenizer CharTokenizer::from_text(std::string_view corpus) {
  std::u32string chars = utf8_decode(corpus);
  KIRZL_CHECK(!chars.empty(), "CharTokenizer::from_text: the corpus is empty");
  std::sort(chars.begin(), chars.end());
  chars.erase(std::unique(chars.begin(), chars.end()), chars.end());
  return CharTokenizer(std::vector<char32_t>(chars.begin(), chars.end()));
}

CharTokenizer::CharTokenizer(std::vector<char32_t> vocabulary) : chars_(std::move(vocabulary)) {
  KIRZL_CHECK(!chars_.empty() && chars_.size() <= 65536, "CharTokenizer: the vocabulary must have 1 to 65536 characters, got ",
              chars_.size());
  for (size_t i = 0; i < chars_.size(); ++i) {
    KIRZL_CHECK(valid_scalar(chars_[i]), "CharTokenizer: ", static_cast<uint32_t>(chars_[i]), " is not a Unicode scalar value");
    KIRZL_CHECK(i == 0 || chars_[i - 1] < chars_[i], "CharTokenizer: the vocabulary must be sorted and unique (entry ", i,
                " is ", static_cast<uint32_t>(chars_[i]), " after ", static_cast<uint32_t>(chars_[i - 1]), ")");
  }
}

std::vector<uint16_t> CharTokenizer::encode(std::string_view text) const {
  std::u32string chars = utf8_decode(text);
  std::vector<uint16_t> ids(chars.size());
  for (size_t i = 0; i < chars.size(); ++i) {
    auto it = std::lower_bound(chars_.begin(), chars_.end(), chars[i]);
    KIRZL_CHECK(it != chars_.end() && *it == chars[i], "CharTokenizer::encode: character U+", std::hex,
                static_cast<uint32_t>(chars[i]), std::dec, " (character ", i, " of the text) is not in the vocabulary of ",
                chars_.size(), " characters");
    ids[i] = static_cast<uint16_t>(it - chars_.begin());
  }
  return ids;
}

std::string CharTokenizer::decode(std::span<const int64_t> ids) const {
  std::string out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    KIRZL_CHECK(ids[i] >= 0 && ids[i] < vocab_size(), "CharTokenizer::decode: id ", ids[i], " at position ", i,
                " is outside [0, ", vocab_size(), ")");
    utf8_append(out, chars_[static_cast<size_t>(ids[i])]);
  }
  return out;
}

std::string CharTokenizer::serialize() const {
  std::string s = kCharPrefix;
  for (size_t i = 0; i < chars_.size(); ++i) {
    if (i) s += ' ';
    s += std::to_string(static_cast<uint32_t>(chars_[i]));
  }
  return s;
}

}  // namespace kirzl::data
