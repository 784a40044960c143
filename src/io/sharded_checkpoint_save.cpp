// save_sharded_checkpoint: every rank writes its shard, rank 0 builds the index and commits.
#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "io/atomic_file.h"
#include "io/json.h"
#include "io/rank_agreement.h"
#include "io/safetensors_layout.h"
#include "io/sharded_checkpoint_format.h"
#include "kirzl/autograd.hpp"
#include "kirzl/io/sharded_checkpoint.hpp"

namespace kirzl::io {

namespace fs = std::filesystem;

// Note [sharded checkpoint commit]
// save_sharded_checkpoint() must leave either the previous checkpoint or the complete new one at
// `dir`, on every rank's view, whatever fails where — and no rank may wait for ever for another
// that threw. So the work runs in three phases, each ending in agree(): every rank contributes
// (ok or its error code, and its message's length) to one all_reduce, and if any rank failed,
// the lowest failed rank broadcasts its message as bytes, and every rank throws the same
// Error. Each rank thus issues the same collectives whatever happened (never a barrier after a
// possible throw), and an exception inside a phase turns into a status, not an early exit.
//  1. rank 0 checks that `dir` is absent or a kirzl sharded checkpoint (complete or not), and
//     creates `<dir>.incoming` fresh.
//  2. every rank checks its pieces and writes `<dir>.incoming/shard-R-of-N.safetensors` with
//     save_safetensors (temporary file, fsync, rename, fsync of the directory). Its metadata
//     describes the pieces (Note [shard metadata]). The communicator moves tensors only, so the
//     pieces' descriptions travel to rank 0 through these files: a file system that every rank
//     sees is assumed (a rank that cannot see `<dir>.incoming` fails here, with ENOENT).
//  3. rank 0 reads the N shard headers, checks that every key's pieces tile it exactly once with
//     one shape and dtype (the error names the key and the ranks), writes index.json and then
//     COMPLETE (each fsync'ed, as is the directory), and swaps: `dir` -> `<dir>.previous`,
//     `<dir>.incoming` -> `dir`, fsync of the parent, and removes `<dir>.previous`.
// A crash before the swap leaves `dir` untouched (and a stale `<dir>.incoming` that the next save
// replaces); a crash between the two renames leaves only `<dir>.previous`, which open() points
// out instead of loading silently, and which the next save keeps as the previous checkpoint
// until the new one is in place. A failure on rank 0 after the first rename puts `dir` back.
// The error message is the one part sent as bytes (a u8 tensor): every rank then reports the
// cause, e.g. which key has a gap, not just "rank 0 failed".

namespace {

const std::string kWho = "save_sharded_checkpoint";

using detail::attempt;
using detail::Outcome;

void agree(comm::Communicator& comm, const Outcome& mine, const std::string& dir, const std::string& phase,
           const std::function<void()>& cleanup = {}) {
  detail::agree(comm, mine, kWho, "'" + dir + "'", phase, "nothing was committed and '" + dir + "' is as it was",
                cleanup);
}


[[noreturn]] void fail_fs(const std::string& dir, const std::string& what, const std::error_code& ec) {
  KIRZL_FAIL(ErrorCode::Io, kWho, ": '", dir, "': ", what, ": ", ec.message());
}

bool is_checkpoint_entry(const std::string& name) {
  if (name == detail::kIndexFile || name == detail::kCompleteFile) return true;
  if (!name.empty() && name[0] == '.') return name.find(".tmp.") != std::string::npos;  // AtomicFile's temporaries
  return name.rfind("shard-", 0) == 0 && name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0;
}

bool is_complete(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / detail::kCompleteFile, ec);
}

// Phase 1 on rank 0.
void prepare(const std::string& dir, const std::string& incoming) {
  KIRZL_CHECK(!dir.empty() && dir != "/", kWho, ": '", dir, "' cannot be a checkpoint directory");
  std::error_code ec;
  const fs::path parent = fs::path(dir).parent_path();
  if (!parent.empty()) {
    fs::create_directories(parent, ec);
    if (ec) fail_fs(dir, "cannot create the parent directory '" + parent.string() + "'", ec);
  }
  const auto st = fs::symlink_status(dir, ec);
  if (fs::exists(st)) {
    KIRZL_CHECK(fs::is_directory(st), kWho, ": '", dir,
                "' exists and is not a directory; refusing to replace it with a checkpoint");
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      KIRZL_CHECK(is_checkpoint_entry(name), kWho, ": '", dir, "' exists and is not a kirzl sharded checkpoint (it holds '",
                  name, "'); refusing to replace it");
    }
    if (ec) fail_fs(dir, "cannot list the existing directory", ec);
  }
  fs::remove_all(incoming, ec);
  if (ec) fail_fs(dir, "cannot remove the stale '" + incoming + "'", ec);
  fs::create_directory(incoming, ec);
  if (ec) fail_fs(dir, "cannot create '" + incoming + "'", ec);
}

// Phase 2 on every rank.
void write_shard(const std::string& incoming, int rank, int n, const std::vector<TensorPiece>& pieces) {
  NoGradGuard no_grad;
  const std::string path = incoming + "/" + detail::shard_file_name(rank, n);
  StateDict tensors;
  nlohmann::ordered_json described = nlohmann::ordered_json::array();
  std::set<std::pair<std::string, int64_t>> seen;
  for (const TensorPiece& p : pieces) {
    const std::string what = "piece of '" + p.key + "' at offset " + std::to_string(p.offset);
    KIRZL_CHECK(p.data.defined(), kWho, ": rank ", rank, ": the ", what, " has no data (undefined tensor)");
    KIRZL_CHECK(p.shape.size() <= static_cast<size_t>(kMaxDims), kWho, ": rank ", rank, ": '", p.key, "' has ",
                p.shape.size(), " dimensions; at most ", kMaxDims);
    const int64_t numel = detail::checked_numel(p.shape);
    KIRZL_CHECK(numel >= 0, kWho, ": rank ", rank, ": '", p.key, "' has an invalid shape ",
                detail::shape_text(p.shape));
    int64_t end = 0;
    KIRZL_CHECK(p.offset >= 0 && !__builtin_add_overflow(p.offset, p.data.numel(), &end) && end <= numel, kWho,
                ": rank ", rank, ": the ", what, " with ", p.data.numel(), " elements lies outside '", p.key,
                "' of shape ", detail::shape_text(p.shape), " (", numel, " elements)");
    // 1-D, or the whole tensor in its own shape (a buffer or a scalar from one rank).
    KIRZL_CHECK(p.data.dim() == 1 || (p.offset == 0 && p.data.shape().vec() == p.shape), kWho, ": rank ", rank,
                ": the ", what, " has data of shape ", detail::shape_text(p.data.shape().vec()),
                "; a piece is 1-D, or the whole tensor in its shape ", detail::shape_text(p.shape));
    KIRZL_CHECK(seen.emplace(p.key, p.offset).second, kWho, ": rank ", rank, " gives two pieces of '", p.key,
                "' at offset ", p.offset);
    Tensor h = p.data.detach();
    if (!h.device().is_cpu()) h = h.to(Device::cpu());
    if (!h.is_contiguous()) h = h.contiguous();
    if (h.dim() != 1) h = h.reshape({h.numel()});
    const std::string name = p.key + "@" + std::to_string(p.offset);
    tensors.insert(name, h);
    described.push_back({{"tensor", name},
                         {"key", p.key},
                         {"shape", p.shape},
                         {"offset", p.offset},
                         {"crc32", detail::chunk_crc32s(h.data_ptr(), h.nbytes(), detail::kChecksumChunkBytes)}});
  }
  // Note [shard metadata]: a shard is an ordinary safetensors file of 1-D tensors named
  // "<key>@<offset>"; its metadata entry "kirzl.shard" is JSON that says, for rank 0's index,
  // which rank wrote it and, per tensor, its key, the whole shape, the offset and the CRC-32 of
  // each checksum chunk. The name alone is not parsed (keys may hold '@').
  nlohmann::ordered_json meta = {{"rank", rank},
                                 {"world_size", n},
                                 {"chunk_bytes", detail::kChecksumChunkBytes},
                                 {"pieces", std::move(described)}};
  std::string text;
  try {
    text = meta.dump();
  } catch (const nlohmann::json::type_error& e) {
    KIRZL_FAIL(ErrorCode::InvalidArgument, kWho, ": rank ", rank, ": keys must be UTF-8 text (", e.what(), ")");
  }
  save_safetensors(path, tensors, {{detail::kShardMetadataKey, text}});
}

// One key as rank 0 assembles it from the shards.
struct KeyEntry {
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  int first_rank = 0;
  std::vector<detail::TilePiece> tiles;
  nlohmann::ordered_json pieces = nlohmann::ordered_json::array();
};

std::string describe(DType dtype, const std::vector<int64_t>& shape) {
  return std::string(safetensors_dtype_name(dtype)) + detail::shape_text(shape);
}

// Reads shard `r` and adds its pieces to `keys`; returns its byte size.
uint64_t collect_shard(const std::string& incoming, int r, int n, std::map<std::string, KeyEntry>& keys,
                       std::vector<std::string>& problems) {
  const std::string file = detail::shard_file_name(r, n);
  detail::FileReader f(incoming + "/" + file, kWho);
  const detail::SafetensorsLayout layout = detail::read_safetensors_layout(f, {});
  std::map<std::string, const detail::SafetensorsEntry*> by_name;
  for (const auto& e : layout.entries) by_name[e.name] = &e;
  auto it = layout.metadata.find(detail::kShardMetadataKey);
  if (it == layout.metadata.end()) f.fail(std::string("no '") + detail::kShardMetadataKey + "' metadata");
  nlohmann::ordered_json meta;
  try {
    meta = json::parse_untrusted(it->second, json::Limits{.max_depth = 8, .max_string_bytes = it->second.size(),
                                                          .max_elements = it->second.size()});
    if (meta.at("rank").get<int64_t>() != r || meta.at("world_size").get<int64_t>() != n ||
        meta.at("chunk_bytes").get<uint64_t>() != detail::kChecksumChunkBytes)
      f.fail("written for another rank, world size or checksum chunk (a stale file?)");
    for (const auto& d : meta.at("pieces")) {
      const std::string tensor = d.at("tensor").get<std::string>(), key = d.at("key").get<std::string>();
      const std::vector<int64_t> shape = d.at("shape").get<std::vector<int64_t>>();
      const int64_t offset = d.at("offset").get<int64_t>();
      auto e = by_name.find(tensor);
      if (e == by_name.end() || e->second->shape.size() != 1) f.fail("no 1-D tensor " + detail::shown(tensor));
      const int64_t length = e->second->shape[0];
      const uint64_t nbytes = e->second->end - e->second->begin;
      std::vector<uint32_t> crcs = d.at("crc32").get<std::vector<uint32_t>>();
      if (crcs.size() != detail::chunk_count(nbytes, detail::kChecksumChunkBytes))
        f.fail("tensor " + detail::shown(tensor) + " has the wrong number of checksums");
      auto [k, fresh] = keys.try_emplace(key);
      KeyEntry& entry = k->second;
      if (fresh) {
        entry.dtype = e->second->dtype;
        entry.shape = shape;
        entry.first_rank = r;
      } else if (entry.dtype != e->second->dtype || entry.shape != shape) {
        problems.push_back("key " + detail::shown(key) + ": rank " + std::to_string(entry.first_rank) + " gives " +
                           describe(entry.dtype, entry.shape) + ", rank " + std::to_string(r) + " gives " +
                           describe(e->second->dtype, shape));
        continue;
      }
      entry.tiles.push_back({r, offset, length});
      entry.pieces.push_back({{"file", file},
                              {"tensor", tensor},
                              {"offset", offset},
                              {"length", length},
                              {"crc32", std::move(crcs)}});
    }
  } catch (const nlohmann::json::exception& e) {
    f.fail(std::string("the '") + detail::kShardMetadataKey + "' metadata is malformed: " + e.what());
  } catch (const json::ParseError& e) {
    f.fail(std::string("the '") + detail::kShardMetadataKey + "' metadata is not valid JSON: " + e.what());
  }
  return layout.file_size;
}

void write_small_file(const std::string& path, const std::string& text) {
  detail::AtomicFile file(path, kWho);
  file.write(text.data(), text.size());
  file.commit();
}

// Best effort: makes the renames in `dir` durable. Called after the swap, when the new checkpoint
// is already in place, so a failure here is not reported as "nothing was committed".
void sync_directory(const std::string& dir) noexcept {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

// Phase 3 on rank 0.
void commit(const std::string& dir, const std::string& incoming, int n, const std::map<std::string, std::string>& metadata) {
  std::map<std::string, KeyEntry> keys;
  std::vector<std::string> problems;
  nlohmann::ordered_json shards = nlohmann::ordered_json::array();
  for (int r = 0; r < n; ++r) {
    const uint64_t bytes = collect_shard(incoming, r, n, keys, problems);
    shards.push_back({{"file", detail::shard_file_name(r, n)}, {"bytes", bytes}});
  }
  for (auto& [key, entry] : keys) {
    const std::string why = detail::tiling_problem(entry.tiles, detail::checked_numel(entry.shape), "rank");
    if (!why.empty()) problems.push_back("key " + detail::shown(key) + " " + describe(entry.dtype, entry.shape) + ": " + why);
  }
  if (!problems.empty()) {
    std::string more = problems.size() > 1 ? " (and " + std::to_string(problems.size() - 1) + " more)" : "";
    KIRZL_FAIL(ErrorCode::InvalidArgument, kWho, ": the pieces do not tile the tensors exactly once: ", problems.front(),
               more);
  }

  nlohmann::ordered_json index = {{"format", kShardedCheckpointFormat},
                                  {"version", kShardedCheckpointVersion},
                                  {"world_size", n},
                                  {"checksum", {{"algorithm", "crc32"}, {"chunk_bytes", detail::kChecksumChunkBytes}}},
                                  {"metadata", nlohmann::ordered_json::object()},
                                  {"shards", std::move(shards)},
                                  {"tensors", nlohmann::ordered_json::object()}};
  for (const auto& [k, v] : metadata) index["metadata"][k] = v;
  for (auto& [key, entry] : keys) {
    std::stable_sort(entry.pieces.begin(), entry.pieces.end(),
                     [](const auto& a, const auto& b) { return a["offset"].template get<int64_t>() < b["offset"].template get<int64_t>(); });
    index["tensors"][key] = {{"dtype", safetensors_dtype_name(entry.dtype)},
                             {"shape", entry.shape},
                             {"pieces", std::move(entry.pieces)}};
  }
  std::string text;
  try {
    text = index.dump(1);
  } catch (const nlohmann::json::type_error& e) {
    KIRZL_FAIL(ErrorCode::InvalidArgument, kWho, ": '", dir, "': metadata must be UTF-8 text (", e.what(), ")");
  }
  write_small_file(incoming + "/" + detail::kIndexFile, text + "\n");
  // Last, after every shard and the index are on disk: the marker that makes the directory a checkpoint.
  write_small_file(incoming + "/" + detail::kCompleteFile,
                   std::string(kShardedCheckpointFormat) + " " + std::to_string(kShardedCheckpointVersion) + "\n");

  // The swap (Note [sharded checkpoint commit]).
  const std::string previous = dir + detail::kPreviousSuffix;
  std::error_code ec;
  const bool have_dir = fs::exists(fs::symlink_status(dir, ec));
  const bool have_previous = fs::exists(fs::symlink_status(previous, ec));
  bool moved_dir = false;
  if (have_previous && have_dir && is_complete(dir)) {
    fs::remove_all(previous, ec);  // left by a crash after the swap
    if (ec) fail_fs(dir, "cannot remove the stale '" + previous + "'", ec);
  } else if (have_previous) {
    // A crash between the renames: `<dir>.previous` is the last checkpoint; `dir`, if any, is not one.
    fs::remove_all(dir, ec);
    if (ec) fail_fs(dir, "cannot remove the incomplete '" + dir + "'", ec);
  }
  if (fs::exists(fs::symlink_status(dir, ec))) {
    fs::rename(dir, previous, ec);
    if (ec) fail_fs(dir, "cannot move the previous checkpoint to '" + previous + "'", ec);
    moved_dir = true;
  }
  fs::rename(incoming, dir, ec);
  if (ec) {
    const std::error_code why = ec;
    if (moved_dir) fs::rename(previous, dir, ec);  // put the previous checkpoint back
    fail_fs(dir, "cannot move '" + incoming + "' into place", why);
  }
  const fs::path parent = fs::path(dir).parent_path();
  sync_directory(parent.empty() ? "." : parent.string());
  fs::remove_all(previous, ec);  // the new checkpoint is in place; a failure here leaves only a stale copy
}

}  // namespace

void save_sharded_checkpoint(const std::string& dir_arg, comm::Communicator& comm, const std::vector<TensorPiece>& pieces,
                             const std::map<std::string, std::string>& metadata) {
  const std::string dir = detail::strip_trailing_slashes(dir_arg);
  const std::string incoming = dir + detail::kIncomingSuffix;
  const int rank = comm.rank(), n = comm.size();
  auto remove_incoming = [&] {
    if (rank != 0) return;
    std::error_code ec;
    fs::remove_all(incoming, ec);
  };

  Outcome prepared;
  if (rank == 0) prepared = attempt([&] { prepare(dir, incoming); });
  agree(comm, prepared, dir, "preparing '" + incoming + "'");

  const Outcome written = attempt([&] { write_shard(incoming, rank, n, pieces); });
  agree(comm, written, dir, "writing the shards", remove_incoming);

  Outcome committed;
  if (rank == 0) committed = attempt([&] { commit(dir, incoming, n, metadata); });
  agree(comm, committed, dir, "committing (rank 0: index, COMPLETE, swap)", remove_incoming);
}

}  // namespace kirzl::io
