// StateDict: named tensors in insertion order — what modules and optimizers save and load.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "kirzl/tensor.hpp"

namespace kirzl {

/// An insertion-ordered map from names to tensors (handles, not copies). Lookups are linear,
/// which is fine for the few thousand entries of a model. Not thread-safe for concurrent writes.
class StateDict {
 public:
  /// One entry: (name, tensor). Iteration yields these in insertion order.
  using Entry = std::pair<std::string, Tensor>;

  /// Adds or replaces `name`. Replacing keeps the original position.
  void insert(const std::string& name, const Tensor& t) {
    for (auto& e : entries_)
      if (e.first == name) {
        e.second = t;
        return;
      }
    entries_.emplace_back(name, t);
  }
  /// True when an entry is named `name` (exact, case-sensitive match).
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  /// The tensor named `name`, or nullptr.
  const Tensor* find(const std::string& name) const {
    for (const auto& e : entries_)
      if (e.first == name) return &e.second;
    return nullptr;
  }
  /// The tensor named `name`; throws Error{InvalidArgument} naming it when absent.
  const Tensor& at(const std::string& name) const {
    const Tensor* t = find(name);
    KIRZL_CHECK(t != nullptr, "StateDict: no entry named '", name, "'");
    return *t;
  }
  /// Number of entries.
  size_t size() const { return entries_.size(); }
  /// True when there are no entries.
  bool empty() const { return entries_.empty(); }
  /// Iterator over the entries (const Entry&) in insertion order:
  /// `for (const auto& [name, t] : dict)`. Invalidated by insert() of a new name.
  auto begin() const { return entries_.begin(); }
  /// End of the iteration begun by begin().
  auto end() const { return entries_.end(); }
  /// Iterator over the entries (Entry&) in insertion order; assigning an entry's tensor replaces
  /// the handle (the tensor it held is not modified). Do not rename entries through it: names must
  /// stay unique. Invalidated by insert() of a new name.
  auto begin() { return entries_.begin(); }
  /// End of the iteration begun by begin().
  auto end() { return entries_.end(); }

 private:
  std::vector<Entry> entries_;
};

}  // namespace kirzl
