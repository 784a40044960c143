// EnergyMeter: RAPL on fake powercap trees (one and two packages, subzones and psys ignored,
// wrap-around, unreadable and missing files), NVML absent, and EnergyWindow's figures.
#include <gtest/gtest.h>

#include <dlfcn.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <kirzl/core/cuda.hpp>
#include <kirzl/io/energy.hpp>

#include "support/expect_error.hpp"

namespace kirzl::io {
namespace {

namespace fs = std::filesystem;

// A powercap tree in a temp dir: zones with name, energy_uj and max_energy_range_uj.
class FakePowercap : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("kirzl_energy_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  static void write(const fs::path& p, const std::string& text) {
    std::ofstream f(p);
    f << text << "\n";
  }
  // Zone `dir` (e.g. "intel-rapl:0" or "intel-rapl:0:1") named `name` at `uj` of `range`.
  void zone(const std::string& dir, const std::string& name, uint64_t uj, uint64_t range = 262143328850) {
    fs::create_directories(root_ / dir);
    write(root_ / dir / "name", name);
    set(dir, uj);
    write(root_ / dir / "max_energy_range_uj", std::to_string(range));
  }
  void set(const std::string& dir, uint64_t uj) { write(root_ / dir / "energy_uj", std::to_string(uj)); }
  EnergyMeter meter() { return EnergyMeter({.powercap_root = root_.string()}); }

  fs::path root_;
};

TEST_F(FakePowercap, OnePackage) {
  zone("intel-rapl:0", "package-0", 5'000'000);
  EnergyMeter m = meter();
  ASSERT_TRUE(m.available()) << m.unavailable_reason();
  EXPECT_EQ(m.unavailable_reason(), "");
  EXPECT_EQ(m.source(), "RAPL package-0 (" + root_.string() + ")");
  EXPECT_DOUBLE_EQ(m.joules(), 0.0);  // from the construction on
  set("intel-rapl:0", 7'500'000);
  EXPECT_DOUBLE_EQ(m.joules(), 2.5);
  set("intel-rapl:0", 8'000'000);
  EXPECT_DOUBLE_EQ(m.joules(), 3.0);
}

TEST_F(FakePowercap, TwoPackagesAreSummedAndSubzonesAndPsysIgnored) {
  zone("intel-rapl:0", "package-0", 1'000'000);
  zone("intel-rapl:0:0", "core", 100);
  zone("intel-rapl:0:1", "dram", 100);
  zone("intel-rapl:1", "package-1", 2'000'000);
  zone("intel-rapl:1:0", "core", 100);
  zone("intel-rapl:2", "psys", 100);  // the platform: includes the packages
  fs::create_directories(root_ / "intel-rapl-mmio:0");  // another driver's zone
  fs::create_directories(root_ / "intel-rapl:1:1");     // a subzone is not even opened
  EnergyMeter m = meter();
  ASSERT_TRUE(m.available()) << m.unavailable_reason();
  EXPECT_EQ(m.source(), "RAPL package-0 + package-1 (" + root_.string() + ")");
  set("intel-rapl:0", 3'000'000);     // +2 J
  set("intel-rapl:1", 2'500'000);     // +0.5 J
  set("intel-rapl:0:0", 90'000'000);  // subzones, psys: not counted
  set("intel-rapl:0:1", 90'000'000);
  set("intel-rapl:1:0", 90'000'000);
  set("intel-rapl:2", 90'000'000);
  EXPECT_DOUBLE_EQ(m.joules(), 2.5);
}

TEST_F(FakePowercap, WrapAroundIsFollowed) {
  zone("intel-rapl:0", "package-0", 900'000, 1'000'000);
  EnergyMeter m = meter();
  ASSERT_TRUE(m.available()) << m.unavailable_reason();
  set("intel-rapl:0", 950'000);
  EXPECT_DOUBLE_EQ(m.joules(), 0.05);
  set("intel-rapl:0", 200'000);  // wrapped: 50'000 to the top, then 200'000
  EXPECT_DOUBLE_EQ(m.joules(), 0.3);
  set("intel-rapl:0", 300'000);
  EXPECT_DOUBLE_EQ(m.joules(), 0.4);
}

TEST_F(FakePowercap, MissingTreeIsNotAvailableWithTheReason) {
  EnergyMeter m({.powercap_root = (root_ / "nothing").string()});
  EXPECT_FALSE(m.available());
  EXPECT_EQ(m.source(), "");
  EXPECT_NE(m.unavailable_reason().find("RAPL: no powercap tree at '" + (root_ / "nothing").string() + "'"),
            std::string::npos)
      << m.unavailable_reason();
  EXPECT_KIRZL_ERROR(m.joules(), ErrorCode::Unsupported, "not available", "no powercap tree");
}

TEST_F(FakePowercap, TreeWithoutPackagesIsNotAvailable) {
  zone("intel-rapl:0", "psys", 100);
  EnergyMeter m = meter();
  EXPECT_FALSE(m.available());
  EXPECT_NE(m.unavailable_reason().find("no package zone"), std::string::npos) << m.unavailable_reason();
}

TEST_F(FakePowercap, UnreadableCounterIsNotAvailableWithTheReason) {
  zone("intel-rapl:0", "package-0", 100);
  zone("intel-rapl:1", "package-1", 100);
  // A counter that cannot be read (even by root): a directory where the file should be.
  fs::remove(root_ / "intel-rapl:1" / "energy_uj");
  fs::create_directories(root_ / "intel-rapl:1" / "energy_uj");
  EnergyMeter m = meter();
  EXPECT_FALSE(m.available());
  EXPECT_NE(m.unavailable_reason().find("RAPL: cannot read '" + (root_ / "intel-rapl:1" / "energy_uj").string() +
                                        "': Is a directory"),
            std::string::npos)
      << m.unavailable_reason();
  EXPECT_KIRZL_ERROR(m.joules(), ErrorCode::Unsupported, "energy_uj");
}

TEST_F(FakePowercap, RootOnlyCounterSaysSo) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads a file of mode 000; this test needs an ordinary user";
  zone("intel-rapl:0", "package-0", 100);
  fs::permissions(root_ / "intel-rapl:0" / "energy_uj", fs::perms::none);
  EnergyMeter m = meter();
  EXPECT_FALSE(m.available());
  EXPECT_NE(m.unavailable_reason().find("Permission denied"), std::string::npos) << m.unavailable_reason();
  EXPECT_NE(m.unavailable_reason().find("only root"), std::string::npos) << m.unavailable_reason();
}

TEST_F(FakePowercap, GarbageInACounterIsNotAvailable) {
  zone("intel-rapl:0", "package-0", 100);
  write(root_ / "intel-rapl:0" / "energy_uj", "-12");
  EnergyMeter m = meter();
  EXPECT_FALSE(m.available());
  EXPECT_NE(m.unavailable_reason().find("holds '-12', not a count of microjoules"), std::string::npos)
      << m.unavailable_reason();
}

TEST_F(FakePowercap, CounterThatDisappearsLaterIsAnIoError) {
  zone("intel-rapl:0", "package-0", 100);
  EnergyMeter m = meter();
  ASSERT_TRUE(m.available());
  fs::remove(root_ / "intel-rapl:0" / "energy_uj");
  EXPECT_KIRZL_ERROR(m.joules(), ErrorCode::Io, "RAPL", "energy_uj", "No such file");
}

TEST_F(FakePowercap, WindowGivesJoulesPerStepAndWorkPerJoule) {
  zone("intel-rapl:0", "package-0", 0);
  EnergyMeter m = meter();
  EnergyWindow w(m);
  set("intel-rapl:0", 4'000'000);
  EnergyWindow::Figures f = w.finish(8, 1000.0);
  EXPECT_DOUBLE_EQ(f.joules, 4.0);
  EXPECT_DOUBLE_EQ(f.joules_per_step(), 0.5);
  EXPECT_DOUBLE_EQ(f.work_per_joule(), 250.0);
  set("intel-rapl:0", 5'000'000);  // the next window starts where the last one ended
  f = w.finish(2, 10.0);
  EXPECT_DOUBLE_EQ(f.joules, 1.0);
  set("intel-rapl:0", 6'000'000);
  w.start();  // not counted: between the windows
  set("intel-rapl:0", 6'500'000);
  EXPECT_DOUBLE_EQ(w.finish(1, 1.0).joules, 0.5);
}

TEST(EnergyWindow, NotAvailableGivesNaNNeverZero) {
  EnergyMeter m({.powercap_root = "/nonexistent/kirzl/powercap"});
  ASSERT_FALSE(m.available());
  EnergyWindow w(m);
  EnergyWindow::Figures f = w.finish(10, 1000.0);
  EXPECT_TRUE(std::isnan(f.joules));
  EXPECT_TRUE(std::isnan(f.joules_per_step()));
  EXPECT_TRUE(std::isnan(f.work_per_joule()));
}

// No NVIDIA driver on this machine: a CUDA device's meter names libnvidia-ml and why.
TEST(EnergyMeterNvml, MissingLibraryIsNotAvailableNamingIt) {
  EnergyMeter m({.device = Device::cuda(0), .nvml_library = "libnvidia-ml-kirzl-test-absent.so.1"});
  EXPECT_FALSE(m.available());
  EXPECT_EQ(m.source(), "");
  EXPECT_EQ(m.unavailable_reason().rfind("NVML: dlopen(libnvidia-ml-kirzl-test-absent.so.1) failed: ", 0), 0u)
      << m.unavailable_reason();
  EXPECT_KIRZL_ERROR(m.joules(), ErrorCode::Unsupported, "cuda:0", "libnvidia-ml-kirzl-test-absent.so.1");
}

TEST(EnergyMeterNvml, DefaultLibraryOnThisMachine) {
  EnergyMeter m({.device = Device::cuda(0)});
  if (m.available()) GTEST_SKIP() << "NVML works here: " << m.source();
  // Without a driver the reason names the library; with one but without a GPU (or CUDA), the GPU.
  const std::string& r = m.unavailable_reason();
  EXPECT_TRUE(r.find("libnvidia-ml.so.1") != std::string::npos || r.find("cuda:0") != std::string::npos) << r;
}

#ifdef KIRZL_FAKE_NVML
// NVML's path against tests/io/fake_nvml.cpp, a stand-in library whose counter, return codes and
// call counts the test controls through the same loaded copy.
class FakeNvml : public ::testing::Test {
 protected:
  void SetUp() override {
    lib_ = ::dlopen(KIRZL_FAKE_NVML, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(lib_, nullptr) << ::dlerror();
    set_ = reinterpret_cast<void (*)(int, int, unsigned long long)>(::dlsym(lib_, "fake_nvml_set"));
    calls_ = reinterpret_cast<void (*)(int*, int*)>(::dlsym(lib_, "fake_nvml_calls"));
    ASSERT_TRUE(set_ && calls_);
    set_(0, 0, 1'000'000);
  }
  void TearDown() override {
    if (lib_) ::dlclose(lib_);
  }
  EnergyMeter meter(const std::string& bus_id = "00000000:3B:00.0") {
    return EnergyMeter({.device = Device::cuda(0), .gpu_pci_bus_id = bus_id, .nvml_library = KIRZL_FAKE_NVML});
  }
  std::pair<int, int> calls() {
    int i = 0, s = 0;
    calls_(&i, &s);
    return {i, s};
  }
  void* lib_ = nullptr;
  void (*set_)(int, int, unsigned long long) = nullptr;
  void (*calls_)(int*, int*) = nullptr;
};

TEST_F(FakeNvml, ReadsTheCounterInMillijoules) {
  EnergyMeter m = meter();
  ASSERT_TRUE(m.available()) << m.unavailable_reason();
  EXPECT_EQ(m.source(), "NVML GPU 00000000:3B:00.0 (Fake GPU)");
  EXPECT_DOUBLE_EQ(m.joules(), 0.0);
  set_(0, 0, 1'250'500);
  EXPECT_DOUBLE_EQ(m.joules(), 250.5);
}

TEST_F(FakeNvml, GpuWithoutTheCounterIsNotAvailable) {
  set_(0, 3, 0);  // NVML_ERROR_NOT_SUPPORTED
  EnergyMeter m = meter();
  EXPECT_FALSE(m.available());
  EXPECT_NE(m.unavailable_reason().find("NVML: nvmlDeviceGetTotalEnergyConsumption(GPU 00000000:3B:00.0) failed: "
                                        "Not Supported (code 3) (this GPU has no energy counter"),
            std::string::npos)
      << m.unavailable_reason();
  EXPECT_KIRZL_ERROR(m.joules(), ErrorCode::Unsupported, "Not Supported");
}

TEST_F(FakeNvml, UnknownBusIdIsNotAvailable) {
  EnergyMeter m = meter("0000:01:00.0");
  EXPECT_FALSE(m.available());
  EXPECT_EQ(m.unavailable_reason(), "NVML: nvmlDeviceGetHandleByPciBusId_v2(0000:01:00.0) failed: Not Found (code 6)");
}

TEST_F(FakeNvml, FailedInitIsNotAvailableAndNotShutDown) {
  set_(9, 0, 0);  // NVML_ERROR_DRIVER_NOT_LOADED
  const auto before = calls();
  {
    EnergyMeter m = meter();
    EXPECT_FALSE(m.available());
    EXPECT_EQ(m.unavailable_reason(), "NVML: nvmlInit_v2 failed: Driver Not Loaded (code 9)");
  }
  EXPECT_EQ(calls().first, before.first + 1);
  EXPECT_EQ(calls().second, before.second);  // nothing to shut down
}

TEST_F(FakeNvml, MetersShareOneSessionShutDownOnce) {
  const auto before = calls();
  {
    EnergyMeter a = meter();
    EnergyMeter b = meter();
    ASSERT_TRUE(a.available() && b.available());
    EXPECT_EQ(calls(), std::make_pair(before.first + 1, before.second));
  }
  EXPECT_EQ(calls(), std::make_pair(before.first + 1, before.second + 1));
  {
    EnergyMeter c = meter();  // a new session after the last one ended
    EXPECT_TRUE(c.available());
  }
  EXPECT_EQ(calls(), std::make_pair(before.first + 2, before.second + 2));
}

TEST_F(FakeNvml, CounterFailingLaterIsAnIoError) {
  EnergyMeter m = meter();
  ASSERT_TRUE(m.available());
  set_(0, 4, 0);  // NVML_ERROR_NO_PERMISSION
  EXPECT_KIRZL_ERROR(m.joules(), ErrorCode::Io, "nvmlDeviceGetTotalEnergyConsumption", "Fake GPU",
                     "Insufficient Permissions (code 4)");
}

TEST_F(FakeNvml, CudaDeviceWithoutBusIdAsksCuda) {
  EnergyMeter m({.device = Device::cuda(0), .nvml_library = KIRZL_FAKE_NVML});
  if (m.available()) GTEST_SKIP() << "a GPU with this fake's bus id is here";
  const std::string& r = m.unavailable_reason();
  if (cuda::device_count() > 0)  // CUDA's bus id of the real GPU, which the fake does not know
    EXPECT_EQ(r.rfind("NVML: nvmlDeviceGetHandleByPciBusId_v2(" + cuda::device_properties(0).pci_bus_id + ") failed: "
                      "Not Found", 0), 0u) << r;
  else
    EXPECT_EQ(r.rfind("cannot find the PCI bus id of cuda:0: ", 0), 0u) << r;
}
#endif

}  // namespace
}  // namespace kirzl::io
