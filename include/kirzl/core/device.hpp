// Where a tensor's memory lives.
#pragma once

#include <cstdint>
#include <string>

namespace kirzl {

enum class DeviceType : uint8_t { CPU, CUDA };

/// A device: the CPU, or CUDA device n. Cheap to copy.
class Device {
 public:
  constexpr Device() = default;
  constexpr Device(DeviceType type, int index) : type_(type), index_(type == DeviceType::CPU ? 0 : index) {}
  /// Parses "cpu", "cuda" (device 0) or "cuda:N"; throws Error{InvalidArgument} otherwise.
  explicit Device(const std::string& spec);

  static constexpr Device cpu() { return Device(DeviceType::CPU, 0); }
  static constexpr Device cuda(int index = 0) { return Device(DeviceType::CUDA, index); }

  constexpr DeviceType type() const { return type_; }
  constexpr int index() const { return index_; }
  constexpr bool is_cpu() const { return type_ == DeviceType::CPU; }
  constexpr bool is_cuda() const { return type_ == DeviceType::CUDA; }
  /// "cpu" or "cuda:N".
  std::string str() const;

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
