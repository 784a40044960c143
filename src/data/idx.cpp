// The IDX reader: header checks first, then one allocation, then the payload through zlib.
#include "kirzl/data/idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

namespace kirzl::data {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  KIRZL_FAIL(ErrorCode::Io, "read_idx: '", path, "': ", what);
}

uint32_t big_endian_u32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

struct IdxType {
  DType dtype;
  const char* name;
};

IdxType idx_type(const std::string& path, unsigned char code) {
  switch (code) {
    case 0x08: return {DType::u8, "unsigned byte"};
    case 0x0C: return {DType::i32, "int32"};
    case 0x0D: return {DType::f32, "float32"};
    case 0x0E: return {DType::f64, "float64"};
    case 0x09:
    case 0x0B:
      KIRZL_FAIL(ErrorCode::Unsupported, "read_idx: '", path, "': element type 0x", std::hex, int{code},
                 " (signed byte / int16) is valid IDX but kirzl has no such dtype");
    default: fail(path, detail::str_cat("unknown element type 0x", std::hex, int{code}, " in the magic number"));
  }
}

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};

// Reads exactly n bytes, or fails naming what was being read.
void read_exact(gzFile f, const std::string& path, void* dst, size_t n, const char* what) {
  auto* out = static_cast<char*>(dst);
  while (n > 0) {
    const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n, size_t{1} << 30));
    const int got = gzread(f, out, chunk);
    if (got < 0) {
      int code = 0;
      const char* msg = gzerror(f, &code);
      fail(path, detail::str_cat("corrupt data while reading the ", what, ": ", msg ? msg : "zlib error"));
    }
    if (got == 0) fail(path, detail::str_cat("file is truncated: it ends inside the ", what));
    out += got;
    n -= static_cast<size_t>(got);
  }
}

// The uncompressed size mod 2^32 from a gzip trailer (ISIZE), or -1 when the file is not gzip.
int64_t gzip_declared_size(const std::string& path, uintmax_t file_size) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) fail(path, std::strerror(errno));
  unsigned char head[2] = {0, 0};
  if (std::fread(head, 1, 2, f.get()) != 2 || head[0] != 0x1f || head[1] != 0x8b) return -1;
  if (file_size < 18) fail(path, "gzip file is too short to hold a gzip header and trailer");
  unsigned char tail[4];
  if (std::fseek(f.get(), -4, SEEK_END) != 0 || std::fread(tail, 1, 4, f.get()) != 4) fail(path, "cannot read the gzip trailer");
  return static_cast<int64_t>(uint32_t{tail[0]} | (uint32_t{tail[1]} << 8) | (uint32_t{tail[2]} << 16) |
                              (uint32_t{tail[3]} << 24));
}

// Note [gzip size bound]: the gzip trailer holds the uncompressed size only mod 2^32 and zlib
// checks it only at the end of the stream, so a small file whose header and trailer agree on a
// huge payload would have the tensor allocated before the data runs out. Deflate cannot expand
// data more than 1032:1 (a 258-byte match per two bits at best), so a payload larger than 1032
// times the file cannot be in it, and the claim is refused before allocating: memory stays
// proportional to the file.
constexpr int64_t kMaxDeflateRatio = 1032;

}  // namespace

Tensor read_idx(const std::string& path, const IdxReadOptions& options) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail(path, "no such file");
  if (!std::filesystem::is_regular_file(path, ec)) fail(path, "not a regular file");
  const uintmax_t file_size = std::filesystem::file_size(path, ec);
  if (ec) fail(path, ec.message());
  const int64_t gz_size = gzip_declared_size(path, file_size);

  std::unique_ptr<gzFile_s, GzCloser> f(gzopen(path.c_str(), "rb"));
  if (!f) fail(path, errno ? std::strerror(errno) : "cannot open");
  gzbuffer(f.get(), 1 << 18);

  std::array<unsigned char, 4> magic{};
  read_exact(f.get(), path, magic.data(), 4, "magic number");
  if (magic[0] != 0 || magic[1] != 0)
    fail(path, detail::str_cat("not an IDX file: the magic number must start with two zero bytes, got 0x", std::hex,
                               int{magic[0]}, " 0x", int{magic[1]}));
  const IdxType type = idx_type(path, magic[2]);
  const int ndims = magic[3];
  if (ndims < 1 || ndims > 8) fail(path, detail::str_cat("the header declares ", ndims, " dimensions; expected 1 to 8"));

  std::vector<unsigned char> raw(static_cast<size_t>(4 * ndims));
  read_exact(f.get(), path, raw.data(), raw.size(), "dimension sizes");
  std::vector<int64_t> dims(static_cast<size_t>(ndims));
  const int64_t item = static_cast<int64_t>(dtype_size(type.dtype));
  int64_t bytes = item;
  for (int d = 0; d < ndims; ++d) {
    const uint32_t extent = big_endian_u32(raw.data() + 4 * d);
    if (extent > static_cast<uint32_t>(INT32_MAX)) fail(path, detail::str_cat("dimension ", d, " has extent ", extent, ", over 2^31 - 1"));
    dims[static_cast<size_t>(d)] = extent;
    if (extent != 0 && bytes > options.max_bytes / static_cast<int64_t>(extent))
      fail(path, detail::str_cat("the header declares ", Shape(dims).str(), " elements of ", type.name,
                                 ", more than the limit of ", options.max_bytes, " bytes"));
    bytes *= extent;
  }
  // With a 0 extent the payload is empty whatever the other extents are, but the tensor's strides
  // are their product, which must fit int64.
  int64_t stride = 1;
  for (int64_t d : dims)
    if (__builtin_mul_overflow(stride, std::max<int64_t>(d, 1), &stride))
      fail(path, detail::str_cat("the header declares ", Shape(dims).str(), ", whose non-zero extents multiply past 2^63"));
  const int64_t expected_total = 4 + 4 * ndims + bytes;
  if (gz_size < 0) {
    if (static_cast<int64_t>(file_size) < expected_total)
      fail(path, detail::str_cat("file is truncated: the header declares ", Shape(dims).str(), " ", type.name,
                                 " (", expected_total, " bytes in all) but the file has ", file_size, " bytes"));
    if (static_cast<int64_t>(file_size) > expected_total)
      fail(path, detail::str_cat("file has ", file_size - static_cast<uintmax_t>(expected_total),
                                 " bytes after the payload that the header declares"));
  } else if (expected_total > kMaxDeflateRatio * static_cast<int64_t>(file_size)) {
    // See Note [gzip size bound].
    fail(path, detail::str_cat("the header declares ", Shape(dims).str(), " ", type.name, " (", expected_total,
                               " bytes), more than a gzip file of ", file_size,
                               " bytes can hold (deflate expands at most 1032:1); the file is truncated or corrupt"));
  } else if (gz_size != (expected_total & 0xffffffffLL)) {
    fail(path, detail::str_cat("the gzip trailer says ", gz_size, " bytes uncompressed but the header declares ",
                               Shape(dims).str(), " ", type.name, " (", expected_total,
                               " bytes); the file is truncated or corrupt (multi-member gzip is not supported)"));
  }

  Tensor out = empty(Shape(dims), {.dtype = type.dtype});
  read_exact(f.get(), path, out.data_ptr(), static_cast<size_t>(bytes), "payload");
  char extra = 0;
  const int more = gzread(f.get(), &extra, 1);
  if (more != 0) fail(path, more < 0 ? "corrupt data after the payload" : "file has bytes after the payload that the header declares");

  if (item > 1) {  // IDX stores multi-byte values big-endian.
    auto* p = static_cast<unsigned char*>(out.data_ptr());
    for (int64_t i = 0; i < bytes; i += item) std::reverse(p + i, p + i + item);
  }
  return out;
}

}  // namespace kirzl::data
