#include "kirzl/data/fashion_mnist.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "kirzl/kirzl.hpp"
#include "support/expect_error.hpp"

using namespace kirzl;
using namespace kirzl::data;

TEST(FashionMNIST, MissingDirectorySaysWhichPackageToInstall) {
  EXPECT_KIRZL_ERROR(FashionMNIST("/nonexistent/fashion"), ErrorCode::Io, "/nonexistent/fashion", "dataset-fashion-mnist");
}

TEST(FashionMNIST, MissingFileIsNamed) {
  auto dir = std::filesystem::temp_directory_path() / "kirzl_empty_fmnist";
  std::filesystem::create_directories(dir);
  EXPECT_KIRZL_ERROR(FashionMNIST(dir.string(), Split::Test), ErrorCode::Io, "t10k-images-idx3-ubyte", "dataset-fashion-mnist");
  std::filesystem::remove_all(dir);
}

// The real data, from Debian's package (scripts/setup.sh installs it).
TEST(FashionMNIST, LoadsTheDebianFiles) {
  if (!std::filesystem::exists(kFashionMnistDir)) GTEST_SKIP() << kFashionMnistDir << " is missing: apt-get install dataset-fashion-mnist";
  FashionMNIST test(kFashionMnistDir, Split::Test);
  ASSERT_EQ(test.size(), 10000);
  EXPECT_EQ(test.inputs().shape(), (Shape{10000, 1, 28, 28}));
  EXPECT_EQ(test.inputs().dtype(), DType::f32);
  EXPECT_EQ(test.targets().dtype(), DType::i64);
  // The test split is balanced: 1000 of each class.
  auto y = test.targets().to_vector<int64_t>();
  std::vector<int> count(10);
  for (int64_t c : y) ++count[static_cast<size_t>(c)];
  for (int c : count) EXPECT_EQ(c, 1000);
  // Normalised with the training statistics: the test split's mean is near 0 and std near 1.
  double m = mean(test.inputs()).item();
  EXPECT_NEAR(m, 0.0, 0.05);
  FashionMNIST raw(kFashionMnistDir, Split::Train, {.normalize = false, .limit = 100});
  EXPECT_EQ(raw.size(), 100);
  EXPECT_GE(min(raw.inputs()).item(), 0.0);
  EXPECT_LE(max(raw.inputs()).item(), 1.0);
  EXPECT_STREQ(FashionMNIST::class_names()[9], "Ankle boot");
}
