// The hierarchical all-reduce (Note [hierarchical all-reduce]) through the MPI backend under
// mpirun. main() sets KIRZL_EMULATE_NODES=2 and KIRZL_ALLREDUCE=hierarchical unless they are set,
// so at -np 4 the ranks are 2 emulated nodes x 2 and every all-reduce of the world runs
// hierarchically (at -np 2, one node: the flat ring, said once on stderr). Every dtype and op at
// odd sizes (0, 1, 7, sizes not divisible by the node size) against the closed form, results
// bitwise identical on every rank, and inexact floats close to the exact sum.
//
//   OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 4 --oversubscribe build/tests/comm_mpi_test_mpi_hierarchical
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include <kirzl/comm.hpp>

#include "comm/collective_cases.hpp"
#include "comm/mpi/mpi_test_main.hpp"

using namespace kirzl;
using comm::ReduceOp;
using namespace kirzl::testing::comm_cases;

namespace {

comm::ProcessGroup& world() { return kirzl::testing::mpi_world(); }

// Whether `t` has the same bytes on every rank (all-gathered as bytes and compared with rank 0's).
bool same_bits_everywhere(const Tensor& t) {
  auto& c = *world().communicator();
  const int64_t bytes = static_cast<int64_t>(t.nbytes());
  if (bytes == 0) return true;
  Tensor mine = empty({bytes}, {.dtype = DType::u8});
  std::memcpy(mine.data_ptr(), t.data_ptr(), static_cast<size_t>(bytes));
  Tensor all = empty({c.size() * bytes}, {.dtype = DType::u8});
  c.all_gather(all, mine).wait();
  const auto* p = static_cast<const std::byte*>(all.data_ptr());
  for (int r = 1; r < c.size(); ++r)
    if (std::memcmp(p, p + r * bytes, static_cast<size_t>(bytes)) != 0) return false;
  return true;
}

}  // namespace

TEST(MpiHierarchical, AllReduceEveryDtypeOpAndOddSize) {
  auto& c = *world().communicator();
  const int n = c.size(), r = c.rank();
  for (DType dt : kAllDtypes)
    for (ReduceOp op : kAllOps)
      for (int64_t len : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{n + 1}, int64_t{1001}, int64_t{(64 << 10) + 3}}) {
        const std::string what = std::string(dtype_name(dt)) + " " + comm::to_string(op) + " len=" + std::to_string(len);
        Tensor t = make(len, dt, [&](int64_t i) { return op == ReduceOp::Prod ? g(r, i) : f(r, i); });
        c.all_reduce(t, {.op = op}).wait();
        auto v = t.to_vector<double>();
        int64_t bad = 0;
        for (int64_t i = 0; i < len && bad < 3; ++i)
          if (std::abs(v[i] - expected_reduce(op, dt, n, i)) > tolerance(dt) * 8) {
            expect_close(v[i], expected_reduce(op, dt, n, i), dt, what + " i=" + std::to_string(i));
            ++bad;
          }
        EXPECT_TRUE(same_bits_everywhere(t)) << what;
      }
}

TEST(MpiHierarchical, InexactFloatsAgreeBitForBitAndMatchTheExactSum) {
  auto& c = *world().communicator();
  const int n = c.size(), r = c.rank();
  const int64_t len = 100003;  // odd: segments of unequal lengths
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    Tensor t = make(len, dt, [&](int64_t i) { return std::sin(0.001 * static_cast<double>(r * len + i)); });
    c.all_reduce(t, {.op = ReduceOp::Sum}).wait();
    auto v = t.to_vector<double>();
    const double tol = dt == DType::f64 ? 1e-12 : dt == DType::f32 ? 1e-5 : 0.1;
    int64_t bad = 0;
    for (int64_t i = 0; i < len; ++i) {
      double exact = 0;
      for (int k = 0; k < n; ++k) exact += std::sin(0.001 * static_cast<double>(k * len + i));
      bad += std::abs(v[i] - exact) > tol * n ? 1 : 0;
    }
    EXPECT_EQ(bad, 0) << dtype_name(dt);
    EXPECT_TRUE(same_bits_everywhere(t)) << dtype_name(dt);
  }
}

int main(int argc, char** argv) {
  setenv("KIRZL_EMULATE_NODES", "2", 0);
  setenv("KIRZL_ALLREDUCE", "hierarchical", 0);
  return kirzl::testing::run_mpi_tests(argc, argv);
}
