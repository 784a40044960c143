// comm::init(): launcher detection from the environment, and the size-1 world without a launcher.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <thread>
#include <string>

#include <kirzl/comm.hpp>

#include "comm/launcher.h"
#include "support/expect_error.hpp"

using namespace kirzl;
using comm::detail::detect_launch;
using comm::detail::LaunchInfo;

namespace {

LaunchInfo detect(const std::map<std::string, std::string>& env) {
  return detect_launch([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

}  // namespace

TEST(Init, NoLauncherIsWorldSizeOne) {
  LaunchInfo i = detect({{"HOME", "/root"}});
  EXPECT_EQ(i.launcher, "none");
  EXPECT_EQ(i.rank, 0);
  EXPECT_EQ(i.size, 1);
}

TEST(Init, OpenMpi) {
  LaunchInfo i = detect({{"OMPI_COMM_WORLD_RANK", "3"},
                         {"OMPI_COMM_WORLD_SIZE", "8"},
                         {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                         {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                         {"SLURM_PROCID", "0"},  // mpirun inside an allocation: Open MPI's variables win
                         {"SLURM_NTASKS", "1"}});
  EXPECT_EQ(i.launcher, "openmpi");
  EXPECT_EQ(i.rank, 3);
  EXPECT_EQ(i.size, 8);
  EXPECT_EQ(i.local_rank, 1);
  EXPECT_EQ(i.local_size, 2);
}

TEST(Init, PmiPmixAndSlurm) {
  LaunchInfo pmi = detect({{"PMI_RANK", "1"}, {"PMI_SIZE", "4"}, {"MPI_LOCALRANKID", "1"}, {"MPI_LOCALNRANKS", "4"}});
  EXPECT_EQ(pmi.launcher, "pmi");
  EXPECT_EQ(pmi.rank, 1);
  EXPECT_EQ(pmi.size, 4);
  EXPECT_EQ(pmi.local_rank, 1);

  LaunchInfo pmix = detect({{"PMIX_RANK", "5"}});
  EXPECT_EQ(pmix.launcher, "pmix");
  EXPECT_EQ(pmix.rank, 5);
  EXPECT_EQ(pmix.size, -1) << "PMIx does not export the size: MPI tells";

  LaunchInfo slurm = detect({{"SLURM_PROCID", "6"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "2"}, {"SLURM_NTASKS_PER_NODE", "4"}});
  EXPECT_EQ(slurm.launcher, "slurm");
  EXPECT_EQ(slurm.rank, 6);
  EXPECT_EQ(slurm.size, 8);
  EXPECT_EQ(slurm.local_rank, 2);
  EXPECT_EQ(slurm.local_size, 4);
}

// What `srun -n 4 --mpi=pmix` gives task 3 of a step on the second of two nodes (SLURM 22.05),
// inside an allocation of 8 tasks.
std::map<std::string, std::string> srun_task() {
  return {{"PMIX_RANK", "3"}, {"PMIX_NAMESPACE", "slurm.pmix.42.0"}, {"SLURM_JOB_ID", "42"},
          {"SLURM_STEP_ID", "0"}, {"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "8"},
          {"SLURM_STEP_NUM_TASKS", "4"}, {"SLURM_LOCALID", "0"}, {"SLURM_NODEID", "1"},
          {"SLURM_STEP_TASKS_PER_NODE", "3,1"}, {"SLURM_TASKS_PER_NODE", "4(x2)"}};
}

TEST(Init, SrunStepIsSlurmWithTheStepsCounts) {
  LaunchInfo i = detect(srun_task());
  EXPECT_EQ(i.launcher, "slurm") << "not \"pmix\": srun's PMIx plugin exports PMIX_RANK too";
  EXPECT_EQ(i.rank, 3);
  EXPECT_EQ(i.size, 4) << "the step's tasks, not the allocation's";
  EXPECT_EQ(i.local_rank, 0);
  EXPECT_EQ(i.local_size, 1) << "node 1 of \"3,1\"";

  auto env = srun_task();
  env.erase("PMIX_RANK");
  env.erase("PMIX_NAMESPACE");
  env["PMI_RANK"] = "3";  // --mpi=pmi2
  env["SLURM_PROCID"] = "1";
  env["SLURM_LOCALID"] = "1";
  env["SLURM_NODEID"] = "0";
  env["SLURM_STEP_TASKS_PER_NODE"] = "2(x2)";
  i = detect(env);
  EXPECT_EQ(i.launcher, "slurm");
  EXPECT_EQ(i.rank, 1);
  EXPECT_EQ(i.local_size, 2);

  // mpirun inside the step: Open MPI's variables still win.
  env["OMPI_COMM_WORLD_RANK"] = "5";
  env["OMPI_COMM_WORLD_SIZE"] = "6";
  EXPECT_EQ(detect(env).launcher, "openmpi");
}

TEST(Init, SrunTaskListIsCheckedAndRead) {
  auto env = srun_task();
  env["SLURM_STEP_TASKS_PER_NODE"] = "1(x3";
  EXPECT_KIRZL_ERROR(detect(env), ErrorCode::InvalidArgument, "SLURM_STEP_TASKS_PER_NODE", "1(x3");
  env["SLURM_STEP_TASKS_PER_NODE"] = "two";
  EXPECT_KIRZL_ERROR(detect(env), ErrorCode::InvalidArgument, "SLURM_STEP_TASKS_PER_NODE", "two");
  env["SLURM_STEP_TASKS_PER_NODE"] = "1,3";
  env["SLURM_LOCALID"] = "2";
  EXPECT_EQ(detect(env).local_size, 3);
  env["SLURM_LOCALID"] = "3";
  EXPECT_KIRZL_ERROR(detect(env), ErrorCode::InvalidArgument, "SLURM_LOCALID", "SLURM_STEP_TASKS_PER_NODE");
  env["SLURM_STEP_TASKS_PER_NODE"] = "1(x2),3";
  env["SLURM_NODEID"] = "2";
  env["SLURM_LOCALID"] = "2";
  EXPECT_EQ(detect(env).local_size, 3);
  env["SLURM_NODEID"] = "1";
  env["SLURM_LOCALID"] = "0";
  EXPECT_EQ(detect(env).local_size, 1);
}

TEST(Init, KirzlVariablesOverrideTheLauncher) {
  LaunchInfo i = detect({{"KIRZL_RANK", "1"}, {"KIRZL_WORLD_SIZE", "2"}, {"KIRZL_LOCAL_RANK", "1"},
                         {"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "4"}});
  EXPECT_EQ(i.launcher, "kirzl");
  EXPECT_EQ(i.rank, 1);
  EXPECT_EQ(i.size, 2);
  EXPECT_EQ(i.local_rank, 1);
}

TEST(Init, MalformedEnvironmentIsAClearError) {
  EXPECT_KIRZL_ERROR(detect({{"OMPI_COMM_WORLD_RANK", "x1"}, {"OMPI_COMM_WORLD_SIZE", "2"}}), ErrorCode::InvalidArgument,
                     "OMPI_COMM_WORLD_RANK", "x1");
  EXPECT_KIRZL_ERROR(detect({{"KIRZL_RANK", "4"}, {"KIRZL_WORLD_SIZE", "4"}}), ErrorCode::InvalidArgument, "rank 4",
                     "world size 4");
  EXPECT_KIRZL_ERROR(detect({{"KIRZL_RANK", "0"}}), ErrorCode::InvalidArgument, "KIRZL_WORLD_SIZE");
  EXPECT_KIRZL_ERROR(detect({{"PMI_RANK", "0"}, {"PMI_SIZE", "0"}}), ErrorCode::InvalidArgument, "PMI_SIZE");
  EXPECT_KIRZL_ERROR(detect({{"SLURM_PROCID", "-1"}, {"SLURM_NTASKS", "2"}}), ErrorCode::InvalidArgument, "SLURM_PROCID");
}

TEST(Init, BackendChoice) {
  using comm::detail::BackendChoice;
  using comm::detail::choose_backend;
  const LaunchInfo none = detect({});
  const LaunchInfo four = detect({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "4"}});
  const LaunchInfo pmix = detect({{"PMIX_RANK", "1"}});
  const LaunchInfo one = detect({{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "1"}});
  EXPECT_EQ(choose_backend(none, "auto", true), BackendChoice::InProcess);
  EXPECT_EQ(choose_backend(one, "auto", true), BackendChoice::InProcess);
  EXPECT_EQ(choose_backend(none, "mpi", true), BackendChoice::Mpi);
  EXPECT_EQ(choose_backend(four, "auto", true), BackendChoice::Mpi);
  EXPECT_EQ(choose_backend(pmix, "auto", true), BackendChoice::Mpi);
  EXPECT_EQ(choose_backend(none, "inprocess", false), BackendChoice::InProcess);
  EXPECT_KIRZL_ERROR(choose_backend(four, "auto", false), ErrorCode::Unsupported, "kirzl was built without MPI", "4-rank",
                     "openmpi");
  EXPECT_KIRZL_ERROR(choose_backend(none, "mpi", false), ErrorCode::Unsupported, "kirzl was built without MPI");
  EXPECT_KIRZL_ERROR(choose_backend(four, "inprocess", true), ErrorCode::InvalidArgument, "inprocess", "4 ranks");
  // "nccl" needs what "auto" needs from the host side (MPI only for several ranks).
  EXPECT_EQ(choose_backend(none, "nccl", true), BackendChoice::InProcess);
  EXPECT_EQ(choose_backend(four, "nccl", true), BackendChoice::Mpi);
  EXPECT_KIRZL_ERROR(choose_backend(none, "gloo", true), ErrorCode::InvalidArgument, "unknown backend 'gloo'");
}

TEST(Init, WithoutALauncherTheWorldHasOneRankAndIdentityCollectives) {
  comm::ProcessGroup pg = comm::init();
  EXPECT_EQ(pg.rank(), 0);
  EXPECT_EQ(pg.size(), 1);
  EXPECT_EQ(pg.local_rank(), 0);
  EXPECT_EQ(pg.local_size(), 1);
  // With NCCL and a GPU, CUDA tensors go to NCCL and CPU tensors to the in-process backend.
  EXPECT_TRUE(pg.backend() == "inprocess" || pg.backend() == "nccl+inprocess") << pg.backend();
  if (!cuda::is_available()) { EXPECT_EQ(pg.backend(), "inprocess"); }
  EXPECT_EQ(pg.launcher(), "none");
  ASSERT_EQ(pg.hosts().size(), 1u);
  EXPECT_FALSE(pg.hosts()[0].empty());
  if (!cuda::is_available()) {
    EXPECT_TRUE(pg.device().is_cpu());
  }
  ASSERT_NE(pg.communicator(), nullptr);

  Tensor t = from_vector<float>({1.5f, -2.f});
  pg.all_reduce(t, {.op = comm::ReduceOp::Avg}).wait();
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1.5f, -2.f}));
  pg.broadcast(t).wait();
  pg.barrier().wait();
  Tensor out = zeros({2});
  pg.communicator()->all_gather(out, t).wait();
  EXPECT_EQ(out.to_vector<float>(), t.to_vector<float>());

  // A second init() returns the same world.
  comm::ProcessGroup again = comm::init({.backend = "mpi"});
  EXPECT_EQ(again.communicator(), pg.communicator());
}

// InitOptions::share_cores (issue #14): ranks on one node divide its cores instead of each taking
// all of them; the user's OMP_NUM_THREADS and a single rank per node leave the count alone.
TEST(Init, RanksOnANodeShareItsCores) {
  EXPECT_EQ(comm::detail::shared_core_threads(16, 4, false), 4);
  EXPECT_EQ(comm::detail::shared_core_threads(16, 3, false), 5);
  EXPECT_EQ(comm::detail::shared_core_threads(2, 4, false), 1) << "at least one thread per rank";
  EXPECT_EQ(comm::detail::shared_core_threads(16, 1, false), 0) << "one rank per node: OpenMP's default";
  EXPECT_EQ(comm::detail::shared_core_threads(16, -1, false), 0) << "unknown local size";
  EXPECT_EQ(comm::detail::shared_core_threads(16, 4, true), 0) << "OMP_NUM_THREADS wins";
  const int cores = comm::detail::usable_cores();
  EXPECT_GE(cores, 1);
  EXPECT_LE(cores, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}
