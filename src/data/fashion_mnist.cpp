// MNIST-layout datasets: two IDX files per split, checked against each other.
#include "kirzl/data/fashion_mnist.hpp"

#include <filesystem>

#include "kirzl/data/idx.hpp"
#include "kirzl/ops/elementwise.hpp"

namespace kirzl::data {
namespace {

// The file `<dir>/<stem>` or `<dir>/<stem>.gz`, whichever exists.
std::string find_file(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    KIRZL_FAIL(ErrorCode::Io, "MnistDataset: data directory '", dir,
               "' does not exist. Fashion-MNIST comes with Debian's package dataset-fashion-mnist: "
               "sudo apt-get install dataset-fashion-mnist (it installs to ", kFashionMnistDir, ")");
  for (const std::string& name : {stem + ".gz", stem}) {
    const fs::path p = fs::path(dir) / name;
    if (fs::exists(p, ec)) return p.string();
  }
  KIRZL_FAIL(ErrorCode::Io, "MnistDataset: neither '", stem, "' nor '", stem, ".gz' is in '", dir,
             "'. Fashion-MNIST comes with Debian's package dataset-fashion-mnist: sudo apt-get install dataset-fashion-mnist");
}

Tensor load_images(const std::string& dir, Split split, const MnistOptions& o) {
  const std::string path = find_file(dir, split == Split::Train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte");
  Tensor raw = read_idx(path);
  KIRZL_CHECK_CODE(raw.dtype() == DType::u8 && raw.dim() == 3 && raw.size(1) == 28 && raw.size(2) == 28, ErrorCode::Io,
                   "MnistDataset: '", path, "' should hold u8 images [N, 28, 28], got ", raw.describe());
  if (o.limit > 0 && o.limit < raw.size(0)) raw = raw.slice(0, 0, o.limit);
  Tensor x = raw.to(DType::f32).reshape({raw.size(0), 1, 28, 28});
  if (o.normalize)
    x = (x * (1.0 / (255.0 * o.std))) - (o.mean / o.std);
  else
    x = x * (1.0 / 255.0);
  return x.contiguous();
}

Tensor load_labels(const std::string& dir, Split split, const MnistOptions& o, int64_t n_images) {
  const std::string path = find_file(dir, split == Split::Train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte");
  Tensor raw = read_idx(path);
  KIRZL_CHECK_CODE(raw.dtype() == DType::u8 && raw.dim() == 1, ErrorCode::Io, "MnistDataset: '", path,
                   "' should hold u8 labels [N], got ", raw.describe());
  if (o.limit > 0 && o.limit < raw.size(0)) raw = raw.slice(0, 0, o.limit);
  KIRZL_CHECK_CODE(raw.size(0) == n_images, ErrorCode::Io, "MnistDataset: '", path, "' holds ", raw.size(0),
                   " labels but the image file holds ", n_images, " images");
  const uint8_t* p = raw.data<uint8_t>();
  for (int64_t i = 0; i < raw.size(0); ++i)
    KIRZL_CHECK_CODE(p[i] < 10, ErrorCode::Io, "MnistDataset: '", path, "': label ", int{p[i]}, " at index ", i,
                     " is not a class 0..9");
  return raw.to(DType::i64);
}

}  // namespace

MnistDataset::MnistDataset(const std::string& dir, Split split, const MnistOptions& options)
    : TensorDataset([&] {
        Tensor x = load_images(dir, split, options);
        return TensorDataset(x, load_labels(dir, split, options, x.size(0)));
      }()) {}

const std::array<const char*, 10>& FashionMNIST::class_names() {
  static const std::array<const char*, 10> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

}  // namespace kirzl::data
