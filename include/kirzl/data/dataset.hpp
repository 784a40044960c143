// Dataset and TensorDataset: indexed collections of (input, target) examples.
#pragma once

#include <cstdint>
#include <span>

#include "kirzl/tensor.hpp"

namespace kirzl::data {

/// One example, or a batch of them stacked along a new first dimension. Works with structured
/// bindings: `auto& [x, y] = batch;`.
struct Example {
  Tensor input;   ///< e.g. an image, or a batch [n, ...] of them
  Tensor target;  ///< e.g. a class index, or a batch [n] of them
};

/// An indexed collection of examples. Implementations must make get() and get_batch() safe to call
/// from a thread other than the one that built the dataset (the DataLoader's prefetch thread calls
/// them), one call at a time.
class Dataset {
 public:
  virtual ~Dataset() = default;
  /// Number of examples.
  virtual int64_t size() const = 0;
  /// Example `index` (0 <= index < size(); otherwise Error{InvalidArgument}).
  virtual Example get(int64_t index) const = 0;
  /// The examples at `indices`, stacked: input [n, ...], target [n, ...]. The default stacks get();
  /// datasets held in memory override it with one gather per field.
  virtual Example get_batch(std::span<const int64_t> indices) const;
};

/// A dataset over two tensors whose first dimensions have the same extent: example i is
/// (inputs[i], targets[i]). Holds handles to the tensors (no copy); they must be on the CPU.
class TensorDataset : public Dataset {
 public:
  /// Error{InvalidArgument} unless both are CPU tensors with the same first extent.
  TensorDataset(Tensor inputs, Tensor targets);
  int64_t size() const override;
  Example get(int64_t index) const override;
  /// Gathers rows into new contiguous tensors (a memcpy per row).
  Example get_batch(std::span<const int64_t> indices) const override;
  /// All inputs, [size(), ...].
  const Tensor& inputs() const { return inputs_; }
  /// All targets, [size(), ...].
  const Tensor& targets() const { return targets_; }

 private:
  Tensor inputs_, targets_;
};

/// Copies rows `indices` of `t` (first dimension) into a new contiguous CPU tensor [n, ...].
/// Throws Error{InvalidArgument} naming the index when one is out of range.
Tensor gather_rows(const Tensor& t, std::span<const int64_t> indices);

}  // namespace kirzl::data
