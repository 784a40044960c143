#include <gtest/gtest.h>

#include <kirzl/kirzl.hpp>

using namespace kirzl;

TEST(Smoke, AddMulBackward) {
  auto a = from_vector<double>({1, 2, 3}).requires_grad_();
  auto b = from_vector<double>({4, 5, 6}).requires_grad_();
  auto loss = sum(a * b + a);
  loss.backward();
  EXPECT_DOUBLE_EQ(loss.item(), 4 + 10 + 18 + 6);
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{5, 6, 7}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{1, 2, 3}));
}
