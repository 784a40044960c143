// Token shards (Note [token shard format]) and TokenBatchSampler.
#include "kirzl/data/token_shards.hpp"

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "io/atomic_file.h"

namespace kirzl::data {

// The tokens are copied to and from the file as they lie in memory.
static_assert(std::endian::native == std::endian::little, "token shards assume a little-endian host");

namespace {

template <typename T>
void put(unsigned char* p, T v) {
  std::memcpy(p, &v, sizeof v);
}
template <typename T>
T get(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  KIRZL_FAIL(ErrorCode::Io, "read_token_shard: '", path, "': ", what);
}

}  // namespace

void write_token_shard(const std::string& path, std::span<const uint16_t> tokens, uint32_t vocab_size) {
  KIRZL_CHECK(vocab_size >= 1 && vocab_size <= 65536, "write_token_shard: vocab_size must be in [1, 65536], got ",
              vocab_size);
  for (size_t i = 0; i < tokens.size(); ++i)
    KIRZL_CHECK(tokens[i] < vocab_size, "write_token_shard: token ", i, " is ", tokens[i], ", not below vocab_size ",
                vocab_size, " (writing '", path, "')");
  unsigned char header[kTokenShardHeaderBytes] = {};
  std::memcpy(header, kTokenShardMagic, 8);
  put<uint32_t>(header + 8, kTokenShardVersion);
  put<uint32_t>(header + 12, vocab_size);
  put<uint64_t>(header + 16, tokens.size());
  put<uint64_t>(header + 24, 0);
  io::detail::AtomicFile file(path, "write_token_shard");
  file.write(header, sizeof header);
  file.write(tokens.data(), tokens.size_bytes());
  file.commit();
}

TokenShard read_token_shard(const std::string& path, uint32_t max_vocab) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) fail(path, "cannot open: " + io::detail::errno_text(errno));
  if (std::fseek(f.get(), 0, SEEK_END) != 0) fail(path, "cannot seek: " + io::detail::errno_text(errno));
  const long size = std::ftell(f.get());
  if (size < 0) fail(path, "cannot tell its size: " + io::detail::errno_text(errno));
  std::rewind(f.get());
  if (size < kTokenShardHeaderBytes)
    fail(path, "is " + std::to_string(size) + " bytes, shorter than the " + std::to_string(kTokenShardHeaderBytes) +
                   "-byte token shard header");
  unsigned char header[kTokenShardHeaderBytes];
  if (std::fread(header, 1, sizeof header, f.get()) != sizeof header) fail(path, "cannot read the header");
  if (std::memcmp(header, kTokenShardMagic, 8) != 0) fail(path, "is not a token shard (bad magic; expected \"KZTOKENS\")");
  const auto version = get<uint32_t>(header + 8);
  if (version != kTokenShardVersion)
    fail(path, "has token shard version " + std::to_string(version) + "; this kirzl reads version " +
                   std::to_string(kTokenShardVersion));
  const auto vocab = get<uint32_t>(header + 12);
  if (vocab < 1 || vocab > 65536) fail(path, "declares vocab_size " + std::to_string(vocab) + ", not in [1, 65536]");
  if (max_vocab > 0 && vocab > max_vocab)
    fail(path, "declares vocab_size " + std::to_string(vocab) + ", larger than the expected " + std::to_string(max_vocab));
  const auto count = get<uint64_t>(header + 16);
  if (get<uint64_t>(header + 24) != 0) fail(path, "has a non-zero reserved header field");
  const uint64_t payload = static_cast<uint64_t>(size) - kTokenShardHeaderBytes;
  if (count > payload / 2 || payload != count * 2)
    fail(path, "declares " + std::to_string(count) + " tokens (" + std::to_string(kTokenShardHeaderBytes) + " + 2 * " +
                   std::to_string(count) + " bytes) but the file is " + std::to_string(size) + " bytes");
  TokenShard shard;
  shard.vocab_size = vocab;
  shard.tokens.resize(count);
  if (count > 0 && std::fread(shard.tokens.data(), 2, count, f.get()) != count) fail(path, "cannot read the tokens");
  for (size_t i = 0; i < shard.tokens.size(); ++i)
    if (shard.tokens[i] >= vocab)
      fail(path, "token " + std::to_string(i) + " is " + std::to_string(shard.tokens[i]) + ", not below vocab_size " +
                     std::to_string(vocab));
  return shard;
}

std::vector<std::string> shards_for_rank(const std::vector<std::string>& paths, int rank, int world_size) {
  KIRZL_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "shards_for_rank: rank ", rank,
              " must be in [0, world_size = ", world_size, ")");
  KIRZL_CHECK(static_cast<int64_t>(paths.size()) >= world_size, "shards_for_rank: ", paths.size(),
              " shard files cannot give each of ", world_size, " ranks at least one");
  std::vector<std::string> mine;
  for (size_t i = static_cast<size_t>(rank); i < paths.size(); i += static_cast<size_t>(world_size))
    mine.push_back(paths[i]);
  return mine;
}

TokenBatchSampler::TokenBatchSampler(std::vector<uint16_t> tokens, const TokenBatchSamplerOptions& options)
    : tokens_(std::move(tokens)), options_(options) {
  const auto& o = options_;
  KIRZL_CHECK(o.block_size >= 1 && o.batch_size >= 1, "TokenBatchSampler: block_size and batch_size must be positive, got ",
              o.block_size, " and ", o.batch_size);
  KIRZL_CHECK(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size, "TokenBatchSampler: rank ", o.rank,
              " must be in [0, world_size = ", o.world_size, ")");
  KIRZL_CHECK(static_cast<int64_t>(tokens_.size()) >= o.block_size + 1, "TokenBatchSampler: ", tokens_.size(),
              " tokens are too few for one window of block_size + 1 = ", o.block_size + 1);
}

std::vector<int64_t> TokenBatchSampler::offsets(int64_t step) const {
  KIRZL_CHECK(step >= 0, "TokenBatchSampler: step must be >= 0, got ", step);
  const auto& o = options_;
  const uint64_t range = tokens_.size() - static_cast<uint64_t>(o.block_size);  // starts in [0, n - T - 1]
  const uint64_t global = static_cast<uint64_t>(o.batch_size) * static_cast<uint64_t>(o.world_size);
  std::vector<int64_t> out(static_cast<size_t>(o.batch_size));
  for (int64_t i = 0; i < o.batch_size; ++i) {
    const uint64_t j = static_cast<uint64_t>(o.rank) * static_cast<uint64_t>(o.batch_size) + static_cast<uint64_t>(i);
    auto w = Generator::philox(o.seed, static_cast<uint64_t>(step) * global + j);
    const uint64_t r = (static_cast<uint64_t>(w[0]) << 32) | w[1];
    out[static_cast<size_t>(i)] = static_cast<int64_t>(r % range);  // bias below 2^-40 for corpora < 16M tokens
  }
  return out;
}

TokenBatch TokenBatchSampler::batch(int64_t step) const { return windows(offsets(step)); }

TokenBatch TokenBatchSampler::windows(const std::vector<int64_t>& offs) const {
  const int64_t T = options_.block_size, B = static_cast<int64_t>(offs.size());
  Tensor x = empty({B, T}, {.dtype = DType::i64}), y = empty({B, T}, {.dtype = DType::i64});
  int64_t* xp = x.data<int64_t>();
  int64_t* yp = y.data<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t o = offs[static_cast<size_t>(b)];
    KIRZL_CHECK(o >= 0 && o + T + 1 <= num_tokens(), "TokenBatchSampler: window at ", o, " of ", T + 1,
                " tokens runs past the ", num_tokens(), " tokens");
    for (int64_t t = 0; t < T; ++t) {
      xp[b * T + t] = tokens_[static_cast<size_t>(o + t)];
      yp[b * T + t] = tokens_[static_cast<size_t>(o + t + 1)];
    }
  }
  return {x, y};
}

}  // namespace kirzl::data
