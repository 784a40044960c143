// The KIRZL_* variables: declarations, checked reads, and the reference page.
#include "kirzl/environment.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "core/environment.h"
#include "kirzl/core/error.hpp"

namespace kirzl::env {

namespace {

constexpr long long kMaxCount = 1ll << 30;  // MPI counts are int; the MPI backend's default chunk

// The one list. Keep each meaning short: the reference page prints it as a table cell.
constexpr Variable kVariables[] = {
    // Distributed training
    {"KIRZL_TIMEOUT", Type::Seconds, "300",
     "Default timeout of every collective, in seconds. A collective that has not completed by then fails with "
     "Error{Timeout}, a report of every rank's recent collectives is printed, and the job ends (Note [abort on failure]).",
     "Distributed training", 0, 0, ""},
    {"KIRZL_REPORT", Type::Path, "stderr only",
     "File that also receives the timeout report (overwritten).", "Distributed training"},
    {"KIRZL_VERBOSE", Type::Flag, "off",
     "comm::init() prints, on rank 0, the backend it chose and why, the hosts, devices and a timed preflight all-reduce.",
     "Distributed training"},
    {"KIRZL_BACKEND", Type::Choice, "auto",
     "Backend of comm::init() when InitOptions::backend is \"auto\": auto, inprocess (one rank), mpi, or nccl "
     "(fails when NCCL cannot be used).",
     "Distributed training", 0, 0, "auto|inprocess|mpi|nccl"},
    {"KIRZL_RANK", Type::Integer, "from the launcher",
     "This process's rank, for launchers kirzl does not know (set with KIRZL_WORLD_SIZE).", "Distributed training", 0,
     kMaxCount},
    {"KIRZL_WORLD_SIZE", Type::Integer, "from the launcher",
     "Number of ranks, for launchers kirzl does not know (set with KIRZL_RANK).", "Distributed training", 1, kMaxCount},
    {"KIRZL_LOCAL_RANK", Type::Integer, "from the launcher",
     "This process's rank among those of its node (chooses its GPU).", "Distributed training", 0, kMaxCount},
    {"KIRZL_LOCAL_SIZE", Type::Integer, "from the launcher",
     "Number of ranks on this node (shares the node's cores among them).", "Distributed training", 1, kMaxCount},
    {"KIRZL_MPI_MAX_COUNT", Type::Integer, "1073741824",
     "Elements per MPI call; larger messages are sent in pieces of this size. Lower it to exercise the chunked paths.",
     "Distributed training", 1, kMaxCount},
    {"KIRZL_MPI_RING_BYTES", Type::Integer, "32768",
     "With KIRZL_ALLREDUCE=auto on one node: all-reduces of at least this many bytes use kirzl's pipelined ring "
     "over MPI (Note [ring all-reduce]); smaller ones use MPI_Iallreduce (Note [mpi all-reduce choice]).",
     "Distributed training", 0, 1ll << 62},
    {"KIRZL_MPI_RING_PIECE_BYTES", Type::Integer, "524288",
     "Largest message of kirzl's ring all-reduce over MPI: each ring step's segment travels in pieces of this size, "
     "all posted at once, so that a received piece is reduced while the next arrive (Note [ring all-reduce]).",
     "Distributed training", 1, 1 << 30},
    {"KIRZL_MPI_FUSED_BYTES", Type::Integer, "16384",
     "On MPI communicators of n <= 8 ranks: all-reduces of at most this many bytes / (n - 1) travel with the "
     "arrival check in one exchange (Note [fused small all-reduce]); 0 keeps the header and the data apart. "
     "Must be the same on every rank: creating a communicator fails otherwise.",
     "Distributed training", 0, 1 << 20},
    {"KIRZL_MPI_HIERARCHICAL_BYTES", Type::Integer, "32768",
     "With KIRZL_ALLREDUCE=auto across nodes: all-reduces of at least this many bytes run hierarchically "
     "(Note [hierarchical all-reduce]); smaller ones use MPI_Iallreduce.",
     "Distributed training", 0, 1ll << 62},
    {"KIRZL_MPI_HIERARCHICAL_CHUNK_BYTES", Type::Integer, "1048576 on 2 nodes, 262144 on more",
     "Chunk of the hierarchical all-reduce's pipeline: while one chunk crosses the nodes, the next is "
     "reduce-scattered and the one before all-gathered inside the node (Note [hierarchical pipeline]); 0: one "
     "chunk, the three phases one after the other. Must be the same on every rank.",
     "Distributed training", 0, 1ll << 62},
    {"KIRZL_ALLREDUCE", Type::Choice, "auto",
     "Algorithm of the MPI backend's all-reduce (Note [mpi all-reduce choice]): auto (across nodes with equal "
     "numbers of ranks, hierarchical from KIRZL_MPI_HIERARCHICAL_BYTES; else kirzl's flat ring from "
     "KIRZL_MPI_RING_BYTES; MPI_Iallreduce below), flat (kirzl's ring at every size), hierarchical (where the nodes allow it, else the "
     "flat ring, saying why once), or mpi (MPI_Iallreduce at every size).",
     "Distributed training", 0, 0, "auto|flat|hierarchical|mpi"},
    {"KIRZL_EMULATE_NODES", Type::Integer, "the real nodes",
     "For tests on one machine: the MPI backend's all-reduce treats consecutive blocks of this many world ranks "
     "as nodes (Note [mpi nodes]); local_rank and local_size are unchanged.",
     "Distributed training", 1, kMaxCount},
    // Memory
    {"KIRZL_CPU_CACHE_MB", Type::Integer, "2048",
     "Cap, in MiB, of the freed CPU blocks the caching allocator keeps for reuse; 0 caches nothing.", "Memory", 0,
     1ll << 40},
    {"KIRZL_CUDA_NO_CACHE", Type::Flag, "off",
     "The CUDA allocator frees every block at once instead of caching it (for compute-sanitizer's memcheck).",
     "Memory"},
    // GPU kernels
    {"KIRZL_GEMM_EPILOGUES", Type::Flag, "off",
     "On CUDA, linear_bias_gelu, gelu_mlp (GPT's fused MLP) and linear's backward use cuBLASLt's GELU_AUX_BIAS, "
     "DGELU_BGRAD and BGRADB epilogues (Note [GEMM epilogues]) instead of separate GELU and bias-gradient kernels. "
     "Off until a GPU run has verified them (scripts/gpu-check.sh turns it on). Read once per process.",
     "GPU kernels"},
    {"KIRZL_ATTENTION", Type::Choice, "auto",
     "Kernels of causal_attention and causal_attention_qkv: auto (on CUDA cuDNN's fused attention where the build "
     "has the cuDNN frontend and cuDNN takes the shape and dtype, else the flash kernels; on the CPU the flash "
     "kernels), cudnn (CUDA tensors in cuDNN, Error{Unsupported} naming why where it cannot; CPU tensors as auto), "
     "flash (kirzl's own flash kernels, on CUDA where they take the dtype and head dim), or reference (the kernels "
     "that save the T x T probabilities, on both devices: for tests and debugging). Note [cudnn sdpa], "
     "Note [attention path]. Read at every call.",
     "GPU kernels", 0, 0, "auto|cudnn|flash|reference"},
    // Debugging
    {"KIRZL_SYNC_INDEX_CHECKS", Type::Flag, "off",
     "embedding, cross_entropy and linear_cross_entropy check their indices at the call, synchronising with the "
     "GPU, instead of at the next synchronising point (Note [deferred index check]). Read once per process.",
     "Debugging"},
    {"KIRZL_TIMELINE", Type::Path, "no timeline",
     "Where Timeline::path_from_env() puts each rank's Chrome trace: <value>.rank<r>.json, or <value> itself for "
     "rank 0 when it ends in .json.",
     "Debugging"},
};

const char* type_name(Type t) {
  switch (t) {
    case Type::Flag: return "flag";
    case Type::Integer: return "integer";
    case Type::Seconds: return "seconds";
    case Type::Path: return "path";
    case Type::Choice: return "choice";
  }
  return "?";
}

// The value of a declared variable of type `t`; nullopt when unset or empty.
std::optional<std::string> raw(std::string_view name, Type t) {
  const Variable& v = variable(name);
  KIRZL_INTERNAL_ASSERT(v.type == t, "env: ", name, " is declared as a ", type_name(v.type), ", read as a ",
                        type_name(t));
  const char* s = std::getenv(std::string(name).c_str());
  if (s == nullptr || *s == '\0') return std::nullopt;
  return std::string(s);
}

[[noreturn]] void bad_value(std::string_view name, const std::string& value, const std::string& expected) {
  KIRZL_FAIL(ErrorCode::InvalidArgument, "environment variable ", name, "='", value, "': expected ", expected,
             " (see docs/environment.md)");
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::span<const Variable> variables() { return kVariables; }

const Variable& variable(std::string_view name) {
  for (const Variable& v : kVariables)
    if (v.name == name) return v;
  KIRZL_FAIL(ErrorCode::InvalidArgument, "env: kirzl declares no environment variable ", name,
             " (include/kirzl/environment.hpp lists them)");
}

bool flag(std::string_view name) {
  const auto s = raw(name, Type::Flag);
  if (!s) return false;
  const std::string v = lower(*s);
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  bad_value(name, *s, "1/true/yes/on or 0/false/no/off");
}

std::optional<long long> integer(std::string_view name) {
  const auto s = raw(name, Type::Integer);
  if (!s) return std::nullopt;
  const Variable& d = variable(name);
  const std::string expected = "an integer in [" + std::to_string(d.min) + ", " + std::to_string(d.max) + "]";
  errno = 0;
  char* end = nullptr;
  const long long x = std::strtoll(s->c_str(), &end, 10);
  if (std::isspace(static_cast<unsigned char>(s->front())) || end == s->c_str() || *end != '\0' || errno == ERANGE || x < d.min || x > d.max) bad_value(name, *s, expected);
  return x;
}

std::optional<double> seconds(std::string_view name) {
  const auto s = raw(name, Type::Seconds);
  if (!s) return std::nullopt;
  char* end = nullptr;
  const double x = std::strtod(s->c_str(), &end);
  if (end == s->c_str() || *end != '\0' || !std::isfinite(x) || x <= 0) bad_value(name, *s, "a positive number of seconds");
  return x;
}

std::optional<std::string> text(std::string_view name) {
  const Variable& d = variable(name);
  const auto s = raw(name, d.type == Type::Choice ? Type::Choice : Type::Path);
  if (!s || d.type != Type::Choice) return s;
  std::string_view rest = d.choices;
  while (!rest.empty()) {
    const size_t bar = rest.find('|');
    if (rest.substr(0, bar) == *s) return s;
    rest = bar == std::string_view::npos ? std::string_view() : rest.substr(bar + 1);
  }
  bad_value(name, *s, "one of " + std::string(d.choices));
}

std::string reference_markdown() {
  std::ostringstream md;
  md << "# Environment variables\n\n"
        "<!-- Generated from include/kirzl/environment.hpp's registry (src/core/environment.cpp) by\n"
        "     scripts/gen-environment-doc.sh; tests/core/test_environment.cpp fails when this page is stale. -->\n\n"
        "kirzl reads these variables and no other `KIRZL_*` ones. A malformed value is an error naming the\n"
        "variable, never silently ignored. Unset and empty mean the same.\n";
  std::string_view area;
  for (const Variable& v : kVariables) {
    if (v.area != area) {
      area = v.area;
      md << "\n## " << area << "\n\n| Variable | Type | When unset | Meaning |\n|---|---|---|---|\n";
    }
    md << "| `" << v.name << "` | " << type_name(v.type);
    if (v.type == Type::Integer) md << " in [" << v.min << ", " << v.max << "]";
    if (v.type == Type::Choice) md << ": `" << v.choices << "`";
    md << " | " << v.fallback << " | " << v.meaning << " |\n";
  }
  return md.str();
}

}  // namespace kirzl::env
