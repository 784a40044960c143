// Test support for jobs under SLURM (ctest labels `srun` and `slurm`): whether a SLURM here can
// take jobs, and whether a finished job let go of everything it held. scripts/slurm-local.sh up
// starts a one-node SLURM on this machine; scripts/test.sh does so around these tests.
#pragma once

#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/program_run.hpp"

namespace kirzl::testing {

/// Why srun cannot be used here, or "" when a node can take a step. Quick either way: scontrol
/// ping answers at once when the controller is down, where sinfo would retry for seconds, and the
/// clients wait up to a minute for a missing slurm.conf, hence the timeouts.
inline std::string no_slurm() {
  const auto r = run_program(
      "command -v srun >/dev/null && timeout 5 scontrol ping | grep -q 'is UP' && timeout 10 sinfo -h -o %t");
  if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
    return "no SLURM: srun missing, or no slurmctld answers (scripts/slurm-local.sh up starts one) " + r.output;
  for (const char* state : {"idle", "mix", "alloc"})
    if (r.output.find(state) != std::string::npos) return "";
  return "no SLURM node is up (sinfo: " + r.output + "); scripts/slurm-local.sh up";
}

/// What squeue still lists of the jobs named `name` (pending, running, completing, ...: the states
/// of a job that holds or waits for resources; a completed job is not listed), after waiting up to
/// `grace` for the list to empty: a job's end reaches the controller just after srun or sbatch
/// --wait returns. "" when none.
inline std::string jobs_still_listed(const std::string& name, std::chrono::seconds grace = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    const auto r = run_program("timeout 10 squeue -h -n '" + name + "' -o '%i %T %R'");
    if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 && r.output.empty()) return "";
    if (std::chrono::steady_clock::now() >= deadline)
      return r.output.empty() ? "squeue failed (status " + std::to_string(r.status) + ")" : r.output;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

/// The pids of this machine's processes whose environment says they belong to the SLURM job named
/// `name` (SLURM_JOB_NAME, which srun and sbatch give every task and the batch script).
inline std::vector<int> processes_of_job(const std::string& name) {
  namespace fs = std::filesystem;
  std::vector<int> pids;
  const std::string needle = std::string(1, '\0') + "SLURM_JOB_NAME=" + name + '\0';
  std::error_code ec;
  for (const auto& p : fs::directory_iterator("/proc", ec)) {
    const std::string pid = p.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream env(p.path() / "environ");
    std::stringstream text;
    text << '\0' << env.rdbuf();
    if (text.str().find(needle) != std::string::npos) pids.push_back(std::stoi(pid));
  }
  return pids;
}

}  // namespace kirzl::testing
