// AtomicFile: write a file so that readers see either the old contents or the complete new ones
// (internal).
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include <sys/types.h>

namespace kirzl::io::detail {

/// strerror(err) in a thread-safe way.
std::string errno_text(int err);

// Note [file system seam]
// AtomicFile makes the system calls whose failures matter (creating the temporary file, write,
// fsync, rename) through a table of functions that a test can replace for a scope with
// ScopedFileSystemCalls, to fail a save the ways a full, broken or read-only disk fails it
// (ENOSPC or a short write, EIO from fsync, EXDEV from rename, EROFS from open) on a healthy
// disk, and to check that the previous file survives and no temporary file is left. A replaced
// call reports failure like the real one: -1 with errno set. The table is per thread (the scope's
// thread only) and scopes nest; with no scope the real calls are made. Internal, test-only.

/// The system calls AtomicFile makes. See Note [file system seam].
struct FileSystemCalls {
  std::function<int(const char* path, int flags, mode_t mode)> open;
  std::function<ssize_t(int fd, const void* data, size_t n)> write;
  std::function<int(int fd)> fsync;
  std::function<int(const char* from, const char* to)> rename;

  /// The real ::open, ::write, ::fsync and ::rename.
  static FileSystemCalls real();
};

/// Makes `calls` the calling thread's FileSystemCalls for its lifetime; the previous ones come
/// back at its end. Empty members of `calls` mean the real call. See Note [file system seam].
class ScopedFileSystemCalls {
 public:
  explicit ScopedFileSystemCalls(FileSystemCalls calls);
  ~ScopedFileSystemCalls();
  ScopedFileSystemCalls(const ScopedFileSystemCalls&) = delete;
  ScopedFileSystemCalls& operator=(const ScopedFileSystemCalls&) = delete;

 private:
  FileSystemCalls calls_;
  const FileSystemCalls* previous_;
};

/// Creates a uniquely named temporary file next to `path`; write() appends to it and commit()
/// fsyncs it, renames it over `path` and fsyncs the directory. Destroying an AtomicFile that was
/// not committed (an exception on the way) removes the temporary file. Every failure throws
/// Error{Io} whose message starts with `who` and names the file and the system's reason.
class AtomicFile {
 public:
  AtomicFile(std::string path, std::string who);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  void commit();
  const std::string& temp_path() const { return tmp_; }

 private:
  [[noreturn]] void fail(const std::string& what, int err);
  void discard() noexcept;

  std::string path_, who_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace kirzl::io::detail
