// DataLoader: batches from a Dataset, prepared ahead by a background thread.
#pragma once

#include <cstdint>
#include <memory>

#include "kirzl/data/dataset.hpp"
#include "kirzl/data/sampler.hpp"

namespace kirzl::data {

/// Options of DataLoader.
struct DataLoaderOptions {
  int64_t batch_size = 1;  ///< examples per batch (the last may be smaller unless drop_last)
  /// Visit a fresh permutation each epoch (seeded with seed + epoch). Ignored with a sampler.
  bool shuffle = false;
  uint64_t seed = 0;  ///< seed of the loader's own shuffling
  /// Drop the last batch when it is smaller than batch_size.
  bool drop_last = false;
  /// Decides the indices of each epoch when set (not owned; must outlive the loader). Its
  /// set_epoch() is the caller's business, as in PyTorch.
  Sampler* sampler = nullptr;
  /// Batches prepared ahead by the background thread; 0 loads each batch in the iterating thread.
  int prefetch = 2;
};

/// Iterates over batches of a dataset:
///
///     DataLoader loader(train, {.batch_size = 128, .shuffle = true});
///     for (auto& [x, y] : loader) { ... }
///
/// Each begin() starts an epoch: the indices come from the sampler (or from the loader's own
/// sequential/shuffled order, whose epoch counter advances at every begin()), and a background
/// thread assembles up to `prefetch` batches ahead, so loading overlaps the training step. The
/// batches and their order depend only on the options and the epoch, never on timing. An exception
/// thrown while loading is re-thrown by the iterator in the iterating thread. Leaving a loop early
/// is fine: the next begin() or the destructor stops the thread.
///
/// The dataset must outlive the loader. Not thread-safe: one thread iterates a loader at a time.
class DataLoader {
 public:
  /// A loader over `dataset` (not owned; it must outlive the loader).
  DataLoader(const Dataset& dataset, const DataLoaderOptions& options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  /// Batches per epoch.
  int64_t num_batches() const;
  /// Examples per epoch (after the sampler and drop_last).
  int64_t num_examples() const;
  /// Sets the epoch that the next begin() will produce (for the loader's own shuffling; with a
  /// sampler, call the sampler's set_epoch()). Lets a resumed run continue the same order.
  void set_epoch(int64_t epoch);
  /// The options given at construction.
  const DataLoaderOptions& options() const { return options_; }

  /// An input iterator over one epoch's batches.
  class Iterator {
   public:
    /// The current batch.
    Example& operator*() { return current_; }
    /// The current batch.
    Example* operator->() { return &current_; }
    /// Moves to the next batch (waiting for the prefetch thread; re-throws its error).
    Iterator& operator++();
    /// True when both are at the end, or both are not.
    bool operator==(const Iterator& other) const { return done_ == other.done_; }

   private:
    friend class DataLoader;
    Iterator(DataLoader* loader, bool done) : loader_(loader), done_(done) {}
    DataLoader* loader_;
    bool done_;
    Example current_;
  };

  /// Starts an epoch (stopping any unfinished one) and returns its first batch.
  Iterator begin();
  /// The end of the epoch.
  Iterator end() { return Iterator(this, true); }

 private:
  struct Epoch;
  bool next(Example& out);
  std::vector<int64_t> epoch_indices();

  const Dataset& dataset_;
  DataLoaderOptions options_;
  int64_t epoch_ = 0;
  std::unique_ptr<Epoch> running_;
};

}  // namespace kirzl::data
