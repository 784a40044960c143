// CRC-32 of the sharded checkpoints. See crc32.h.
//
// Note [crc32 folding]: zlib's table-driven CRC-32 runs at about 1-2 GB/s and was most of the time
// of loading a checkpoint from the page cache (every byte read is verified). On x86-64 with
// PCLMULQDQ the message is folded instead: in CRC-32's bit-reflected representation a 16-byte
// block A holds a polynomial whose 64 earlier coefficients H are its low quadword and the 64
// later ones L its high quadword, and A * X^D = H * X^(D+64) + L * X^D. Reduced mod P (degree 32)
// each product is one carry-less 64 x 33-bit multiplication by the constant
// reflect32(X^(D+32) mod P) << 1 (for H) or reflect32(X^(D-32) mod P) << 1 (for L); the shift
// and the -32 place the 96-bit product where the block D bits later sits, multiplied by X^32,
// which keeps it congruent mod P. Four 16-byte lanes fold by D = 512 bits per 64-byte step (the
// multiplications of one step are independent, so they overlap in the pipeline), then fold into
// one another by D = 128, and the last 16 bytes with the tail (< 64 bytes) go through zlib.
// The initial value 0xFFFFFFFF is the same as xoring it into the first 4 bytes and starting from
// 0; zlib then continues from "register 0" (its crc argument 0xFFFFFFFF) and applies the final
// xor. The constants are computed at compile time from P below; tests/io/test_crc32.cpp checks
// the result against zlib for every length and alignment that reaches each path.
#include "io/crc32.h"

#include <algorithm>
#include <limits>

#include <zlib.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define KIRZL_CRC32_CLMUL 1
#include <immintrin.h>
#endif

namespace kirzl::io::detail {

namespace {

// X^n mod P for CRC-32's P = 0x104C11DB7 (normal bit order), reflected over 32 bits, shifted
// left by one: the 33-bit folding constants of Note [crc32 folding].
constexpr uint64_t fold_constant(int n) {
  uint64_t r = 1;
  for (int i = 0; i < n; ++i) {
    r <<= 1;
    if (r >> 32) r ^= 0x104C11DB7ull;
  }
  uint64_t reflected = 0;
  for (int b = 0; b < 32; ++b)
    if (r >> b & 1) reflected |= uint64_t{1} << (31 - b);
  return reflected << 1;
}

uint32_t zlib_continue(uint32_t crc, const unsigned char* p, size_t n) {
  while (n > 0) {  // zlib takes a uInt length
    const size_t step = std::min<size_t>(n, std::numeric_limits<uInt>::max() / 2 + 1);
    crc = static_cast<uint32_t>(::crc32(crc, p, static_cast<uInt>(step)));
    p += step;
    n -= step;
  }
  return crc;
}

#ifdef KIRZL_CRC32_CLMUL
__attribute__((target("pclmul,sse2"))) inline __m128i fold(__m128i x, __m128i k) {
  return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}

// n >= 64.
__attribute__((target("pclmul,sse2"))) uint32_t crc32_clmul(const unsigned char* p, size_t n) {
  const __m128i k512 = _mm_set_epi64x(static_cast<long long>(fold_constant(480)), static_cast<long long>(fold_constant(544)));
  const __m128i k128 = _mm_set_epi64x(static_cast<long long>(fold_constant(96)), static_cast<long long>(fold_constant(160)));
  const auto load = [](const unsigned char* at) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(at)); };
  __m128i x0 = _mm_xor_si128(load(p), _mm_cvtsi32_si128(-1));  // the initial value, Note [crc32 folding]
  __m128i x1 = load(p + 16), x2 = load(p + 32), x3 = load(p + 48);
  size_t at = 64;
  for (; at + 64 <= n; at += 64) {
    x0 = _mm_xor_si128(fold(x0, k512), load(p + at));
    x1 = _mm_xor_si128(fold(x1, k512), load(p + at + 16));
    x2 = _mm_xor_si128(fold(x2, k512), load(p + at + 32));
    x3 = _mm_xor_si128(fold(x3, k512), load(p + at + 48));
  }
  __m128i x = _mm_xor_si128(fold(x0, k128), x1);
  x = _mm_xor_si128(fold(x, k128), x2);
  x = _mm_xor_si128(fold(x, k128), x3);
  alignas(16) unsigned char last[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(last), x);
  return zlib_continue(zlib_continue(0xFFFFFFFFu, last, 16), p + at, n - at);
}

bool cpu_has_clmul() {
  static const bool v = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse2");
  return v;
}
#endif

}  // namespace

uint32_t crc32_zlib(const void* data, size_t n) { return zlib_continue(0, static_cast<const unsigned char*>(data), n); }

bool crc32_uses_clmul() {
#ifdef KIRZL_CRC32_CLMUL
  return cpu_has_clmul();
#else
  return false;
#endif
}

uint32_t crc32(const void* data, size_t n) {
#ifdef KIRZL_CRC32_CLMUL
  if (n >= 64 && cpu_has_clmul()) return crc32_clmul(static_cast<const unsigned char*>(data), n);
#endif
  return crc32_zlib(data, n);
}

}  // namespace kirzl::io::detail
