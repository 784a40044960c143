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
  void push_back(std::shared_ptr<Module> m);
  Tensor forward(const Tensor& x) override;
  std::string repr() const override { return "Sequential"; }
  size_t size() const { return layers_.size(); }
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
  template <std::derived_from<Module> M>
  void push_back(M&& m) {
    push_back(std::shared_ptr<Module>(as_module(std::forward<M>(m))));
  }
  void push_back(std::shared_ptr<Module> m);
  std::string repr() const override { return "ModuleList"; }
  size_t size() const { return items_.size(); }
  Module& operator[](size_t i) const;
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  std::vector<std::shared_ptr<Module>> items_;
};

}  // namespace kirzl::nn
