// safetensors: round trips of every dtype and layout, the exact byte layout, atomic writes, and
// rejection of malformed (untrusted) files with clear errors.
#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <sys/resource.h>
#include <unistd.h>

#include <kirzl/io/safetensors.hpp>
#include <kirzl/tensor.hpp>

#include "support/expect_error.hpp"

namespace kirzl::io {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("kirzl_st_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  fs::path dir_;
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string u64le(uint64_t n) {
  std::string s(8, '\0');
  for (int k = 0; k < 8; ++k) s[k] = static_cast<char>(n >> (8 * k));
  return s;
}

// A safetensors file from a header text and a data buffer (no padding added).
std::string make_file(const std::string& header, const std::string& data) { return u64le(header.size()) + header + data; }

// Bytes of a contiguous tensor.
std::string bytes_of(const Tensor& t) {
  Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.nbytes());
}

void expect_same(const Tensor& a, const Tensor& b) {
  ASSERT_TRUE(a.defined() && b.defined());
  EXPECT_EQ(a.dtype(), b.dtype());
  EXPECT_EQ(a.shape(), b.shape()) << a.shape().str() << " vs " << b.shape().str();
  EXPECT_EQ(bytes_of(a), bytes_of(b)) << "bytes differ for " << a.describe();
  EXPECT_TRUE(b.is_contiguous());
  EXPECT_TRUE(b.device().is_cpu());
}

const DType kAllDTypes[] = {DType::f32, DType::f64, DType::bf16, DType::f16,
                            DType::i32, DType::i64, DType::u8,   DType::u16};

TEST_F(SafetensorsTest, RoundTripsEveryDTypeAndLayout) {
  StateDict sd;
  for (DType d : kAllDTypes) {
    std::string n = dtype_name(d);
    double lo = is_floating(d) ? -5.5 : (d == DType::u8 || d == DType::u16 ? 0 : -7);
    sd.insert(n + ".matrix", arange(lo, lo + 12, 1, {.dtype = d}).reshape({3, 4}));
    sd.insert(n + ".scalar", scalar_tensor(7, {.dtype = d}));
    sd.insert(n + ".empty", zeros({0, 3}, {.dtype = d}));
    sd.insert(n + ".transposed", arange(0, 24, 1, {.dtype = d}).reshape({2, 3, 4}).transpose(0, 2));
    sd.insert(n + ".strided", arange(0, 20, 1, {.dtype = d}).slice(0, 1, 20, 3));
  }
  sd.insert("f32.special", from_vector<float>({0.0f, -0.0f, std::numeric_limits<float>::infinity(),
                                               -std::numeric_limits<float>::infinity(),
                                               std::numeric_limits<float>::denorm_min(), 3.4e38f}));
  ASSERT_FALSE(sd.at("f32.transposed").is_contiguous());
  save_safetensors(path("all.safetensors"), sd);
  SafetensorsFile f = load_safetensors(path("all.safetensors"));
  ASSERT_EQ(f.tensors.size(), sd.size());
  auto it = f.tensors.begin();
  for (const auto& [name, t] : sd) {
    EXPECT_EQ(it->first, name) << "order must be kept";
    expect_same(t, it->second);
    ++it;
  }
  EXPECT_TRUE(f.metadata.empty());
  EXPECT_EQ(listing(), std::vector<std::string>{"all.safetensors"}) << "no temporary file may remain";
}

TEST_F(SafetensorsTest, EmptyStateDictAndMetadataRoundTrip) {
  std::map<std::string, std::string> meta = {{"format", "pt"},
                                             {"quote\"back\\slash", "new\nline\ttab \x01 ctl"},
                                             {"unicode", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
                                             {"", "empty key"},
                                             {"empty value", ""}};
  save_safetensors(path("meta.safetensors"), StateDict{}, meta);
  SafetensorsFile f = load_safetensors(path("meta.safetensors"));
  EXPECT_TRUE(f.tensors.empty());
  EXPECT_EQ(f.metadata, meta);

  save_safetensors(path("none.safetensors"), StateDict{});
  EXPECT_EQ(read_safetensors_header(path("none.safetensors")), "{}");
  EXPECT_EQ(read_bytes(path("none.safetensors")), u64le(8) + "{}      ");
}

TEST_F(SafetensorsTest, ByteLayoutOfATinyFile) {
  StateDict sd;
  sd.insert("a", from_vector<float>({1.0f, 2.0f}));
  sd.insert("b", from_vector<uint8_t>({7}, {1, 1}));
  save_safetensors(path("tiny.safetensors"), sd, {{"k", "v"}});
  std::string header =
      "{\"__metadata__\":{\"k\":\"v\"},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"U8\",\"shape\":[1,1],\"data_offsets\":[8,9]}}";
  while ((8 + header.size()) % 8) header += ' ';
  float ab[2] = {1.0f, 2.0f};
  std::string expected = u64le(header.size()) + header + std::string(reinterpret_cast<const char*>(ab), 8) + "\x07";
  EXPECT_EQ(read_bytes(path("tiny.safetensors")), expected);
  EXPECT_EQ(read_safetensors_header(path("tiny.safetensors")), header.substr(0, header.find_last_not_of(' ') + 1));
}

TEST_F(SafetensorsTest, TensorsAreAlignedToTheirElementSize) {
  StateDict sd;
  sd.insert("u8", from_vector<uint8_t>({1, 2, 3}));
  sd.insert("f16", ones({3}, {.dtype = DType::f16}));
  sd.insert("f64", ones({5}, {.dtype = DType::f64}));
  sd.insert("i32", ones({1}, {.dtype = DType::i32}));
  save_safetensors(path("align.safetensors"), sd);
  std::string bytes = read_bytes(path("align.safetensors"));
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  std::string h = read_safetensors_header(path("align.safetensors"));
  // f64 first, then i32, f16, u8: every begin is a multiple of the element size.
  EXPECT_NE(h.find("\"f64\":{\"dtype\":\"F64\",\"shape\":[5],\"data_offsets\":[0,40]}"), std::string::npos) << h;
  EXPECT_NE(h.find("\"i32\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[40,44]}"), std::string::npos) << h;
  EXPECT_NE(h.find("\"f16\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[44,50]}"), std::string::npos) << h;
  EXPECT_NE(h.find("\"u8\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[50,53]}"), std::string::npos) << h;
  SafetensorsFile f = load_safetensors(path("align.safetensors"));
  for (const auto& [name, t] : sd) expect_same(t, f.tensors.at(name));
}

TEST_F(SafetensorsTest, ReadsHandWrittenFilesWithEscapesAndWhitespace) {
  // \u escapes (incl. a surrogate pair), whitespace, metadata last, entries out of data order.
  std::string header =
      " { \"caf\\u00e9\\ud83d\\ude00\" : { \"shape\" : [ ] , \"data_offsets\" : [ 4 , 6 ], \"dtype\" : \"F16\" } ,\n"
      "   \"x\\/y\": {\"dtype\": \"I32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
      "   \"__metadata__\": {\"a\\tb\": \"\\\"q\\\"\\n\"} }   ";
  std::string data = u64le(0).substr(0, 4);
  data[0] = 42;
  data += std::string("\x00\x3c", 2);  // f16 1.0
  write_bytes(path("hand.safetensors"), make_file(header, data));
  SafetensorsFile f = load_safetensors(path("hand.safetensors"));
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors.begin()->first, "caf\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(f.tensors.begin()->second.dim(), 0);
  EXPECT_EQ(f.tensors.begin()->second.item(), 1.0);
  EXPECT_EQ(f.tensors.at("x/y").to_vector<int32_t>(), std::vector<int32_t>{42});
  EXPECT_EQ(f.metadata.at("a\tb"), "\"q\"\n");
}

// ---- malformed files ----

class CorruptFileTest : public SafetensorsTest {
 protected:
  void expect_rejected(const std::string& bytes, std::vector<std::string> words, ErrorCode code = ErrorCode::Io) {
    std::string p = path("bad.safetensors");
    write_bytes(p, bytes);
    words.push_back("load_safetensors");
    words.push_back(p);
    EXPECT_KIRZL_ERROR(load_safetensors(p), code, words);
  }
  void expect_header_rejected(const std::string& header, const std::vector<std::string>& words,
                              const std::string& data = std::string(16, '\0'), ErrorCode code = ErrorCode::Io) {
    SCOPED_TRACE(header);
    expect_rejected(make_file(header, data), words, code);
  }
};

TEST_F(CorruptFileTest, EveryTruncationIsAnError) {
  StateDict sd;
  sd.insert("w", from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}));
  sd.insert("b", from_vector<int64_t>({7, 8}));
  save_safetensors(path("good.safetensors"), sd, {{"k", "v"}});
  std::string good = read_bytes(path("good.safetensors"));
  ASSERT_GT(good.size(), 100u);
  for (size_t n = 0; n < good.size(); ++n) {
    SCOPED_TRACE("prefix of " + std::to_string(n) + " bytes");
    std::string p = path("cut.safetensors");
    write_bytes(p, good.substr(0, n));
    EXPECT_KIRZL_ERROR(load_safetensors(p), ErrorCode::Io, "load_safetensors", p);
  }
  EXPECT_NO_THROW(load_safetensors(path("good.safetensors")));
}

TEST_F(CorruptFileTest, RandomCorruptionNeverCrashes) {
  // Deterministic byte mutations of a small valid file: each either loads or throws kirzl::Error.
  StateDict sd;
  sd.insert("w", from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}));
  sd.insert("i", from_vector<int64_t>({7, 8}));
  sd.insert("h", ones({3}, {.dtype = DType::f16}));
  save_safetensors(path("good.safetensors"), sd, {{"k", "v"}});
  const std::string good = read_bytes(path("good.safetensors"));
  const std::string p = path("fuzz.safetensors");
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const char interesting[] = {'"', '{', '}', '[', ']', ',', ':', '-', '0', '9', '\\', ' ', '\0', '\xff'};
  int loaded = 0, rejected = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string bytes = good;
    int edits = 1 + static_cast<int>(next() % 3);
    for (int e = 0; e < edits; ++e) {
      size_t at = next() % bytes.size();
      if (next() % 2) bytes[at] = interesting[next() % sizeof interesting];
      else bytes[at] = static_cast<char>(next());
    }
    write_bytes(p, bytes);
    try {
      load_safetensors(p);
      ++loaded;
    } catch (const Error& e) {
      ++rejected;
      EXPECT_TRUE(e.code() == ErrorCode::Io || e.code() == ErrorCode::Unsupported) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "non-kirzl exception: " << e.what();
    }
  }
  EXPECT_GT(rejected, 1000);
  EXPECT_GT(loaded, 0);  // edits inside the data buffer keep the file valid
}

TEST_F(CorruptFileTest, HeaderLength) {
  expect_rejected("short", {"5 bytes long", "too short"});
  expect_rejected(u64le(~uint64_t{0}) + "{}", {"header length 18446744073709551615", "exceeds the limit"});
  expect_rejected(u64le(1000) + "{}", {"header length 1000 exceeds the 2 bytes"});
  expect_rejected(u64le(0) + "{}", {"header is empty"});
  std::string p = path("limit.safetensors");
  write_bytes(p, make_file("{}      ", ""));
  EXPECT_KIRZL_ERROR(load_safetensors(p, {.max_header_bytes = 4}), ErrorCode::Io, "exceeds the limit of 4 bytes");
}

TEST_F(CorruptFileTest, HeaderNotJson) {
  expect_header_rejected("{not json}", {"not valid JSON", "byte 2", "invalid literal"});
  expect_header_rejected("[]", {"is a JSON array, not an object"});
  expect_header_rejected("{\"a\": {}", {"not valid JSON"});
  expect_header_rejected("{\"a\": 1,}", {"not valid JSON"});
  expect_header_rejected("{} {}", {"not valid JSON", "byte 3", "expected end of input"});
  expect_header_rejected("{\"a\\q\": 1}", {"forbidden character after backslash"});
  expect_header_rejected("{\"\\ud800\": 1}", {"surrogate"});
  expect_header_rejected("{\"\\udc00\": 1}", {"surrogate"});
  expect_header_rejected("{\"\xff\": 1}", {"UTF-8"});
  expect_header_rejected("{\"\xc0\xaf\": 1}", {"UTF-8"});
  expect_header_rejected("{\"a\nb\": 1}", {"control character"});
  expect_header_rejected("{\"a\": 01}", {"byte 7", "unexpected number literal"});
  expect_header_rejected("{\"a\": 1.5}", {"only integers"});
  expect_header_rejected("{\"a\": 99999999999999999999}", {"64-bit range"});
  expect_header_rejected(std::string(4, '\0'), {"not valid JSON"});
  expect_header_rejected(std::string("{}\0{}", 5), {"not valid JSON", "byte 2", "NUL byte"});
  std::string deep(1000, '[');
  expect_header_rejected("{\"a\": " + deep + "}", {"nesting deeper"});
}

TEST_F(CorruptFileTest, BadEntries) {
  auto entry = [](const std::string& name, const std::string& body) { return "{\"" + name + "\": " + body + "}"; };
  expect_header_rejected(entry("t", "[1]"), {"tensor 't'", "not an object"});
  expect_header_rejected(entry("t", "{\"dtype\": \"F33\", \"shape\": [1], \"data_offsets\": [0, 4]}"),
                         {"tensor 't'", "unknown dtype 'F33'"});
  expect_header_rejected(entry("t", "{\"dtype\": 3, \"shape\": [1], \"data_offsets\": [0, 4]}"),
                         {"tensor 't'", "'dtype' that is not a string"});
  expect_header_rejected(entry("t", "{\"shape\": [1], \"data_offsets\": [0, 4]}"), {"tensor 't' has no 'dtype'"});
  expect_header_rejected(entry("t", "{\"dtype\": \"F32\", \"data_offsets\": [0, 4]}"), {"tensor 't' has no 'shape'"});
  expect_header_rejected(entry("t", "{\"dtype\": \"F32\", \"shape\": [1]}"), {"tensor 't' has no 'data_offsets'"});
  expect_header_rejected(entry("t", "{\"dtype\": \"F32\", \"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}"),
                         {"field 'dtype' more than once"});
  expect_header_rejected(entry("t", "{\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4], \"x\": 1}"),
                         {"unknown field 'x'"});
  expect_header_rejected(entry("t", "{\"dtype\": \"F32\", \"shape\": [2, -1], \"data_offsets\": [0, 4]}"),
                         {"tensor 't'", "shape [2, -1]", "negative extent"});
  expect_header_rejected(entry("t", "{\"dtype\": \"F32\", \"shape\": [4611686018427387904, 4611686018427387904], "
                                    "\"data_offsets\": [0, 4]}"),
                         {"tensor 't'", "overflows"});
  expect_header_rejected(entry("t", "{\"dtype\": \"F32\", \"shape\": [4611686018427387904], \"data_offsets\": [0, 4]}"),
                         {"tensor 't'", "overflows"});
  expect_header_rejected(entry("t", "{\"dtype\": \"F32\", \"shape\": [\"1\"], \"data_offsets\": [0, 4]}"),
                         {"shape entry that is not an integer"});
  expect_header_rejected(entry("t", "{\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}"),
                         {"not a pair of integers"});
  expect_header_rejected(entry("t", "{\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}"),
                         {"data_offsets [8, 4]", "begin <= end"});
  expect_header_rejected(entry("t", "{\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}"),
                         {"data_offsets [-4, 0]"});
  expect_header_rejected(entry("t", "{\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [0, 32]}"),
                         {"tensor 't'", "data_offsets [0, 32]", "beyond the end of the data buffer (16 bytes)"});
  expect_header_rejected(entry("t", "{\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [9223372036854775800, "
                                    "9223372036854775804]}"),
                         {"beyond the end"});
  std::string p = path("bad.safetensors");
  write_bytes(p, make_file("{\"fc.weight\": {\"dtype\": \"F32\", \"shape\": [5, 6], \"data_offsets\": [0, 100]}}",
                           std::string(128, '\0')));
  EXPECT_KIRZL_ERROR(load_safetensors(p), ErrorCode::Io,
                     "load_safetensors: '" + p +
                         "': tensor 'fc.weight' has data_offsets [0, 100] but F32[5, 6] needs 120 bytes");
  expect_header_rejected(entry("__metadata__", "[]"), {"__metadata__ is a JSON array"});
  expect_header_rejected(entry("__metadata__", "{\"a\": 1}"), {"__metadata__ entry 'a'", "not a string"});
  expect_header_rejected(entry("__metadata__", "{\"a\": \"1\", \"a\": \"2\"}"), {"__metadata__ names 'a' more than once"});
}

TEST_F(CorruptFileTest, OverlapsAndDuplicates) {
  expect_header_rejected(
      "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
      " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
      {"tensors 'a' [0, 8] and 'b' [4, 12] overlap"});
  expect_header_rejected(
      "{\"a\": {\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [0, 8]},"
      " \"b\": {\"dtype\": \"U8\", \"shape\": [16], \"data_offsets\": [0, 16]}}",
      {"overlap"});
  expect_header_rejected(
      "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
      " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
      {"names 'a' more than once"});
  // Empty tensors share no bytes, so they may sit anywhere in the buffer.
  std::string p = path("empty.safetensors");
  write_bytes(p, make_file("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                           " \"e\": {\"dtype\": \"F32\", \"shape\": [0, 5], \"data_offsets\": [4, 4]}}",
                           std::string(8, '\0')));
  SafetensorsFile f = load_safetensors(p);
  EXPECT_EQ(f.tensors.at("e").shape(), Shape({0, 5}));
}

TEST_F(CorruptFileTest, UnsupportedDTypesAreNamed) {
  expect_header_rejected(
      "{\"mask\": {\"dtype\": \"BOOL\", \"shape\": [4], \"data_offsets\": [0, 4]},"
      " \"q\": {\"dtype\": \"I8\", \"shape\": [2], \"data_offsets\": [4, 6]},"
      " \"ok\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}",
      {"'mask' (dtype BOOL)", "'q' (dtype I8)"}, std::string(16, '\0'), ErrorCode::Unsupported);
  expect_header_rejected("{\"f8\": {\"dtype\": \"F8_E4M3\", \"shape\": [3], \"data_offsets\": [0, 3]}}", {"F8_E4M3"},
                         std::string(16, '\0'), ErrorCode::Unsupported);
  expect_header_rejected("{\"t\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}",
                         {"9 dimensions"}, std::string(16, '\0'), ErrorCode::Unsupported);
  // A malformed file of an unsupported dtype is a malformed file.
  expect_header_rejected("{\"q\": {\"dtype\": \"I16\", \"shape\": [4], \"data_offsets\": [0, 4]}}",
                         {"I16[4] needs 8 bytes"});
}

// Found writing tests/fuzz/fuzz_safetensors.cpp (crashes/safetensors/ keeps the input): an empty
// tensor whose other extents multiply past 2^63 has no int64 strides; it was allocated (0 bytes)
// and the strides overflowed.
TEST_F(CorruptFileTest, EmptyTensorWithHugeExtentsIsUnsupported) {
  expect_header_rejected("{\"z\": {\"dtype\": \"F32\", \"shape\": [0, 4611686018427387904, 4], \"data_offsets\": [0, 0]}}",
                         {"'z'", "[0, 4611686018427387904, 4]", "2^63"}, std::string(16, '\0'), ErrorCode::Unsupported);
  // Extents whose product fits are fine, however large, when one of them is 0.
  write_bytes(path("ok.safetensors"),
              make_file("{\"z\": {\"dtype\": \"F32\", \"shape\": [0, 4611686018427387904], \"data_offsets\": [0, 0]}}", ""));
  EXPECT_EQ(load_safetensors(path("ok.safetensors")).tensors.at("z").numel(), 0);
}

TEST_F(CorruptFileTest, MissingFileAndDirectory) {
  EXPECT_KIRZL_ERROR(load_safetensors(path("nope.safetensors")), ErrorCode::Io,
                     "nope.safetensors", "No such file or directory");
  EXPECT_KIRZL_ERROR(load_safetensors(dir_.string()), ErrorCode::Io, "not a regular file");
}

// ---- atomic writes ----

TEST_F(SafetensorsTest, FailedSaveLeavesThePreviousFileIntact) {
  StateDict good;
  good.insert("w", from_vector<float>({1, 2, 3}));
  const std::string p = path("model.safetensors");
  save_safetensors(p, good);
  const std::string before = read_bytes(p);

  StateDict bad = good;
  bad.insert("undefined", Tensor());
  EXPECT_KIRZL_ERROR(save_safetensors(p, bad), ErrorCode::InvalidArgument, "tensor 'undefined' is undefined");
  StateDict reserved;
  reserved.insert("__metadata__", ones({1}));
  EXPECT_KIRZL_ERROR(save_safetensors(p, reserved), ErrorCode::InvalidArgument, "__metadata__");
  EXPECT_EQ(read_bytes(p), before);
  EXPECT_EQ(listing(), std::vector<std::string>{"model.safetensors"});
}

TEST_F(SafetensorsTest, SaveIntoMissingDirectoryFailsCleanly) {
  const std::string p = path("no/such/dir/model.safetensors");
  EXPECT_KIRZL_ERROR(save_safetensors(p, StateDict{}), ErrorCode::Io,
                     "save_safetensors", p, "No such file or directory");
  EXPECT_TRUE(listing().empty());
}

TEST_F(SafetensorsTest, SaveIntoReadOnlyDirectoryFailsCleanly) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root: directory permissions do not stop writes";
  const std::string p = path("model.safetensors");
  save_safetensors(p, StateDict{});
  const std::string before = read_bytes(p);
  fs::permissions(dir_, fs::perms::owner_read | fs::perms::owner_exec);
  StateDict sd;
  sd.insert("w", ones({4}));
  EXPECT_KIRZL_ERROR(save_safetensors(p, sd), ErrorCode::Io, p, "Permission denied");
  fs::permissions(dir_, fs::perms::owner_all);
  EXPECT_EQ(read_bytes(p), before);
  EXPECT_EQ(listing(), std::vector<std::string>{"model.safetensors"});
}

TEST_F(SafetensorsTest, WriteFailureMidFileRemovesTheTemporaryFile) {
  // RLIMIT_FSIZE makes write() fail with EFBIG part way through the file (SIGXFSZ ignored).
  const std::string p = path("big.safetensors");
  StateDict small;
  small.insert("w", ones({2}));
  save_safetensors(p, small);
  const std::string before = read_bytes(p);

  StateDict big;
  big.insert("w", ones({1 << 16}));
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = old;
  lim.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &lim), 0);
  bool threw = false;
  try {
    save_safetensors(p, big);
  } catch (const Error& e) {
    threw = true;
    EXPECT_EQ(e.code(), ErrorCode::Io);
    EXPECT_NE(std::string(e.what()).find("File too large"), std::string::npos) << e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(threw);
  EXPECT_EQ(read_bytes(p), before);
  EXPECT_EQ(listing(), std::vector<std::string>{"big.safetensors"});
}

TEST_F(SafetensorsTest, ConcurrentSavesOfOnePathLeaveOneCompleteFile) {
  const std::string p = path("race.safetensors");
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (int r = 0; r < 10; ++r) {
        StateDict sd;
        sd.insert("w", full({257}, k));
        save_safetensors(p, sd, {{"writer", std::to_string(k)}});
      }
    });
  for (auto& t : threads) t.join();
  SafetensorsFile f = load_safetensors(p);
  double v = std::stod(f.metadata.at("writer"));
  EXPECT_EQ(f.tensors.at("w").to_vector<float>(), std::vector<float>(257, static_cast<float>(v)));
  EXPECT_EQ(listing(), std::vector<std::string>{"race.safetensors"});
}

TEST_F(SafetensorsTest, RelativePathInTheWorkingDirectory) {
  const auto cwd = fs::current_path();
  fs::current_path(dir_);
  StateDict sd;
  sd.insert("x", ones({3}, {.dtype = DType::f64}));
  save_safetensors("rel.safetensors", sd);
  EXPECT_EQ(load_safetensors("rel.safetensors").tensors.at("x").to_vector<double>(), std::vector<double>(3, 1.0));
  fs::current_path(cwd);
  EXPECT_EQ(listing(), std::vector<std::string>{"rel.safetensors"});
}

}  // namespace
}  // namespace kirzl::io
