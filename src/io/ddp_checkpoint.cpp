// DDP checkpoints (kirzl/io/ddp_checkpoint.hpp): a sharded checkpoint whose keys are those of the
// single-file checkpoint. See Note [DDP checkpoint keys].
#include "kirzl/io/ddp_checkpoint.hpp"

#include <charconv>
#include <map>
#include <vector>

#include "comm/reducer_impl.h"
#include "io/checkpoint_metadata.h"
#include "io/rank_agreement.h"
#include "kirzl/autograd.hpp"
#include "kirzl/io/sharded_checkpoint.hpp"

namespace kirzl::io {

// Note [DDP checkpoint keys]
// A DDP checkpoint holds what save_checkpoint(path, model, opt) would write for the unsharded
// model and optimizer: "model.<name>" and "optim.<state_dict entry>", each a whole tensor, with the
// same metadata. A sharded optimizer's parameter k is a piece (elements [offset, offset + n) of the
// flattened tensor) of parameter W of the unsharded optimizer over the same groups, so its
// "state.k.<buffer>" is written as that range of "optim.state.W.<buffer>" (shape: parameter W's),
// its "state.k.step" as "optim.state.W.step" by the rank whose piece starts at element 0, and
// "param_groups.g.params" as the unsharded indices. Loading runs the map backwards for whatever
// shard layout the loading ranks have: a range read per piece, checksummed, from any number of
// files. Unsharded, rank r writes the model entries and the optimizer's per-parameter entries
// whose index is r modulo the world size (the write is spread, and nothing is gathered); rank 0
// writes the group and option scalars.

namespace {

const std::string kSave = "save_checkpoint", kLoad = "load_checkpoint";

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// "<head>.<index>.<field>" -> index, field.
bool split_entry(const std::string& key, const std::string& head, int64_t& index, std::string& field) {
  if (!starts_with(key, head + ".")) return false;
  const char* b = key.data() + head.size() + 1;
  const char* e = key.data() + key.size();
  auto r = std::from_chars(b, e, index);
  if (r.ec != std::errc() || r.ptr == b || r.ptr == e || *r.ptr != '.' || index < 0) return false;
  field.assign(r.ptr + 1, e);
  return !field.empty();
}

// The optimizer's parameter k as a piece of the unsharded optimizer's parameter `whole`.
struct OptPiece {
  int64_t whole = 0;
  int64_t offset = 0;
  Shape whole_shape;
  int64_t numel = 0;
};
struct OptMap {
  bool sharded = false;
  std::vector<OptPiece> pieces;       // per optimizer parameter (global index)
  std::vector<int64_t> group_sizes;   // per group: parameters of the unsharded optimizer
  std::vector<int64_t> local_first;   // per group: the optimizer's first index
};

OptMap optimizer_map(DistributedDataParallel& ddp, const optim::Optimizer& opt, const std::string& who) {
  auto& d = ddp_detail::ShardAccess::impl(ddp);
  OptMap m;
  m.sharded = d.sharded();
  int64_t k = 0;
  for (int64_t g = 0; g < opt.num_groups(); ++g) {
    m.local_first.push_back(k);
    const auto& params = opt.params(g);
    for (const Tensor& p : params) {
      if (m.sharded) {
        KIRZL_CHECK(d.layout.optimizer == &opt && k < static_cast<int64_t>(d.layout.whole_index.size()), who,
                    ": the optimizer (", opt.name(), ") is not the one this DistributedDataParallel's make_optimizer() "
                    "returned; a sharded DDP saves and loads only that one");
        m.pieces.push_back({d.layout.whole_index[k], d.layout.offset[k], d.layout.whole_shape[k], p.numel()});
      } else {
        m.pieces.push_back({k, 0, p.shape(), p.numel()});
      }
      ++k;
    }
    if (!m.sharded) m.group_sizes.push_back(static_cast<int64_t>(params.size()));
  }
  if (m.sharded) m.group_sizes = d.layout.group_sizes;
  return m;
}

Tensor on_cpu(const Tensor& t) { return t.to(Device::cpu()).contiguous(); }

std::string shard_name(Shard s) {
  return s == Shard::none ? "none" : s == Shard::optimizer ? "optimizer" : "gradients";
}

}  // namespace

void save_checkpoint(const std::string& dir, DistributedDataParallel& ddp, const optim::Optimizer* opt,
                     const CheckpointInfo& info) {
  ddp.synchronize_parameters();
  comm::Communicator& comm = ddp.communicator();
  const int rank = comm.rank(), n = comm.size();
  std::vector<TensorPiece> pieces;
  std::map<std::string, std::string> meta;
  const detail::Outcome collected = detail::attempt([&] {
    NoGradGuard no_grad;
    int64_t j = 0;
    for (const auto& [name, t] : ddp.module().state_dict())
      if (j++ % n == rank) pieces.push_back({detail::kModelPrefix + name, t.shape().vec(), 0, on_cpu(t)});
    if (opt != nullptr) {
      const OptMap m = optimizer_map(ddp, *opt, kSave);
      for (const auto& [key, t] : opt->state_dict()) {
        int64_t index = 0;
        std::string field;
        const std::string out = detail::kOptimPrefix;
        if (split_entry(key, "state", index, field)) {
          const OptPiece& p = m.pieces.at(static_cast<size_t>(index));
          const std::string name = out + "state." + std::to_string(p.whole) + "." + field;
          const bool whole_writer = m.sharded ? p.offset == 0 : p.whole % n == rank;
          if (field == "step" || !m.sharded) {
            if (whole_writer) pieces.push_back({name, t.shape().vec(), 0, on_cpu(t)});
          } else {
            pieces.push_back({name, p.whole_shape.vec(), p.offset, on_cpu(t).reshape({-1})});
          }
        } else if (rank == 0 && split_entry(key, "param_groups", index, field) && field == "params") {
          int64_t first = 0;
          for (int64_t g = 0; g < index; ++g) first += m.group_sizes.at(static_cast<size_t>(g));
          const int64_t size = m.group_sizes.at(static_cast<size_t>(index));
          pieces.push_back({out + key, {size}, 0, arange(first, first + size, 1, {.dtype = DType::i64})});
        } else if (rank == 0 && !(split_entry(key, "param_groups", index, field) && field == "params")) {
          pieces.push_back({out + key, t.shape().vec(), 0, on_cpu(t)});
        }
      }
    }
    meta = detail::checkpoint_metadata(info, opt);
    meta["world_size"] = std::to_string(n);
    meta["shard"] = shard_name(ddp_detail::ShardAccess::impl(ddp).opts.shard);
  });
  detail::agree(comm, collected, kSave, "'" + dir + "'", "collecting the state",
                "nothing was written and '" + dir + "' is as it was");
  save_sharded_checkpoint(dir, comm, pieces, meta);
}

CheckpointInfo load_checkpoint(const std::string& path, DistributedDataParallel& ddp, optim::Optimizer* opt,
                               bool strict) {
  ddp.synchronize_parameters();
  comm::Communicator& comm = ddp.communicator();
  nn::Module& model = ddp.module();
  detail::CheckpointMetadata meta;
  StateDict model_sd, optim_sd;
  const detail::Outcome read = detail::attempt([&] {
    const ShardedCheckpoint ck = ShardedCheckpoint::open(path);
    meta = detail::parse_checkpoint_metadata(path, ck.metadata());
    std::string stray;
    // The optimizer's entries per unsharded parameter, and the group entries.
    std::map<int64_t, std::vector<std::pair<std::string, std::string>>> state_of;  // whole -> (key, field)
    std::vector<std::string> scalars;
    std::map<int64_t, std::string> group_params;
    for (const std::string& key : ck.keys()) {
      if (starts_with(key, detail::kModelPrefix)) {
        model_sd.insert(key.substr(6), ck.read(key));
      } else if (starts_with(key, detail::kOptimPrefix)) {
        const std::string entry = key.substr(6);
        int64_t index = 0;
        std::string field;
        if (split_entry(entry, "state", index, field)) state_of[index].emplace_back(key, field);
        else if (split_entry(entry, "param_groups", index, field) && field == "params") group_params[index] = key;
        else scalars.push_back(key);
      } else {
        stray += (stray.empty() ? "'" : ", '") + key + "'";
      }
    }
    KIRZL_CHECK(!strict || stray.empty(), kLoad, ": '", path, "': entries that are neither model.* nor optim.*: ", stray);
    if (opt == nullptr) return;
    KIRZL_CHECK(!group_params.empty(), kLoad, ": '", path, "' holds no optimizer state, but an optimizer (",
                opt->name(), ") was given to load it into");
    KIRZL_CHECK(meta.optimizer.empty() || meta.optimizer == opt->name(), kLoad, ": '", path,
                "' holds the state of a ", meta.optimizer, " optimizer, but the optimizer given is ", opt->name());
    const OptMap m = optimizer_map(ddp, *opt, kLoad);
    const int64_t groups = static_cast<int64_t>(m.group_sizes.size());
    KIRZL_CHECK(static_cast<int64_t>(group_params.size()) == groups && group_params.rbegin()->first == groups - 1,
                kLoad, ": '", path, "' holds an optimizer with ", group_params.size(), " param group(s), this one has ",
                groups);
    int64_t first = 0;
    for (int64_t g = 0; g < groups; ++g) {
      const std::vector<int64_t> saved = ck.read(group_params[g]).to_vector<int64_t>();
      const int64_t size = m.group_sizes[static_cast<size_t>(g)];
      bool same = static_cast<int64_t>(saved.size()) == size;
      for (int64_t i = 0; same && i < size; ++i) same = saved[static_cast<size_t>(i)] == first + i;
      KIRZL_CHECK(same, kLoad, ": '", path, "': param group ", g, " holds ", saved.size(),
                  " parameter(s) in the checkpoint and ", size, " here (the groups must list the same parameters)");
      first += size;
      const int64_t local = static_cast<int64_t>(opt->params(g).size());
      optim_sd.insert("param_groups." + std::to_string(g) + ".params",
                      arange(m.local_first[static_cast<size_t>(g)], m.local_first[static_cast<size_t>(g)] + local, 1,
                             {.dtype = DType::i64}));
    }
    for (const std::string& key : scalars) optim_sd.insert(key.substr(6), ck.read(key));
    for (size_t k = 0; k < m.pieces.size(); ++k) {
      const OptPiece& p = m.pieces[k];
      auto it = state_of.find(p.whole);
      if (it == state_of.end()) continue;  // never stepped
      for (const auto& [key, field] : it->second) {
        const std::string local = "state." + std::to_string(k) + "." + field;
        if (field == "step") {
          optim_sd.insert(local, ck.read(key));
          continue;
        }
        KIRZL_CHECK(Shape(ck.shape(key)) == p.whole_shape, kLoad, ": '", path, "': '", key, "' has shape ",
                    Shape(ck.shape(key)).str(), " but parameter ", p.whole, " of the optimizer is ",
                    p.whole_shape.str());
        optim_sd.insert(local, m.sharded ? ck.read(key, p.offset, p.numel) : ck.read(key));
      }
    }
  });
  detail::agree(comm, read, kLoad, "'" + path + "'", "reading", "nothing was loaded");
  // Note [checkpoint load without backups]: every rank checks what it read against its model and
  // optimizer first (the checks load_state_dict would make, changing nothing), and all agree, so
  // that a checkpoint that does not fit one rank changes no rank. Only then does every rank load.
  // Loading a checked state can fail only with the device or memory itself, so no rank keeps a
  // copy of its old model and optimizer state to roll back to: that copy cost as much as the
  // load (45 % of its time at 1 rank, bench/RESULTS.md) and 3x the model's memory on the device.
  const detail::Outcome checked = detail::attempt([&] {
    model.check_state_dict(model_sd, strict);
    if (opt != nullptr) opt->check_state_dict(optim_sd);
  });
  detail::agree(comm, checked, kLoad, "'" + path + "'", "checking it against the model and optimizer",
                "nothing was loaded");

  const detail::Outcome applied = detail::attempt([&] {
    model.load_state_dict(model_sd, strict);
    if (opt != nullptr) opt->load_state_dict(optim_sd);
  });
  detail::agree(comm, applied, kLoad, "'" + path + "'", "loading into the model and optimizer",
                "the state was checked on every rank, so the device or memory failed: the model and optimizer may "
                "be partly loaded");
  detail::restore_generator(meta);
  return meta.info;
}

}  // namespace kirzl::io
