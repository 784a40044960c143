// The kernel dispatch table (src/kernels/dispatch_table.h): registration, lookup by the device of
// the tensor arguments, the one Unsupported error, and double registration. Test stubs are local
// objects, so the process-wide table stays as the library filled it.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/conv.h"
#include "kernels/dispatch_table.h"
#include "kernels/layer_norm.h"
#include "kirzl/config.hpp"
#include "kirzl/tensor.hpp"
#include "support/expect_error.hpp"

namespace kirzl {
namespace {

using AddFn = double (*)(const Tensor& t, double x);
double cpu_add_one(const Tensor&, double x) { return x + 1.0; }
double cuda_add_two(const Tensor&, double x) { return x + 2.0; }

using ListFn = int64_t (*)(int64_t tag, const std::vector<Tensor>& ts);
int64_t cpu_count(int64_t tag, const std::vector<Tensor>& ts) { return tag + static_cast<int64_t>(ts.size()); }

TEST(DispatchTable, CallsTheKernelRegisteredForTheTensorsDevice) {
  kernels::KernelStub<AddFn> stub("test_add");
  stub.register_kernel(DeviceType::CPU, &cpu_add_one);
  EXPECT_TRUE(stub.has_kernel(DeviceType::CPU));
  EXPECT_FALSE(stub.has_kernel(DeviceType::CUDA));
  EXPECT_EQ(stub(zeros({2}), 1.0), 2.0);
  EXPECT_EQ(stub.kernel(DeviceType::CPU), &cpu_add_one);
}

TEST(DispatchTable, EachDeviceTypeHasItsOwnEntry) {
  kernels::KernelStub<AddFn> stub("test_add");
  stub.register_kernel(DeviceType::CUDA, &cuda_add_two);
  stub.register_kernel(DeviceType::CPU, &cpu_add_one);
  EXPECT_EQ(stub.kernel(DeviceType::CPU), &cpu_add_one);
  EXPECT_EQ(stub.kernel(DeviceType::CUDA), &cuda_add_two);
  EXPECT_EQ(stub(zeros({1}), 0.0), 1.0);
}

TEST(DispatchTable, PicksTheFirstDefinedTensorAlsoInsideLists) {
  kernels::KernelStub<ListFn> stub("test_count");
  stub.register_kernel(DeviceType::CPU, &cpu_count);
  EXPECT_EQ(stub(10, {Tensor(), zeros({3})}), 12);
}

TEST(DispatchTable, MissingBackendIsUnsupportedNamingKernelDeviceAndReason) {
  kernels::KernelStub<AddFn> stub("test_cpu_only");
  stub.register_kernel(DeviceType::CPU, &cpu_add_one);
  // No CUDA tensor can exist without a GPU, so the device is named explicitly.
  const char* why = KIRZL_HAS_CUDA ? "no kernel is registered" : "kirzl was built without CUDA";
  EXPECT_KIRZL_ERROR(stub.kernel(DeviceType::CUDA), ErrorCode::Unsupported, "test_cpu_only", "CUDA", why);
}

TEST(DispatchTable, MissingCudaKernelOfARequirementNamesIt) {
  kernels::KernelStub<AddFn> stub("test_needs_lib", "kirzl was built without libfoo (configure with -DFOO=ON)");
  const char* why = KIRZL_HAS_CUDA ? "without libfoo" : "kirzl was built without CUDA";
  EXPECT_KIRZL_ERROR(stub.kernel(DeviceType::CUDA), ErrorCode::Unsupported, "test_needs_lib", "CUDA", why);
  EXPECT_KIRZL_ERROR(stub.kernel(DeviceType::CPU), ErrorCode::Unsupported, "test_needs_lib", "CPU",
                     "no kernel is registered");
}

TEST(DispatchTable, DoubleRegistrationIsAnError) {
  kernels::KernelStub<AddFn> stub("test_twice");
  stub.register_kernel(DeviceType::CPU, &cpu_add_one);
  EXPECT_KIRZL_ERROR(stub.register_kernel(DeviceType::CPU, &cuda_add_two), ErrorCode::Internal, "test_twice", "CPU",
                     "registered already");
  EXPECT_EQ(stub.kernel(DeviceType::CPU), &cpu_add_one);  // the first one stays
}

TEST(DispatchTable, CallWithoutADefinedTensorIsAnError) {
  kernels::KernelStub<AddFn> stub("test_no_tensor");
  stub.register_kernel(DeviceType::CPU, &cpu_add_one);
  EXPECT_KIRZL_ERROR(stub(Tensor(), 0.0), ErrorCode::Internal, "test_no_tensor", "defined tensor");
}

TEST(DispatchTable, LibraryKernelsAreRegisteredForThisBuildsBackends) {
  // The library's own stubs are filled on first use, in a static build too (Note [kernel
  // registration]): every backend that was built has its kernels.
  EXPECT_TRUE(kernels::layer_norm_forward.has_kernel(DeviceType::CPU));
  EXPECT_EQ(kernels::layer_norm_forward.has_kernel(DeviceType::CUDA), bool(KIRZL_HAS_CUDA));
  EXPECT_EQ(kernels::conv2d_forward.has_kernel(DeviceType::CUDA), bool(KIRZL_HAS_CUDNN));
  if (!KIRZL_HAS_CUDNN) {
    const char* why = KIRZL_HAS_CUDA ? "built without cuDNN" : "kirzl was built without CUDA";
    EXPECT_KIRZL_ERROR(kernels::conv2d_forward.kernel(DeviceType::CUDA), ErrorCode::Unsupported, "conv2d_forward",
                       "CUDA", why);
  }
}

}  // namespace
}  // namespace kirzl
