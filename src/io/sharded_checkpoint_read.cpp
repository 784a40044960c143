// ShardedCheckpoint: opening (the index and the shard headers, validated) and reading ranges.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "io/json.h"
#include "io/safetensors_layout.h"
#include "io/sharded_checkpoint_format.h"
#include "kirzl/io/sharded_checkpoint.hpp"

namespace kirzl::io {

namespace fs = std::filesystem;

namespace {

const std::string kOpen = "ShardedCheckpoint::open";
const std::string kRead = "ShardedCheckpoint::read";

bool is_complete(const std::string& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::is_regular_file(fs::path(dir) / detail::kCompleteFile, ec);
}

// What open() says when `path` is not there or not complete but a save's previous checkpoint is.
std::string previous_hint(const std::string& path) {
  const std::string previous = path + detail::kPreviousSuffix;
  if (!is_complete(previous)) return "";
  return "; '" + previous + "' is a complete checkpoint: a save was interrupted during its final swap. It is not " +
         "loaded in its place: open it explicitly, or move it back to '" + path + "', if it is the one you want";
}

std::optional<DType> dtype_from_name(const std::string& name) {
  for (DType d : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8, DType::u16})
    if (name == safetensors_dtype_name(d)) return d;
  return std::nullopt;
}

using Json = nlohmann::ordered_json;

// Typed access to the untrusted index, failing with Error{Io} naming the index file.
class IndexReader {
 public:
  explicit IndexReader(detail::FileReader& f) : f_(f) {}

  const Json& field(const Json& object, const char* name, const std::string& where) const {
    if (!object.is_object()) f_.fail(where + " is not a JSON object");
    auto it = object.find(name);
    if (it == object.end()) f_.fail(where + " has no '" + name + "'");
    return *it;
  }
  int64_t integer(const Json& v, const std::string& what, int64_t lo, int64_t hi) const {
    if (!v.is_number_integer()) f_.fail(what + " is not an integer");
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi)
      f_.fail(what + " is " + std::to_string(x) + ", outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
  }
  const std::string& string(const Json& v, const std::string& what) const {
    if (!v.is_string()) f_.fail(what + " is not a string");
    return v.get_ref<const std::string&>();
  }
  const Json& array(const Json& v, const std::string& what) const {
    if (!v.is_array()) f_.fail(what + " is not an array");
    return v;
  }
  [[noreturn]] void fail(const std::string& what) const { f_.fail(what); }

 private:
  detail::FileReader& f_;
};

}  // namespace

// Fills a ShardedCheckpoint from a plain file or a directory (friend of ShardedCheckpoint).
class ShardedCheckpointBuilder {
 public:
  static void plain(ShardedCheckpoint& ck, const ShardedOpenOptions& options) {
    detail::FileReader f(ck.path_, kOpen);
    detail::SafetensorsLayout layout = detail::read_safetensors_layout(f, {.max_header_bytes = options.max_header_bytes});
    ck.metadata_ = std::move(layout.metadata);
    ck.shard_paths_ = {ck.path_};
    ck.shard_sizes_ = {layout.file_size};
    ck.chunk_bytes_ = 0;
    ck.world_size_ = 1;
    for (auto& e : layout.entries) {
      ShardedCheckpoint::TensorInfo t;
      t.dtype = e.dtype;
      t.numel = detail::checked_numel(e.shape);
      if (t.numel < 0) f.fail("tensor " + detail::shown(e.name) + " has an invalid shape", ErrorCode::Unsupported);
      t.shape = std::move(e.shape);
      t.pieces.push_back({0, e.name, 0, t.numel, layout.data_start + e.begin, {}});
      ck.tensors_.emplace(e.name, std::move(t));
    }
  }

  static void directory(ShardedCheckpoint& ck, const ShardedOpenOptions& options) {
    const std::string& path = ck.path_;
    std::error_code ec;
    if (!fs::is_regular_file(fs::path(path) / detail::kCompleteFile, ec))
      KIRZL_FAIL(ErrorCode::Io, kOpen, ": '", path, "' is an incomplete checkpoint (no ", detail::kCompleteFile,
                 " marker: its save did not finish)", previous_hint(path));

    detail::FileReader f(path + "/" + detail::kIndexFile, kOpen);
    if (f.size() > options.max_header_bytes)
      f.fail("the index is " + std::to_string(f.size()) + " bytes, more than the limit of " +
             std::to_string(options.max_header_bytes));
    std::string text(static_cast<size_t>(f.size()), '\0');
    f.read_at(0, text.data(), text.size(), "the index");
    Json root;
    try {
      root = json::parse_untrusted(text, json::Limits{.max_depth = 8, .max_string_bytes = text.size(),
                                                      .max_elements = text.size()});
    } catch (const json::ParseError& e) {
      f.fail(std::string("the index is not valid JSON: ") + e.what());
    }
    const IndexReader in(f);
    const std::string& format = in.string(in.field(root, "format", "the index"), "'format'");
    if (format != kShardedCheckpointFormat)
      f.fail("'format' is " + detail::shown(format) + ", not '" + kShardedCheckpointFormat + "'");
    const int64_t version = in.integer(in.field(root, "version", "the index"), "'version'", 0, INT64_MAX);
    if (version != kShardedCheckpointVersion)
      f.fail("index version " + std::to_string(version) + "; this kirzl reads version " +
             std::to_string(kShardedCheckpointVersion));
    const int world = static_cast<int>(
        in.integer(in.field(root, "world_size", "the index"), "'world_size'", 1, detail::kMaxWorldSize));
    const Json& checksum = in.field(root, "checksum", "the index");
    if (in.string(in.field(checksum, "algorithm", "'checksum'"), "the checksum algorithm") != "crc32")
      f.fail("unknown checksum algorithm (kirzl writes 'crc32')");
    const uint64_t chunk = static_cast<uint64_t>(in.integer(in.field(checksum, "chunk_bytes", "'checksum'"),
                                                            "the checksum chunk size", detail::kMinChecksumChunkBytes,
                                                            detail::kMaxChecksumChunkBytes));
    if ((chunk & (chunk - 1)) != 0) f.fail("the checksum chunk size " + std::to_string(chunk) + " is not a power of two");
    const Json& metadata = in.field(root, "metadata", "the index");
    if (!metadata.is_object()) f.fail("'metadata' is not a JSON object");
    for (const auto& [k, v] : metadata.items()) ck.metadata_[k] = in.string(v, "metadata entry " + detail::shown(k));

    const Json& shards = in.array(in.field(root, "shards", "the index"), "'shards'");
    if (shards.size() != static_cast<size_t>(world))
      f.fail("'shards' lists " + std::to_string(shards.size()) + " files for world size " + std::to_string(world));
    std::map<std::string, int> shard_of_file;
    for (int r = 0; r < world; ++r) {
      const std::string where = "shard " + std::to_string(r);
      const std::string& file = in.string(in.field(shards[r], "file", where), where + "'s file");
      // Only the names the writer uses: an index cannot point outside the directory.
      if (file != detail::shard_file_name(r, world))
        f.fail(where + " is named " + detail::shown(file) + ", expected '" + detail::shard_file_name(r, world) + "'");
      const int64_t bytes = in.integer(in.field(shards[r], "bytes", where), where + "'s byte size", 8, INT64_MAX);
      ck.shard_paths_.push_back(path + "/" + file);
      ck.shard_sizes_.push_back(static_cast<uint64_t>(bytes));
      shard_of_file[file] = r;
    }

    const Json& tensors = in.field(root, "tensors", "the index");
    if (!tensors.is_object()) f.fail("'tensors' is not a JSON object");
    for (const auto& [key, t] : tensors.items()) {
      const std::string where = "tensor " + detail::shown(key);
      ShardedCheckpoint::TensorInfo info;
      const std::string& dtype = in.string(in.field(t, "dtype", where), where + "'s dtype");
      auto d = dtype_from_name(dtype);
      if (!d) f.fail(where + " has a dtype kirzl does not know: " + detail::shown(dtype));
      info.dtype = *d;
      for (const auto& x : in.array(in.field(t, "shape", where), where + "'s shape"))
        info.shape.push_back(in.integer(x, where + "'s shape entry", 0, INT64_MAX));
      if (info.shape.size() > static_cast<size_t>(kMaxDims)) f.fail(where + " has more than " + std::to_string(kMaxDims) + " dimensions");
      info.numel = detail::checked_numel(info.shape);
      int64_t nbytes = 0;
      if (info.numel < 0 || __builtin_mul_overflow(info.numel, static_cast<int64_t>(dtype_size(info.dtype)), &nbytes))
        f.fail(where + " has shape " + detail::shape_text(info.shape) + " whose size overflows 64 bits");
      std::vector<detail::TilePiece> tiles;
      for (const auto& p : in.array(in.field(t, "pieces", where), where + "'s pieces")) {
        ShardedCheckpoint::Piece piece;
        const std::string& file = in.string(in.field(p, "file", where + "'s piece"), where + "'s piece file");
        auto s = shard_of_file.find(file);
        if (s == shard_of_file.end()) f.fail(where + " has a piece in " + detail::shown(file) + ", which is not a shard");
        piece.shard = s->second;
        piece.tensor = in.string(in.field(p, "tensor", where + "'s piece"), where + "'s piece tensor");
        piece.offset = in.integer(in.field(p, "offset", where + "'s piece"), where + "'s piece offset", 0, info.numel);
        piece.length = in.integer(in.field(p, "length", where + "'s piece"), where + "'s piece length", 0, info.numel);
        const uint64_t bytes = static_cast<uint64_t>(piece.length) * dtype_size(info.dtype);  // <= nbytes: no overflow
        const Json& crcs = in.array(in.field(p, "crc32", where + "'s piece"), where + "'s piece checksums");
        if (crcs.size() != detail::chunk_count(bytes, chunk))
          f.fail(where + "'s piece at offset " + std::to_string(piece.offset) + " has " + std::to_string(crcs.size()) +
                 " checksums for " + std::to_string(detail::chunk_count(bytes, chunk)) + " chunks");
        for (const auto& c : crcs) piece.crc32.push_back(static_cast<uint32_t>(in.integer(c, where + "'s checksum", 0, UINT32_MAX)));
        tiles.push_back({piece.shard, piece.offset, piece.length});
        info.pieces.push_back(std::move(piece));
      }
      const std::string why = detail::tiling_problem(tiles, info.numel, "shard");
      if (!why.empty()) f.fail(where + " is not stored exactly once: " + why);
      std::stable_sort(info.pieces.begin(), info.pieces.end(),
                       [](const auto& a, const auto& b) { return a.offset < b.offset; });
      ck.tensors_.emplace(key, std::move(info));
    }
    ck.chunk_bytes_ = chunk;
    ck.world_size_ = world;
    check_shards(ck, options);
    // Empty pieces hold nothing (their shard entries were checked all the same); without them the
    // pieces' ends increase with their offsets, which read() relies on to find the first piece of
    // a range by binary search.
    for (auto& [key, info] : ck.tensors_)
      std::erase_if(info.pieces, [](const ShardedCheckpoint::Piece& p) { return p.length == 0; });
  }

 private:
  // Every shard's size and header against the index.
  static void check_shards(ShardedCheckpoint& ck, const ShardedOpenOptions& options) {
    std::vector<std::vector<ShardedCheckpoint::Piece*>> by_shard(ck.shard_paths_.size());
    std::vector<const std::string*> key_of_piece;
    std::map<const ShardedCheckpoint::Piece*, const ShardedCheckpoint::TensorInfo*> info_of;
    for (auto& [key, info] : ck.tensors_)
      for (auto& p : info.pieces) {
        by_shard[p.shard].push_back(&p);
        info_of[&p] = &info;
      }
    for (size_t s = 0; s < ck.shard_paths_.size(); ++s) {
      detail::FileReader f(ck.shard_paths_[s], kOpen);
      if (f.size() != ck.shard_sizes_[s])
        f.fail("the file is " + std::to_string(f.size()) + " bytes, the index says " + std::to_string(ck.shard_sizes_[s]) +
               " (truncated or replaced?)");
      const detail::SafetensorsLayout layout =
          detail::read_safetensors_layout(f, {.max_header_bytes = options.max_header_bytes});
      std::map<std::string, const detail::SafetensorsEntry*> entries;
      for (const auto& e : layout.entries) entries[e.name] = &e;
      for (ShardedCheckpoint::Piece* p : by_shard[s]) {
        const ShardedCheckpoint::TensorInfo& info = *info_of[p];
        auto e = entries.find(p->tensor);
        if (e == entries.end()) f.fail("has no tensor " + detail::shown(p->tensor) + ", which the index names");
        const detail::SafetensorsEntry& entry = *e->second;
        if (entry.dtype != info.dtype || entry.shape != std::vector<int64_t>{p->length})
          f.fail("tensor " + detail::shown(p->tensor) + " is " + safetensors_dtype_name(entry.dtype) +
                 detail::shape_text(entry.shape) + ", the index says " + safetensors_dtype_name(info.dtype) + "[" +
                 std::to_string(p->length) + "]");
        p->file_offset = layout.data_start + entry.begin;
      }
    }
  }
};

ShardedCheckpoint ShardedCheckpoint::open(const std::string& path_arg, const ShardedOpenOptions& options) {
  ShardedCheckpoint ck;
  ck.path_ = detail::strip_trailing_slashes(path_arg);
  std::error_code ec;
  const auto st = fs::status(ck.path_, ec);
  if (!fs::exists(st))
    KIRZL_FAIL(ErrorCode::Io, kOpen, ": '", ck.path_, "': no such file or directory", previous_hint(ck.path_));
  if (fs::is_directory(st)) ShardedCheckpointBuilder::directory(ck, options);
  else ShardedCheckpointBuilder::plain(ck, options);
  return ck;
}

std::vector<std::string> ShardedCheckpoint::keys() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [k, v] : tensors_) out.push_back(k);
  return out;
}

const ShardedCheckpoint::TensorInfo& ShardedCheckpoint::info(const std::string& key, const char* who) const {
  auto it = tensors_.find(key);
  KIRZL_CHECK(it != tensors_.end(), who, ": '", key, "' is not in the checkpoint '", path_, "'");
  return it->second;
}

const std::vector<int64_t>& ShardedCheckpoint::shape(const std::string& key) const {
  return info(key, "ShardedCheckpoint::shape").shape;
}
DType ShardedCheckpoint::dtype(const std::string& key) const { return info(key, "ShardedCheckpoint::dtype").dtype; }
int64_t ShardedCheckpoint::numel(const std::string& key) const { return info(key, "ShardedCheckpoint::numel").numel; }
const std::vector<ShardedCheckpoint::Piece>& ShardedCheckpoint::pieces(const std::string& key) const {
  return info(key, "ShardedCheckpoint::pieces").pieces;
}

Tensor ShardedCheckpoint::read(const std::string& key, int64_t offset, int64_t length) const {
  const TensorInfo& t = info(key, kRead.c_str());
  int64_t end = 0;
  KIRZL_CHECK(offset >= 0 && length >= 0 && !__builtin_add_overflow(offset, length, &end) && end <= t.numel, kRead,
              ": elements [", offset, ", ", offset, " + ", length, ") are outside '", key, "' of shape ",
              detail::shape_text(t.shape), " (", t.numel, " elements)");
  // Bounded: open() checked that the pieces tile the tensor and lie in files of the sizes the
  // index gives, so `length` elements are bytes that exist on disk.
  Tensor out = empty({length}, {.dtype = t.dtype});
  const uint64_t es = dtype_size(t.dtype);
  auto* dst = static_cast<unsigned char*>(out.data_ptr());
  std::map<int, std::unique_ptr<detail::FileReader>> files;
  std::vector<unsigned char> buffer;
  // The first piece that ends after `offset`.
  auto it = std::upper_bound(t.pieces.begin(), t.pieces.end(), offset,
                             [](int64_t o, const Piece& p) { return o < p.offset + p.length; });
  for (; it != t.pieces.end() && it->offset < end; ++it) {
    const Piece& p = *it;
    const int64_t lo = std::max(offset, p.offset), hi = std::min(end, p.offset + p.length);
    if (lo >= hi) continue;
    auto& f = files[p.shard];
    if (!f) {
      f = std::make_unique<detail::FileReader>(shard_paths_[p.shard], kRead);
      if (f->size() != shard_sizes_[p.shard])
        f->fail("the file is " + std::to_string(f->size()) + " bytes, the index says " +
                std::to_string(shard_sizes_[p.shard]) + " (changed since it was opened?)");
    }
    const std::string what = "'" + key + "' (tensor " + detail::shown(p.tensor) + ")";
    const uint64_t need_begin = static_cast<uint64_t>(lo - p.offset) * es, need_end = static_cast<uint64_t>(hi - p.offset) * es;
    unsigned char* out_at = dst + static_cast<uint64_t>(lo - offset) * es;  // where byte need_begin goes
    if (chunk_bytes_ == 0) {
      f->read_at(p.file_offset + need_begin, out_at, need_end - need_begin, what);
      continue;
    }
    // Whole checksum chunks, each verified before any of its bytes is used.
    const uint64_t piece_bytes = static_cast<uint64_t>(p.length) * es;
    for (uint64_t c = need_begin / chunk_bytes_; c * chunk_bytes_ < need_end; ++c) {
      const uint64_t cb = c * chunk_bytes_, ce = std::min(cb + chunk_bytes_, piece_bytes);
      const bool inside = cb >= need_begin && ce <= need_end;
      unsigned char* to = out_at + (cb - std::min(cb, need_begin));
      if (!inside) {
        buffer.resize(ce - cb);
        to = buffer.data();
      }
      f->read_at(p.file_offset + cb, to, ce - cb, what);
      if (detail::crc32_of(to, ce - cb) != p.crc32[c])
        f->fail("checksum mismatch in " + what + ", bytes [" + std::to_string(cb) + ", " + std::to_string(ce) +
                ") of its data: the shard is damaged");
      if (!inside) {
        const uint64_t a = std::max(cb, need_begin), b = std::min(ce, need_end);
        std::memcpy(out_at + (a - need_begin), buffer.data() + (a - cb), b - a);
      }
    }
  }
  return out;
}

Tensor ShardedCheckpoint::read(const std::string& key) const {
  const TensorInfo& t = info(key, kRead.c_str());
  return read(key, 0, t.numel).reshape(Shape(t.shape));
}

}  // namespace kirzl::io
