// The shared conversions and path checks of examples/args/args.hpp.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "args.hpp"

namespace fs = std::filesystem;
using kirzl::examples::ArgsError;

namespace {

// The message of the ArgsError that `f` throws, or "" when it throws none.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const ArgsError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ExampleArgs, IntegersAreStrict) {
  using kirzl::examples::parse_int;
  EXPECT_EQ(parse_int("--n", "42"), 42);
  EXPECT_EQ(parse_int("--n", "-7"), -7);
  EXPECT_EQ(parse_int("--n", "9223372036854775807"), INT64_MAX);
  for (const char* bad : {"", "abc", "12abc", "1e3", "1.0", " 1", "1 ", "+1", "0x10", "9223372036854775808", "--1"}) {
    const std::string msg = error_of([&] { parse_int("--n", bad); });
    EXPECT_NE(msg.find("--n '" + std::string(bad) + "'"), std::string::npos) << bad << ": " << msg;
    EXPECT_NE(msg.find("expected an integer"), std::string::npos) << msg;
  }
  EXPECT_EQ(error_of([] { parse_int("--n", "0", 1); }), "--n '0': expected an integer >= 1");
  EXPECT_EQ(error_of([] { parse_int("--n", "11", 1, 10); }), "--n '11': expected an integer in [1, 10]");
}

TEST(ExampleArgs, UnsignedIntegersRejectASign) {
  using kirzl::examples::parse_uint;
  EXPECT_EQ(parse_uint("--seed", "18446744073709551615"), UINT64_MAX);
  EXPECT_NE(error_of([] { parse_uint("--seed", "-1"); }).find("--seed '-1'"), std::string::npos);
  EXPECT_NE(error_of([] { parse_uint("--seed", "18446744073709551616"); }), "");
}

TEST(ExampleArgs, DoublesAreFinite) {
  using kirzl::examples::parse_double;
  EXPECT_EQ(parse_double("--lr", "1e-3"), 1e-3);
  EXPECT_EQ(parse_double("--lr", "-0.5"), -0.5);
  for (const char* bad : {"", "x", "1e", "0.1x", "inf", "-inf", "nan", "1e999"})
    EXPECT_EQ(error_of([&] { parse_double("--lr", bad); }), "--lr '" + std::string(bad) + "': expected a finite number")
        << bad;
}

class ExampleArgsPaths : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kirzl_example_args_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(ExampleArgsPaths, OutputFile) {
  using kirzl::examples::check_output_file;
  EXPECT_EQ(error_of([&] { check_output_file("--metrics", (dir_ / "new.jsonl").string()); }), "");
  EXPECT_FALSE(fs::exists(dir_ / "new.jsonl"));  // checked, not created
  EXPECT_EQ(error_of([] { check_output_file("--metrics", ""); }), "");
  EXPECT_EQ(error_of([] { check_output_file("--checkpoint", "/proc/x/y.ckpt"); }),
            "--checkpoint '/proc/x/y.ckpt': the directory '/proc/x' does not exist");
  // /proc refuses new files even to root (for whom access(2) says yes).
  EXPECT_EQ(error_of([] { check_output_file("--checkpoint", "/proc/y.ckpt"); }),
            "--checkpoint '/proc/y.ckpt': the directory '/proc' is not writable");
  EXPECT_NE(error_of([&] { check_output_file("--metrics", dir_.string()); }).find("is a directory"), std::string::npos);
  // An existing file is appended to later: still checked, and not changed.
  std::ofstream(dir_ / "old.jsonl") << "x\n";
  EXPECT_EQ(error_of([&] { check_output_file("--metrics", (dir_ / "old.jsonl").string()); }), "");
  EXPECT_EQ(fs::file_size(dir_ / "old.jsonl"), 2u);
  EXPECT_NE(error_of([] { check_output_file("--metrics", "/proc/self/status"); }).find("not writable"), std::string::npos);
}

TEST_F(ExampleArgsPaths, OutputDirIsCreated) {
  using kirzl::examples::make_output_dir;
  EXPECT_EQ(error_of([&] { make_output_dir("--cache-dir", (dir_ / "a" / "b").string()); }), "");
  EXPECT_TRUE(fs::is_directory(dir_ / "a" / "b"));
  EXPECT_TRUE(fs::is_empty(dir_ / "a" / "b"));  // the probe file is gone
  EXPECT_NE(error_of([] { make_output_dir("--cache-dir", "/proc/x/c"); }).find("--cache-dir '/proc/x/c': cannot create"),
            std::string::npos);
  std::ofstream(dir_ / "file") << "x";
  EXPECT_NE(error_of([&] { make_output_dir("--cache-dir", (dir_ / "file").string()); }), "");
}

TEST_F(ExampleArgsPaths, Inputs) {
  using kirzl::examples::check_input_dir;
  using kirzl::examples::check_input_file;
  EXPECT_EQ(error_of([] { check_input_file("--resume", ""); }), "");
  EXPECT_EQ(error_of([&] { check_input_file("--resume", (dir_ / "none").string()); }),
            "--resume '" + (dir_ / "none").string() + "': no such file");
  EXPECT_NE(error_of([&] { check_input_file("--resume", dir_.string()); }).find("not a regular file"), std::string::npos);
  EXPECT_EQ(error_of([&] { check_input_dir("--data-dir", dir_.string(), "hint"); }), "");
  EXPECT_EQ(error_of([] { check_input_dir("--data-dir", "/nonexistent/d", "apt-get install x"); }),
            "--data-dir '/nonexistent/d': no such directory (apt-get install x)");
}

// A file from one process without sharding, a directory otherwise (see Note [checkpoint forms]).
TEST(ExampleArgs, CheckpointForm) {
  using kirzl::examples::checkpoint_form;
  using kirzl::examples::CheckpointForm;
  EXPECT_EQ(checkpoint_form(1, "none"), CheckpointForm::file);
  EXPECT_EQ(checkpoint_form(2, "none"), CheckpointForm::directory);
  EXPECT_EQ(checkpoint_form(1, "optimizer"), CheckpointForm::directory);
  EXPECT_EQ(checkpoint_form(4, "gradients"), CheckpointForm::directory);
  EXPECT_EQ(kirzl::examples::shard_choices(), (std::vector<std::string>{"none", "optimizer", "gradients"}));
}

TEST_F(ExampleArgsPaths, OutputCheckpointDir) {
  using kirzl::examples::check_output_checkpoint_dir;
  EXPECT_EQ(error_of([] { check_output_checkpoint_dir("--checkpoint", ""); }), "");
  EXPECT_EQ(error_of([&] { check_output_checkpoint_dir("--checkpoint", (dir_ / "ckpt").string()); }), "");
  EXPECT_FALSE(fs::exists(dir_ / "ckpt"));  // checked, not created
  EXPECT_EQ(error_of([&] { check_output_checkpoint_dir("--checkpoint", (dir_ / "ckpt/").string()); }), "");
  // A previous checkpoint (or an empty directory) is replaced; anything else is refused up front.
  fs::create_directories(dir_ / "ckpt");
  for (const char* name : {"index.json", "COMPLETE", "shard-0-of-2.safetensors"}) std::ofstream(dir_ / "ckpt" / name) << "x";
  EXPECT_EQ(error_of([&] { check_output_checkpoint_dir("--checkpoint", (dir_ / "ckpt").string()); }), "");
  std::ofstream(dir_ / "ckpt" / "notes.txt") << "x";
  EXPECT_EQ(error_of([&] { check_output_checkpoint_dir("--checkpoint", (dir_ / "ckpt").string()); }),
            "--checkpoint '" + (dir_ / "ckpt").string() +
                "': exists and is not a checkpoint directory (it holds 'notes.txt'); the checkpoint would replace it");
  std::ofstream(dir_ / "file.safetensors") << "x";  // a one-process checkpoint file
  EXPECT_NE(error_of([&] { check_output_checkpoint_dir("--checkpoint", (dir_ / "file.safetensors").string()); })
                .find("exists and is not a directory"),
            std::string::npos);
  EXPECT_EQ(error_of([] { check_output_checkpoint_dir("--checkpoint", "/proc/x/ckpt"); }),
            "--checkpoint '/proc/x/ckpt': the directory '/proc/x' does not exist");
  EXPECT_EQ(error_of([] { check_output_checkpoint_dir("--checkpoint", "/proc/ckpt"); }),
            "--checkpoint '/proc/ckpt': the directory '/proc' is not writable");
}

TEST_F(ExampleArgsPaths, InputCheckpoint) {
  using kirzl::examples::check_input_checkpoint;
  EXPECT_EQ(error_of([] { check_input_checkpoint("--resume", ""); }), "");
  EXPECT_EQ(error_of([&] { check_input_checkpoint("--resume", dir_.string()); }), "");  // a directory
  std::ofstream(dir_ / "c.safetensors") << "x";
  EXPECT_EQ(error_of([&] { check_input_checkpoint("--resume", (dir_ / "c.safetensors").string()); }), "");  // a file
  EXPECT_EQ(error_of([&] { check_input_checkpoint("--resume", (dir_ / "none").string()); }),
            "--resume '" + (dir_ / "none").string() + "': no such file or directory");
  EXPECT_EQ(error_of([] { check_input_checkpoint("--resume", "/dev/null"); }),
            "--resume '/dev/null': is neither a regular file nor a directory");
}
