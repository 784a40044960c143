#include "kirzl/core/error.hpp"

namespace kirzl {

const char* error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::InvalidArgument: return "InvalidArgument";
    case ErrorCode::Unsupported: return "Unsupported";
    case ErrorCode::Cuda: return "Cuda";
    case ErrorCode::Nccl: return "Nccl";
    case ErrorCode::Mpi: return "Mpi";
    case ErrorCode::Timeout: return "Timeout";
    case ErrorCode::Io: return "Io";
    case ErrorCode::Internal: return "Internal";
  }
  return "Unknown";
}

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error("kirzl::Error [" + std::string(error_code_name(code)) + "] " + message),
      code_(code),
      message_(message) {}

namespace detail {
void throw_error(ErrorCode code, const std::string& message) { throw Error(code, message); }
}  // namespace detail

}  // namespace kirzl
