// Dataset::get_batch's default, TensorDataset and the row gather they share.
#include "kirzl/data/dataset.hpp"

#include <cstring>
#include <vector>

#include "kirzl/ops/shape_ops.hpp"

namespace kirzl::data {

Tensor gather_rows(const Tensor& t, std::span<const int64_t> indices) {
  KIRZL_CHECK(t.defined() && t.dim() >= 1, "gather_rows: need a tensor with at least one dimension, got ",
              t.defined() ? t.describe() : std::string("an undefined tensor"));
  KIRZL_CHECK(t.device().is_cpu(), "gather_rows: the tensor must be on the CPU, got ", t.describe());
  const Tensor src = t.contiguous();
  std::vector<int64_t> dims(src.shape().begin(), src.shape().end());
  const int64_t rows = dims[0];
  dims[0] = static_cast<int64_t>(indices.size());
  Tensor out = empty(Shape(dims), {.dtype = src.dtype()});
  const size_t row_bytes = src.numel() == 0 ? 0 : src.nbytes() / static_cast<size_t>(rows);
  const auto* from = static_cast<const char*>(src.data_ptr());
  auto* to = static_cast<char*>(out.data_ptr());
  for (size_t i = 0; i < indices.size(); ++i) {
    const int64_t r = indices[i];
    KIRZL_CHECK(r >= 0 && r < rows, "gather_rows: index ", r, " is out of range for ", rows, " rows (", t.describe(), ")");
    if (row_bytes) std::memcpy(to + i * row_bytes, from + static_cast<size_t>(r) * row_bytes, row_bytes);
  }
  return out;
}
Example Dataset::get_batch(std::span<const int64_t> indices) const {
  KIRZL_CHECK(!indices.empty(), "Dataset::get_batch: no indices");
  std::vector<Tensor> inputs, targets;
  inputs.reserve(indices.size());
  targets.reserve(indices.size());
  for (int64_t i : indices) {
    Example e = get(i);
    inputs.push_back(e.input);
    targets.push_back(e.target);
  }
  return {stack(inputs, 0), stack(targets, 0)};
}

TensorDataset::TensorDataset(Tensor inputs, Tensor targets) : inputs_(std::move(inputs)), targets_(std::move(targets)) {
  KIRZL_CHECK(inputs_.defined() && targets_.defined(), "TensorDataset: inputs and targets must be defined tensors");
  KIRZL_CHECK(inputs_.dim() >= 1 && targets_.dim() >= 1 && inputs_.size(0) == targets_.size(0),
              "TensorDataset: inputs and targets need the same first dimension, got ", inputs_.describe(), " and ",
              targets_.describe());
  KIRZL_CHECK(inputs_.device().is_cpu() && targets_.device().is_cpu(), "TensorDataset: tensors must be on the CPU, got ",
              inputs_.describe(), " and ", targets_.describe());
  inputs_ = inputs_.contiguous();
  targets_ = targets_.contiguous();
}
int64_t TensorDataset::size() const { return inputs_.size(0); }
Example TensorDataset::get(int64_t index) const {
  KIRZL_CHECK(index >= 0 && index < size(), "TensorDataset::get: index ", index, " is out of range for ", size(), " examples");
  return {inputs_.select(0, index), targets_.select(0, index)};
}

Example TensorDataset::get_batch(std::span<const int64_t> indices) const {
  return {gather_rows(inputs_, indices), gather_rows(targets_, indices)};
}

}  // namespace kirzl::data
