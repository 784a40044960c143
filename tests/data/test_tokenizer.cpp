// Byte- and character-level tokenizers: round trips, vocabularies, serialisation, bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <kirzl/data/tokenizer.hpp>

#include "support/expect_error.hpp"

using namespace kirzl;
using namespace kirzl::data;
namespace fs = std::filesystem;

TEST(ByteTokenizer, RoundTripsAnyBytes) {
  ByteTokenizer t;
  EXPECT_EQ(t.vocab_size(), 256);
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  auto ids = t.encode(all);
  ASSERT_EQ(ids.size(), 256u);
  EXPECT_EQ(ids[200], 200);
  EXPECT_EQ(t.decode(std::span<const uint16_t>(ids)), all);
  EXPECT_EQ(t.encode("h\xc3\xa9"), (std::vector<uint16_t>{'h', 0xC3, 0xA9}));  // UTF-8 bytes, not characters
  std::vector<int64_t> bad = {1, 256};
  EXPECT_KIRZL_ERROR(t.decode(std::span<const int64_t>(bad)), ErrorCode::InvalidArgument, "id 256", "position 1");
  auto back = Tokenizer::deserialize(t.serialize());
  EXPECT_EQ(back->kind(), "byte");
}

TEST(CharTokenizer, VocabularyIsTheSortedCharactersOfTheCorpus) {
  const std::string corpus = "hello, w\xc3\xb6rld \xe2\x82\xac \xf0\x9f\x98\x80\n";  // ö, €, 😀
  CharTokenizer t = CharTokenizer::from_text(corpus);
  const std::vector<char32_t> expected = {U'\n', U' ', U',', U'd', U'e', U'h', U'l', U'o', U'r', U'w', U'ö', U'€', U'😀'};
  EXPECT_EQ(t.vocabulary(), expected);
  EXPECT_EQ(t.vocab_size(), 13);
  auto ids = t.encode(corpus);
  EXPECT_EQ(ids.size(), 17u);  // characters, not bytes (23 bytes)
  EXPECT_EQ(ids[0], 5);        // 'h'
  EXPECT_EQ(t.decode(std::span<const uint16_t>(ids)), corpus);
  EXPECT_EQ(t.encode("\xf0\x9f\x98\x80"), (std::vector<uint16_t>{12}));
}

TEST(CharTokenizer, SerialisesAndLoads) {
  CharTokenizer t = CharTokenizer::from_text("The quick brown fox, \xc3\xa9t\xc3\xa9\n");
  auto back = Tokenizer::deserialize(t.serialize());
  ASSERT_EQ(back->kind(), "char");
  EXPECT_EQ(dynamic_cast<CharTokenizer&>(*back).vocabulary(), t.vocabulary());
  EXPECT_EQ(back->encode("fox"), t.encode("fox"));
  const fs::path p = fs::temp_directory_path() / ("kirzl_tok_" + std::to_string(::getpid()));
  t.save(p.string());
  EXPECT_EQ(Tokenizer::load(p.string())->serialize(), t.serialize());
  fs::remove(p);
  EXPECT_KIRZL_ERROR(Tokenizer::load("/nonexistent/tok"), ErrorCode::Io, "/nonexistent/tok");
  EXPECT_KIRZL_ERROR(Tokenizer::deserialize("gpt2-bpe"), ErrorCode::InvalidArgument, "gpt2-bpe");
  EXPECT_KIRZL_ERROR(Tokenizer::deserialize("kirzl-char-tokenizer-1: 97 x"), ErrorCode::InvalidArgument, "'x'");
  EXPECT_KIRZL_ERROR(Tokenizer::deserialize("kirzl-char-tokenizer-1: 98 97"), ErrorCode::InvalidArgument, "sorted");
}

// Found writing tests/fuzz/fuzz_tokenizer.cpp (crashes/tokenizer/ keeps the inputs): numbers that
// wrapped around to a code point (2^32 + 97, -(2^64 - 97)) described the tokenizer of 'a' instead
// of being refused.
TEST(CharTokenizer, DeserializeRefusesNumbersThatAreNotCodePoints) {
  EXPECT_KIRZL_ERROR(Tokenizer::deserialize("kirzl-char-tokenizer-1:4294967393"), ErrorCode::InvalidArgument,
                     "'4294967393' is not a code point");
  EXPECT_KIRZL_ERROR(Tokenizer::deserialize("kirzl-char-tokenizer-1:-18446744073709551519"), ErrorCode::InvalidArgument,
                     "'-18446744073709551519' is not a code point");
  EXPECT_KIRZL_ERROR(Tokenizer::deserialize("kirzl-char-tokenizer-1:+97"), ErrorCode::InvalidArgument, "'+97'");
  EXPECT_KIRZL_ERROR(Tokenizer::deserialize("kirzl-char-tokenizer-1:1114112"), ErrorCode::InvalidArgument, "'1114112'");
  EXPECT_EQ(Tokenizer::deserialize("kirzl-char-tokenizer-1:97 1114111")->vocab_size(), 2);
}

TEST(CharTokenizer, RejectsUnknownCharactersAndInvalidUtf8) {
  CharTokenizer t = CharTokenizer::from_text("abc");
  EXPECT_KIRZL_ERROR(t.encode("abz"), ErrorCode::InvalidArgument, "U+7a", "character 2");
  std::vector<int64_t> bad = {3};
  EXPECT_KIRZL_ERROR(t.decode(std::span<const int64_t>(bad)), ErrorCode::InvalidArgument, "id 3", "[0, 3)");
  EXPECT_KIRZL_ERROR(CharTokenizer::from_text(""), ErrorCode::InvalidArgument, "empty");
  for (const char* s : {"a\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x28\xa1"}) {
    SCOPED_TRACE(s);
    EXPECT_KIRZL_ERROR(CharTokenizer::from_text(s), ErrorCode::InvalidArgument, "invalid UTF-8");
  }
  EXPECT_KIRZL_ERROR(utf8_decode("ab\xff"), ErrorCode::InvalidArgument, "offset 2");
}

TEST(Utf8, EncodesEveryLengthAndBack) {
  for (char32_t c : {U'\0', U'A', U'\x7f', U'\x80', U'\x7ff', U'\x800', U'\xd7ff', U'\xe000', U'\xffff',
                     U'\x10000', U'\x10ffff'}) {
    std::string s;
    utf8_append(s, c);
    EXPECT_EQ(utf8_decode(s), std::u32string(1, c)) << static_cast<uint32_t>(c);
  }
}
