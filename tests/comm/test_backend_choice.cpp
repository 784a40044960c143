// Which backend comm::init() picks from the environment, the options and the machine: the
// device-independent half of the NCCL bootstrap (Note [backend registry]).
#include <gtest/gtest.h>

#include <kirzl/kirzl.hpp>

#include "comm/launcher.h"
#include "support/expect_error.hpp"

using namespace kirzl;
using comm::detail::choose_nccl;
using comm::detail::requested_backend;

TEST(BackendChoice, KirzlBackendOverridesOnlyAuto) {
  EXPECT_EQ(requested_backend("auto", nullptr), "auto");
  EXPECT_EQ(requested_backend("auto", ""), "auto");
  EXPECT_EQ(requested_backend("auto", "mpi"), "mpi");
  EXPECT_EQ(requested_backend("auto", "nccl"), "nccl");
  EXPECT_EQ(requested_backend("nccl", "mpi"), "nccl") << "an explicit option wins over the environment";
  EXPECT_EQ(requested_backend("inprocess", "nccl"), "inprocess");
}

TEST(BackendChoice, NcclWhenEveryLocalRankHasItsOwnGpu) {
  auto d = choose_nccl("auto", true, 8, 8);
  EXPECT_TRUE(d.use) << d.reason;
  EXPECT_NE(d.reason.find("one GPU per rank"), std::string::npos) << d.reason;
  EXPECT_TRUE(choose_nccl("auto", true, 1, 1).use);
  EXPECT_TRUE(choose_nccl("auto", true, 2, -1).use) << "unknown local size counts as one rank";
  EXPECT_TRUE(choose_nccl("nccl", true, 4, 2).use);
}

TEST(BackendChoice, StagedMpiWhenRanksShareAGpuOrThereIsNone) {
  auto shared = choose_nccl("auto", true, 1, 2);
  EXPECT_FALSE(shared.use);
  EXPECT_NE(shared.reason.find("2 ranks on this node share 1 GPU"), std::string::npos) << shared.reason;
  EXPECT_NE(shared.reason.find("NCCL refuses two ranks on one GPU"), std::string::npos) << shared.reason;
  auto none = choose_nccl("auto", true, 0, 1);
  EXPECT_FALSE(none.use);
  EXPECT_NE(none.reason.find("no CUDA device"), std::string::npos) << none.reason;
  auto built = choose_nccl("auto", false, 8, 1);
  EXPECT_FALSE(built.use);
  EXPECT_NE(built.reason.find("built without NCCL"), std::string::npos) << built.reason;
  auto asked = choose_nccl("mpi", true, 8, 1);
  EXPECT_FALSE(asked.use) << "KIRZL_BACKEND=mpi forces the staged MPI path";
  EXPECT_NE(asked.reason.find("\"mpi\" was asked for"), std::string::npos) << asked.reason;
  EXPECT_FALSE(choose_nccl("inprocess", true, 8, 1).use);
}

TEST(BackendChoice, AskingForNcclWhereItCannotRunSaysWhy) {
  EXPECT_KIRZL_ERROR(choose_nccl("nccl", false, 8, 1), ErrorCode::Unsupported, "kirzl was built without NCCL");
  EXPECT_KIRZL_ERROR(choose_nccl("nccl", true, 0, 1), ErrorCode::Unsupported, "backend \"nccl\"", "no CUDA device");
  EXPECT_KIRZL_ERROR(choose_nccl("nccl", true, 1, 4), ErrorCode::Unsupported, "4 ranks on this node share 1 GPU");
}
