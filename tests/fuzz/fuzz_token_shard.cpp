// Fuzz harness: data::read_token_shard on arbitrary bytes (Note [token shard format]).
// Properties: failures are Error{Io}; a shard read is exactly 32 + 2 * n bytes, declares a vocabulary
// in [1, 65536] (and within max_vocab when one is given), and every token is below it.
#include <cstdint>
#include <cstring>

#include "fuzz_support.hpp"
#include "kirzl/data/token_shards.hpp"

namespace {

void check(const std::string& path, size_t size, uint32_t max_vocab) {
  using namespace kirzl;
  try {
    const data::TokenShard shard = data::read_token_shard(path, max_vocab);
    KIRZL_FUZZ_REQUIRE(size == 32 + 2 * shard.tokens.size(), "the file is exactly header + tokens");
    KIRZL_FUZZ_REQUIRE(shard.vocab_size >= 1 && shard.vocab_size <= 65536, "vocab_size in [1, 65536]");
    KIRZL_FUZZ_REQUIRE(max_vocab == 0 || shard.vocab_size <= max_vocab, "vocab_size within max_vocab");
    for (uint16_t t : shard.tokens) KIRZL_FUZZ_REQUIRE(t < shard.vocab_size, "every token below vocab_size");
  } catch (const Error& e) {
    fuzz::require_code(e, {ErrorCode::Io});
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = kirzl::fuzz::input_file().write(data, size);
  check(path, size, 0);
  check(path, size, 300);  // a caller's vocabulary smaller than what the shard may declare
  return 0;
}
