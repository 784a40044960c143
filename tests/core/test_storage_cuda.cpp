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

TEST(CudaStorage, DeviceMemoryComesFromTheCachingAllocator) {
  REQUIRE_GPU();
  cuda::MemoryStats before = cuda::memory_stats(0);
  {
    Tensor a = empty({1000}, {.device = Device::cuda(0)});
    cuda::MemoryStats during = cuda::memory_stats(0);
    EXPECT_EQ(during.allocations, before.allocations + 1);
    EXPECT_EQ(during.allocated_bytes, before.allocated_bytes + 4096) << "4000 bytes rounded to 512-byte steps";
    EXPECT_EQ(during.requested_bytes, before.requested_bytes + 4000);
  }
  EXPECT_EQ(cuda::memory_stats(0).allocated_bytes, before.allocated_bytes);
  // Zero-element tensors need no memory but still check the device.
  Tensor z = empty({0}, {.device = Device::cuda(0)});
  EXPECT_EQ(z.data_ptr(), nullptr);
  EXPECT_EQ(cuda::memory_stats(0).allocations, before.allocations + 1);
}

TEST(CudaStorage, CopyBytesOrdersOnTheCurrentStream) {
  REQUIRE_GPU();
  // A device-to-device copy_bytes on a user stream, then a blocking copy to the host on the same
  // stream: the host sees the bytes without any explicit synchronisation.
  Generator g(3);
  Tensor host = randn({1 << 20}, {}, &g);
  Tensor a = host.to(Device::cuda(0));
  cuda::Stream s(0);
  cuda::Event ready;
  ready.record(cuda::Stream::current(0));
  s.wait(ready);
  cuda::StreamGuard guard(s);
  Tensor b = empty({1 << 20}, {.device = Device::cuda(0)});
  copy_bytes(b.data_ptr(), b.device(), a.data_ptr(), a.device(), a.nbytes());
  EXPECT_EQ(b.to(Device::cpu()).to_vector<float>(), host.to_vector<float>());
  a.storage().record_stream(s);
}
