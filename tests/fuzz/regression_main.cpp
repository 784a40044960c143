// The corpus regression driver: runs a fuzz harness (linked in, LLVMFuzzerTestOneInput) over every
// file of the directories given, so the seed corpus and the inputs of bugs once found
// (tests/fuzz/crashes/<name>/) run in every build, with any compiler and without libFuzzer.
// A harness reports a failure by aborting; the driver fails when the first directory is empty.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [MORE_DIRS...]\n", argv[0]);
    return 2;
  }
  for (int a = 1; a < argc; ++a) {
    std::vector<fs::path> files;
    if (fs::is_directory(argv[a]))
      for (const auto& entry : fs::directory_iterator(argv[a]))
        if (entry.is_regular_file() && entry.path().filename().string()[0] != '.') files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    if (a == 1 && files.empty()) {
      std::fprintf(stderr, "no inputs in %s: the seed corpus is missing\n", argv[a]);
      return 1;
    }
    for (const fs::path& p : files) {
      std::ifstream in(p, std::ios::binary);
      const std::vector<char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      std::printf("%s (%zu bytes)\n", p.c_str(), bytes.size());
      std::fflush(stdout);  // the last name printed is the input that failed
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    }
    std::printf("%zu inputs from %s passed\n", files.size(), argv[a]);
  }
  return 0;
}
