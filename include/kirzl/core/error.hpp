// kirzl::Error and the check macros used by every public entry point.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace kirzl {

/// What kind of failure an Error reports. Python maps these onto built-in exception types.
enum class ErrorCode {
  InvalidArgument,  ///< the caller passed something the operation cannot accept
  Unsupported,      ///< valid request, but this build or device cannot do it
  Cuda,             ///< a CUDA runtime / cuBLAS / cuDNN call failed
  Nccl,             ///< an NCCL call failed
  Mpi,              ///< an MPI call failed
  Timeout,          ///< a collective or wait did not complete in time
  Io,               ///< reading or writing a file failed, or the file is malformed
  Internal,         ///< a kirzl bug: an invariant did not hold
};

/// Name of an ErrorCode, e.g. "InvalidArgument".
const char* error_code_name(ErrorCode code) noexcept;

/// The only exception type kirzl throws. what() reads
/// "kirzl::Error [Code] message". Thread-safe to copy and read.
class Error : public std::runtime_error {
 public:
  /// An error of kind `code`; `message` should name what failed and where (the op, the argument,
  /// the file). Usually thrown through KIRZL_CHECK / KIRZL_CHECK_CODE / KIRZL_FAIL below.
  Error(ErrorCode code, const std::string& message);
  /// The kind of failure, for callers that handle some kinds (e.g. Timeout) and rethrow others.
  ErrorCode code() const noexcept { return code_; }
  /// The message without the "kirzl::Error [Code]" prefix.
  const std::string& message() const noexcept { return message_; }

 private:
  ErrorCode code_;
  std::string message_;
};

namespace detail {
template <typename... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
[[noreturn]] void throw_error(ErrorCode code, const std::string& message);
}  // namespace detail

}  // namespace kirzl

/// Throws kirzl::Error(code, concatenation of the message parts).
#define KIRZL_FAIL(code, ...) ::kirzl::detail::throw_error((code), ::kirzl::detail::str_cat(__VA_ARGS__))

/// Throws Error{InvalidArgument, msg...} unless cond holds.
#define KIRZL_CHECK(cond, ...)                                               \
  do {                                                                       \
    if (!(cond)) KIRZL_FAIL(::kirzl::ErrorCode::InvalidArgument, __VA_ARGS__); \
  } while (0)

/// Throws Error{code, msg...} unless cond holds.
#define KIRZL_CHECK_CODE(cond, code, ...)        \
  do {                                          \
    if (!(cond)) KIRZL_FAIL((code), __VA_ARGS__); \
  } while (0)

/// An internal invariant; failure is a kirzl bug.
#define KIRZL_INTERNAL_ASSERT(cond, ...)                                                  \
  do {                                                                                    \
    if (!(cond))                                                                          \
      KIRZL_FAIL(::kirzl::ErrorCode::Internal, "internal assertion '" #cond "' failed at ", \
                 __FILE__, ":", __LINE__, " ", ##__VA_ARGS__);                            \
  } while (0)
