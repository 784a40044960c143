// Sharded checkpoints (include/kirzl/io/sharded_checkpoint.hpp): written by 4 in-process ranks
// with pieces cutting through tensors, read back bit for bit at any range and as the ranges 1, 2
// and 3 ranks would own; tiling errors and a failing rank make every rank throw and commit
// nothing; consolidate() writes a file that kirzl and Python's safetensors read.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include <fcntl.h>

#include <kirzl/io/checkpoint.hpp>
#include <kirzl/io/safetensors.hpp>

#include "io/atomic_file.h"
#include "io/sharded_checkpoint_cases.hpp"
#include "io/sharded_checkpoint_format.h"
#include "support/expect_error.hpp"

namespace kirzl::io {
namespace {

using kirzl::testing::case_metadata;
using kirzl::testing::case_tensors;
using kirzl::testing::CaseTensor;
using kirzl::testing::pieces_of;
using kirzl::testing::run_ranks;
using kirzl::testing::same_bytes;
using kirzl::testing::save_at_4;
using kirzl::testing::TempDir;
namespace fs = std::filesystem;

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Every key of `expected` reads back whole and at the ranges m ranks would own, bit for bit.
void expect_contents(const ShardedCheckpoint& ck, const std::map<std::string, CaseTensor>& expected) {
  std::vector<std::string> keys;
  for (const auto& [k, t] : expected) keys.push_back(k);
  ASSERT_EQ(ck.keys(), keys);
  for (const auto& [key, t] : expected) {
    SCOPED_TRACE(key);
    EXPECT_EQ(ck.shape(key), t.shape);
    EXPECT_EQ(ck.dtype(key), t.flat.dtype());
    const Tensor whole = ck.read(key);
    EXPECT_EQ(whole.shape().vec(), t.shape);
    EXPECT_TRUE(same_bytes(whole.reshape({t.flat.numel()}), t.flat));
    const int64_t n = t.flat.numel();
    for (int m : {1, 2, 3}) {
      for (int j = 0; j < m; ++j) {
        const int64_t b = n * j / m, e = n * (j + 1) / m;
        const Tensor part = ck.read(key, b, e - b);
        EXPECT_EQ(part.dim(), 1);
        EXPECT_TRUE(same_bytes(part, t.flat.narrow(0, b, e - b))) << "world size " << m << ", rank " << j;
      }
    }
  }
}

TEST(ShardedCheckpoint, WrittenAtFourRanksReadsBackAtAnyRangeAndWorldSize) {
  TempDir tmp("sharded");
  const std::string dir = tmp / "ckpt";
  const auto tensors = case_tensors();
  save_at_4(dir, tensors);

  EXPECT_EQ(names_in(dir), (std::vector<std::string>{"COMPLETE", "index.json", "shard-00000-of-00004.safetensors",
                                                      "shard-00001-of-00004.safetensors",
                                                      "shard-00002-of-00004.safetensors",
                                                      "shard-00003-of-00004.safetensors"}));
  EXPECT_EQ(names_in(tmp.path()), (std::vector<std::string>{"ckpt"}));  // no .incoming, no .previous

  const ShardedCheckpoint ck = ShardedCheckpoint::open(dir);
  EXPECT_EQ(ck.world_size(), 4);
  EXPECT_EQ(ck.metadata(), case_metadata());
  EXPECT_TRUE(ck.contains("model.fc1.weight"));
  EXPECT_FALSE(ck.contains("model.fc2.weight"));
  EXPECT_EQ(ck.pieces("model.fc1.weight").size(), 4u);
  EXPECT_EQ(ck.pieces("optim.step").size(), 1u);
  expect_contents(ck, tensors);

  // Arbitrary ranges, many of them across pieces and checksum chunks.
  std::mt19937_64 rng(5);
  for (int i = 0; i < 200; ++i) {
    for (const auto& [key, t] : tensors) {
      const int64_t n = t.flat.numel();
      const int64_t off = static_cast<int64_t>(rng() % static_cast<uint64_t>(n + 1));
      const int64_t len = static_cast<int64_t>(rng() % static_cast<uint64_t>(n - off + 1));
      ASSERT_TRUE(same_bytes(ck.read(key, off, len), t.flat.narrow(0, off, len))) << key << " [" << off << ", +" << len << ")";
    }
  }
  // Exactly around the chunk and piece edges of the large tensor.
  const Tensor& big = tensors.at("optim.state.0.exp_avg").flat;
  for (int64_t edge : {int64_t{262143}, int64_t{262144}, int64_t{150000}, int64_t{150001}, int64_t{349999}, int64_t{524288}})
    for (int64_t len : {1, 2, 262144, 300001}) {
      const int64_t off = std::max<int64_t>(0, edge - len / 2);
      const int64_t l = std::min<int64_t>(len, big.numel() - off);
      ASSERT_TRUE(same_bytes(ck.read("optim.state.0.exp_avg", off, l), big.narrow(0, off, l))) << off << " +" << l;
    }
}

TEST(ShardedCheckpoint, ReadRejectsUnknownKeysAndRangesOutsideTheTensor) {
  TempDir tmp("sharded");
  save_at_4(tmp / "ckpt", case_tensors());
  const ShardedCheckpoint ck = ShardedCheckpoint::open(tmp / "ckpt");
  EXPECT_KIRZL_ERROR(ck.read("model.nope"), ErrorCode::InvalidArgument, "'model.nope' is not in the checkpoint");
  EXPECT_KIRZL_ERROR(ck.shape("model.nope"), ErrorCode::InvalidArgument, "model.nope");
  EXPECT_KIRZL_ERROR(ck.read("model.fc1.weight", 90, 2), ErrorCode::InvalidArgument, "outside 'model.fc1.weight'", "91");
  EXPECT_KIRZL_ERROR(ck.read("model.fc1.weight", -1, 1), ErrorCode::InvalidArgument, "outside");
  EXPECT_KIRZL_ERROR(ck.read("model.fc1.weight", 1, -1), ErrorCode::InvalidArgument, "outside");
  EXPECT_KIRZL_ERROR(ck.read("model.fc1.weight", INT64_MAX, INT64_MAX), ErrorCode::InvalidArgument, "outside");
  EXPECT_EQ(ck.read("model.fc1.weight", 91, 0).numel(), 0);
  EXPECT_EQ(ck.read("model.empty").shape().vec(), (std::vector<int64_t>{0, 3}));
}

TEST(ShardedCheckpoint, ANewSaveReplacesThePreviousOneAndLeavesNothingElse) {
  TempDir tmp("sharded");
  const std::string dir = tmp / "ckpt";
  save_at_4(dir, case_tensors(0), case_metadata(0));
  save_at_4(dir, case_tensors(1), case_metadata(1));
  EXPECT_EQ(names_in(tmp.path()), (std::vector<std::string>{"ckpt"}));
  const ShardedCheckpoint ck = ShardedCheckpoint::open(dir + "/");  // a trailing slash is fine
  EXPECT_EQ(ck.metadata(), case_metadata(1));
  expect_contents(ck, case_tensors(1));
}

TEST(ShardedCheckpoint, AnyWorldSizeWrites) {
  // 1, 2 and 3 writers, each cutting every tensor into equal parts; any reader sees the same.
  const auto tensors = case_tensors();
  for (int n : {1, 2, 3}) {
    SCOPED_TRACE(n);
    TempDir tmp("sharded");
    auto errors = run_ranks(n, [&](int r, comm::Communicator& c) {
      std::vector<TensorPiece> pieces;
      for (const auto& [key, t] : tensors) {
        const int64_t numel = t.flat.numel(), b = numel * r / n, e = numel * (r + 1) / n;
        pieces.push_back({key, t.shape, b, t.flat.narrow(0, b, e - b)});
      }
      save_sharded_checkpoint(tmp / "ckpt", c, pieces, {});
    });
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
    const ShardedCheckpoint ck = ShardedCheckpoint::open(tmp / "ckpt");
    EXPECT_EQ(ck.world_size(), n);
    expect_contents(ck, tensors);
  }
}

// Every rank's error, all of `code` and holding `words`.
void expect_every_rank_fails(const std::vector<std::exception_ptr>& errors, ErrorCode code,
                             const std::vector<std::string>& words) {
  for (size_t r = 0; r < errors.size(); ++r) {
    SCOPED_TRACE("rank " + std::to_string(r));
    ASSERT_TRUE(errors[r]) << "rank " << r << " did not throw";
    try {
      std::rethrow_exception(errors[r]);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      for (const auto& w : words)
        EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << "message lacks '" << w << "': " << e.what();
    }
  }
}

struct TilingCase {
  const char* name;
  std::function<void(std::map<std::string, CaseTensor>&)> spoil;
  std::vector<std::string> words;
};

TEST(ShardedCheckpoint, PiecesThatDoNotTileFailOnEveryRankAndCommitNothing) {
  const std::vector<TilingCase> cases = {
      {"gap", [](auto& m) { m["model.fc1.weight"].cuts[1].second = {11, 40}; },
       {"'model.fc1.weight'", "elements [10, 11) are held by no rank", "rank 0", "rank 1"}},
      {"overlap", [](auto& m) { m["model.fc1.weight"].cuts[2].second = {38, 41}; },
       {"'model.fc1.weight'", "rank 1 and rank 2 both hold elements [38, 40)"}},
      {"missing tail", [](auto& m) { m["optim.state.0.exp_avg"].cuts.pop_back(); },
       {"'optim.state.0.exp_avg'", "elements [590000, 600000) are held by no rank"}},
      {"shape", [](auto& m) {
         // rank 1's pieces of the bias claim another shape.
         CaseTensor other = m["model.fc1.bias"];
         other.shape = {165};
         other.cuts = {{1, {100, 165}}};
         m["model.fc1.bias"].cuts = {{3, {0, 100}}};
         m["model.fc1.bias#"] = other;
       },
       {"'model.fc1.bias'", "rank 1", "rank 3", "BF16[5, 33]", "BF16[165]"}},
      {"dtype", [](auto& m) {
         CaseTensor other = m["model.fc1.weight"];
         other.flat = other.flat.to(DType::f64);
         other.cuts = {{2, {40, 41}}};
         m["model.fc1.weight"].cuts.erase(m["model.fc1.weight"].cuts.begin() + 2);
         m["model.fc1.weight#"] = other;
       },
       {"'model.fc1.weight'", "rank 0 gives F32[7, 13], rank 2 gives F64[7, 13]"}},
      {"outside", [](auto& m) { m["model.counts"].shape = {3, 3}; m["model.counts"].cuts = {{2, {0, 12}}}; },
       {"rank 2", "'model.counts'", "lies outside", "9 elements"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir tmp("sharded");
    const std::string dir = tmp / "ckpt";
    save_at_4(dir, case_tensors(0));
    auto tensors = case_tensors(1);
    c.spoil(tensors);
    // Keys spelled "<key>#" are written under "<key>" (a second description of the same key).
    auto errors = run_ranks(4, [&](int r, comm::Communicator& comm) {
      auto pieces = pieces_of(r, tensors);
      for (auto& p : pieces)
        if (p.key.back() == '#') p.key.pop_back();
      save_sharded_checkpoint(dir, comm, pieces, case_metadata(1));
    });
    expect_every_rank_fails(errors, ErrorCode::InvalidArgument, c.words);
    expect_every_rank_fails(errors, ErrorCode::InvalidArgument, {"nothing was committed"});
    EXPECT_EQ(names_in(tmp.path()), (std::vector<std::string>{"ckpt"}));
    const ShardedCheckpoint ck = ShardedCheckpoint::open(dir);
    EXPECT_EQ(ck.metadata(), case_metadata(0));
    expect_contents(ck, case_tensors(0));
  }
}

// Fails every open() of the calling thread whose path contains `what` with EROFS.
detail::FileSystemCalls fail_opening(std::string what) {
  detail::FileSystemCalls calls;
  calls.open = [what](const char* path, int flags, mode_t mode) -> int {
    if (std::string(path).find(what) != std::string::npos) {
      errno = EROFS;
      return -1;
    }
    return ::open(path, flags, mode);
  };
  return calls;
}

TEST(ShardedCheckpoint, AFailingWriteOnOneRankFailsEveryRankAndKeepsThePreviousCheckpoint) {
  TempDir tmp("sharded");
  const std::string dir = tmp / "ckpt";
  save_at_4(dir, case_tensors(0));
  const auto tensors = case_tensors(1);
  const auto start = std::chrono::steady_clock::now();
  auto errors = run_ranks(4, [&](int r, comm::Communicator& c) {
    std::unique_ptr<detail::ScopedFileSystemCalls> fail;
    if (r == 2) fail = std::make_unique<detail::ScopedFileSystemCalls>(fail_opening("shard-00002"));
    save_sharded_checkpoint(dir, c, pieces_of(r, tensors), case_metadata(1));
  });
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15)) << "the ranks waited for a timeout";
  expect_every_rank_fails(errors, ErrorCode::Io,
                          {"writing the shards failed on rank 2 of 4", "shard-00002-of-00004", "Read-only file system",
                           "nothing was committed"});
  EXPECT_EQ(names_in(tmp.path()), (std::vector<std::string>{"ckpt"}));
  expect_contents(ShardedCheckpoint::open(dir), case_tensors(0));
}

TEST(ShardedCheckpoint, AFailingCommitOnRankZeroFailsEveryRankAndKeepsThePreviousCheckpoint) {
  for (const char* file : {"index.json", "COMPLETE"}) {
    SCOPED_TRACE(file);
    TempDir tmp("sharded");
    const std::string dir = tmp / "ckpt";
    save_at_4(dir, case_tensors(0));
    auto errors = run_ranks(4, [&](int r, comm::Communicator& c) {
      std::unique_ptr<detail::ScopedFileSystemCalls> fail;
      if (r == 0) fail = std::make_unique<detail::ScopedFileSystemCalls>(fail_opening(file));
      save_sharded_checkpoint(dir, c, pieces_of(r, case_tensors(1)), case_metadata(1));
    });
    expect_every_rank_fails(errors, ErrorCode::Io, {"committing", "rank 0 of 4", file, "nothing was committed"});
    EXPECT_EQ(names_in(tmp.path()), (std::vector<std::string>{"ckpt"}));
    expect_contents(ShardedCheckpoint::open(dir), case_tensors(0));
  }
}

TEST(ShardedCheckpoint, AFailureOnOneRankBeforeWritingFailsEveryRank) {
  // An undefined tensor on rank 3: its own argument error, reported by every rank.
  TempDir tmp("sharded");
  auto errors = run_ranks(4, [&](int r, comm::Communicator& c) {
    auto pieces = pieces_of(r, case_tensors());
    if (r == 3) pieces.push_back({"model.broken", {2}, 0, Tensor()});
    save_sharded_checkpoint(tmp / "ckpt", c, pieces, {});
  });
  expect_every_rank_fails(errors, ErrorCode::InvalidArgument, {"rank 3", "'model.broken'", "undefined"});
  EXPECT_TRUE(names_in(tmp.path()).empty());

  // A range that is not 1-D (only a whole tensor may come in its own shape).
  errors = run_ranks(4, [&](int r, comm::Communicator& c) {
    auto pieces = pieces_of(r, case_tensors());
    if (r == 1) pieces.push_back({"model.two_d", {4, 2}, 2, zeros({3, 2})});
    save_sharded_checkpoint(tmp / "ckpt", c, pieces, {});
  });
  expect_every_rank_fails(errors, ErrorCode::InvalidArgument, {"rank 1", "'model.two_d'", "shape [3, 2]", "1-D"});
  EXPECT_TRUE(names_in(tmp.path()).empty());
}

TEST(ShardedCheckpoint, RefusesToReplaceADirectoryThatIsNotACheckpoint) {
  TempDir tmp("sharded");
  const std::string dir = tmp / "ckpt";
  fs::create_directories(dir);
  std::ofstream(dir + "/notes.txt") << "mine";
  auto errors = run_ranks(2, [&](int r, comm::Communicator& c) {
    save_sharded_checkpoint(dir, c, r == 0 ? pieces_of(0, case_tensors()) : std::vector<TensorPiece>{}, {});
  });
  expect_every_rank_fails(errors, ErrorCode::InvalidArgument, {"is not a kirzl sharded checkpoint", "notes.txt"});
  EXPECT_EQ(names_in(dir), (std::vector<std::string>{"notes.txt"}));
}

TEST(ShardedCheckpoint, OpensAPlainSafetensorsFileAsOneShard) {
  TempDir tmp("sharded");
  StateDict sd;
  std::map<std::string, CaseTensor> expected;
  for (const auto& [key, t] : case_tensors()) {
    sd.insert(key, t.flat.reshape(Shape(t.shape)));
    expected[key] = t;
  }
  save_safetensors(tmp / "plain.safetensors", sd, {{"format", "something"}});
  const ShardedCheckpoint ck = ShardedCheckpoint::open(tmp / "plain.safetensors");
  EXPECT_EQ(ck.world_size(), 1);
  EXPECT_EQ(ck.metadata().at("format"), "something");
  expect_contents(ck, expected);
}

// The consolidated file as Python's safetensors sees it: per key dtype, shape and the CRC-32 of
// its bytes (bf16 keys without ml_dtypes: dtype and shape only), and the metadata. Returns the
// script's output, or empty with `skip` set when Python or safetensors is missing.
std::string python_view(const std::string& file, std::string& skip) {
  const char* script = R"PY(
import json, sys, zlib
try:
    from safetensors import safe_open
    import numpy
except ImportError as e:
    print("SKIP", e); sys.exit(0)
out = {}
with safe_open(sys.argv[1], framework="numpy") as f:
    meta = f.metadata()
    for k in sorted(f.keys()):
        s = f.get_slice(k)
        entry = {"dtype": s.get_dtype(), "shape": list(s.get_shape())}
        try:
            entry["crc32"] = zlib.crc32(numpy.ascontiguousarray(f.get_tensor(k)).tobytes())
        except (TypeError, ValueError, KeyError):
            pass  # BF16 without ml_dtypes
        out[k] = entry
print(json.dumps({"metadata": meta, "tensors": out}, sort_keys=True))
)PY";
  TempDir tmp("pyscript");
  std::ofstream(tmp / "view.py") << script;
  const std::string cmd = "python3 " + (tmp / "view.py") + " " + file + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    skip = "cannot run python3";
    return "";
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = ::pclose(p);
  if (rc != 0 || out.rfind("SKIP", 0) == 0) {
    skip = rc != 0 ? "python3 failed or is missing: " + out : out;
    return "";
  }
  return out;
}

TEST(ShardedCheckpoint, ConsolidateWritesOneOrdinarySafetensorsFile) {
  TempDir tmp("sharded");
  const std::string dir = tmp / "ckpt", all = tmp / "all.safetensors", model = tmp / "model.safetensors";
  const auto tensors = case_tensors();
  save_at_4(dir, tensors);
  consolidate(dir, all);
  consolidate(dir, model, /*include_optimizer=*/false);

  const SafetensorsFile loaded = load_safetensors(all);
  EXPECT_EQ(loaded.metadata, case_metadata());
  EXPECT_EQ(loaded.tensors.size(), tensors.size());
  for (const auto& [key, t] : tensors) {
    SCOPED_TRACE(key);
    ASSERT_TRUE(loaded.tensors.contains(key));
    const Tensor& got = loaded.tensors.at(key);
    EXPECT_EQ(got.shape().vec(), t.shape);
    EXPECT_TRUE(same_bytes(got.reshape({t.flat.numel()}), t.flat));
  }
  expect_contents(ShardedCheckpoint::open(all), tensors);

  std::map<std::string, CaseTensor> model_only;
  for (const auto& [key, t] : tensors)
    if (key.rfind("optim.", 0) != 0) model_only[key] = t;
  expect_contents(ShardedCheckpoint::open(model), model_only);
  // Consolidating a consolidated file copies it.
  consolidate(all, tmp / "again.safetensors");
  expect_contents(ShardedCheckpoint::open(tmp / "again.safetensors"), tensors);

  std::string skip;
  const std::string view = python_view(all, skip);
  if (view.empty()) GTEST_SKIP() << "the Python check: " << skip;
  for (const auto& [key, t] : tensors) {
    std::ostringstream expected;
    expected << "\"" << key << "\": {";
    if (t.flat.dtype() != DType::bf16)
      expected << "\"crc32\": " << detail::crc32_of(t.flat.data_ptr(), t.flat.nbytes()) << ", ";
    expected << "\"dtype\": \"" << safetensors_dtype_name(t.flat.dtype()) << "\", \"shape\": [";
    for (size_t i = 0; i < t.shape.size(); ++i) expected << (i ? ", " : "") << t.shape[i];
    expected << "]}";
    EXPECT_NE(view.find(expected.str()), std::string::npos) << "Python sees: " << view << "\nexpected: " << expected.str();
  }
  EXPECT_NE(view.find("\"run\": \"sharded test\""), std::string::npos) << view;
}

}  // namespace
}  // namespace kirzl::io
