// Fashion-MNIST (and MNIST, which shares its file layout) as an in-memory dataset.
#pragma once

#include <array>
#include <string>

#include "kirzl/data/dataset.hpp"

namespace kirzl::data {

enum class Split { Train, Test };

/// Where Debian's `dataset-fashion-mnist` package puts the files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct MnistOptions {
  /// Scale pixels to [0, 1] and then standardise with the training set's mean and standard
  /// deviation (`mean`, `std`); false keeps [0, 1].
  bool normalize = true;
  float mean = 0.2860f;  // Fashion-MNIST training images, pixel values / 255
  float std = 0.3530f;
  /// Keep only the first `limit` examples (0: all). For quick tests.
  int64_t limit = 0;
};

/// Images as f32 [N, 1, 28, 28] and labels as i64 [N] in 0..9, read from
/// `<dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`. Checks that images are 28x28, that
/// both files hold the same number of examples and that labels are < 10. A missing directory or
/// file is Error{Io} that names the path and says which Debian package provides the data.
class MnistDataset : public TensorDataset {
 public:
  MnistDataset(const std::string& dir, Split split, const MnistOptions& options = {});
};

/// Fashion-MNIST: ten classes of clothing (see class_names()).
class FashionMNIST : public MnistDataset {
 public:
  explicit FashionMNIST(const std::string& dir = kFashionMnistDir, Split split = Split::Train,
                        const MnistOptions& options = {})
      : MnistDataset(dir, split, options) {}
  static const std::array<const char*, 10>& class_names();
};

}  // namespace kirzl::data
