// Fuzz harness: io::load_safetensors and io::read_safetensors_header on arbitrary bytes.
// Properties: failures are Error{Io} or Error{Unsupported}; the tensors loaded are contiguous CPU
// tensors with distinct names whose bytes together fit in the file (every tensor's bytes are
// distinct bytes of the file) and whose strides fit int64; a file that loads has a header that reads.
#include <cstdint>
#include <set>

#include "fuzz_support.hpp"
#include "kirzl/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kirzl;
  const std::string& path = fuzz::input_file().write(data, size);
  bool loaded = false;
  try {
    const io::SafetensorsFile file = io::load_safetensors(path);
    loaded = true;
    uint64_t bytes = 0;
    std::set<std::string> names;
    for (const auto& [name, t] : file.tensors) {
      KIRZL_FUZZ_REQUIRE(names.insert(name).second, "tensor names are unique");
      KIRZL_FUZZ_REQUIRE(name != "__metadata__", "__metadata__ is not a tensor");
      // An empty tensor counts as contiguous: Tensor::is_contiguous() says false for some (shape
      // [1, 10000, 0] has strides [10000, 1, 1]), a core quirk outside the reader.
      KIRZL_FUZZ_REQUIRE(t.defined() && t.device().is_cpu() && (t.numel() == 0 || t.is_contiguous()),
                         "contiguous CPU tensors");
      // Strides are products of the non-zero extents: they must fit int64 (checked here so that
      // a build without UBSan sees an overflow too).
      int64_t stride = 1;
      bool overflow = false;
      for (int64_t d = 0; d < t.dim(); ++d)
        overflow = overflow || __builtin_mul_overflow(stride, t.size(d) > 0 ? t.size(d) : 1, &stride);
      KIRZL_FUZZ_REQUIRE(!overflow, "a loaded tensor's strides fit int64");
      bytes += t.nbytes();
    }
    KIRZL_FUZZ_REQUIRE(bytes <= size, "the tensors' bytes fit in the file");
  } catch (const Error& e) {
    fuzz::require_code(e, {ErrorCode::Io, ErrorCode::Unsupported});
  }
  try {
    const std::string header = io::read_safetensors_header(path);
    KIRZL_FUZZ_REQUIRE(header.size() + 8 <= size, "the header is part of the file");
  } catch (const Error& e) {
    fuzz::require_code(e, {ErrorCode::Io});
    KIRZL_FUZZ_REQUIRE(!loaded, "a file that loads has a readable header");
  }
  return 0;
}
