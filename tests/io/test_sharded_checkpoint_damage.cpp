// Damaged sharded checkpoints: a truncated or corrupted shard, a broken or lying index, a missing
// file, a save that never finished or stopped during its final swap. Each is Error{Io} naming the
// file, and nothing is returned half-read.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "io/sharded_checkpoint_cases.hpp"
#include "support/expect_error.hpp"

namespace kirzl::io {
namespace {

using kirzl::testing::case_tensors;
using kirzl::testing::same_bytes;
using kirzl::testing::save_at_4;
using kirzl::testing::TempDir;
namespace fs = std::filesystem;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// Replaces the first `from` in `path` by `to`; the test fails when there is none.
void edit(const std::string& path, const std::string& from, const std::string& to) {
  std::string text = read_text(path);
  const auto at = text.find(from);
  ASSERT_NE(at, std::string::npos) << "'" << from << "' is not in " << path;
  write_text(path, text.replace(at, from.size(), to));
}

class Damaged : public ::testing::Test {
 protected:
  void SetUp() override { save_at_4(dir, case_tensors()); }
  std::string shard(int r) const { return dir + "/shard-0000" + std::to_string(r) + "-of-00004.safetensors"; }
  std::string index() const { return dir + "/index.json"; }

  TempDir tmp{"sharded_damage"};
  std::string dir = tmp / "ckpt";
};

TEST_F(Damaged, TruncatedShard) {
  fs::resize_file(shard(1), fs::file_size(shard(1)) - 1);
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(dir), ErrorCode::Io, shard(1), "bytes, the index says",
                     "truncated or replaced");
}

TEST_F(Damaged, ShardTruncatedAfterOpen) {
  const ShardedCheckpoint ck = ShardedCheckpoint::open(dir);
  fs::resize_file(shard(3), 100);
  EXPECT_KIRZL_ERROR(ck.read("model.fc1.weight"), ErrorCode::Io, shard(3), "changed since it was opened");
  EXPECT_TRUE(same_bytes(ck.read("model.counts"), case_tensors().at("model.counts").flat.reshape({3, 4})));
}

TEST_F(Damaged, FlippedByteInAShardsData) {
  // A bit in the middle of rank 2's piece of the big tensor, found through the index.
  const ShardedCheckpoint ck = ShardedCheckpoint::open(dir);
  const auto& pieces = ck.pieces("optim.state.0.exp_avg");
  const ShardedCheckpoint::Piece& p = pieces[2];  // rank 2's, elements [350000, 590000)
  ASSERT_EQ(p.offset, 350000);
  {
    std::fstream f(shard(2), std::ios::in | std::ios::out | std::ios::binary);
    const uint64_t at = p.file_offset + 4 * 200000 + 1;  // in element 550000
    f.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x10);
    f.seekp(static_cast<std::streamoff>(at));
    f.write(&c, 1);
  }
  // Opening reads no data; reading the damaged chunk fails, naming the file; other ranges still read.
  const ShardedCheckpoint again = ShardedCheckpoint::open(dir);
  EXPECT_KIRZL_ERROR(again.read("optim.state.0.exp_avg", 550000, 1), ErrorCode::Io, shard(2), "checksum mismatch",
                     "optim.state.0.exp_avg", "damaged");
  EXPECT_KIRZL_ERROR(again.read("optim.state.0.exp_avg"), ErrorCode::Io, shard(2), "checksum mismatch");
  const Tensor big = case_tensors().at("optim.state.0.exp_avg").flat;
  EXPECT_TRUE(same_bytes(again.read("optim.state.0.exp_avg", 0, 350000), big.narrow(0, 0, 350000)));
  // The piece's 960000 bytes are one checksum chunk: any element of it fails.
  EXPECT_KIRZL_ERROR(again.read("optim.state.0.exp_avg", 589999, 1), ErrorCode::Io, "checksum mismatch");
  EXPECT_KIRZL_ERROR(consolidate(dir, tmp / "out.safetensors"), ErrorCode::Io, shard(2), "checksum mismatch");
  EXPECT_FALSE(fs::exists(tmp / "out.safetensors"));
}

TEST_F(Damaged, FlippedByteInAShardsHeader) {
  // "F32" -> "F33": the shard's own header no longer parses.
  edit(shard(0), "\"F32\"", "\"F33\"");
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(dir), ErrorCode::Io, shard(0), "unknown dtype");
}

TEST_F(Damaged, IndexThatIsNotJson) {
  edit(index(), "{", "[");
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(dir), ErrorCode::Io, index(), "not valid JSON");
}

TEST_F(Damaged, TruncatedIndex) {
  fs::resize_file(index(), fs::file_size(index()) / 2);
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(dir), ErrorCode::Io, index(), "not valid JSON");
}

TEST_F(Damaged, EmptyIndex) {
  write_text(index(), "");
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(dir), ErrorCode::Io, index());
}

TEST_F(Damaged, IndexOfAnotherFormatOrVersion) {
  edit(index(), "\"version\": 1", "\"version\": 2");
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(dir), ErrorCode::Io, index(), "index version 2");
  edit(index(), "kirzl-sharded-checkpoint", "kirzl-something-else");
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(dir), ErrorCode::Io, index(), "'format'");
}

TEST_F(Damaged, IndexWhosePiecesDoNotTile) {
  // model.fc1.weight's second piece claims to start at 11: a gap at [10, 11).
  edit(index(), "\"offset\": 10,", "\"offset\": 11,");
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(dir), ErrorCode::Io, index(), "'model.fc1.weight'", "not stored exactly once",
                     "[10, 11)");
}

TEST_F(Damaged, IndexThatDisagreesWithAShard) {
  // The first F32 key is model.empty, on shard 1.
  edit(index(), "\"dtype\": \"F32\"", "\"dtype\": \"I32\"");
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(dir), ErrorCode::Io, shard(1), "F32[0]", "the index says I32[0]");
}

TEST_F(Damaged, IndexNamingATensorTheShardLacks) {
  edit(index(), "\"tensor\": \"model.fc1.weight@10\"", "\"tensor\": \"model.fc1.weight@40\"");
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(dir), ErrorCode::Io, shard(1), "no tensor 'model.fc1.weight@40'");
}

TEST_F(Damaged, IndexWithAPieceLongerThanItsTensor) {
  edit(index(), "\"length\": 30", "\"length\": 300000");
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(dir), ErrorCode::Io, index(), "'model.fc1.weight''s piece length",
                     "outside [0, 91]");
}

TEST_F(Damaged, IndexWithHugeSizes) {
  // A shape whose element count overflows: rejected before anything is sized by it.
  edit(index(), "\"shape\": [\n    3,\n    4\n   ]", "\"shape\": [4611686018427387904, 4]");
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(dir), ErrorCode::Io, index(), "'model.counts'", "overflows");
}

TEST_F(Damaged, IndexPointingOutsideTheDirectory) {
  edit(index(), "\"file\": \"shard-00000-of-00004.safetensors\"", "\"file\": \"../../etc/passwd\"");
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(dir), ErrorCode::Io, index(), "'../../etc/passwd'");
}

TEST_F(Damaged, MissingShard) {
  fs::remove(shard(3));
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(dir), ErrorCode::Io, shard(3), "cannot open the file");
}

TEST_F(Damaged, MissingIndex) {
  fs::remove(index());
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(dir), ErrorCode::Io, index(), "cannot open the file");
}

TEST_F(Damaged, MissingCompleteMarker) {
  fs::remove(dir + "/COMPLETE");
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(dir), ErrorCode::Io, "'" + dir + "'", "incomplete checkpoint",
                     "no COMPLETE marker");
}

TEST_F(Damaged, MissingDirectory) {
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(tmp / "nothing"), ErrorCode::Io, tmp / "nothing", "no such file");
}

TEST_F(Damaged, ACrashDuringTheSwapIsPointedOutAndTheNextSaveRecovers) {
  // As if the save stopped between "dir -> dir.previous" and "dir.incoming -> dir".
  fs::rename(dir, dir + ".previous");
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(dir), ErrorCode::Io, "no such file", dir + ".previous",
                     "is a complete checkpoint", "interrupted");
  // Or with an incomplete directory at `dir`.
  fs::create_directories(dir);
  write_text(dir + "/index.json", "{");
  EXPECT_KIRZL_ERROR(ShardedCheckpoint::open(dir), ErrorCode::Io, "incomplete checkpoint", dir + ".previous",
                     "interrupted");
  // The next save replaces both; the new checkpoint is all that is left.
  save_at_4(dir, case_tensors(7));
  EXPECT_FALSE(fs::exists(dir + ".previous"));
  const ShardedCheckpoint ck = ShardedCheckpoint::open(dir);
  EXPECT_TRUE(same_bytes(ck.read("model.fc1.weight", 0, 91), case_tensors(7).at("model.fc1.weight").flat));
}

TEST_F(Damaged, AStaleIncomingDirectoryChangesNothing) {
  // As if a save stopped before its swap: `dir` still holds the previous checkpoint.
  fs::create_directories(dir + ".incoming");
  write_text(dir + ".incoming/shard-00000-of-00004.safetensors", "garbage");
  const ShardedCheckpoint ck = ShardedCheckpoint::open(dir);
  EXPECT_TRUE(same_bytes(ck.read("model.fc1.weight", 0, 91), case_tensors().at("model.fc1.weight").flat));
  save_at_4(dir, case_tensors(3));
  EXPECT_FALSE(fs::exists(dir + ".incoming"));
  EXPECT_TRUE(same_bytes(ShardedCheckpoint::open(dir).read("model.fc1.weight", 0, 91),
                         case_tensors(3).at("model.fc1.weight").flat));
}

}  // namespace
}  // namespace kirzl::io
