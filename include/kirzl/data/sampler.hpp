// Samplers: which examples an epoch visits, and in what order.
#pragma once

#include <cstdint>
#include <vector>

namespace kirzl::data {

/// Produces the example indices of one epoch. Implementations are deterministic functions of their
/// options and the epoch set with set_epoch(): the same on every run and machine.
class Sampler {
 public:
  virtual ~Sampler() = default;
  /// Indices of the current epoch, in visiting order.
  virtual std::vector<int64_t> indices() const = 0;
  /// How many indices indices() returns.
  virtual int64_t size() const = 0;
  /// Selects the epoch (reshuffles for shuffling samplers). Call it at the start of every epoch.
  virtual void set_epoch(int64_t epoch) { epoch_ = epoch; }
  /// The epoch set last (0 at first).
  int64_t epoch() const { return epoch_; }

 protected:
  int64_t epoch_ = 0;  ///< set by set_epoch()
};

/// 0, 1, ..., n-1.
class SequentialSampler : public Sampler {
 public:
  /// Indices 0..n-1 in order.
  explicit SequentialSampler(int64_t n);
  std::vector<int64_t> indices() const override;
  int64_t size() const override { return n_; }

 private:
  int64_t n_;
};

/// A permutation of 0..n-1 drawn from a generator seeded with seed + epoch.
class RandomSampler : public Sampler {
 public:
  /// A fresh permutation of 0..n-1 each epoch.
  explicit RandomSampler(int64_t n, uint64_t seed = 0);
  std::vector<int64_t> indices() const override;
  int64_t size() const override { return n_; }

 private:
  int64_t n_;
  uint64_t seed_;
};

/// Options of DistributedSampler.
struct DistributedSamplerOptions {
  bool shuffle = true;  ///< false: the permutation is 0..n-1
  /// Must be the same on every rank: it decides the common permutation.
  uint64_t seed = 0;
  /// false: pad by wrapping around to the start so that every rank gets ceil(n / world) samples;
  /// true: drop the tail so that every rank gets floor(n / world).
  bool drop_last = false;
};

/// Gives rank r of `world_size` ranks the indices perm[r], perm[r + world], perm[r + 2 world], ...
/// of one permutation shared by all ranks (seeded with seed + epoch). Every rank gets exactly the
/// same number of samples (see drop_last), so uneven data can never make ranks run different step
/// counts. Together the ranks cover each example once per epoch (plus the wrapped padding).
class DistributedSampler : public Sampler {
 public:
  /// Throws Error{InvalidArgument} unless n >= 0, world_size >= 1 and 0 <= rank < world_size.
  DistributedSampler(int64_t n, int rank, int world_size, const DistributedSamplerOptions& options = {});
  /// For anything with rank() and size(), e.g. the comm::ProcessGroup from comm::init().
  template <typename Group>
    requires requires(const Group& g) {
      g.rank();
      g.size();
    }
  DistributedSampler(int64_t n, const Group& group, const DistributedSamplerOptions& options = {})
      : DistributedSampler(n, group.rank(), group.size(), options) {}

  std::vector<int64_t> indices() const override;
  int64_t size() const override { return per_rank_; }
  /// This rank.
  int rank() const { return rank_; }
  /// Number of ranks sharing the data.
  int world_size() const { return world_size_; }

 private:
  int64_t n_;
  int rank_, world_size_;
  DistributedSamplerOptions options_;
  int64_t per_rank_;
};

}  // namespace kirzl::data
