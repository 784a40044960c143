// Launcher detection. See launcher.h.
#include "comm/launcher.h"

#include <cerrno>
#include <cstdlib>
#include <string>

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

NcclDecision choose_nccl(const std::string& requested, bool has_nccl, int device_count, int local_size) {
  NcclDecision d;
  if (requested != "auto" && requested != "nccl") {
    d.reason = "backend \"" + requested + "\" was asked for";
    return d;
  }
  const int local = local_size > 0 ? local_size : 1;
  if (!has_nccl) d.reason = "kirzl was built without NCCL";
  else if (device_count <= 0) d.reason = "no CUDA device is visible";
  else if (local > device_count)
    d.reason = std::to_string(local) + " ranks on this node share " + std::to_string(device_count) +
               " GPU(s), and NCCL refuses two ranks on one GPU; CUDA tensors are staged through host memory";
  else {
    d.use = true;
    d.reason = std::to_string(local) + (local == 1 ? " rank" : " ranks") + " on this node, " +
               std::to_string(device_count) + " GPU(s) visible: one GPU per rank";
  }
  if (requested == "nccl" && !d.use) {
    if (!has_nccl) KIRZL_FAIL(ErrorCode::Unsupported, "kirzl was built without NCCL (backend \"nccl\" was asked for; "
                              "rebuild with NCCL installed, -DKIRZL_WITH_NCCL=ON, or use backend \"mpi\")");
    KIRZL_FAIL(ErrorCode::Unsupported, "comm::init: backend \"nccl\" cannot be used here: ", d.reason);
  }
  return d;
}

}  // namespace kirzl::comm::detail
