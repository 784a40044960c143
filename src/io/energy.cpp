#include "kirzl/io/energy.hpp"

#include "io/energy_nvml.h"
#include "kirzl/core/error.hpp"

namespace kirzl::io {

// Note [energy never zero]: a meter that has no counter must not look like one that measured
// nothing. So there is no "0 joules" fallback anywhere: the constructor records the reason, joules()
// throws it, and the examples and benchmarks write null next to a field that carries the reason.
// A tokens-per-joule figure of infinity or zero on a plot would otherwise pass for a measurement.

EnergyMeter::EnergyMeter(Options options) : options_(std::move(options)) {
  if (options_.device.is_cuda())
    open_nvml();
  else
    open_rapl();
  if (!reason_.empty()) {
    source_.clear();
    rapl_.clear();
  }
}

EnergyMeter::EnergyMeter() : EnergyMeter(Options{}) {}

EnergyMeter::~EnergyMeter() = default;  // the NVML session ends with the last meter that holds it

double EnergyMeter::joules() {
  KIRZL_CHECK_CODE(available(), ErrorCode::Unsupported, "EnergyMeter::joules: the energy of ", options_.device.str(),
                   " is not available: ", reason_);
  std::lock_guard<std::mutex> lock(mu_);
  return read_total_locked();
}

double EnergyMeter::read_total_locked() {
  if (nvml_) {
    const uint64_t mj = nvml_->energy_mj(nvml_device_, source_);
    KIRZL_CHECK_CODE(mj >= nvml_start_mj_, ErrorCode::Io, "EnergyMeter: the energy counter of ", source_,
                     " went back from ", nvml_start_mj_, " to ", mj, " mJ (the driver was reloaded?)");
    return static_cast<double>(mj - nvml_start_mj_) * 1e-3;
  }
  return read_rapl_locked();
}

EnergyWindow::EnergyWindow(EnergyMeter& meter) : meter_(meter) { start(); }

void EnergyWindow::start() { start_ = meter_.available() ? meter_.joules() : 0.0; }

EnergyWindow::Figures EnergyWindow::finish(int64_t steps, double work) {
  Figures f{.joules = Figures::kNaN, .steps = steps, .work = work};
  if (meter_.available()) {
    const double now = meter_.joules();
    f.joules = now - start_;
    start_ = now;
  }
  return f;
}

}  // namespace kirzl::io
