// Fashion-MNIST (and MNIST, which shares its file layout) as an in-memory dataset.
#pragma once

#include <array>
#include <string>

#include "kirzl/data/dataset.hpp"

namespace kirzl::data {

/// Which part of an MNIST-layout data set to read: the training files (`train-*`, 60000
/// examples) or the test files (`t10k-*`, 10000 examples).
enum class Split { Train, Test };

/// Where Debian's `dataset-fashion-mnist` package puts the files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// How MnistDataset turns the stored bytes into inputs: `{.normalize = false, .limit = 512}`.
struct MnistOptions {
  /// Scale pixels to [0, 1] and then standardise with the training set's mean and standard
  /// deviation (`mean`, `std`); false keeps [0, 1].
  bool normalize = true;
  /// Mean subtracted after scaling to [0, 1]; the default is that of the Fashion-MNIST training
  /// images (use 0.1307 for MNIST). Ignored when `normalize` is false.
  float mean = 0.2860f;
  /// Standard deviation divided by after subtracting `mean`; the default is that of the
  /// Fashion-MNIST training images (use 0.3081 for MNIST). Must be nonzero (not checked).
  /// Ignored when `normalize` is false.
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
  /// Reads and converts the whole split of `dir` into memory at once (about 190 MB of f32 for the
  /// 60000 training images); the data set is immutable afterwards, so get() is thread-safe.
  /// Throws Error{Io} as described above.
  MnistDataset(const std::string& dir, Split split, const MnistOptions& options = {});
};

/// Fashion-MNIST: ten classes of clothing (see class_names()).
class FashionMNIST : public MnistDataset {
 public:
  /// The `split` of Fashion-MNIST in `dir` (by default where Debian installs it); throws
  /// Error{Io} as MnistDataset does when the files are missing or malformed.
  explicit FashionMNIST(const std::string& dir = kFashionMnistDir, Split split = Split::Train,
                        const MnistOptions& options = {})
      : MnistDataset(dir, split, options) {}
  /// The names of labels 0..9, in label order: "T-shirt/top", "Trouser", "Pullover", "Dress",
  /// "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot". Static storage; never throws.
  static const std::array<const char*, 10>& class_names();
};

}  // namespace kirzl::data
