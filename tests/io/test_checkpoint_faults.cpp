// Saving a checkpoint (or any safetensors file) onto a failing disk: whatever fails (disk full,
// fsync, rename, a read-only directory), the previous file stays byte-identical, no temporary file
// is left behind, and the error names the path and the system's reason. The failures are injected
// through the file system seam (Note [file system seam]), and, where this process may mount one,
// produced for real by a tiny tmpfs. Labels cpu and faults.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <sys/mount.h>
#include <unistd.h>

#include <kirzl/autograd.hpp>
#include <kirzl/io/checkpoint.hpp>
#include <kirzl/io/safetensors.hpp>
#include <kirzl/nn.hpp>
#include <kirzl/ops.hpp>

#include "io/atomic_file.h"
#include "support/expect_error.hpp"

namespace kirzl::io {
namespace {

namespace fs = std::filesystem;
using detail::FileSystemCalls;
using detail::ScopedFileSystemCalls;

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// "'<path>'", as error messages quote a path.
std::string quoted(const std::string& path) {
  std::string q(1, '\'');
  q.append(path).push_back('\'');
  return q;
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The two public ways of writing a file atomically: a checkpoint and a plain safetensors file.
struct Saver {
  const char* name;
  std::function<void(const std::string& path, const nn::Module& model, int64_t step)> save;
};

void PrintTo(const Saver& s, std::ostream* os) { *os << s.name; }

const Saver kSavers[] = {
    {"save_checkpoint",
     [](const std::string& path, const nn::Module& model, int64_t step) {
       save_checkpoint(path, model, nullptr, {.step = step});
     }},
    {"save_safetensors",
     [](const std::string& path, const nn::Module& model, int64_t step) {
       save_safetensors(path, model.state_dict(), {{"step", std::to_string(step)}});
     }},
};

class SaveFaultTest : public ::testing::TestWithParam<Saver> {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->name());
    std::replace(name.begin(), name.end(), '/', '_');
    dir_ = fs::temp_directory_path() / ("kirzl_ckpt_faults_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    model_ = std::make_shared<nn::Sequential>(nn::Linear(8, 16), nn::ReLU(), nn::Linear(16, 4));
    GetParam().save(target(), *model_, 1);
    previous_ = read_bytes(target());
    ASSERT_FALSE(previous_.empty());
    // The next save has other contents, so a half-replaced file could not pass for the old one.
    NoGradGuard no_grad;
    for (auto& p : model_->parameters()) p.add_(ones_like(p));
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string target() const { return (dir_ / "c.safetensors").string(); }

  // A save under `calls` fails with Error{Io} naming the target, `words` and the OS error `os`;
  // afterwards the previous file is byte-identical and the only file in the directory.
  void expect_save_fails_cleanly(FileSystemCalls calls, const std::string& what, const std::string& os) {
    {
      ScopedFileSystemCalls scope(std::move(calls));
      EXPECT_KIRZL_ERROR(GetParam().save(target(), *model_, 2), ErrorCode::Io, quoted(target()), what, os);
    }
    expect_previous_intact();
  }

  void expect_previous_intact() {
    EXPECT_EQ(read_bytes(target()), previous_) << "the previous file changed";
    EXPECT_EQ(names_in(dir_), std::vector<std::string>{"c.safetensors"}) << "a temporary file was left behind";
  }

  fs::path dir_;
  std::shared_ptr<nn::Sequential> model_;
  std::string previous_;
};

// A replaced call that fails with `err` every time.
template <class R, class... Args>
std::function<R(Args...)> failing(int err) {
  return [err](Args...) -> R {
    errno = err;
    return -1;
  };
}

TEST_P(SaveFaultTest, DiskFullDuringTheWrite) {
  // The first write lands partly (as a full disk's last blocks do), the next one fails.
  auto real_write = FileSystemCalls::real().write;
  int calls_made = 0;
  FileSystemCalls calls;
  calls.write = [&](int fd, const void* data, size_t n) -> ssize_t {
    if (++calls_made == 1) return real_write(fd, data, n > 4 ? n / 2 : n);
    errno = ENOSPC;
    return -1;
  };
  expect_save_fails_cleanly(std::move(calls), "writing the temporary file failed", "No space left on device");
  EXPECT_GE(calls_made, 2) << "the short first write must be followed by another";
}

TEST_P(SaveFaultTest, AWriteThatMakesNoProgress) {
  FileSystemCalls calls;
  calls.write = [](int, const void*, size_t) -> ssize_t { return 0; };
  expect_save_fails_cleanly(std::move(calls), "made no progress", "Input/output error");
}

TEST_P(SaveFaultTest, FsyncFails) {
  FileSystemCalls calls;
  calls.fsync = failing<int, int>(EIO);
  expect_save_fails_cleanly(std::move(calls), "fsync of the temporary file failed", "Input/output error");
}

TEST_P(SaveFaultTest, RenameFails) {
  FileSystemCalls calls;
  calls.rename = failing<int, const char*, const char*>(EXDEV);
  expect_save_fails_cleanly(std::move(calls), "renaming the temporary file", "Invalid cross-device link");
}

TEST_P(SaveFaultTest, ReadOnlyDirectory) {
  // As root, a directory's mode bits do not stop a write; a read-only file system does.
  FileSystemCalls calls;
  calls.open = failing<int, const char*, int, mode_t>(EROFS);
  expect_save_fails_cleanly(std::move(calls), "creating the temporary file", "Read-only file system");
}

// Short writes and interrupted calls are not failures: every byte still arrives.
TEST_P(SaveFaultTest, ShortAndInterruptedWritesStillWriteEverything) {
  auto real_write = FileSystemCalls::real().write;
  int calls_made = 0;
  FileSystemCalls calls;
  calls.write = [&](int fd, const void* data, size_t n) -> ssize_t {
    if (++calls_made % 3 == 0) {
      errno = EINTR;
      return -1;
    }
    return real_write(fd, data, n < 7 ? n : 7);
  };
  {
    ScopedFileSystemCalls scope(std::move(calls));
    GetParam().save(target(), *model_, 2);
  }
  auto loaded = load_safetensors(target());
  for (const auto& [name, t] : model_->state_dict())
    EXPECT_EQ(loaded.tensors.at(GetParam().name == std::string("save_checkpoint") ? "model." + name : name).to_vector<float>(),
              t.to_vector<float>())
        << name;
  EXPECT_EQ(names_in(dir_), std::vector<std::string>{"c.safetensors"});
}

INSTANTIATE_TEST_SUITE_P(Savers, SaveFaultTest, ::testing::ValuesIn(kSavers),
                         [](const ::testing::TestParamInfo<Saver>& p) { return std::string(p.param.name); });

// A real full and read-only file system: a 64 KiB tmpfs. Needs the right to mount (root with
// CAP_SYS_ADMIN); skipped otherwise.
class TinyTmpfs {
 public:
  explicit TinyTmpfs(const fs::path& where) : where_(where) {
    fs::create_directories(where_);
    mounted_ = ::mount("kirzl_test", where_.c_str(), "tmpfs", 0, "size=64k") == 0;
    if (!mounted_) why_ = std::string("mount failed: ") + detail::errno_text(errno);
  }
  ~TinyTmpfs() {
    if (mounted_) ::umount(where_.c_str());
  }
  TinyTmpfs(const TinyTmpfs&) = delete;
  TinyTmpfs& operator=(const TinyTmpfs&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& why() const { return why_; }
  bool make_read_only() {
    return ::mount("kirzl_test", where_.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, "size=64k") == 0;
  }

 private:
  fs::path where_;
  bool mounted_ = false;
  std::string why_;
};

TEST(CheckpointOnATinyTmpfs, FullThenReadOnlyKeepsThePreviousCheckpoint) {
  const fs::path root = fs::temp_directory_path() / ("kirzl_ckpt_tmpfs_" + std::to_string(::getpid()));
  const fs::path dir = root / "mnt";
  {
    TinyTmpfs tmpfs(dir);
    if (!tmpfs.mounted()) {
      fs::remove_all(root);
      GTEST_SKIP() << "cannot mount a tmpfs here (" << tmpfs.why() << ")";
    }
    const std::string path = (dir / "c.safetensors").string();
    nn::Linear small(8, 4);  // ~150 B of weights
    save_checkpoint(path, small, nullptr, {.step = 1});
    const std::string previous = read_bytes(path);

    nn::Linear big(256, 128);  // 128 KiB of weights: more than the whole file system
    EXPECT_KIRZL_ERROR(save_checkpoint(path, big, nullptr, {.step = 2}), ErrorCode::Io, quoted(path),
                       "No space left on device");
    EXPECT_EQ(read_bytes(path), previous);
    EXPECT_EQ(names_in(dir), std::vector<std::string>{"c.safetensors"});

    ASSERT_TRUE(tmpfs.make_read_only()) << "remount read-only failed: " << detail::errno_text(errno);
    EXPECT_KIRZL_ERROR(save_checkpoint(path, small, nullptr, {.step = 3}), ErrorCode::Io, quoted(path),
                       "Read-only file system");
    EXPECT_EQ(read_bytes(path), previous);
    EXPECT_EQ(names_in(dir), std::vector<std::string>{"c.safetensors"});
    EXPECT_EQ(load_checkpoint(path, small).step, 1);
  }
  fs::remove_all(root);
}

}  // namespace
}  // namespace kirzl::io
