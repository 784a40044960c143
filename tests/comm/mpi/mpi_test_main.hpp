// The world and main() shared by the test programs under tests/comm/mpi/ (run by mpirun).
#pragma once

#include <gtest/gtest.h>

#include <cstdio>

#include <kirzl/comm.hpp>

namespace kirzl::testing {

/// The process group of this test run; comm::init() fills it in run_mpi_tests().
inline comm::ProcessGroup& mpi_world() {
  static comm::ProcessGroup pg;
  return pg;
}

/// Initialises the world, runs every test (only rank 0 prints progress; every rank reports its
/// failures through the exit code) and releases the world before MPI is finalised at exit.
inline int run_mpi_tests(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  try {
    mpi_world() = comm::init();
  } catch (const Error& e) {
    std::fprintf(stderr, "comm::init failed: %s\n", e.what());
    return 1;
  }
  if (mpi_world().rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int rc = RUN_ALL_TESTS();
  if (rc != 0) std::fprintf(stderr, "rank %d: tests failed\n", mpi_world().rank());
  mpi_world() = comm::ProcessGroup();
  return rc;
}

}  // namespace kirzl::testing
