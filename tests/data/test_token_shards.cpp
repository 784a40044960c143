// Token shards: writer and reader, every corruption case, shards_for_rank and TokenBatchSampler.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <kirzl/data/token_shards.hpp>
#include <set>

#include "support/expect_error.hpp"

using namespace kirzl;
using namespace kirzl::data;
namespace fs = std::filesystem;

namespace {

class TokenShards : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kirzl_shards_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  static std::string bytes(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  static void write_bytes(const std::string& p, const std::string& b) {
    std::ofstream(p, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
  }
  fs::path dir_;
};

template <typename T>
void poke(std::string& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}

}  // namespace

TEST_F(TokenShards, RoundTripAndTheDocumentedLayout) {
  const std::vector<uint16_t> tokens = {0, 1, 2, 65, 999, 3, 7};
  write_token_shard(path("a.tok"), tokens, 1000);
  const std::string b = bytes(path("a.tok"));
  ASSERT_EQ(b.size(), 32u + 2 * tokens.size());
  EXPECT_EQ(b.substr(0, 8), "KZTOKENS");
  uint32_t version, vocab;
  uint64_t count, reserved;
  std::memcpy(&version, b.data() + 8, 4);
  std::memcpy(&vocab, b.data() + 12, 4);
  std::memcpy(&count, b.data() + 16, 8);
  std::memcpy(&reserved, b.data() + 24, 8);
  EXPECT_EQ(version, 1u);
  EXPECT_EQ(vocab, 1000u);
  EXPECT_EQ(count, tokens.size());
  EXPECT_EQ(reserved, 0u);
  EXPECT_EQ(static_cast<unsigned char>(b[32 + 2 * 4]), 999 & 0xFF);  // little-endian uint16
  EXPECT_EQ(static_cast<unsigned char>(b[32 + 2 * 4 + 1]), 999 >> 8);
  TokenShard s = read_token_shard(path("a.tok"));
  EXPECT_EQ(s.tokens, tokens);
  EXPECT_EQ(s.vocab_size, 1000u);
  // Empty shards and the full 16-bit range are fine.
  write_token_shard(path("e.tok"), {}, 1);
  EXPECT_TRUE(read_token_shard(path("e.tok")).tokens.empty());
  write_token_shard(path("w.tok"), std::vector<uint16_t>{65535, 0}, 65536);
  EXPECT_EQ(read_token_shard(path("w.tok")).tokens[0], 65535);
}

TEST_F(TokenShards, WriterRejectsBadTokensBeforeWriting) {
  EXPECT_KIRZL_ERROR(write_token_shard(path("x.tok"), std::vector<uint16_t>{1, 50}, 50), ErrorCode::InvalidArgument,
                     "token 1 is 50", "vocab_size 50");
  EXPECT_KIRZL_ERROR(write_token_shard(path("x.tok"), {}, 0), ErrorCode::InvalidArgument, "[1, 65536]");
  EXPECT_FALSE(fs::exists(path("x.tok")));
  EXPECT_KIRZL_ERROR(write_token_shard((dir_ / "no" / "x.tok").string(), std::vector<uint16_t>{1}, 2), ErrorCode::Io,
                     "no/x.tok");
}

TEST_F(TokenShards, EveryCorruptionIsAnIoErrorNamingTheFile) {
  write_token_shard(path("good.tok"), std::vector<uint16_t>{1, 2, 3, 4}, 10);
  const std::string good = bytes(path("good.tok"));
  struct Case {
    const char* name;
    std::string data;
    std::vector<std::string> words;
  };
  std::vector<Case> cases;
  cases.push_back({"short.tok", good.substr(0, 20), {"shorter than the 32-byte"}});
  {
    std::string b = good;
    b[0] = 'X';
    cases.push_back({"magic.tok", b, {"bad magic"}});
  }
  {
    std::string b = good;
    poke<uint32_t>(b, 8, 2);
    cases.push_back({"version.tok", b, {"version 2"}});
  }
  {
    std::string b = good;
    poke<uint32_t>(b, 12, 0);
    cases.push_back({"vocab0.tok", b, {"vocab_size 0"}});
  }
  {
    std::string b = good;
    poke<uint32_t>(b, 12, 70000);
    cases.push_back({"vocabbig.tok", b, {"vocab_size 70000"}});
  }
  {
    std::string b = good;
    poke<uint64_t>(b, 16, 5);
    cases.push_back({"count.tok", b, {"declares 5 tokens", "40 bytes"}});
  }
  {
    std::string b = good;
    poke<uint64_t>(b, 16, ~0ull / 2);  // a huge count must not be allocated
    cases.push_back({"huge.tok", b, {"declares 9223372036854775807 tokens"}});
  }
  cases.push_back({"trailing.tok", good + "x", {"41 bytes"}});
  {
    std::string b = good;
    poke<uint64_t>(b, 24, 1);
    cases.push_back({"reserved.tok", b, {"reserved"}});
  }
  {
    std::string b = good;
    poke<uint16_t>(b, 32 + 2 * 2, 10);
    cases.push_back({"token.tok", b, {"token 2 is 10", "vocab_size 10"}});
  }
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    write_bytes(path(c.name), c.data);
    std::vector<std::string> words = c.words;
    words.push_back(path(c.name));
    kirzl::testing::expect_error([&] { read_token_shard(path(c.name)); }, ErrorCode::Io, words);
  }
  EXPECT_KIRZL_ERROR(read_token_shard(path("missing.tok")), ErrorCode::Io, "missing.tok", "cannot open");
  EXPECT_KIRZL_ERROR(read_token_shard(path("good.tok"), 5), ErrorCode::Io, "larger than the expected 5");
  EXPECT_EQ(read_token_shard(path("good.tok"), 10).tokens.size(), 4u);
}

TEST(TokenShardsForRank, DealsWholeFiles) {
  const std::vector<std::string> p = {"a", "b", "c", "d", "e"};
  EXPECT_EQ(shards_for_rank(p, 0, 2), (std::vector<std::string>{"a", "c", "e"}));
  EXPECT_EQ(shards_for_rank(p, 1, 2), (std::vector<std::string>{"b", "d"}));
  EXPECT_EQ(shards_for_rank(p, 0, 1), p);
  EXPECT_KIRZL_ERROR(shards_for_rank(p, 2, 2), ErrorCode::InvalidArgument, "rank 2");
  EXPECT_KIRZL_ERROR(shards_for_rank(p, 0, 6), ErrorCode::InvalidArgument, "5 shard files", "6 ranks");
}

TEST(TokenBatchSampler, WindowsAreShiftedPairsFromTheStream) {
  std::vector<uint16_t> stream(100);
  for (size_t i = 0; i < stream.size(); ++i) stream[i] = static_cast<uint16_t>(i);
  TokenBatchSampler s(stream, {.block_size = 8, .batch_size = 4, .seed = 3});
  TokenBatch b = s.batch(0);
  EXPECT_EQ(b.inputs.shape(), Shape({4, 8}));
  EXPECT_EQ(b.inputs.dtype(), DType::i64);
  auto x = b.inputs.to_vector<int64_t>(), y = b.targets.to_vector<int64_t>();
  auto offs = s.offsets(0);
  for (int r = 0; r < 4; ++r) {
    EXPECT_TRUE(offs[r] >= 0 && offs[r] + 9 <= 100);
    for (int t = 0; t < 8; ++t) {
      EXPECT_EQ(x[r * 8 + t], offs[r] + t);
      EXPECT_EQ(y[r * 8 + t], offs[r] + t + 1);
    }
  }
  // Every start in [0, n - T - 1] is reachable, including the last.
  std::set<int64_t> seen;
  for (int64_t step = 0; step < 200; ++step)
    for (int64_t o : s.offsets(step)) seen.insert(o);
  EXPECT_EQ(*seen.begin(), 0);
  EXPECT_EQ(*seen.rbegin(), 91);
  EXPECT_EQ(seen.size(), 92u);
}

TEST(TokenBatchSampler, DeterministicAndRanksShareOneGlobalBatch) {
  std::vector<uint16_t> stream(10000);
  for (size_t i = 0; i < stream.size(); ++i) stream[i] = static_cast<uint16_t>(i % 5000);
  TokenBatchSampler one(stream, {.block_size = 16, .batch_size = 6, .seed = 9});
  TokenBatchSampler again(stream, {.block_size = 16, .batch_size = 6, .seed = 9});
  TokenBatchSampler other_seed(stream, {.block_size = 16, .batch_size = 6, .seed = 10});
  for (int64_t step : {0, 1, 57}) {
    EXPECT_EQ(one.offsets(step), again.offsets(step));
    EXPECT_NE(one.offsets(step), other_seed.offsets(step));
    std::vector<int64_t> joined;
    for (int r = 0; r < 3; ++r) {
      TokenBatchSampler rank(stream, {.block_size = 16, .batch_size = 2, .seed = 9, .rank = r, .world_size = 3});
      auto o = rank.offsets(step);
      joined.insert(joined.end(), o.begin(), o.end());
    }
    EXPECT_EQ(joined, one.offsets(step)) << "step " << step;  // disjoint shares of the 1-rank batch
  }
  EXPECT_NE(one.offsets(0), one.offsets(1));
}

TEST(TokenBatchSampler, RejectsBadOptions) {
  std::vector<uint16_t> stream(10, 1);
  EXPECT_KIRZL_ERROR(TokenBatchSampler(stream, {.block_size = 10}), ErrorCode::InvalidArgument, "10 tokens",
                     "block_size + 1 = 11");
  EXPECT_KIRZL_ERROR(TokenBatchSampler(stream, {.block_size = 4, .rank = 2, .world_size = 2}),
                     ErrorCode::InvalidArgument, "rank 2");
  EXPECT_KIRZL_ERROR(TokenBatchSampler(stream, {.block_size = 0}), ErrorCode::InvalidArgument, "positive");
  TokenBatchSampler s(stream, {.block_size = 4, .batch_size = 1});
  EXPECT_KIRZL_ERROR(s.windows({6}), ErrorCode::InvalidArgument, "window at 6");
  EXPECT_EQ(s.windows({5}).inputs.shape(), Shape({1, 4}));
}
