// EnergyMeter on a GPU: NVML's total-energy counter, NVML opened at run time.
#include <dlfcn.h>

#include <map>
#include <mutex>

#include "io/energy_nvml.h"
#include "kirzl/core/cuda.hpp"
#include "kirzl/core/error.hpp"

namespace kirzl::io {

// Note [nvml session]: nvmlInit_v2 and nvmlShutdown are reference counted by NVML, and dlopen by
// the loader, but a process that builds a meter per run (the examples, tests) should not rely on
// every caller pairing them. So there is one session per library path, held by shared_ptr: the
// meters share it, a weak_ptr in the registry finds it again, and the last meter to go calls
// nvmlShutdown (only when nvmlInit_v2 succeeded) and dlclose, once.

namespace {
template <typename Fn>
bool bind(void* handle, const char* name, Fn& fn) {
  fn = reinterpret_cast<Fn>(::dlsym(handle, name));
  return fn != nullptr;
}
}  // namespace

std::shared_ptr<EnergyMeter::Nvml> EnergyMeter::Nvml::open(const std::string& library, std::string& reason) {
  // The sessions by library path; never destroyed, as a meter in a static may outlive them.
  static auto* mu = new std::mutex();
  static auto* sessions = new std::map<std::string, std::weak_ptr<Nvml>>();
  std::lock_guard<std::mutex> lock(*mu);
  if (auto s = (*sessions)[library].lock()) return s;
  auto s = std::make_shared<Nvml>();
  s->library = library;
  s->handle = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!s->handle) {
    const char* err = ::dlerror();
    reason = "NVML: dlopen(" + library + ") failed: " + (err ? err : "unknown error") +
             " (no NVIDIA driver on this machine, or its libnvidia-ml is not on the loader's path)";
    return nullptr;
  }
  for (auto [name, ok] : {std::pair{"nvmlInit_v2", bind(s->handle, "nvmlInit_v2", s->init)},
                          std::pair{"nvmlShutdown", bind(s->handle, "nvmlShutdown", s->shutdown)},
                          std::pair{"nvmlErrorString", bind(s->handle, "nvmlErrorString", s->error_string)},
                          std::pair{"nvmlDeviceGetHandleByPciBusId_v2",
                                    bind(s->handle, "nvmlDeviceGetHandleByPciBusId_v2", s->get_handle_by_pci_bus_id)},
                          std::pair{"nvmlDeviceGetTotalEnergyConsumption",
                                    bind(s->handle, "nvmlDeviceGetTotalEnergyConsumption", s->get_total_energy)}})
    if (!ok) {
      reason = "NVML: " + library + " has no " + name + " (a driver older than the counter, which came with Volta)";
      return nullptr;  // ~Nvml closes the library
    }
  bind(s->handle, "nvmlDeviceGetName", s->get_name);  // optional: only for source()
  const nvml_abi::Return rc = s->init();
  if (rc != nvml_abi::kSuccess) {
    reason = "NVML: nvmlInit_v2 failed: " + s->error_text(rc);
    return nullptr;
  }
  s->initialised = true;
  (*sessions)[library] = s;
  return s;
}

EnergyMeter::Nvml::~Nvml() {
  if (initialised) shutdown();  // a failed shutdown at exit has no one to report to
  if (handle) ::dlclose(handle);
}

std::string EnergyMeter::Nvml::error_text(nvml_abi::Return rc) const {
  const char* s = error_string ? error_string(rc) : nullptr;
  return std::string(s ? s : "unknown NVML error") + " (code " + std::to_string(rc) + ")";
}

nvml_abi::Device EnergyMeter::Nvml::device_by_pci_bus_id(const std::string& bus_id, std::string& reason) const {
  nvml_abi::Device dev = nullptr;
  const nvml_abi::Return rc = get_handle_by_pci_bus_id(bus_id.c_str(), &dev);
  if (rc != nvml_abi::kSuccess) {
    reason = "NVML: nvmlDeviceGetHandleByPciBusId_v2(" + bus_id + ") failed: " + error_text(rc);
    return nullptr;
  }
  return dev;
}

std::string EnergyMeter::Nvml::device_name(nvml_abi::Device dev) const {
  char name[nvml_abi::kDeviceNameBufferSize] = {};
  if (!get_name || get_name(dev, name, sizeof name) != nvml_abi::kSuccess) return {};
  return name;
}

nvml_abi::Return EnergyMeter::Nvml::total_energy(nvml_abi::Device dev, unsigned long long& mj) const {
  return get_total_energy(dev, &mj);
}

uint64_t EnergyMeter::Nvml::energy_mj(nvml_abi::Device dev, const std::string& what) const {
  unsigned long long mj = 0;
  const nvml_abi::Return rc = total_energy(dev, mj);
  KIRZL_CHECK_CODE(rc == nvml_abi::kSuccess, ErrorCode::Io, "EnergyMeter: nvmlDeviceGetTotalEnergyConsumption of ",
                   what, " failed: ", error_text(rc));
  return mj;
}

void EnergyMeter::open_nvml() {
  nvml_ = Nvml::open(options_.nvml_library, reason_);
  if (!nvml_) return;
  std::string bus_id = options_.gpu_pci_bus_id;
  if (bus_id.empty()) {
    try {
      bus_id = cuda::device_properties(options_.device.index()).pci_bus_id;
    } catch (const Error& e) {
      reason_ = "cannot find the PCI bus id of " + options_.device.str() + ": " + e.message();
      nvml_.reset();
      return;
    }
  }
  nvml_device_ = nvml_->device_by_pci_bus_id(bus_id, reason_);
  if (!nvml_device_) {
    nvml_.reset();
    return;
  }
  unsigned long long mj = 0;
  const nvml_abi::Return rc = nvml_->total_energy(nvml_device_, mj);
  if (rc != nvml_abi::kSuccess) {
    reason_ = "NVML: nvmlDeviceGetTotalEnergyConsumption(GPU " + bus_id + ") failed: " + nvml_->error_text(rc);
    if (rc == nvml_abi::kNotSupported) reason_ += " (this GPU has no energy counter; Volta and newer have)";
    if (rc == nvml_abi::kNoPermission) reason_ += " (the driver allows this counter to privileged users only)";
    nvml_.reset();
    nvml_device_ = nullptr;
    return;
  }
  nvml_start_mj_ = mj;
  const std::string name = nvml_->device_name(nvml_device_);
  source_ = "NVML GPU " + bus_id + (name.empty() ? "" : " (" + name + ")");
}

}  // namespace kirzl::io
