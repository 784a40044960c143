// Fuzz harness: data::read_idx on arbitrary bytes, plain and gzip (detected from the content).
// Properties: every failure is Error{Io} or Error{Unsupported}; a tensor read from a plain file
// accounts for every byte of it; nothing allocates more than the input can justify (libFuzzer's
// -rss_limit_mb / -malloc_limit_mb catch a header that claims more than it holds).
#include <cstdint>

#include "fuzz_support.hpp"
#include "kirzl/data/idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kirzl;
  const std::string& path = fuzz::input_file().write(data, size);
  try {
    Tensor t = data::read_idx(path);
    KIRZL_FUZZ_REQUIRE(t.dim() >= 1 && t.dim() <= 8, "1 to 8 dimensions");
    KIRZL_FUZZ_REQUIRE(t.device().is_cpu() && (t.numel() == 0 || t.is_contiguous()), "a contiguous CPU tensor");
    int64_t stride = 1;
    bool overflow = false;
    for (int64_t d = 0; d < t.dim(); ++d)
      overflow = overflow || __builtin_mul_overflow(stride, t.size(d) > 0 ? t.size(d) : 1, &stride);
    KIRZL_FUZZ_REQUIRE(!overflow, "the tensor's strides fit int64");
    const bool gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (!gzip) {
      KIRZL_FUZZ_REQUIRE(t.dim() == data[3], "the tensor has the header's number of dimensions");
      KIRZL_FUZZ_REQUIRE(static_cast<int64_t>(size) == 4 + 4 * t.dim() + t.numel() * static_cast<int64_t>(t.element_size()),
                         "a plain file is exactly header + payload");
    }
  } catch (const Error& e) {
    fuzz::require_code(e, {ErrorCode::Io, ErrorCode::Unsupported});
  }
  return 0;
}
