// EnergyMeter: the energy a GPU (NVML) or the CPU packages (RAPL) used, for joules per step and
// tokens per joule in metrics logs and benchmarks.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kirzl/core/device.hpp"

namespace kirzl::io {

/// Reads a hardware energy counter and reports the joules used since the meter was built, so that
/// two readings give the energy of the window between them:
///
///   io::EnergyMeter meter({.device = dev});
///   if (meter.available()) { double j0 = meter.joules(); /* steps */ double used = meter.joules() - j0; }
///   else std::printf("energy: not available: %s\n", meter.unavailable_reason().c_str());
///
/// The counter depends on the device:
///  - a CUDA device: NVML's nvmlDeviceGetTotalEnergyConsumption (millijoules since the driver
///    was loaded) of that GPU, found by its PCI bus id, so CUDA_VISIBLE_DEVICES and NVML's own
///    numbering cannot pick another GPU. NVML is opened at run time (dlopen of
///    Options::nvml_library); kirzl neither builds nor links against it. Volta and newer GPUs
///    have the counter; the driver updates it every few tens of milliseconds, so measure windows
///    of several steps, not one short step.
///  - the CPU: Intel's RAPL through the Linux powercap interface (also AMD's on recent kernels),
///    the package domains `powercap_root/intel-rapl:N/energy_uj` summed over the sockets. Their
///    subzones (core, uncore, dram: intel-rapl:N:M) are not read: the package already includes
///    core and uncore. A counter that wraps around (at max_energy_range_uj) is followed across
///    the wrap, provided it is read at least once per wrap period (tens of minutes to hours at a
///    full package's power; read it once per metrics window and it is).
///
/// Where there is no counter, or it cannot be read (no NVML library, a GPU without the counter,
/// no powercap tree, energy_uj readable only by root as on many kernels since 2020), the meter is
/// *not available* and says why: available() is false, unavailable_reason() names the cause and
/// joules() throws it — a missing counter is never reported as zero joules.
///
/// Thread-safe. The meter shares one NVML session (nvmlInit, and nvmlShutdown once when the last
/// meter using it is destroyed) with every other meter of the process.
class EnergyMeter {
 public:
  /// What to measure: `io::EnergyMeter meter({.device = Device::cuda(0)})`.
  struct Options {
    /// A CUDA device: its GPU through NVML. The CPU: the CPU packages through RAPL.
    Device device = Device::cpu();
    /// CUDA only: the GPU's PCI bus id ("0000:3b:00.0") as NVML reads it; empty: asked of the CUDA
    /// runtime for `device` (cuda::device_properties), which needs a CUDA build and the GPU.
    std::string gpu_pci_bus_id = {};
    /// CUDA only: the NVML library opened with dlopen.
    std::string nvml_library = "libnvidia-ml.so.1";
    /// CPU only: the powercap directory that holds the intel-rapl:N zones (tests pass a fake tree).
    std::string powercap_root = "/sys/class/powercap";
  };

  /// Finds and reads the counter once. Never throws for a missing or unreadable counter: the
  /// meter is then not available (see unavailable_reason()).
  explicit EnergyMeter(Options options);
  /// The CPU's meter (RAPL), with the default Options.
  EnergyMeter();
  ~EnergyMeter();
  EnergyMeter(const EnergyMeter&) = delete;
  EnergyMeter& operator=(const EnergyMeter&) = delete;

  /// True when the counter was found and read.
  bool available() const noexcept { return reason_.empty(); }
  /// Why the meter is not available ("" when it is): names the library, file or NVML call and the
  /// system's or NVML's own message, e.g. "NVML: dlopen(libnvidia-ml.so.1) failed: ...".
  const std::string& unavailable_reason() const noexcept { return reason_; }
  /// What is measured, when available: "NVML GPU 0000:3b:00.0 (NVIDIA H200)" or
  /// "RAPL package-0 + package-1 (/sys/class/powercap)"; "" otherwise.
  const std::string& source() const noexcept { return source_; }

  /// Joules used since the meter was built (non-decreasing). Throws Error{Unsupported} with
  /// unavailable_reason() when the meter is not available, and Error{Io} naming the file or the
  /// NVML call when a counter that was read before can no longer be read.
  double joules();

 private:
  struct Nvml;
  struct RaplDomain {
    std::string path;        // .../intel-rapl:N/energy_uj
    uint64_t max_range = 0;  // max_energy_range_uj: the counter wraps to 0 after it
    uint64_t last = 0;       // the previous raw reading
  };
  void open_nvml();
  void open_rapl();
  double read_total_locked();
  double read_rapl_locked();

  Options options_;
  std::string reason_, source_;
  std::shared_ptr<Nvml> nvml_;
  void* nvml_device_ = nullptr;  // nvmlDevice_t
  uint64_t nvml_start_mj_ = 0;
  std::vector<RaplDomain> rapl_;
  double rapl_joules_ = 0;  // accumulated since construction, wrap-arounds included
  std::mutex mu_;
};

/// Energy over a window of training steps: joules per step and work (tokens, samples) per joule.
/// start() opens a window; finish() closes it with the steps and work done in it. Not
/// thread-safe; one per training loop.
class EnergyWindow {
 public:
  /// The figures of one closed window; NaN when the meter is not available.
  struct Figures {
    double joules = 0;          ///< energy used in the window
    int64_t steps = 0;          ///< steps done in the window
    double work = 0;            ///< tokens or samples processed in the window
    /// joules / steps; NaN for a window without steps.
    double joules_per_step() const { return steps > 0 ? joules / static_cast<double>(steps) : kNaN; }
    /// work / joules; NaN when no energy was measured (the counter did not advance).
    double work_per_joule() const { return joules > 0 ? work / joules : kNaN; }
    /// The "no figure" value.
    static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  };
  /// Borrows `meter` (which must outlive the window) and opens the first window.
  explicit EnergyWindow(EnergyMeter& meter);
  /// Opens a new window now (the energy since the previous start() or finish() is not counted).
  void start();
  /// Closes the window opened by start() or the previous finish() with `steps` and `work` done in
  /// it, and opens the next one. NaN joules when the meter is not available.
  Figures finish(int64_t steps, double work);

 private:
  EnergyMeter& meter_;
  double start_ = 0;
};

}  // namespace kirzl::io
