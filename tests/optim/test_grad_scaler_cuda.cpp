// amp::GradScaler with CUDA gradients: the multi-tensor unscale with its device-side found_inf
// flag, against the CPU scaler.
#include <gtest/gtest.h>

#include <limits>

#include <kirzl/kirzl.hpp>

#include "support/cuda_compare.hpp"

namespace kirzl {
namespace {

using testing::all_close;

TEST(GradScalerCuda, UnscaleAndStepMatchTheCpu) {
  KIRZL_REQUIRE_GPU();
  const std::vector<Shape> shapes = {{1}, {3}, {257}, {1000003}, {17, 5}};
  Generator gen(1);
  std::vector<Tensor> pc, pg;
  for (size_t k = 0; k < shapes.size(); ++k) {
    const DType dt = k % 2 ? DType::f16 : DType::f32;
    Tensor v = randn(shapes[k], {}, &gen).to(dt);
    Tensor g = v.to(Device::cuda());
    pc.push_back(v.requires_grad_());
    pg.push_back(g.requires_grad_());
  }
  optim::AdamW oc(pc, {.lr = 0.01}), og(pg, {.lr = 0.01});
  amp::GradScaler sc({.init_scale = 4096.0, .growth_interval = 2}), sg({.init_scale = 4096.0, .growth_interval = 2});
  for (int s = 0; s < 6; ++s) {
    for (size_t k = 0; k < pc.size(); ++k) {
      Tensor g = (randn(shapes[k], {}, &gen) * 4096.0).to(pc[k].dtype());
      if (s == 2 && k == 3) g.fill_(std::numeric_limits<double>::infinity());  // an overflow in one tensor
      pc[k].set_grad(g);
      pg[k].set_grad(g.to(Device::cuda()));
    }
    const bool stepped_c = sc.step(oc), stepped_g = sg.step(og);
    EXPECT_EQ(stepped_c, s != 2);
    EXPECT_EQ(stepped_g, stepped_c) << "step " << s;
    sc.update();
    sg.update();
    EXPECT_EQ(sg.get_scale(), sc.get_scale());
    for (size_t k = 0; k < pc.size(); ++k) {
      if (s != 2) {
        EXPECT_TRUE(all_close(pg[k].grad(), pc[k].grad())) << "unscaled gradient " << k << " step " << s;
      }
      EXPECT_TRUE(all_close(pg[k], pc[k])) << "parameter " << k << " step " << s;
    }
  }
  // 4096 -> 8192 after steps 0-1, 4096 after the overflow at 2, 8192 after steps 3-4.
  EXPECT_EQ(sg.get_scale(), 8192.0);
}

}  // namespace
}  // namespace kirzl
