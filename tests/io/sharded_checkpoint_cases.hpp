// Test support for sharded checkpoints: a set of tensors of several dtypes and sizes, cut into
// pieces across 4 ranks (through tensors, unevenly, some whole on one rank, some ranks holding
// nothing of a key), in-process ranks with a bounded collective timeout, and byte comparison.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <kirzl/comm.hpp>
#include <kirzl/core/generator.hpp>
#include <kirzl/io/sharded_checkpoint.hpp>
#include <kirzl/ops.hpp>

#include "support/rank_threads.hpp"

namespace kirzl::testing {

namespace fs = std::filesystem;

/// A fresh directory under the system's temporary directory, removed at the end of the scope.
class TempDir {
 public:
  explicit TempDir(const std::string& name) {
    path_ = fs::temp_directory_path() / ("kirzl_" + name + "_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(counter()++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }
  fs::path path_;
};

/// One logical tensor of the test set: its shape, its values (1-D) and which ranks write which
/// element ranges when 4 ranks save it.
struct CaseTensor {
  std::vector<int64_t> shape;
  Tensor flat;
  std::vector<std::pair<int, std::pair<int64_t, int64_t>>> cuts;  ///< (rank, [begin, end))
};

/// f32, bf16, i64 and an empty tensor; one f32 tensor spans several 1 MiB checksum chunks.
/// `salt` changes every value (a second checkpoint with different contents).
inline std::map<std::string, CaseTensor> case_tensors(uint64_t salt = 0) {
  Generator g(42 + salt);
  std::map<std::string, CaseTensor> m;
  m["model.fc1.weight"] = {{7, 13}, randn({91}, {}, &g), {{0, {0, 10}}, {1, {10, 40}}, {2, {40, 41}}, {3, {41, 91}}, {0, {40, 40}} /* empty */}};
  m["model.fc1.bias"] = {{5, 33}, randn({165}, {}, &g).to(DType::bf16), {{3, {0, 100}}, {1, {100, 165}}}};
  m["model.counts"] = {{3, 4}, randint(-1000, 1000, {12}, {.dtype = DType::i64}, &g), {{2, {0, 12}}}};
  m["model.empty"] = {{0, 3}, zeros({0}), {{1, {0, 0}}}};
  m["optim.step"] = {{}, full({1}, static_cast<double>(17 + salt), {.dtype = DType::i64}), {{0, {0, 1}}}};
  m["optim.state.0.exp_avg"] = {
      {600000}, randn({600000}, {}, &g), {{0, {0, 150001}}, {1, {150001, 350000}}, {2, {350000, 590000}}, {3, {590000, 600000}}}};
  return m;
}

/// The pieces rank `rank` of 4 writes.
inline std::vector<io::TensorPiece> pieces_of(int rank, const std::map<std::string, CaseTensor>& tensors) {
  std::vector<io::TensorPiece> out;
  for (const auto& [key, t] : tensors)
    for (const auto& [r, range] : t.cuts)
      if (r == rank) {
        // A whole tensor goes in its own shape (0-d for the step), a range as 1-D.
        int64_t numel = 1;
        for (int64_t d : t.shape) numel *= d;
        const bool whole = range.first == 0 && range.second == t.flat.numel() && numel == t.flat.numel();
        const Tensor part = t.flat.narrow(0, range.first, range.second - range.first);
        out.push_back({key, t.shape, range.first, whole ? part.reshape(Shape(t.shape)) : part});
      }
  return out;
}

inline std::map<std::string, std::string> case_metadata(uint64_t salt = 0) {
  return {{"step", std::to_string(1000 + salt)}, {"run", "sharded test"}, {"unicode", "grüße"}};
}

/// rank_thread_errors (support/rank_threads.hpp) with collectives that time out after `timeout`,
/// so that a hang fails the test as Error{Timeout} instead of blocking it.
inline std::vector<std::exception_ptr> run_ranks(int n, const std::function<void(int, comm::Communicator&)>& fn,
                                                 std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  return rank_thread_errors(n, fn, {.timeout = timeout});
}

/// Writes `tensors` at 4 ranks into `dir`; rethrows the first rank's error.
inline void save_at_4(const std::string& dir, const std::map<std::string, CaseTensor>& tensors,
                      const std::map<std::string, std::string>& meta = case_metadata()) {
  auto errors = run_ranks(4, [&](int r, comm::Communicator& c) {
    io::save_sharded_checkpoint(dir, c, pieces_of(r, tensors), meta);
  });
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

/// True when `a` and `b` have the same dtype, element count and bytes.
inline bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.numel() != b.numel()) return false;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

}  // namespace kirzl::testing
