// Launcher detection. See launcher.h.
#include "comm/launcher.h"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <thread>

#include "kirzl/core/error.hpp"

namespace kirzl::comm::detail {

namespace {

// The integer in variable `name`, or `fallback` when unset or empty.
int env_int(const EnvLookup& getenv, const char* name, int fallback) {
  const char* v = getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  errno = 0;
  long x = std::strtol(v, &end, 10);
  KIRZL_CHECK(end != v && *end == '\0' && errno == 0 && x >= 0 && x <= 1 << 30, "comm::init: environment variable ",
              name, "='", v, "' is not a non-negative integer");
  return static_cast<int>(x);
}

bool is_set(const EnvLookup& getenv, const char* name) {
  const char* v = getenv(name);
  return v && *v;
}

LaunchInfo make(const EnvLookup& getenv, const char* launcher, const char* rank_var, const char* size_var,
                const char* local_rank_var, const char* local_size_var) {
  LaunchInfo info;
  info.launcher = launcher;
  info.rank = env_int(getenv, rank_var, 0);
  info.size = size_var ? env_int(getenv, size_var, -1) : -1;
  info.local_rank = local_rank_var ? env_int(getenv, local_rank_var, -1) : -1;
  info.local_size = local_size_var ? env_int(getenv, local_size_var, -1) : -1;
  KIRZL_CHECK(info.size != 0, "comm::init: ", size_var, " is 0 (launcher ", launcher, ")");
  KIRZL_CHECK(info.size < 0 || info.rank < info.size, "comm::init: rank ", info.rank, " from ", rank_var,
              " is not below the world size ", info.size, " from ", size_var, " (launcher ", launcher, ")");
  KIRZL_CHECK(info.local_rank < 0 || info.local_size < 0 || info.local_rank < info.local_size, "comm::init: local rank ",
              info.local_rank, " from ", local_rank_var, " is not below the local size ", info.local_size, " from ",
              local_size_var);
  return info;
}

// The number of tasks on node `node` from SLURM's compressed per-node list, e.g. "2(x3),1": two
// tasks on each of nodes 0-2, one on node 3. -1 when the list does not reach that node.
int tasks_on_node(const char* var, const char* list, int node) {
  const char* p = list;
  int first = 0;  // the first node the current entry covers
  while (*p) {
    char* end = nullptr;
    const long tasks = std::strtol(p, &end, 10);
    bool ok = end != p && tasks >= 0;
    long repeat = 1;
    p = end;
    if (ok && *p == '(') {
      ok = p[1] == 'x';
      repeat = std::strtol(p + 2, &end, 10);
      ok = ok && end != p + 2 && repeat >= 1 && *end == ')';
      p = ok ? end + 1 : p;
    }
    KIRZL_CHECK(ok && (*p == '\0' || *p == ','), "comm::init: environment variable ", var, "='", list,
                "' is not a SLURM task list like \"2(x3),1\"");
    if (node < first + repeat) return static_cast<int>(tasks);
    first += static_cast<int>(repeat);
    if (*p == ',') ++p;
  }
  return -1;
}

}  // namespace

LaunchInfo detect_launch(const EnvLookup& getenv) {
  if (is_set(getenv, "KIRZL_WORLD_SIZE") || is_set(getenv, "KIRZL_RANK")) {
    KIRZL_CHECK(is_set(getenv, "KIRZL_WORLD_SIZE") && is_set(getenv, "KIRZL_RANK"),
                "comm::init: set both KIRZL_RANK and KIRZL_WORLD_SIZE, or neither");
    return make(getenv, "kirzl", "KIRZL_RANK", "KIRZL_WORLD_SIZE", "KIRZL_LOCAL_RANK", "KIRZL_LOCAL_SIZE");
  }
  if (is_set(getenv, "OMPI_COMM_WORLD_SIZE"))
    return make(getenv, "openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
                "OMPI_COMM_WORLD_LOCAL_SIZE");
  // A task of an srun step. See Note [srun] in launcher.h.
  if (is_set(getenv, "SLURM_PROCID") && is_set(getenv, "SLURM_STEP_NUM_TASKS")) {
    LaunchInfo info = make(getenv, "slurm", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID", nullptr);
    if (const char* list = getenv("SLURM_STEP_TASKS_PER_NODE"); list && *list)
      info.local_size = tasks_on_node("SLURM_STEP_TASKS_PER_NODE", list, env_int(getenv, "SLURM_NODEID", 0));
    KIRZL_CHECK(info.local_rank < 0 || info.local_size < 0 || info.local_rank < info.local_size,
                "comm::init: local rank ", info.local_rank, " from SLURM_LOCALID is not below the ", info.local_size,
                " tasks of this node from SLURM_STEP_TASKS_PER_NODE");
    return info;
  }
  if (is_set(getenv, "PMIX_RANK"))
    return make(getenv, "pmix", "PMIX_RANK", is_set(getenv, "PMI_SIZE") ? "PMI_SIZE" : nullptr, nullptr, nullptr);
  if (is_set(getenv, "PMI_RANK") || is_set(getenv, "PMI_SIZE"))
    return make(getenv, "pmi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS");
  if (is_set(getenv, "SLURM_PROCID") && is_set(getenv, "SLURM_NTASKS")) {
    LaunchInfo info = make(getenv, "slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", nullptr);
    // SLURM_TASKS_PER_NODE looks like "2(x3),1"; only the simple uniform form is used here.
    if (const char* t = getenv("SLURM_NTASKS_PER_NODE"); t && *t) info.local_size = env_int(getenv, "SLURM_NTASKS_PER_NODE", -1);
    return info;
  }
  return LaunchInfo{};
}

BackendChoice choose_backend(const LaunchInfo& info, const std::string& requested_name, bool has_mpi) {
  KIRZL_CHECK(requested_name == "auto" || requested_name == "mpi" || requested_name == "inprocess" ||
                  requested_name == "nccl",
              "comm::init: unknown backend '", requested_name, "' (expected \"auto\", \"nccl\", \"mpi\" or \"inprocess\")");
  // NCCL rides on the host backend "auto" picks: MPI bootstraps it when there are several ranks.
  const std::string requested = requested_name == "nccl" ? std::string("auto") : requested_name;
  const bool multi = info.size > 1 || (info.size < 0 && info.launcher != "none");
  if (requested == "inprocess" || (requested == "auto" && !multi)) {
    KIRZL_CHECK(!multi, "comm::init: backend \"inprocess\" runs a world of size 1, but the launcher (", info.launcher,
                ") started ", info.size < 0 ? std::string("several") : std::to_string(info.size),
                " ranks; use backend \"auto\" or \"mpi\"");
    return BackendChoice::InProcess;
  }
  KIRZL_CHECK_CODE(has_mpi, ErrorCode::Unsupported, "kirzl was built without MPI, so it cannot ",
                   multi ? "join the " + (info.size < 0 ? std::string("multi-rank") : std::to_string(info.size) + "-rank") +
                               " world started by " + info.launcher
                         : std::string("use backend \"mpi\""),
                   " (rebuild kirzl with MPI installed, -DKIRZL_WITH_MPI=ON)");
  return BackendChoice::Mpi;
}

std::string requested_backend(const std::string& option, const char* env_backend) {
  if (option != "auto" || !env_backend || !*env_backend) return option;
  return env_backend;
}

int shared_core_threads(int cores, int local_size, bool omp_num_threads_set) {
  if (omp_num_threads_set || local_size <= 1 || cores <= 0) return 0;
  return std::max(1, cores / local_size);
}

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

int choose_device(int local_rank, int visible_devices) {
  if (visible_devices <= 0) return -1;
  return (local_rank > 0 ? local_rank : 0) % visible_devices;
}

NcclCandidate::Vote nccl_vote(const std::string& requested, bool has_nccl, int device_count) {
  if (requested != "auto" && requested != "nccl") return NcclCandidate::Vote::OtherBackend;
  if (!has_nccl) return NcclCandidate::Vote::NoNccl;
  if (device_count <= 0) return NcclCandidate::Vote::NoDevice;
  return NcclCandidate::Vote::Able;
}

namespace {

std::string vote_reason(NcclCandidate::Vote v, const std::string& requested) {
  switch (v) {
    case NcclCandidate::Vote::OtherBackend: return "backend \"" + requested + "\" was asked for";
    case NcclCandidate::Vote::NoNccl: return "kirzl was built without NCCL";
    case NcclCandidate::Vote::NoDevice: return "no CUDA device is visible";
    case NcclCandidate::Vote::Able: break;
  }
  return "it can use NCCL";
}

// Why rank `r` (not this one) voted against: told without its backend name, which only it knows.
std::string other_reason(NcclCandidate::Vote v) {
  return v == NcclCandidate::Vote::OtherBackend ? "another backend was asked for there (KIRZL_BACKEND)"
                                                : vote_reason(v, "");
}

}  // namespace

NcclDecision choose_nccl(const std::string& requested, const std::vector<NcclCandidate>& ranks, int rank) {
  KIRZL_CHECK(rank >= 0 && rank < static_cast<int>(ranks.size()), "choose_nccl: rank ", rank, " is not in [0, ",
              ranks.size(), ")");
  NcclDecision d;
  const NcclCandidate& me = ranks[static_cast<size_t>(rank)];
  if (me.vote != NcclCandidate::Vote::Able) {
    d.reason = vote_reason(me.vote, requested);
  } else {
    for (size_t r = 0; r < ranks.size() && d.reason.empty(); ++r)
      if (ranks[r].vote != NcclCandidate::Vote::Able)
        d.reason = "rank " + std::to_string(r) + " (on " + ranks[r].host + ") cannot use NCCL: " + other_reason(ranks[r].vote) +
                   "; every rank must use the same backend";
  }
  if (d.reason.empty()) {
    // Every rank can; now no two ranks of a node may share a physical GPU. This rank's node is
    // described in the reason (the ranks and GPUs there); a clash on another node is named too.
    for (size_t i = 0; i < ranks.size() && d.reason.empty(); ++i)
      for (size_t j = i + 1; j < ranks.size(); ++j)
        if (ranks[i].host == ranks[j].host && ranks[i].gpu == ranks[j].gpu) {
          std::vector<std::string> gpus;
          int local = 0;
          for (const NcclCandidate& c : ranks)
            if (c.host == ranks[i].host) {
              ++local;
              if (std::find(gpus.begin(), gpus.end(), c.gpu) == gpus.end()) gpus.push_back(c.gpu);
            }
          d.reason = std::to_string(local) + " ranks on " + (ranks[i].host == me.host ? "this node" : "node " + ranks[i].host) +
                     " share " + std::to_string(gpus.size()) + " GPU(s) (ranks " + std::to_string(i) + " and " +
                     std::to_string(j) + " both on " + ranks[i].gpu +
                     "), and NCCL refuses two ranks on one GPU; CUDA tensors are staged through host memory";
          break;
        }
  }
  if (d.reason.empty()) {
    int local = 0;
    for (const NcclCandidate& c : ranks) local += c.host == me.host ? 1 : 0;
    d.use = true;
    d.reason = std::to_string(local) + (local == 1 ? " rank" : " ranks") + " on this node, this one on GPU " + me.gpu +
               ": one GPU per rank";
  }
  if (requested == "nccl" && !d.use) {
    if (me.vote == NcclCandidate::Vote::NoNccl)
      KIRZL_FAIL(ErrorCode::Unsupported, "kirzl was built without NCCL (backend \"nccl\" was asked for; "
                 "rebuild with NCCL installed, -DKIRZL_WITH_NCCL=ON, or use backend \"mpi\")");
    KIRZL_FAIL(ErrorCode::Unsupported, "comm::init: backend \"nccl\" cannot be used here: ", d.reason);
  }
  return d;
}

}  // namespace kirzl::comm::detail
