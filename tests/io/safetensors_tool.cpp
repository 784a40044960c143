// Helper of safetensors_interop.py: writes a known set of tensors with kirzl, or checks that a
// file written by Python's safetensors holds them.
//
//   safetensors_tool write PATH [--no-bf16]   writes the reference tensors and metadata
//   safetensors_tool check PATH               loads PATH, compares with the reference; exit 0 on match
//   safetensors_tool skip REASON              prints REASON, exits 77 (ctest's skip code)
//
// The reference values (mirrored in safetensors_interop.py), element i of each tensor:
//   f32   [2, 3]  (i - 2.5) * 0.75          f64  [3, 2]  (i - 3) * 0.1
//   f16   [4]     (i - 2) * 0.25            bf16 [2, 2]  (i - 1) * 0.5
//   i32   [5]     i * 1000 - 2000           i64  [2]     i * 2^40 - 7
//   u8    [6]     i * 50                    u16  [3]     i * 30000
//   scalar []     3.5 (f32)                 empty [0, 4] (f32)
//   f32_special [6]  0, -0, inf, -inf, smallest denormal, 3.4e38
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#include <kirzl/io/safetensors.hpp>
#include <kirzl/tensor.hpp>

using namespace kirzl;

namespace {

template <typename T, typename F>
Tensor make(const Shape& shape, DType dtype, F value) {
  std::vector<T> v(static_cast<size_t>(shape.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<T>(value(static_cast<int64_t>(i)));
  return from_vector(v, shape, {.dtype = dtype});
}

StateDict reference(bool with_bf16) {
  StateDict sd;
  sd.insert("f32", make<double>({2, 3}, DType::f32, [](int64_t i) { return (static_cast<double>(i) - 2.5) * 0.75; }));
  sd.insert("f64", make<double>({3, 2}, DType::f64, [](int64_t i) { return (static_cast<double>(i) - 3) * 0.1; }));
  sd.insert("f16", make<double>({4}, DType::f16, [](int64_t i) { return (static_cast<double>(i) - 2) * 0.25; }));
  if (with_bf16)
    sd.insert("bf16", make<double>({2, 2}, DType::bf16, [](int64_t i) { return (static_cast<double>(i) - 1) * 0.5; }));
  sd.insert("i32", make<int32_t>({5}, DType::i32, [](int64_t i) { return i * 1000 - 2000; }));
  sd.insert("i64", make<int64_t>({2}, DType::i64, [](int64_t i) { return i * (int64_t{1} << 40) - 7; }));
  sd.insert("u8", make<uint8_t>({6}, DType::u8, [](int64_t i) { return i * 50; }));
  sd.insert("u16", make<uint16_t>({3}, DType::u16, [](int64_t i) { return i * 30000; }));
  sd.insert("scalar", scalar_tensor(3.5));
  sd.insert("empty", zeros({0, 4}));
  const float inf = std::numeric_limits<float>::infinity();
  sd.insert("f32_special", from_vector<float>({0.0f, -0.0f, inf, -inf, std::numeric_limits<float>::denorm_min(), 3.4e38f}));
  return sd;
}

std::string bytes_of(const Tensor& t) {
  Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.nbytes());
}

int check(const std::string& path) {
  io::SafetensorsFile f = io::load_safetensors(path);
  int bad = 0;
  const bool has_bf16 = f.tensors.contains("bf16");
  for (const auto& [name, want] : reference(has_bf16)) {
    const Tensor* got = f.tensors.find(name);
    if (!got) {
      std::printf("MISSING %s\n", name.c_str());
      ++bad;
      continue;
    }
    bool same = got->dtype() == want.dtype() && got->shape() == want.shape() && bytes_of(*got) == bytes_of(want);
    std::printf("%s %s: got %s, want %s\n", same ? "ok  " : "DIFF", name.c_str(), got->describe().c_str(),
                want.describe().c_str());
    if (!same) {
      std::printf("  got  %s\n  want %s\n", got->str().c_str(), want.str().c_str());
      ++bad;
    }
  }
  if (!has_bf16) std::printf("note: the file has no bf16 tensor (the writer could not make one)\n");
  auto it = f.metadata.find("writer");
  if (it == f.metadata.end() || it->second != "python") {
    std::printf("DIFF metadata 'writer' (want 'python')\n");
    ++bad;
  }
  it = f.metadata.find("unicode");
  if (it == f.metadata.end() || it->second != "caf\xc3\xa9 \xe2\x9c\x93") {
    std::printf("DIFF metadata 'unicode'\n");
    ++bad;
  }
  std::printf("%s\n", bad ? "MISMATCH" : "MATCH");
  return bad ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s write PATH [--no-bf16] | check PATH | skip REASON\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  try {
    if (mode == "skip") {
      std::printf("SKIPPED: %s\n", argv[2]);
      return 77;
    }
    if (mode == "write") {
      const bool bf16 = !(argc > 3 && std::strcmp(argv[3], "--no-bf16") == 0);
      io::save_safetensors(argv[2], reference(bf16), {{"writer", "kirzl"}, {"unicode", "caf\xc3\xa9 \xe2\x9c\x93"}});
      return 0;
    }
    if (mode == "check") return check(argv[2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "unknown mode '%s'\n", mode.c_str());
  return 2;
}
