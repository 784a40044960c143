// Internal: NVML opened at run time for EnergyMeter (include/kirzl/io/energy.hpp). kirzl neither
// includes nvml.h nor links libnvidia-ml: the few declarations it needs are written here, with
// the types and values of NVML's stable C ABI.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "kirzl/io/energy.hpp"

namespace kirzl::io {

namespace nvml_abi {
using Return = int;     // nvmlReturn_t
using Device = void*;   // nvmlDevice_t: an opaque handle
constexpr Return kSuccess = 0;            // NVML_SUCCESS
constexpr Return kNotSupported = 3;       // NVML_ERROR_NOT_SUPPORTED
constexpr Return kNoPermission = 4;       // NVML_ERROR_NO_PERMISSION
constexpr unsigned kDeviceNameBufferSize = 96;  // NVML_DEVICE_NAME_V2_BUFFER_SIZE
}  // namespace nvml_abi

/// One NVML session of the process: the library opened with dlopen, nvmlInit_v2 called once, and
/// nvmlShutdown and dlclose once when the last holder lets go. Thread-safe (NVML is).
struct EnergyMeter::Nvml {
  /// The session for `library` (shared with every meter that asked for the same library), or
  /// nullptr with `reason` set: the dlopen error, a missing symbol or nvmlInit_v2's error.
  static std::shared_ptr<Nvml> open(const std::string& library, std::string& reason);
  ~Nvml();

  /// The GPU with PCI bus id `bus_id`; nullptr with `reason` set when NVML does not find it.
  nvml_abi::Device device_by_pci_bus_id(const std::string& bus_id, std::string& reason) const;
  /// The product name of `dev`, "" when NVML cannot say.
  std::string device_name(nvml_abi::Device dev) const;
  /// nvmlDeviceGetTotalEnergyConsumption of `dev`: its return code and, on success, `mj`.
  nvml_abi::Return total_energy(nvml_abi::Device dev, unsigned long long& mj) const;
  /// The same; throws Error{Io} naming `what` (the GPU) and NVML's message on failure.
  uint64_t energy_mj(nvml_abi::Device dev, const std::string& what) const;
  /// NVML's message for `rc` (nvmlErrorString), with the code.
  std::string error_text(nvml_abi::Return rc) const;

  std::string library;
  void* handle = nullptr;  // from dlopen
  bool initialised = false;
  nvml_abi::Return (*init)() = nullptr;
  nvml_abi::Return (*shutdown)() = nullptr;
  const char* (*error_string)(nvml_abi::Return) = nullptr;
  nvml_abi::Return (*get_handle_by_pci_bus_id)(const char*, nvml_abi::Device*) = nullptr;
  nvml_abi::Return (*get_name)(nvml_abi::Device, char*, unsigned) = nullptr;
  nvml_abi::Return (*get_total_energy)(nvml_abi::Device, unsigned long long*) = nullptr;
};

}  // namespace kirzl::io
