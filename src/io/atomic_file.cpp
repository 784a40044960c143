#include "io/atomic_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <type_traits>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kirzl/core/error.hpp"

namespace kirzl::io::detail {

std::string errno_text(int err) {
  char buf[256];
  // GNU strerror_r returns a char*; the XSI one returns int. Handle both.
  auto r = strerror_r(err, buf, sizeof buf);
  if constexpr (std::is_same_v<decltype(r), char*>) {
    return r;
  } else {
    return r == 0 ? std::string(buf) : "error " + std::to_string(err);
  }
}

// See Note [file system seam].
FileSystemCalls FileSystemCalls::real() {
  FileSystemCalls c;
  c.open = [](const char* path, int flags, mode_t mode) { return ::open(path, flags, mode); };
  c.write = [](int fd, const void* data, size_t n) { return ::write(fd, data, n); };
  c.fsync = [](int fd) { return ::fsync(fd); };
  c.rename = [](const char* from, const char* to) { return ::rename(from, to); };
  return c;
}

namespace {
thread_local const FileSystemCalls* tls_calls = nullptr;

const FileSystemCalls& calls() {
  static const FileSystemCalls real = FileSystemCalls::real();
  return tls_calls ? *tls_calls : real;
}
}  // namespace

ScopedFileSystemCalls::ScopedFileSystemCalls(FileSystemCalls calls) : calls_(std::move(calls)), previous_(tls_calls) {
  // Unset members fall back to the real call, so a test replaces only what it fails.
  FileSystemCalls real = FileSystemCalls::real();
  if (!calls_.open) calls_.open = real.open;
  if (!calls_.write) calls_.write = real.write;
  if (!calls_.fsync) calls_.fsync = real.fsync;
  if (!calls_.rename) calls_.rename = real.rename;
  tls_calls = &calls_;
}

ScopedFileSystemCalls::~ScopedFileSystemCalls() { tls_calls = previous_; }

namespace {
std::string directory_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}
}  // namespace

AtomicFile::AtomicFile(std::string path, std::string who) : path_(std::move(path)), who_(std::move(who)) {
  KIRZL_CHECK(!path_.empty() && path_.back() != '/', who_, ": '", path_, "' is not a file path");
  // Note [temporary names]: pid + a random suffix, created with O_EXCL, so that concurrent writers
  // (threads or processes) of the same target never share a temporary file; the last rename wins.
  std::random_device rd;
  std::string dir = directory_of(path_);
  std::string prefix = (dir == "." && path_.find('/') == std::string::npos ? "" : dir + "/") + "." + base_of(path_);
  int err = 0;
  for (int attempt = 0; attempt < 16; ++attempt) {
    char suffix[48];
    std::snprintf(suffix, sizeof suffix, ".tmp.%ld.%08x", static_cast<long>(::getpid()), rd());
    tmp_ = prefix + suffix;
    fd_ = calls().open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ >= 0) return;
    err = errno;
    if (err != EEXIST) break;
  }
  std::string tmp = tmp_;
  tmp_.clear();
  KIRZL_FAIL(ErrorCode::Io, who_, ": cannot write '", path_, "': creating the temporary file '", tmp, "' failed: ",
             errno_text(err));
}

AtomicFile::~AtomicFile() {
  if (!committed_) discard();
}

void AtomicFile::discard() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
  tmp_.clear();
}

void AtomicFile::fail(const std::string& what, int err) {
  discard();
  KIRZL_FAIL(ErrorCode::Io, who_, ": cannot write '", path_, "': ", what, ": ", errno_text(err));
}

void AtomicFile::write(const void* data, size_t n) {
  KIRZL_INTERNAL_ASSERT(fd_ >= 0 && !committed_);
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = calls().write(fd_, p, n);
    if (w < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      fail("writing the temporary file failed", err);
    }
    if (w == 0) fail("writing the temporary file made no progress", EIO);
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void AtomicFile::commit() {
  KIRZL_INTERNAL_ASSERT(fd_ >= 0 && !committed_);
  // Each errno is read right after its call: building the message allocates, which may change it.
  if (calls().fsync(fd_) != 0) {
    const int err = errno;
    fail("fsync of the temporary file failed", err);
  }
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const int err = errno;
    fail("closing the temporary file failed", err);
  }
  if (calls().rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    fail("renaming the temporary file '" + tmp_ + "' failed", err);
  }
  committed_ = true;
  tmp_.clear();
  // Make the rename itself durable. Some file systems cannot fsync a directory (EINVAL); the
  // file's contents are on disk by now either way, so only real I/O errors are reported.
  std::string dir = directory_of(path_);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  int rc = calls().fsync(dfd);
  int err = errno;
  ::close(dfd);
  if (rc != 0 && err != EINVAL && err != ENOTSUP && err != EBADF)
    KIRZL_FAIL(ErrorCode::Io, who_, ": '", path_, "' was written but syncing its directory '", dir,
               "' failed: ", errno_text(err));
}

}  // namespace kirzl::io::detail
