// Where a tensor's memory lives.
#pragma once

#include <cstdint>
#include <string>

namespace kirzl {

/// The kind of memory a tensor lives in: host memory, or the memory of an NVIDIA GPU.
enum class DeviceType : uint8_t { CPU, CUDA };

/// A device: the CPU, or CUDA device n. Cheap to copy.
class Device {
 public:
  /// The CPU.
  constexpr Device() = default;
  /// Device `index` of kind `type`; the index of the CPU is always 0 (whatever is passed). The
  /// index is not checked here but where the device is first used: Error{InvalidArgument} for a
  /// CUDA index that no visible GPU has, Error{Unsupported} when there is no GPU (or no CUDA).
  constexpr Device(DeviceType type, int index) : type_(type), index_(type == DeviceType::CPU ? 0 : index) {}
  /// Parses "cpu", "cuda" (device 0) or "cuda:N"; throws Error{InvalidArgument} otherwise.
  explicit Device(const std::string& spec);

  /// The CPU (host memory): `Device::cpu()`, the default device of every factory.
  static constexpr Device cpu() { return Device(DeviceType::CPU, 0); }
  /// CUDA device `index` (as cudaSetDevice counts them, after CUDA_VISIBLE_DEVICES). Not checked
  /// here: see the (type, index) constructor.
  static constexpr Device cuda(int index = 0) { return Device(DeviceType::CUDA, index); }

  /// Whether this is the CPU or a CUDA device.
  constexpr DeviceType type() const { return type_; }
  /// The CUDA device number; always 0 for the CPU.
  constexpr int index() const { return index_; }
  /// True for the CPU.
  constexpr bool is_cpu() const { return type_ == DeviceType::CPU; }
  /// True for any CUDA device, whatever its index.
  constexpr bool is_cuda() const { return type_ == DeviceType::CUDA; }
  /// "cpu" or "cuda:N".
  std::string str() const;

  /// Same type and same index (cuda:0 != cuda:1; every CPU device is equal).
  friend constexpr bool operator==(Device a, Device b) { return a.type_ == b.type_ && a.index_ == b.index_; }

 private:
  DeviceType type_ = DeviceType::CPU;
  int index_ = 0;
};

namespace cuda {
/// Number of CUDA devices this process can use; 0 when kirzl was built without CUDA, when no
/// driver is installed, or when no GPU is present. Never throws.
int device_count() noexcept;
/// True when device_count() > 0.
inline bool is_available() noexcept { return device_count() > 0; }
}  // namespace cuda

}  // namespace kirzl
