#include "kirzl/nn/containers.hpp"

namespace kirzl::nn {

void Sequential::push_back(std::shared_ptr<Module> m) {
  add_child(std::to_string(layers_.size()), m);
  layers_.push_back(std::move(m));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& layer : layers_) h = (*layer)(h);  // through operator(): its hooks fire
  return h;
}

Module& Sequential::operator[](size_t i) const {
  KIRZL_CHECK(i < layers_.size(), "Sequential: index ", i, " is out of range (", layers_.size(), " layers)");
  return *layers_[i];
}

void ModuleList::push_back(std::shared_ptr<Module> m) {
  add_child(std::to_string(items_.size()), m);
  items_.push_back(std::move(m));
}

Module& ModuleList::operator[](size_t i) const {
  KIRZL_CHECK(i < items_.size(), "ModuleList: index ", i, " is out of range (", items_.size(), " modules)");
  return *items_[i];
}

}  // namespace kirzl::nn
