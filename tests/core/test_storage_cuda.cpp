// GPU tests of the core: device memory, host<->device copies, fill and cast kernels.
// Label `gpu`; each test skips with the reason when no GPU is present.
#include <gtest/gtest.h>

#include <kirzl/kirzl.hpp>

#include "support/expect_error.hpp"

using namespace kirzl;

namespace {
#define REQUIRE_GPU()                                                                                 \
  do {                                                                                                \
    if (!KIRZL_HAS_CUDA) GTEST_SKIP() << "kirzl was built without CUDA";                               \
    if (!cuda::is_available()) GTEST_SKIP() << "no CUDA device on this machine (cuda::device_count() == 0)"; \
  } while (0)
}  // namespace

TEST(CudaStorage, RoundTripPreservesEveryDtype) {
  REQUIRE_GPU();
  Generator g(1);
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8, DType::u16}) {
    Tensor host = randint(0, 200, {1000003}, {.dtype = dt}, &g);  // odd size
    Tensor dev = host.to(Device::cuda(0));
    EXPECT_EQ(dev.device(), Device::cuda(0));
    EXPECT_EQ(dev.to(Device::cpu()).to_vector<double>(), host.to_vector<double>()) << dtype_name(dt);
  }
}

TEST(CudaStorage, FillAndCastMatchTheCpu) {
  REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8, DType::u16}) {
    Tensor d = full({4097}, 3.0, {.dtype = dt, .device = Device::cuda(0)});
    EXPECT_EQ(d.to(Device::cpu()).to_vector<double>(), full({4097}, 3.0, {.dtype = dt}).to_vector<double>());
  }
  Generator g(2);
  Tensor x = randn({12345}, {}, &g);
  for (DType dt : {DType::f64, DType::bf16, DType::f16, DType::i32}) {
    Tensor on_gpu = x.to(Device::cuda(0)).to(dt).to(Device::cpu());
    Tensor on_cpu = x.to(dt);
    EXPECT_EQ(on_gpu.to_vector<double>(), on_cpu.to_vector<double>()) << "cast f32 -> " << dtype_name(dt);
  }
}

TEST(CudaStorage, BadDeviceIndexIsAClearError) {
  REQUIRE_GPU();
  int n = cuda::device_count();
  EXPECT_KIRZL_ERROR(zeros({2}, {.device = Device::cuda(n)}), ErrorCode::InvalidArgument, "cuda:" + std::to_string(n),
                     "visible");
}

TEST(CudaStorage, OpsWithoutCudaKernelsSayWhy) {
  REQUIRE_GPU();
  Tensor a = ones({4}, {.device = Device::cuda(0)});
  EXPECT_KIRZL_ERROR(add(a, a), ErrorCode::Unsupported, "not implemented");
}
