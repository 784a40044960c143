// Which backend comm::init() picks from the environment, the options and the machine: the
// device-independent half of the NCCL bootstrap (Note [backend registry]).
#include <gtest/gtest.h>

#include <kirzl/kirzl.hpp>

#include "comm/launcher.h"
#include "support/expect_error.hpp"

using namespace kirzl;
using comm::detail::choose_device;
using comm::detail::choose_nccl;
using comm::detail::nccl_vote;
using comm::detail::NcclCandidate;
using comm::detail::requested_backend;

TEST(BackendChoice, KirzlBackendOverridesOnlyAuto) {
  EXPECT_EQ(requested_backend("auto", nullptr), "auto");
  EXPECT_EQ(requested_backend("auto", ""), "auto");
  EXPECT_EQ(requested_backend("auto", "mpi"), "mpi");
  EXPECT_EQ(requested_backend("auto", "nccl"), "nccl");
  EXPECT_EQ(requested_backend("nccl", "mpi"), "nccl") << "an explicit option wins over the environment";
  EXPECT_EQ(requested_backend("inprocess", "nccl"), "inprocess");
}

// Note [device choice]: each rank of a node on its own device, local rank modulo visible devices.
TEST(BackendChoice, EachLocalRankGetsItsDeviceByLocalRankModuloVisibleDevices) {
  EXPECT_EQ(choose_device(0, 8), 0);
  EXPECT_EQ(choose_device(5, 8), 5);
  EXPECT_EQ(choose_device(3, 2), 1) << "more ranks than GPUs: they wrap (and then share; the vote says MPI)";
  EXPECT_EQ(choose_device(1, 1), 0) << "one GPU per rank through CUDA_VISIBLE_DEVICES: each sees it as cuda:0";
  EXPECT_EQ(choose_device(-1, 4), 0) << "an unknown local rank counts as 0";
  EXPECT_EQ(choose_device(2, 0), -1) << "no GPU";
}

namespace {

using Vote = NcclCandidate::Vote;

NcclCandidate able(std::string host, std::string gpu) { return {Vote::Able, std::move(host), std::move(gpu)}; }
NcclCandidate cannot(Vote v, std::string host) { return {v, std::move(host), ""}; }

}  // namespace

TEST(BackendChoice, EachRankVotesFromWhatItCanSee) {
  EXPECT_EQ(nccl_vote("auto", true, 8), Vote::Able);
  EXPECT_EQ(nccl_vote("nccl", true, 1), Vote::Able);
  EXPECT_EQ(nccl_vote("mpi", true, 8), Vote::OtherBackend) << "KIRZL_BACKEND=mpi forces the staged MPI path";
  EXPECT_EQ(nccl_vote("inprocess", true, 8), Vote::OtherBackend);
  EXPECT_EQ(nccl_vote("auto", false, 8), Vote::NoNccl);
  EXPECT_EQ(nccl_vote("auto", true, 0), Vote::NoDevice);
}

TEST(BackendChoice, NcclWhenEveryRankOfANodeHasItsOwnPhysicalGpu) {
  const std::vector<NcclCandidate> ranks = {able("a", "0000:07:00.0"), able("a", "0000:0f:00.0"),
                                            able("b", "0000:07:00.0"), able("b", "0000:0f:00.0")};
  for (int r = 0; r < 4; ++r) {
    auto d = choose_nccl("auto", ranks, r);
    EXPECT_TRUE(d.use) << d.reason;
    EXPECT_NE(d.reason.find("one GPU per rank"), std::string::npos) << d.reason;
    EXPECT_NE(d.reason.find("2 ranks on this node"), std::string::npos) << d.reason;
  }
  EXPECT_TRUE(choose_nccl("auto", {able("a", "0000:07:00.0")}, 0).use) << "a single rank";
  EXPECT_TRUE(choose_nccl("nccl", ranks, 1).use);
}

// The case a count of visible GPUs gets wrong: CUDA_VISIBLE_DEVICES gives each rank its own GPU,
// so each sees one GPU while the node has two ranks.
TEST(BackendChoice, OneGpuPerRankThroughCudaVisibleDevicesStillUsesNccl) {
  ASSERT_EQ(nccl_vote("auto", true, /*device_count=*/1), Vote::Able);
  ASSERT_EQ(choose_device(1, 1), 0);
  auto d = choose_nccl("auto", {able("a", "0000:07:00.0"), able("a", "0000:0f:00.0")}, 1);
  EXPECT_TRUE(d.use) << d.reason;
}

TEST(BackendChoice, StagedMpiWhenTwoRanksOfANodeShareAPhysicalGpu) {
  const std::vector<NcclCandidate> ranks = {able("a", "0000:07:00.0"), able("a", "0000:07:00.0")};
  for (int r = 0; r < 2; ++r) {
    auto shared = choose_nccl("auto", ranks, r);
    EXPECT_FALSE(shared.use);
    EXPECT_NE(shared.reason.find("2 ranks on this node share 1 GPU"), std::string::npos) << shared.reason;
    EXPECT_NE(shared.reason.find("ranks 0 and 1 both on 0000:07:00.0"), std::string::npos) << shared.reason;
    EXPECT_NE(shared.reason.find("NCCL refuses two ranks on one GPU"), std::string::npos) << shared.reason;
  }
  // The same bus id on two nodes is two GPUs.
  EXPECT_TRUE(choose_nccl("auto", {able("a", "0000:07:00.0"), able("b", "0000:07:00.0")}, 0).use);
  // A clash on another node decides for every node.
  auto other = choose_nccl("auto", {able("a", "0000:07:00.0"), able("b", "0000:07:00.0"), able("b", "0000:07:00.0")}, 0);
  EXPECT_FALSE(other.use);
  EXPECT_NE(other.reason.find("2 ranks on node b share 1 GPU"), std::string::npos) << other.reason;
}

TEST(BackendChoice, OneRankThatCannotUseNcclSendsEveryRankToMpi) {
  const std::vector<NcclCandidate> ranks = {able("a", "0000:07:00.0"), cannot(Vote::NoDevice, "b")};
  auto mine = choose_nccl("auto", ranks, 1);
  EXPECT_FALSE(mine.use);
  EXPECT_NE(mine.reason.find("no CUDA device"), std::string::npos) << mine.reason;
  auto other = choose_nccl("auto", ranks, 0);
  EXPECT_FALSE(other.use) << "rank 0 could, but the ranks decide together";
  EXPECT_NE(other.reason.find("rank 1 (on b) cannot use NCCL: no CUDA device"), std::string::npos) << other.reason;
}

TEST(BackendChoice, KirzlBackendMpiOnOneRankForcesMpiEverywhere) {
  const std::vector<NcclCandidate> ranks = {cannot(Vote::OtherBackend, "a"), able("a", "0000:0f:00.0")};
  auto asked = choose_nccl("mpi", ranks, 0);
  EXPECT_FALSE(asked.use);
  EXPECT_NE(asked.reason.find("\"mpi\" was asked for"), std::string::npos) << asked.reason;
  auto other = choose_nccl("auto", ranks, 1);
  EXPECT_FALSE(other.use);
  EXPECT_NE(other.reason.find("another backend was asked for"), std::string::npos) << other.reason;
  auto built = choose_nccl("auto", {cannot(Vote::NoNccl, "a")}, 0);
  EXPECT_FALSE(built.use);
  EXPECT_NE(built.reason.find("built without NCCL"), std::string::npos) << built.reason;
}

TEST(BackendChoice, AskingForNcclWhereItCannotRunSaysWhy) {
  EXPECT_KIRZL_ERROR(choose_nccl("nccl", {cannot(Vote::NoNccl, "a")}, 0), ErrorCode::Unsupported,
                     "kirzl was built without NCCL");
  EXPECT_KIRZL_ERROR(choose_nccl("nccl", {cannot(Vote::NoDevice, "a")}, 0), ErrorCode::Unsupported, "backend \"nccl\"",
                     "no CUDA device");
  EXPECT_KIRZL_ERROR(choose_nccl("nccl", {able("a", "x"), able("a", "x"), able("a", "x"), able("a", "x")}, 2),
                     ErrorCode::Unsupported, "4 ranks on this node share 1 GPU");
}
