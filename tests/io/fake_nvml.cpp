// A stand-in for libnvidia-ml.so.1 for tests/io/test_energy.cpp: the NVML functions EnergyMeter
// opens, with the counter, the return codes and the device set by the test (fake_nvml_set), and
// counters of nvmlInit_v2 / nvmlShutdown calls (fake_nvml_calls). C ABI, as NVML's.
#include <cstring>

namespace {
int g_energy_rc = 0;        // nvmlDeviceGetTotalEnergyConsumption's return code
int g_init_rc = 0;          // nvmlInit_v2's
unsigned long long g_mj = 0;
int g_inits = 0, g_shutdowns = 0;
int g_device = 0;  // the one GPU's handle points here
const char* kBusId = "00000000:3B:00.0";
}  // namespace

extern "C" {
void fake_nvml_set(int init_rc, int energy_rc, unsigned long long mj) {
  g_init_rc = init_rc;
  g_energy_rc = energy_rc;
  g_mj = mj;
}
void fake_nvml_calls(int* inits, int* shutdowns) {
  *inits = g_inits;
  *shutdowns = g_shutdowns;
}
int nvmlInit_v2() {
  ++g_inits;
  return g_init_rc;
}
int nvmlShutdown() {
  ++g_shutdowns;
  return 0;
}
const char* nvmlErrorString(int rc) {
  switch (rc) {
    case 0: return "Success";
    case 3: return "Not Supported";
    case 4: return "Insufficient Permissions";
    case 6: return "Not Found";
    case 9: return "Driver Not Loaded";
    default: return "Unknown Error";
  }
}
int nvmlDeviceGetHandleByPciBusId_v2(const char* bus_id, void** device) {
  if (std::strcmp(bus_id, kBusId) != 0) return 6;
  *device = &g_device;
  return 0;
}
int nvmlDeviceGetName(void* device, char* name, unsigned length) {
  if (device != &g_device) return 2;
  std::strncpy(name, "Fake GPU", length);
  return 0;
}
int nvmlDeviceGetTotalEnergyConsumption(void* device, unsigned long long* mj) {
  if (device != &g_device) return 2;
  if (g_energy_rc != 0) return g_energy_rc;
  *mj = g_mj;
  return 0;
}
}
