#include "io/sharded_checkpoint_format.h"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "io/crc32.h"

namespace kirzl::io::detail {

std::string shard_file_name(int rank, int world_size) {
  char name[64];
  std::snprintf(name, sizeof name, "shard-%05d-of-%05d.safetensors", rank, world_size);
  return name;
}

std::string strip_trailing_slashes(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

uint32_t crc32_of(const void* data, size_t n) { return detail::crc32(data, n); }

std::vector<uint32_t> chunk_crc32s(const void* data, size_t n, uint64_t chunk) {
  std::vector<uint32_t> out;
  out.reserve(chunk_count(n, chunk));
  const auto* p = static_cast<const unsigned char*>(data);
  for (uint64_t at = 0; at < n; at += chunk) out.push_back(crc32_of(p + at, std::min<uint64_t>(chunk, n - at)));
  return out;
}

int64_t checked_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) return -1;
  }
  return n;
}

std::string tiling_problem(std::vector<TilePiece>& pieces, int64_t numel, const char* holder) {
  auto who = [&](const TilePiece& p) { return std::string(holder) + " " + std::to_string(p.holder); };
  auto range = [](int64_t a, int64_t b) {
    std::string r = "[";  // appended, not `"[" + ...`: GCC 12 warns falsely (-Wrestrict) about the latter
    r += std::to_string(a);
    r += ", ";
    r += std::to_string(b);
    r += ')';
    return r;
  };
  for (const TilePiece& p : pieces) {
    int64_t end = 0;
    if (p.offset < 0 || p.length < 0 || __builtin_add_overflow(p.offset, p.length, &end) || end > numel)
      return who(p) + "'s piece at offset " + std::to_string(p.offset) + " with " + std::to_string(p.length) +
             " elements lies outside the tensor's " + std::to_string(numel) + " elements";
  }
  std::stable_sort(pieces.begin(), pieces.end(),
                   [](const TilePiece& a, const TilePiece& b) { return a.offset < b.offset; });
  int64_t covered = 0;  // [0, covered) is held exactly once so far
  const TilePiece* last = nullptr;
  for (const TilePiece& p : pieces) {
    if (p.length == 0) continue;
    if (p.offset > covered)
      return "elements " + range(covered, p.offset) + " are held by no " + holder +
             (last ? " (" + who(*last) + "'s piece ends at " + std::to_string(covered) + ", " : " (") + who(p) +
             "'s starts at " + std::to_string(p.offset) + ")";
    if (p.offset < covered)
      return who(*last) + " and " + who(p) + " both hold elements " +
             range(p.offset, std::min(covered, p.offset + p.length));
    covered = p.offset + p.length;
    last = &p;
  }
  if (covered < numel)
    return "elements " + range(covered, numel) + " are held by no " + holder +
           (last ? " (the last piece, " + who(*last) + "'s, ends at " + std::to_string(covered) + ")" : "");
  return {};
}

}  // namespace kirzl::io::detail
