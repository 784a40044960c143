// kirzl::models::fashion_mlp / fashion_cnn.
#include "kirzl/models/fashion_mnist.hpp"

#include "kirzl/nn/layers.hpp"

namespace kirzl::models {

std::shared_ptr<nn::Sequential> fashion_mlp() {
  return std::make_shared<nn::Sequential>(nn::Flatten(), nn::Linear(784, 256), nn::ReLU(), nn::Linear(256, 128),
                                          nn::ReLU(), nn::Linear(128, 10));
}

std::shared_ptr<nn::Sequential> fashion_cnn() {
  return std::make_shared<nn::Sequential>(nn::Conv2d(1, 32, 3, {.padding = {1, 1}}), nn::ReLU(), nn::MaxPool2d(2),
                                          nn::Conv2d(32, 64, 3, {.padding = {1, 1}}), nn::ReLU(), nn::MaxPool2d(2),
                                          nn::Flatten(), nn::Linear(64 * 7 * 7, 128), nn::ReLU(), nn::Linear(128, 10));
}

}  // namespace kirzl::models
