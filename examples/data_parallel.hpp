// What both examples do the same way around DistributedDataParallel: the --shard flag's value as
// a kirzl::Shard, the checkpoint in the form the run writes (Note [checkpoint forms] in
// examples/args/args.hpp) and resuming from either form, and the memory figures of the last JSON
// line, and the energy figures of the metrics log and the last line. Header-only, next to the
// examples that include it.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <kirzl/comm.hpp>
#include <kirzl/core/allocator.hpp>
#include <kirzl/ddp.hpp>
#include <kirzl/io/checkpoint.hpp>
#include <kirzl/io/energy.hpp>
#include <kirzl/io/ddp_checkpoint.hpp>
#include <kirzl/io/sharded_checkpoint.hpp>
#include <kirzl/kirzl.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "args.hpp"

namespace kirzl::examples {

/// The value of --shard (one of shard_choices(); the parser has checked it).
inline Shard parse_shard(const std::string& shard) {
  if (shard == "optimizer") return Shard::optimizer;
  if (shard == "gradients") return Shard::gradients;
  KIRZL_CHECK(shard == "none", "--shard '", shard, "': expected one of none|optimizer|gradients");
  return Shard::none;
}

/// The metadata of the checkpoint at `path`, a file or a directory of any world size, read from
/// its header or index alone ("config.<key>" holds the run settings the examples save).
inline std::map<std::string, std::string> checkpoint_metadata(const std::string& path) {
  return io::ShardedCheckpoint::open(path).metadata();
}

/// "2 ranks, --shard gradients" for a checkpoint's metadata; "1 rank" for one without those
/// entries (a file of one process, which is not sharded).
inline std::string checkpoint_origin(const std::map<std::string, std::string>& metadata) {
  auto ws = metadata.find("world_size"), sh = metadata.find("shard");
  const std::string ranks = ws == metadata.end() ? "1" : ws->second;
  return ranks + (ranks == "1" ? " rank" : " ranks") + ", --shard " + (sh == metadata.end() ? "none" : sh->second);
}

/// Writes the run's checkpoint to `path` in `form`: a file written by rank 0 (the only rank), or a
/// directory every rank writes its share into. Every rank calls it; it returns when the checkpoint
/// is complete on every rank.
inline void save_run_checkpoint(const std::string& path, CheckpointForm form, DistributedDataParallel& ddp,
                                const optim::Optimizer* opt, const io::CheckpointInfo& info,
                                const comm::ProcessGroup& world) {
  if (form == CheckpointForm::directory) {
    io::save_checkpoint(path, ddp, opt, info);  // a collective; waits for a sharded step's all-gather
  } else if (world.rank() == 0) {
    io::save_checkpoint(path, ddp.module(), opt, info);
  }
  world.communicator()->barrier({.tag = "checkpoint written"}).wait();  // complete before anyone goes on
}

/// Loads the checkpoint at `path` (a file, or a directory written at any world size and --shard)
/// into the DDP's module and `opt`, resharding the optimizer state to this run. One process
/// without sharding reads a file as it always did (io::load_checkpoint(path, model, opt)).
inline io::CheckpointInfo load_run_checkpoint(const std::string& path, CheckpointForm form,
                                              DistributedDataParallel& ddp, optim::Optimizer* opt) {
  std::error_code ec;
  if (form == CheckpointForm::file && std::filesystem::is_regular_file(path, ec))
    return io::load_checkpoint(path, ddp.module(), opt);
  return io::load_checkpoint(path, ddp, opt);  // a collective
}

/// Bytes of the tensors of `opt`'s state_dict(): moments or momentum buffers, step counters,
/// master weights (of the whole model without sharding, of this rank's shard with it). Copies the
/// state for a moment, so read peak_rss_bytes() first.
inline int64_t optimizer_state_bytes(const optim::Optimizer& opt) {
  int64_t bytes = 0;
  for (const auto& [name, t] : opt.state_dict()) bytes += static_cast<int64_t>(t.nbytes());
  return bytes;
}

/// The process's peak resident set size in bytes so far (getrusage; Linux counts KiB). It includes
/// the blocks kirzl's CPU allocator keeps for reuse (Note [cpu caching allocator]); see
/// peak_tensor_bytes for the live tensors alone.
inline int64_t peak_rss_bytes() {
  struct rusage ru {};
  if (::getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

/// The most bytes of live CPU tensors at any time so far (kirzl's CPU allocator; its cache not
/// counted).
inline int64_t peak_tensor_bytes() { return static_cast<int64_t>(cpu_allocator_stats().peak_allocated); }

/// Every rank's `value`, in rank order, on every rank (one all_reduce).
inline std::vector<int64_t> per_rank(const comm::ProcessGroup& world, int64_t value) {
  std::vector<double> slots(static_cast<size_t>(world.size()), 0.0);
  slots[static_cast<size_t>(world.rank())] = static_cast<double>(value);  // exact below 2^53
  Tensor t = from_vector<double>(slots, {world.size()});
  world.communicator()->all_reduce(t, {.op = comm::ReduceOp::Sum, .tag = "per-rank figures"}).wait();
  std::vector<int64_t> out;
  for (double v : t.to_vector<double>()) out.push_back(static_cast<int64_t>(v));
  return out;
}

/// `v` as a JSON list: "[1, 2, 3]".
inline std::string json_list(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

/// Where the world's ranks run, for the examples' last JSON line: `"launcher": "slurm", "nodes": N,
/// "local_size": N, "local_rank_per_rank": [...], "local_size_per_rank": [...], "node_per_rank":
/// [...]`. `launcher` is what comm::init() detected; `nodes` counts the ranks' distinct host names
/// and `node_per_rank` numbers them in the order of their first rank (as SLURM_NODEID does under a
/// block distribution); `local_size` is rank 0's, and the per-rank lists hold every rank's
/// ProcessGroup::local_rank() and local_size() (so a job's scheduler variables, e.g. SLURM_LOCALID
/// and SLURM_TASKS_PER_NODE, can be checked against what kirzl saw). Every rank calls it.
inline std::string world_layout_json(const comm::ProcessGroup& world) {
  const std::vector<int64_t> local_ranks = per_rank(world, world.local_rank());
  const std::vector<int64_t> local_sizes = per_rank(world, world.local_size());
  std::vector<std::string> distinct;
  std::vector<int64_t> node_of;
  for (const std::string& host : world.hosts()) {
    auto it = std::find(distinct.begin(), distinct.end(), host);
    node_of.push_back(static_cast<int64_t>(it - distinct.begin()));
    if (it == distinct.end()) distinct.push_back(host);
  }
  return "\"launcher\": \"" + world.launcher() + "\", \"nodes\": " + std::to_string(distinct.size()) +
         ", \"local_size\": " + std::to_string(world.local_size()) + ", \"local_rank_per_rank\": " +
         json_list(local_ranks) + ", \"local_size_per_rank\": " + json_list(local_sizes) +
         ", \"node_per_rank\": " + json_list(node_of);
}

/// The memory figures of the examples' last JSON line, gathered from every rank; see
/// MemoryFigures::json.
struct MemoryFigures {
  std::vector<int64_t> optimizer_state_bytes, peak_rss_bytes, peak_tensor_bytes;  ///< per rank

  /// Every rank calls it after training: the peaks first, then the optimizer state's size.
  static MemoryFigures gather(const comm::ProcessGroup& world, const optim::Optimizer& opt) {
    const int64_t rss = examples::peak_rss_bytes(), tensors = examples::peak_tensor_bytes();
    const int64_t state = examples::optimizer_state_bytes(opt);
    return {per_rank(world, state), per_rank(world, rss), per_rank(world, tensors)};
  }
  /// Rank 0's figures and every rank's: `"optimizer_state_bytes": N, "peak_rss_bytes": N,
  /// "peak_tensor_bytes": N, "optimizer_state_bytes_per_rank": [...], "peak_rss_bytes_per_rank":
  /// [...], "peak_tensor_bytes_per_rank": [...]`.
  std::string json() const {
    std::string s;
    for (const auto& [key, v] : {std::pair{"optimizer_state_bytes", &optimizer_state_bytes},
                                 std::pair{"peak_rss_bytes", &peak_rss_bytes},
                                 std::pair{"peak_tensor_bytes", &peak_tensor_bytes}})
      s += std::string(s.empty() ? "" : ", ") + "\"" + key + "\": " + std::to_string(v->at(0));
    for (const auto& [key, v] : {std::pair{"optimizer_state_bytes_per_rank", &optimizer_state_bytes},
                                 std::pair{"peak_rss_bytes_per_rank", &peak_rss_bytes},
                                 std::pair{"peak_tensor_bytes_per_rank", &peak_tensor_bytes}})
      s += std::string(", \"") + key + "\": " + json_list(*v);
    return s;
  }
};

/// Every rank's `value`, in rank order, on every rank (one all_reduce); NaN stays NaN.
inline std::vector<double> per_rank_double(const comm::ProcessGroup& world, double value) {
  std::vector<double> slots(static_cast<size_t>(world.size()), 0.0);
  slots[static_cast<size_t>(world.rank())] = value;
  Tensor t = from_vector<double>(slots, {world.size()});
  world.communicator()->all_reduce(t, {.op = comm::ReduceOp::Sum, .tag = "per-rank figures"}).wait();
  return t.to_vector<double>();
}

/// `v` as a JSON number, or null when it is NaN or infinite.
inline std::string json_number_or_null(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

/// `v` as a JSON list of numbers, null where NaN: "[1.5, null]".
inline std::string json_list(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + json_number_or_null(v[i]);
  return s + "]";
}

/// `s` as a quoted JSON string.
inline std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

/// The job's energy: each rank's io::EnergyMeter on its device (NVML for a GPU, RAPL for the
/// CPU), and the job's joules from every rank's, each counter counted once. Ranks on one node
/// that read the same counter (the same CPU packages, or two ranks on one GPU) would otherwise
/// count the same joules twice: the ranks of one node and one counter share a key (a hash of the
/// host name and the meter's source), and only the first rank with a key adds its joules.
/// The figures are null, never zero, unless every rank has a counter (Note [energy never zero]).
class JobEnergy {
 public:
  /// Every rank, collectively: builds this rank's meter and learns every rank's key and
  /// availability. A rank whose meter is not available says why on stderr.
  JobEnergy(const comm::ProcessGroup& world, Device dev, const std::string& program)
      : world_(world), meter_(io::EnergyMeter::Options{.device = dev}) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    const double key = static_cast<double>(std::hash<std::string>{}(std::string(host) + "|" + meter_.source()) &
                                           ((uint64_t{1} << 52) - 1));  // exact in a double
    keys_ = per_rank_double(world, meter_.available() ? key : NAN);
    for (size_t r = 0; r < keys_.size() && missing_rank_ < 0; ++r)
      if (std::isnan(keys_[r])) missing_rank_ = static_cast<int>(r);
    if (!meter_.available() && world.rank() != 0)
      std::fprintf(stderr, "%s: rank %d: energy not available: %s\n", program.c_str(), world.rank(),
                   meter_.unavailable_reason().c_str());
  }

  /// True when every rank has a counter.
  bool available() const { return missing_rank_ < 0; }
  /// What is measured (rank 0's source), or "not available: <why>": rank 0's reason, or the first
  /// rank without a counter (whose reason is on its stderr).
  std::string status() const {
    if (!meter_.available()) return "not available: " + meter_.unavailable_reason();
    if (missing_rank_ >= 0)
      return "not available: rank " + std::to_string(missing_rank_) + " has no energy counter (its reason is on its stderr)";
    return meter_.source();
  }
  /// This rank's meter.
  io::EnergyMeter& meter() { return meter_; }

  /// Every rank, collectively: every rank's `rank_joules` (per_rank, NaN where not available),
  /// and the job's joules, each counter once (NaN unless every rank has a counter).
  double job_joules(double rank_joules, std::vector<double>* per_rank = nullptr) const {
    std::vector<double> all = per_rank_double(world_, rank_joules);
    double total = available() ? 0.0 : NAN;
    for (size_t r = 0; r < all.size() && available(); ++r) {
      bool first = true;
      for (size_t q = 0; q < r; ++q) first = first && keys_[q] != keys_[r];
      if (first) total += all[r];
    }
    if (per_rank) *per_rank = std::move(all);
    return total;
  }

 private:
  const comm::ProcessGroup& world_;
  io::EnergyMeter meter_;
  std::vector<double> keys_;
  int missing_rank_ = -1;
};

}  // namespace kirzl::examples
