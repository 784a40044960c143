// Run by ctest only as comm_mpi_test_mpi_mixed_settings_np2 (tests/CMakeLists.txt): two ranks
// started with different KIRZL_MPI_FUSED_BYTES (64 and 1024). Creating the world must fail on both
// ranks naming the setting and both values, instead of failing later inside MPI with a truncated
// arrival message (Note [fused small all-reduce]).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include <kirzl/comm.hpp>

namespace kirzl {
namespace {

TEST(MpiMixedSettings, DifferentFusedBytesFailEveryRankAtInit) {
  const char* mine = std::getenv("KIRZL_MPI_FUSED_BYTES");
  ASSERT_NE(mine, nullptr) << "run this program through its ctest entry, which sets KIRZL_MPI_FUSED_BYTES per rank";
  try {
    comm::ProcessGroup pg = comm::init();
    ADD_FAILURE() << "comm::init succeeded on rank " << pg.rank() << " although the ranks' KIRZL_MPI_FUSED_BYTES differ";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
    const std::string what = e.what();
    EXPECT_NE(what.find("KIRZL_MPI_FUSED_BYTES differs between the ranks of a communicator of 2 ranks: from 64 to "
                        "1024 bytes (" + std::string(mine) + " on rank"),
              std::string::npos)
        << what;
  }
}

}  // namespace
}  // namespace kirzl

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();  // MPI, initialised by comm::init, is finalised at exit
}
