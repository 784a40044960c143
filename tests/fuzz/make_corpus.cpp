// Writes the seed corpora of the fuzz harnesses (tests/fuzz/corpus/<name>/): small valid files
// made with kirzl's own writers, and a few near-valid ones (truncated, one field wrong), so that
// the fuzzers start from inputs that reach deep into each reader.
//
//   build/tests/fuzz/fuzz_make_corpus tests/fuzz/corpus
//
// Deterministic: running it again rewrites the same bytes.
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kirzl/data/token_shards.hpp"
#include "kirzl/data/tokenizer.hpp"
#include "kirzl/io/checkpoint.hpp"
#include "kirzl/io/safetensors.hpp"
#include "kirzl/kirzl.hpp"

namespace fs = std::filesystem;
using namespace kirzl;

namespace {

fs::path root;

void put(const std::string& name, const std::string& bytes) {
  const fs::path p = root / name;
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

std::string get(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// An IDX file: magic, extents, then `payload` (already big-endian).
std::string idx(unsigned char type, const std::vector<uint32_t>& dims, const std::string& payload) {
  std::string s{0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims) s += be32(d);
  return s + payload;
}

std::string gzip(const std::string& bytes) {
  const fs::path tmp = root / ".tmp.gz";
  gzFile f = gzopen(tmp.c_str(), "wb9");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
  std::string out = get(tmp);
  fs::remove(tmp);
  return out;
}

void idx_corpus() {
  put("idx/u8_2x3", idx(0x08, {2, 3}, "abcdef"));
  put("idx/i32_3", idx(0x0C, {3}, be32(1) + be32(0xffffffff) + be32(7)));
  put("idx/f32_2x2", idx(0x0D, {2, 2}, be32(0x3f800000) + be32(0x40000000) + be32(0xbf800000) + be32(0)));
  put("idx/f64_1", idx(0x0E, {1}, be32(0x3ff00000) + be32(0)));
  put("idx/u8_0x5", idx(0x08, {0, 5}, ""));
  put("idx/u8_1x1x1x2", idx(0x08, {1, 1, 1, 2}, "xy"));
  put("idx/gz_u8_4x4", gzip(idx(0x08, {4, 4}, "0123456789abcdef")));
  put("idx/gz_f32_3", gzip(idx(0x0D, {3}, be32(1) + be32(2) + be32(3))));
  put("idx/truncated_u8_3x3", idx(0x08, {3, 3}, "abc"));
  put("idx/int16_unsupported", idx(0x0B, {2}, "abcd"));
  put("idx/gz_truncated", gzip(idx(0x08, {8}, "01234567")).substr(0, 20));
}

void safetensors_corpus() {
  const fs::path dir = root / "safetensors";
  fs::create_directories(dir);
  StateDict sd;
  sd.insert("weight", arange(6, {.dtype = DType::f32}).reshape({2, 3}));
  sd.insert("index", arange(2));
  sd.insert("half", ones({1, 2}, {.dtype = DType::f16}));
  sd.insert("brain", ones({2}, {.dtype = DType::bf16}));
  sd.insert("bytes", arange(3, {.dtype = DType::u8}));
  sd.insert("empty", empty({0, 4}));
  io::save_safetensors((dir / "mixed").string(), sd, {{"note", "seed"}, {"k\u00e9", "v\n"}});
  StateDict one;
  one.insert("x", full({3}, 2.5, {.dtype = DType::f64}));
  io::save_safetensors((dir / "one_f64").string(), one);
  io::save_safetensors((dir / "only_metadata").string(), StateDict{}, {{"a", "b"}});
  const std::string mixed = get(dir / "mixed");
  put("safetensors/truncated", mixed.substr(0, mixed.size() - 3));
  // Hand-written headers: a dtype kirzl lacks, overlapping entries, a zero-size shape with huge
  // extents, an offset past the end.
  auto file = [](std::string header, const std::string& data) {
    while ((8 + header.size()) % 8) header += ' ';
    std::string s;
    for (int k = 0; k < 8; ++k) s += static_cast<char>(header.size() >> (8 * k));
    return s + header + data;
  };
  put("safetensors/i8_unsupported", file(R"({"a":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}})", "ab"));
  put("safetensors/overlap", file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                                  R"("b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})", "abc"));
  put("safetensors/zero_extent", file(R"({"z":{"dtype":"F32","shape":[0,1000000],"data_offsets":[0,0]}})", ""));
  put("safetensors/past_end", file(R"({"a":{"dtype":"U16","shape":[4],"data_offsets":[0,8]}})", "abcd"));
}

void checkpoint_corpus() {
  const fs::path dir = root / "checkpoint";
  fs::create_directories(dir);
  // The harness's model and optimizer: Linear(3, 2) and Adam after one step.
  auto model = std::make_shared<nn::Linear>(3, 2);
  optim::Adam opt(model->parameters());
  sum((*model)(ones({4, 3}))).backward();
  opt.step();
  io::save_checkpoint((dir / "linear_adam").string(), *model, &opt, {.step = 1, .epoch = 0, .config = {{"lr", "0.001"}}});
  io::save_checkpoint((dir / "linear_only").string(), *model, nullptr, {.step = 3});
  auto other = std::make_shared<nn::Linear>(2, 2);
  io::save_checkpoint((dir / "wrong_shapes").string(), *other);
  optim::SGD sgd(model->parameters(), {.lr = 0.1, .momentum = 0.9});
  sum((*model)(ones({1, 3}))).backward();
  sgd.step();
  io::save_checkpoint((dir / "linear_sgd").string(), *model, &sgd);
}

void token_shard_corpus() {
  const fs::path dir = root / "token_shard";
  fs::create_directories(dir);
  const std::vector<uint16_t> tokens = {1, 2, 3, 250, 0, 7, 7, 9};
  data::write_token_shard((dir / "small").string(), tokens, 256);
  const std::vector<uint16_t> wide = {0, 65535, 1000};
  data::write_token_shard((dir / "vocab_65536").string(), wide, 65536);
  data::write_token_shard((dir / "empty").string(), {}, 1);
  const std::string small = get(dir / "small");
  put("token_shard/truncated", small.substr(0, small.size() - 1));
  std::string big_token = small;
  big_token[32] = '\xff';  // token 0xff01 >= vocab_size 256
  put("token_shard/token_too_big", big_token);
}

void tokenizer_corpus() {
  put("tokenizer/ascii", "hello, world\n");
  put("tokenizer/utf8", "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xf0\x9f\x98\x80");
  put("tokenizer/byte_description", "kirzl-byte-tokenizer-1\n");
  put("tokenizer/char_description", data::CharTokenizer::from_text("hello \xc3\xa9\xf0\x9f\x98\x80").serialize() + "\n");
  put("tokenizer/overlong", "a\xc0\xaf" "b");
  put("tokenizer/surrogate", "\xed\xa0\x80");
  put("tokenizer/above_max", "\xf4\x90\x80\x80");
  put("tokenizer/truncated_sequence", "ab\xe2\x9c");
}

void json_corpus() {
  put("json/safetensors_header",
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})");
  put("json/nested", R"([[[[]]],{"a":[1,-2,{"b":null}]},true,false])");
  put("json/escapes", R"(["\"\\\/\b\f\n\r\t","\u00e9\ud83d\ude00","\u0000"])");
  put("json/integers", "[0,-0,9223372036854775807,-9223372036854775808,123]");
  put("json/whitespace", " \t\n{ \"k\" : \"v\" }\r\n");
  put("json/empty_object", "{}");
  put("json/bad_fraction", "[1.5]");
  put("json/bad_surrogate", R"(["\ud800"])");
  put("json/trailing_comma", "[1,]");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  root = argv[1];
  idx_corpus();
  safetensors_corpus();
  checkpoint_corpus();
  token_shard_corpus();
  tokenizer_corpus();
  json_corpus();
  return 0;
}
