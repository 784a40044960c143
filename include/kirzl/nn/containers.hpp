// Containers: Sequential (a chain) and ModuleList (an indexable list).
#pragma once

#include <concepts>
#include <memory>
#include <vector>

#include "kirzl/nn/module.hpp"

namespace kirzl::nn {

/// Runs its children in order, each on the previous one's output. Children are named "0", "1", ...
///   nn::Sequential model(nn::Flatten(), nn::Linear(784, 256), nn::ReLU(), nn::Linear(256, 10));
class Sequential : public Module {
 public:
  Sequential() = default;
  /// The chain of `modules` in order, each moved into a new shared module (as push_back does):
  /// `nn::Sequential(nn::Linear(4, 8), nn::ReLU())`.
  template <std::derived_from<Module>... Ms>
    requires(sizeof...(Ms) > 0)
  explicit Sequential(Ms&&... modules) {
    (push_back(std::forward<Ms>(modules)), ...);
  }
  /// Appends a module value (moved in) or a shared module.
  template <std::derived_from<Module> M>
  void push_back(M&& m) {
    push_back(std::shared_ptr<Module>(as_module(std::forward<M>(m))));
  }
  /// Appends `m` as the next layer, registered as child "<size()>". The module is shared, not
  /// copied: its parameters stay the same tensors wherever else it is held. Throws
  /// Error{InvalidArgument} for nullptr.
  void push_back(std::shared_ptr<Module> m);
  Tensor forward(const Tensor& x) override;
  std::string repr() const override { return "Sequential"; }
  /// Number of layers.
  size_t size() const { return layers_.size(); }
  /// Layer `i` (as Module; see at() for its concrete type). Throws Error{InvalidArgument} for
  /// i >= size(). The reference is valid while the Sequential lives.
  Module& operator[](size_t i) const;
  /// The i-th layer as its concrete type; throws Error{InvalidArgument} if it is another type.
  template <std::derived_from<Module> M>
  M& at(size_t i) const {
    auto* m = dynamic_cast<M*>(&(*this)[i]);
    KIRZL_CHECK(m != nullptr, "Sequential::at: layer ", i, " is ", (*this)[i].repr(), ", not the requested type");
    return *m;
  }

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

/// A list of modules registered under "0", "1", ...; it has no forward of its own.
class ModuleList : public Module {
 public:
  ModuleList() = default;
  /// Appends a module value, moved into a new shared module: `list.push_back(nn::Linear(4, 4))`.
  template <std::derived_from<Module> M>
  void push_back(M&& m) {
    push_back(std::shared_ptr<Module>(as_module(std::forward<M>(m))));
  }
  /// Appends `m`, registered as child "<size()>". The module is shared, not copied (keep the
  /// shared_ptr for typed access). Throws Error{InvalidArgument} for nullptr.
  void push_back(std::shared_ptr<Module> m);
  std::string repr() const override { return "ModuleList"; }
  /// Number of modules.
  size_t size() const { return items_.size(); }
  /// Module `i`. Throws Error{InvalidArgument} for i >= size().
  Module& operator[](size_t i) const;
  /// Iterator over the modules as `const std::shared_ptr<Module>&`, in insertion order:
  /// `for (const auto& m : list) m->train(false);`. Invalidated by push_back.
  auto begin() const { return items_.begin(); }
  /// End of the iteration begun by begin().
  auto end() const { return items_.end(); }

 private:
  std::vector<std::shared_ptr<Module>> items_;
};

}  // namespace kirzl::nn
