// What the fuzz harnesses share: an in-memory file for readers that take a path, and a check that
// aborts (a crash to libFuzzer, a failure to the corpus regression tests).
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>

#include "kirzl/core/error.hpp"

namespace kirzl::fuzz {

/// Aborts with `what` when `cond` is false: a property the API promises did not hold.
#define KIRZL_FUZZ_REQUIRE(cond, what)                                                      \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "fuzz property failed: %s (%s) at %s:%d\n", std::string(what).c_str(), #cond, \
                   __FILE__, __LINE__);                                                     \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)

/// Aborts unless `e` has one of `codes`: a reader of untrusted input documents which codes its
/// errors carry, and anything else (Internal above all) is a bug.
inline void require_code(const Error& e, std::initializer_list<ErrorCode> codes) {
  for (ErrorCode c : codes)
    if (e.code() == c) return;
  std::fprintf(stderr, "fuzz property failed: unexpected error code: %s\n", e.what());
  std::abort();
}

// Note [fuzz input file]: readers that take a path read the input from a memfd, opened once per
// process and reached as /proc/self/fd/N. A per-process file in /dev/shm was as fast (within the
// noise of a shared machine: 22-35 us vs 31-38 us per write + open + read + close of 4 KiB), but
// it stays behind when the fuzzer exits on a crash or is killed; a memfd never does.

/// One in-memory file per process, rewritten for each input.
class InputFile {
 public:
  InputFile() : fd_(::memfd_create("kirzl-fuzz-input", MFD_CLOEXEC)) {
    if (fd_ < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~InputFile() { ::close(fd_); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  /// Replaces the file's content with `data` and returns its path.
  const std::string& write(const uint8_t* data, size_t size) {
    if (::ftruncate(fd_, 0) != 0) std::abort();
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
    return path_;
  }

 private:
  int fd_;
  std::string path_;
};

/// The process's InputFile (the harnesses run one input at a time).
inline InputFile& input_file() {
  static InputFile file;
  return file;
}

}  // namespace kirzl::fuzz
