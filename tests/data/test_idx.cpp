#include "kirzl/data/idx.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/expect_error.hpp"

using namespace kirzl;
using namespace kirzl::data;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<unsigned char>;

Bytes idx_header(unsigned char type, std::vector<uint32_t> dims) {
  Bytes b{0, 0, type, static_cast<unsigned char>(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(d >> s));
  return b;
}

class IdxFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kirzl_idx_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_plain(const std::string& name, const Bytes& bytes) {
    std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return p;
  }
  std::string write_gz(const std::string& name, const Bytes& bytes) {
    std::string p = (dir_ / name).string();
    gzFile f = gzopen(p.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    EXPECT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
    gzclose(f);
    return p;
  }
  static Bytes read_all(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
  }

  fs::path dir_;
};

Bytes images_2x3x2() {
  Bytes b = idx_header(0x08, {2, 3, 2});
  for (int i = 0; i < 12; ++i) b.push_back(static_cast<unsigned char>(i * 20));
  return b;
}

}  // namespace

TEST_F(IdxFiles, ReadsUnsignedBytesPlainAndGzipped) {
  for (const std::string& p : {write_plain("a.idx", images_2x3x2()), write_gz("a.idx.gz", images_2x3x2())}) {
    Tensor t = read_idx(p);
    EXPECT_EQ(t.dtype(), DType::u8);
    EXPECT_EQ(t.shape(), (Shape{2, 3, 2}));
    auto v = t.to_vector<uint8_t>();
    for (int i = 0; i < 12; ++i) EXPECT_EQ(v[i], i * 20);
  }
}

TEST_F(IdxFiles, ConvertsBigEndianValues) {
  Bytes i32 = idx_header(0x0C, {2});
  for (unsigned char c : {0x00, 0x00, 0x01, 0x02, 0xff, 0xff, 0xff, 0xfe}) i32.push_back(c);
  EXPECT_EQ(read_idx(write_plain("i.idx", i32)).to_vector<int32_t>(), (std::vector<int32_t>{258, -2}));

  Bytes f32 = idx_header(0x0D, {1});
  for (unsigned char c : {0x3f, 0xc0, 0x00, 0x00}) f32.push_back(c);  // 1.5f
  EXPECT_EQ(read_idx(write_gz("f.idx.gz", f32)).to_vector<float>(), (std::vector<float>{1.5f}));

  Bytes f64 = idx_header(0x0E, {1});
  for (unsigned char c : {0xc0, 0x04, 0, 0, 0, 0, 0, 0}) f64.push_back(c);  // -2.5
  EXPECT_EQ(read_idx(write_plain("d.idx", f64)).to_vector<double>(), (std::vector<double>{-2.5}));
}

TEST_F(IdxFiles, EveryTruncationIsAnIoErrorNeverACrash) {
  const Bytes full = images_2x3x2();
  for (size_t len = 0; len < full.size(); ++len) {
    SCOPED_TRACE(len);
    Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    EXPECT_KIRZL_ERROR(read_idx(write_plain("cut.idx", cut)), ErrorCode::Io, "cut.idx");
  }
  const Bytes gz = read_all(write_gz("whole.gz", full));
  for (size_t len = 0; len < gz.size(); ++len) {
    SCOPED_TRACE(len);
    Bytes cut(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(len));
    EXPECT_KIRZL_ERROR(read_idx(write_plain("cut.gz", cut)), ErrorCode::Io, "cut.gz");
  }
}

TEST_F(IdxFiles, CorruptCompressedDataIsAnIoError) {
  Bytes big = idx_header(0x08, {4096});
  for (int i = 0; i < 4096; ++i) big.push_back(static_cast<unsigned char>((i * 7919) >> 3));
  Bytes gz = read_all(write_gz("big.gz", big));
  for (size_t pos : {size_t{12}, gz.size() / 2, gz.size() - 6}) {
    Bytes bad = gz;
    bad[pos] ^= 0x5a;
    EXPECT_KIRZL_ERROR(read_idx(write_plain("bad.gz", bad)), ErrorCode::Io, "bad.gz");
  }
}

TEST_F(IdxFiles, RejectsBadHeadersBeforeAllocating) {
  EXPECT_KIRZL_ERROR(read_idx(write_plain("m.idx", {1, 0, 8, 1, 0, 0, 0, 0})), ErrorCode::Io, "magic number", "two zero bytes");
  EXPECT_KIRZL_ERROR(read_idx(write_plain("t.idx", idx_header(0x07, {1}))), ErrorCode::Io, "unknown element type 0x7");
  EXPECT_KIRZL_ERROR(read_idx(write_plain("s.idx", idx_header(0x0B, {1}))), ErrorCode::Unsupported, "int16");
  EXPECT_KIRZL_ERROR(read_idx(write_plain("z.idx", idx_header(0x08, {}))), ErrorCode::Io, "0 dimensions");
  EXPECT_KIRZL_ERROR(read_idx(write_plain("n.idx", idx_header(0x08, {1, 1, 1, 1, 1, 1, 1, 1, 1}))), ErrorCode::Io,
                     "9 dimensions");
  // 2^31-1 squared bytes: refused from the header alone, in a file of 12 bytes.
  EXPECT_KIRZL_ERROR(read_idx(write_plain("h.idx", idx_header(0x08, {0x7fffffff, 0x7fffffff}))), ErrorCode::Io,
                     "more than the limit");
  EXPECT_KIRZL_ERROR(read_idx(write_plain("x.idx", idx_header(0x08, {0x80000000u}))), ErrorCode::Io, "over 2^31 - 1");
  EXPECT_KIRZL_ERROR(read_idx(write_plain("l.idx", idx_header(0x08, {1000})), {.max_bytes = 999}), ErrorCode::Io,
                     "limit of 999");
}

TEST_F(IdxFiles, RejectsTrailingBytesAndBadTrailers) {
  Bytes extra = images_2x3x2();
  extra.push_back(1);
  EXPECT_KIRZL_ERROR(read_idx(write_plain("e.idx", extra)), ErrorCode::Io, "1 bytes after the payload");
  EXPECT_KIRZL_ERROR(read_idx(write_gz("e.gz", extra)), ErrorCode::Io, "gzip trailer");
  // A header that declares more data than the gzip stream holds is caught by the trailer check.
  Bytes lie = images_2x3x2();
  lie[15] = 9;  // [2, 3, 9]
  EXPECT_KIRZL_ERROR(read_idx(write_gz("lie.gz", lie)), ErrorCode::Io, "gzip trailer", "[2, 3, 9]");
}

// A gzip file of a few KiB whose header and trailer both claim 2^31 bytes was believed and the
// tensor allocated before the data ran out (zlib checks the trailer only at the end of the stream,
// here 4 MiB of zeros later). Deflate cannot expand more than 1032:1, so such a claim is refused
// from the file's size alone.
TEST_F(IdxFiles, GzipClaimBeyondWhatItsSizeCanHoldIsRefusedBeforeAllocating) {
  Bytes bytes = idx_header(0x08, {32768, 65536});  // 2^31 bytes
  bytes.resize(bytes.size() + (size_t{4} << 20), 0);
  Bytes gz = read_all(write_gz("claim.gz", bytes));
  const uint32_t claimed = 12 + (uint32_t{1} << 31);  // the trailer's size mod 2^32 matches the header
  for (int k = 0; k < 4; ++k) gz[gz.size() - 4 + static_cast<size_t>(k)] = static_cast<unsigned char>(claimed >> (8 * k));
  EXPECT_KIRZL_ERROR(read_idx(write_plain("claim.gz", gz)), ErrorCode::Io, "[32768, 65536]", "more than a gzip file of",
                     "1032:1");
}

// Found by fuzz_idx (crashes/idx/): an empty payload whose other extents multiply past 2^63 had
// its strides overflow (UB) when the tensor was made.
TEST_F(IdxFiles, EmptyPayloadWithHugeExtentsIsRefused) {
  EXPECT_KIRZL_ERROR(read_idx(write_plain("e.idx", idx_header(0x08, {0, 0x7fffffff, 0x7fffffff, 0x7fffffff}))),
                     ErrorCode::Io, "[0, 2147483647, 2147483647, 2147483647]", "multiply past 2^63");
  EXPECT_EQ(read_idx(write_plain("ok.idx", idx_header(0x08, {0, 0x7fffffff, 0x7fffffff}))).numel(), 0);
}

TEST_F(IdxFiles, MissingFileIsNamed) {
  EXPECT_KIRZL_ERROR(read_idx((dir_ / "nope.idx").string()), ErrorCode::Io, "nope.idx", "no such file");
  EXPECT_KIRZL_ERROR(read_idx(dir_.string()), ErrorCode::Io, "not a regular file");
}

TEST_F(IdxFiles, ZeroExtentIsAnEmptyTensor) {
  Tensor t = read_idx(write_plain("empty.idx", idx_header(0x08, {0, 28})));
  EXPECT_EQ(t.shape(), (Shape{0, 28}));
}
