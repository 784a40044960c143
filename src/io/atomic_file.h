// AtomicFile: write a file so that readers see either the old contents or the complete new ones
// (internal).
#pragma once

#include <cstddef>
#include <string>

namespace kirzl::io::detail {

/// strerror(err) in a thread-safe way.
std::string errno_text(int err);

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
