// Sharded checkpoints under mpirun -np 2 and -np 4 (label mpi): each process writes its pieces
// of tensors cut unevenly across the world, every process reads back any range and the ranges
// other world sizes would own, rank 0 consolidates; a rank that cannot write makes every rank
// throw Error{Io} naming it, and the previous checkpoint stays loadable.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include <kirzl/kirzl.hpp>

#include "comm/mpi/mpi_test_main.hpp"
#include "io/atomic_file.h"

using namespace kirzl;

namespace {

namespace fs = std::filesystem;

comm::ProcessGroup& world() { return kirzl::testing::mpi_world(); }

// A directory every rank names the same: rank 0 creates it and broadcasts its name as bytes.
std::string shared_directory() {
  Tensor name = zeros({256}, {.dtype = DType::u8});
  if (world().rank() == 0) {
    std::string templ = (fs::temp_directory_path() / "kirzl_mpi_sharded_XXXXXX").string();
    if (!::mkdtemp(templ.data())) templ.clear();
    std::memcpy(name.data_ptr(), templ.data(), std::min<size_t>(templ.size(), 255));
  }
  world().broadcast(name).wait();
  return std::string(static_cast<const char*>(name.data_ptr()));
}

// The tensors of the test and each rank's pieces: every tensor cut at uneven points by every rank
// (rank r of n holds [n_e * r^2 / n^2, n_e * (r+1)^2 / n^2)), and one whole on the last rank.
std::map<std::string, Tensor> tensors(uint64_t salt) {
  Generator g(9 + salt);
  return {{"model.w", randn({333, 7}, {}, &g)},
          {"model.h", randn({1000}, {}, &g).to(DType::bf16)},
          {"optim.step", full({}, 5.0 + static_cast<double>(salt), {.dtype = DType::i64})},
          {"optim.m", randn({300001}, {}, &g)}};
}

std::vector<io::TensorPiece> my_pieces(const std::map<std::string, Tensor>& all) {
  const int n = world().size(), r = world().rank();
  std::vector<io::TensorPiece> out;
  for (const auto& [key, t] : all) {
    const Tensor flat = t.reshape({t.numel()});
    if (key == "optim.step") {
      if (r == n - 1) out.push_back({key, t.shape().vec(), 0, flat});
      continue;
    }
    const int64_t e = t.numel(), b = e * r * r / (n * n), end = e * (r + 1) * (r + 1) / (n * n);
    out.push_back({key, t.shape().vec(), b, flat.narrow(0, b, end - b)});
  }
  return out;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return ca.dtype() == cb.dtype() && ca.numel() == cb.numel() && std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

void expect_contents(const io::ShardedCheckpoint& ck, const std::map<std::string, Tensor>& all) {
  for (const auto& [key, t] : all) {
    SCOPED_TRACE(key);
    EXPECT_TRUE(same_bytes(ck.read(key), t));
    const Tensor flat = t.reshape({t.numel()});
    for (int m : {1, 2, 3, 5})
      for (int j = 0; j < m; ++j) {
        const int64_t b = t.numel() * j / m, e = t.numel() * (j + 1) / m;
        EXPECT_TRUE(same_bytes(ck.read(key, b, e - b), flat.narrow(0, b, e - b))) << m << " ranks, rank " << j;
      }
  }
}

TEST(MpiShardedCheckpoint, EveryRankWritesAndAnyWorldSizeReads) {
  const std::string dir = shared_directory() + "/ckpt";
  const auto all = tensors(0);
  io::save_sharded_checkpoint(dir, *world().communicator(), my_pieces(all), {{"step", "12"}});
  const io::ShardedCheckpoint ck = io::ShardedCheckpoint::open(dir);
  EXPECT_EQ(ck.world_size(), world().size());
  EXPECT_EQ(ck.metadata().at("step"), "12");
  expect_contents(ck, all);

  if (world().rank() == 0) {
    io::consolidate(dir, dir + ".safetensors");
    const io::SafetensorsFile file = io::load_safetensors(dir + ".safetensors");
    for (const auto& [key, t] : all) EXPECT_TRUE(same_bytes(file.tensors.at(key), t)) << key;
  }
  world().barrier().wait();
  if (world().rank() == 0) fs::remove_all(fs::path(dir).parent_path());
}

TEST(MpiShardedCheckpoint, ARankThatCannotWriteFailsEveryRank) {
  const std::string dir = shared_directory() + "/ckpt";
  io::save_sharded_checkpoint(dir, *world().communicator(), my_pieces(tensors(0)), {});
  const int bad = world().size() - 1;
  {
    // The last rank's file system refuses its shard.
    io::detail::FileSystemCalls calls;
    calls.open = [](const char* path, int flags, mode_t mode) -> int {
      if (std::strstr(path, "shard-")) {
        errno = EROFS;
        return -1;
      }
      return ::open(path, flags, mode);
    };
    std::unique_ptr<io::detail::ScopedFileSystemCalls> scope;
    if (world().rank() == bad) scope = std::make_unique<io::detail::ScopedFileSystemCalls>(calls);
    try {
      io::save_sharded_checkpoint(dir, *world().communicator(), my_pieces(tensors(1)), {});
      ADD_FAILURE() << "rank " << world().rank() << ": no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::Io) << e.what();
      const std::string expected = "writing the shards failed on rank " + std::to_string(bad);
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  }
  expect_contents(io::ShardedCheckpoint::open(dir), tensors(0));
  world().barrier().wait();
  if (world().rank() == 0) fs::remove_all(fs::path(dir).parent_path());
}

}  // namespace

int main(int argc, char** argv) { return kirzl::testing::run_mpi_tests(argc, argv); }
