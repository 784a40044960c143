// Sequential, random and distributed samplers.
#include "kirzl/data/sampler.hpp"

#include <numeric>

#include "kirzl/core/error.hpp"
#include "kirzl/tensor.hpp"

namespace kirzl::data {
namespace {

std::vector<int64_t> permutation(int64_t n, uint64_t seed, int64_t epoch) {
  Generator g(seed + static_cast<uint64_t>(epoch));
  return randperm(n, &g).to_vector<int64_t>();
}

}  // namespace

SequentialSampler::SequentialSampler(int64_t n) : n_(n) {
  KIRZL_CHECK(n >= 0, "SequentialSampler: n must be >= 0, got ", n);
}

std::vector<int64_t> SequentialSampler::indices() const {
  std::vector<int64_t> v(static_cast<size_t>(n_));
  std::iota(v.begin(), v.end(), int64_t{0});
  return v;
}

RandomSampler::RandomSampler(int64_t n, uint64_t seed) : n_(n), seed_(seed) {
  KIRZL_CHECK(n >= 0, "RandomSampler: n must be >= 0, got ", n);
}

std::vector<int64_t> RandomSampler::indices() const { return permutation(n_, seed_, epoch_); }

DistributedSampler::DistributedSampler(int64_t n, int rank, int world_size, const DistributedSamplerOptions& options)
    : n_(n), rank_(rank), world_size_(world_size), options_(options) {
  KIRZL_CHECK(n >= 0, "DistributedSampler: the dataset size must be >= 0, got ", n);
  KIRZL_CHECK(world_size >= 1, "DistributedSampler: world_size must be >= 1, got ", world_size);
  KIRZL_CHECK(rank >= 0 && rank < world_size, "DistributedSampler: rank ", rank, " is outside 0..", world_size - 1);
  per_rank_ = options.drop_last ? n / world_size : (n + world_size - 1) / world_size;
}

std::vector<int64_t> DistributedSampler::indices() const {
  std::vector<int64_t> all;
  if (options_.shuffle) {
    all = permutation(n_, options_.seed, epoch_);
  } else {
    all.resize(static_cast<size_t>(n_));
    std::iota(all.begin(), all.end(), int64_t{0});
  }
  // Note [equal shares]: every rank must run the same number of steps, or the ranks with more
  // batches would wait forever in a collective. Pad by wrapping (possibly several times when
  // n < world_size) or cut the tail.
  const int64_t total = per_rank_ * world_size_;
  const int64_t real = static_cast<int64_t>(all.size());
  for (int64_t i = real; i < total; ++i) all.push_back(all[static_cast<size_t>(i % real)]);
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(per_rank_));
  for (int64_t i = rank_; i < total; i += world_size_) mine.push_back(all[static_cast<size_t>(i)]);
  return mine;
}

}  // namespace kirzl::data
