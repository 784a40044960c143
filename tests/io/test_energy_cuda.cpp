// EnergyMeter on a real GPU (label gpu; skips without one): NVML is found at run time, the GPU is
// the one CUDA calls cuda:0 (by PCI bus id), and its counter moves at a plausible power.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <kirzl/core/cuda.hpp>
#include <kirzl/io/energy.hpp>

namespace kirzl::io {
namespace {

TEST(EnergyMeterCuda, GpuCounterMovesAtAPlausiblePower) {
  if (!cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  EnergyMeter m({.device = Device::cuda(0)});
  // Volta and newer have the counter; the project's GPUs (H100, H200) do.
  ASSERT_TRUE(m.available()) << m.unavailable_reason();
  EXPECT_NE(m.source().find(cuda::device_properties(0).pci_bus_id), std::string::npos) << m.source();
  const auto t0 = std::chrono::steady_clock::now();
  const double j0 = m.joules();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // idle: some tens of watts
  const double joules = m.joules() - j0;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double watts = joules / seconds;
  RecordProperty("idle_watts", std::to_string(watts));
  EXPECT_GT(watts, 5.0) << joules << " J in " << seconds << " s from " << m.source();
  EXPECT_LT(watts, 1500.0) << joules << " J in " << seconds << " s from " << m.source();
}

}  // namespace
}  // namespace kirzl::io
