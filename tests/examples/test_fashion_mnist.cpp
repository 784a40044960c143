// The Fashion-MNIST example as a user runs it: flags, the JSON last line, checkpoints and an exact
// resume. Runs build/examples/fashion_mnist on a small slice of the real data.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const std::string kExample = std::string(KIRZL_BINARY_DIR) + "/examples/fashion_mnist";
const char* kData = "/usr/share/datasets/fashion-mnist";

struct ProgramRun {
  int status = -1;
  std::string output;
  std::string last_line() const {
    auto end = output.find_last_not_of('\n');
    auto begin = output.rfind('\n', end);
    return output.substr(begin == std::string::npos ? 0 : begin + 1, end - (begin == std::string::npos ? 0 : begin + 1) + 1);
  }
};

ProgramRun run(const std::string& args) {
  ProgramRun r;
  const std::string cmd = "OMP_NUM_THREADS=1 " + kExample + " --threads 1 " + args + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), &pclose);
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe.get())) r.output += buf;
  r.status = pclose(pipe.release());
  return r;
}

std::vector<std::string> lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> v;
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

// The training-loss lines (those with "loss" but no "accuracy"), without the wall-clock fields.
std::vector<std::string> losses(const fs::path& metrics) {
  std::vector<std::string> v;
  for (const auto& l : lines(metrics)) {
    if (l.find("\"accuracy\"") != std::string::npos) continue;
    auto a = l.find("\"step\""), b = l.find("\"lr\"");
    v.push_back(l.substr(a, b - a));
  }
  return v;
}

class FashionMnistExample : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kExample)) GTEST_SKIP() << kExample << " is not built (KIRZL_BUILD_EXAMPLES=OFF)";
    if (!fs::exists(kData)) GTEST_SKIP() << kData << " is missing: apt-get install dataset-fashion-mnist";
    dir_ = fs::temp_directory_path() / ("kirzl_fmnist_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  fs::path dir_;
};

const std::string kSmall = "--train-limit 1024 --test-limit 500 --batch-size 128 --log-every 1 ";

}  // namespace

TEST_F(FashionMnistExample, LastLineIsTheJsonSummary) {
  ProgramRun r = run(kSmall + "--epochs 1");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string last = r.last_line();
  for (const char* key : {"\"test_accuracy\": ", "\"test_loss\": ", "\"epochs\": 1", "\"seconds\": ", "\"samples_per_second\": ",
                          "\"world_size\": 1"})
    EXPECT_NE(last.find(key), std::string::npos) << key << " missing from " << last;
  EXPECT_EQ(last.front(), '{');
  EXPECT_EQ(last.back(), '}');
}

TEST_F(FashionMnistExample, ResumeContinuesExactly) {
  for (const std::string opt : {"adamw", "sgd"}) {
    SCOPED_TRACE(opt);
    const std::string common = kSmall + "--epochs 3 --optimizer " + opt + " --model mlp ";
    ProgramRun straight = run(common + "--metrics " + (dir_ / (opt + "_a.jsonl")).string());
    ASSERT_EQ(straight.status, 0) << straight.output;
    const fs::path ckpt = dir_ / (opt + ".safetensors");
    ProgramRun first = run(common + "--stop-after 1 --checkpoint " + ckpt.string() + " --metrics " + (dir_ / (opt + "_b.jsonl")).string());
    ASSERT_EQ(first.status, 0) << first.output;
    ASSERT_TRUE(fs::exists(ckpt));
    ProgramRun resumed = run(common + "--resume " + ckpt.string() + " --metrics " + (dir_ / (opt + "_b.jsonl")).string());
    ASSERT_EQ(resumed.status, 0) << resumed.output;
    EXPECT_NE(resumed.output.find("resumed from"), std::string::npos);
    auto a = losses(dir_ / (opt + "_a.jsonl")), b = losses(dir_ / (opt + "_b.jsonl"));
    ASSERT_EQ(a.size(), 3u * 8u);
    EXPECT_EQ(a, b);  // every step's loss, bit for bit (%.9g round-trips f32 and f64 to the printed digits)
    auto acc = [](const ProgramRun& r) { return r.last_line().substr(0, r.last_line().find("\"seconds\"")); };
    EXPECT_EQ(acc(straight), acc(resumed));
  }
}

TEST_F(FashionMnistExample, ResumeRejectsADifferentRun) {
  const fs::path ckpt = dir_ / "c.safetensors";
  ASSERT_EQ(run(kSmall + "--epochs 1 --checkpoint " + ckpt.string()).status, 0);
  ProgramRun r = run(kSmall + "--epochs 1 --model cnn --resume " + ckpt.string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("model = mlp"), std::string::npos) << r.output;
}

TEST_F(FashionMnistExample, MissingDataSaysWhatToInstall) {
  ProgramRun r = run("--data-dir " + (dir_ / "none").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("dataset-fashion-mnist"), std::string::npos) << r.output;
}

TEST_F(FashionMnistExample, BadFlagsAreRejected) {
  EXPECT_NE(run("--model resnet").status, 0);
  EXPECT_NE(run("--batch-size").status, 0);
  ProgramRun r = run("--frobnicate");
  EXPECT_NE(r.output.find("unknown flag --frobnicate"), std::string::npos);
}
