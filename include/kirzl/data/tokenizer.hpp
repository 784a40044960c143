// Tokenizers for small language models: bytes (256 tokens) or the characters of a corpus.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kirzl::data {

/// Text <-> token ids. Ids fit uint16 (vocab_size() <= 65536), the token shard format's type.
/// Implementations are immutable after construction: every method is const and thread-safe.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  /// Number of distinct ids: every id encode() returns, and every id decode() accepts, is in
  /// [0, vocab_size()). At most 65536. Size a model's embedding and output layers with it.
  virtual int64_t vocab_size() const = 0;
  /// The ids of `text`. Throws Error{InvalidArgument} for text the tokenizer cannot represent.
  virtual std::vector<uint16_t> encode(std::string_view text) const = 0;
  /// The text of `ids`. Throws Error{InvalidArgument} for an id outside [0, vocab_size()).
  virtual std::string decode(std::span<const int64_t> ids) const = 0;
  /// decode() of ids as encode() returns them and token shards store them (widened to int64_t).
  /// Throws Error{InvalidArgument} for an id >= vocab_size().
  std::string decode(std::span<const uint16_t> ids) const;
  /// One line of text that deserialize() turns back into an equal tokenizer: what checkpoints
  /// store (in their metadata) so that a saved model decodes with its own vocabulary.
  virtual std::string serialize() const = 0;
  /// "byte" or "char".
  virtual std::string kind() const = 0;

  /// The tokenizer that serialize() described. Throws Error{InvalidArgument} for anything else.
  static std::unique_ptr<Tokenizer> deserialize(const std::string& text);
  /// Writes serialize() to `path` (atomically) / reads it back. Error{Io} naming the file.
  void save(const std::string& path) const;
  /// The tokenizer that save() wrote to `path` (its first line, through deserialize()). Throws
  /// Error{Io} naming the file when it cannot be opened or does not describe a tokenizer.
  static std::unique_ptr<Tokenizer> load(const std::string& path);
};

/// Each byte of the (UTF-8 or any) text is one token: 256 ids, every input representable.
class ByteTokenizer final : public Tokenizer {
 public:
  /// 256: one id per byte value.
  int64_t vocab_size() const override { return 256; }
  std::vector<uint16_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int64_t> ids) const override;
  using Tokenizer::decode;
  std::string serialize() const override { return "kirzl-byte-tokenizer-1"; }
  std::string kind() const override { return "byte"; }
};

/// Each Unicode character (code point) of UTF-8 text is one token; the vocabulary is the set of
/// characters of a corpus in ascending code-point order, so the same corpus always gives the
/// same ids. Text with a character outside the vocabulary, or invalid UTF-8, cannot be encoded.
class CharTokenizer final : public Tokenizer {
 public:
  /// The vocabulary of `corpus` (UTF-8). Throws Error{InvalidArgument} for invalid UTF-8 (naming
  /// the byte offset), an empty corpus, or more than 65536 distinct characters.
  static CharTokenizer from_text(std::string_view corpus);
  /// A tokenizer over exactly these code points (sorted and unique, each a valid scalar value).
  explicit CharTokenizer(std::vector<char32_t> vocabulary);

  /// The number of characters in the vocabulary (vocabulary().size()).
  int64_t vocab_size() const override { return static_cast<int64_t>(chars_.size()); }
  std::vector<uint16_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int64_t> ids) const override;
  using Tokenizer::decode;
  /// "kirzl-char-tokenizer-1:" and the code points in decimal, space separated.
  std::string serialize() const override;
  std::string kind() const override { return "char"; }
  /// Id -> code point: id i encodes vocabulary()[i]; ascending, without duplicates. Valid while the
  /// tokenizer lives.
  const std::vector<char32_t>& vocabulary() const { return chars_; }

 private:
  std::vector<char32_t> chars_;  // id -> code point, ascending
};

/// The code points of UTF-8 `text`; throws Error{InvalidArgument} naming the offset of the first
/// invalid sequence (overlong forms, surrogates and values above U+10FFFF are invalid).
std::u32string utf8_decode(std::string_view text);
/// UTF-8 of code point `c` appended to `out`.
void utf8_append(std::string& out, char32_t c);

}  // namespace kirzl::data
