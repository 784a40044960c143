// MetricsLog: JSON Lines format, number round trips, escaping, appending, thread safety.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include <unistd.h>

#include <kirzl/io/metrics.hpp>

#include "io/json.h"
#include "support/expect_error.hpp"

namespace kirzl::io {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(f, l);) lines.push_back(l);
  return lines;
}

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("kirzl_metrics_" + std::to_string(::getpid()) + "_" + name)).string();
}

TEST(MetricsRecord, StandardAndExtraFields) {
  MetricsRecord r{.step = 100, .epoch = 2, .loss = 0.25, .lr = 1e-3, .samples_per_second = 5120.5};
  r.set("grad_norm", 1.5).set("phase", "train").set("tokens", int64_t{1} << 40).set("n", 3);
  EXPECT_EQ(r.to_json(),
            "{\"step\":100,\"epoch\":2,\"loss\":0.25,\"lr\":0.001,\"samples_per_second\":5120.5,"
            "\"grad_norm\":1.5,\"phase\":\"train\",\"tokens\":1099511627776,\"n\":3}");
  r.set("phase", "eval");  // replaces, keeps the position
  EXPECT_NE(r.to_json().find("\"grad_norm\":1.5,\"phase\":\"eval\""), std::string::npos);
  EXPECT_EQ(MetricsRecord{}.to_json(), "{\"step\":0,\"epoch\":0}");
  MetricsRecord all{.step = 1, .epoch = 0, .loss = 2, .accuracy = 0.5, .lr = 0.1, .samples_per_second = 3,
                    .elapsed_seconds = 4.5, .extra = {{"split", "test"}}};
  EXPECT_EQ(all.to_json(),
            "{\"step\":1,\"epoch\":0,\"loss\":2.0,\"accuracy\":0.5,\"lr\":0.1,\"samples_per_second\":3.0,"
            "\"elapsed_seconds\":4.5,\"split\":\"test\"}");
}

TEST(MetricsRecord, NumbersRoundTripAndNonFiniteIsNull) {
  const double values[] = {0.1, 1.0 / 3.0, 2.0 / 3.0 * 1e-300, 123456789.123456789, -0.0, 5e-324,
                           std::numeric_limits<double>::max(), 0.30000000000000004};
  for (double v : values) {
    MetricsRecord r{.loss = v};
    std::string j = r.to_json();
    auto pos = j.find("\"loss\":") + 7;
    double back = std::strtod(j.c_str() + pos, nullptr);
    EXPECT_EQ(std::memcmp(&back, &v, sizeof v), 0) << j;
  }
  MetricsRecord r{.loss = std::nan(""), .lr = std::numeric_limits<double>::infinity()};
  r.set("x", -std::numeric_limits<double>::infinity());
  EXPECT_EQ(r.to_json(), "{\"step\":0,\"epoch\":0,\"loss\":null,\"lr\":null,\"x\":null}");
}

TEST(MetricsRecord, StringsAreEscapedAndTheLineIsValidJson) {
  MetricsRecord r;
  r.set("na\"me", "line\nbreak\t\"quoted\" back\\slash \x01 caf\xc3\xa9");
  std::string j = r.to_json();
  EXPECT_EQ(j.find('\n'), std::string::npos);
  nlohmann::ordered_json v = json::parse_untrusted(j);
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(v.back(), "line\nbreak\t\"quoted\" back\\slash \x01 caf\xc3\xa9");
  EXPECT_EQ(std::prev(v.end()).key(), "na\"me");
}

TEST(MetricsRecord, RejectsStandardOrEmptyNames) {
  MetricsRecord r;
  EXPECT_KIRZL_ERROR(r.set("loss", 1.0), ErrorCode::InvalidArgument, "'loss' is a standard field");
  EXPECT_KIRZL_ERROR(r.set("", 1.0), ErrorCode::InvalidArgument, "empty");
}

TEST(MetricsLog, AppendsOneFlushedLinePerRecord) {
  const std::string p = temp_path("append.jsonl");
  fs::remove(p);
  {
    MetricsLog log(p);
    EXPECT_TRUE(log.enabled());
    log.log({.step = 1, .loss = 0.5});
    // Flushed: visible before the log is closed.
    EXPECT_EQ(read_lines(p), std::vector<std::string>{"{\"step\":1,\"epoch\":0,\"loss\":0.5}"});
  }
  {
    MetricsLog log(p);  // a second run continues the file
    log.log(MetricsRecord{.step = 2, .epoch = 1}.set("phase", "eval"));
  }
  EXPECT_EQ(read_lines(p), (std::vector<std::string>{"{\"step\":1,\"epoch\":0,\"loss\":0.5}",
                                                     "{\"step\":2,\"epoch\":1,\"phase\":\"eval\"}"}));
  fs::remove(p);
}

TEST(MetricsLog, DisabledWithAnEmptyPathAndErrorsNameThePath) {
  MetricsLog off;
  EXPECT_FALSE(off.enabled());
  off.log({.step = 1});  // no-op
  EXPECT_KIRZL_ERROR(MetricsLog("/nonexistent-dir/x.jsonl"), ErrorCode::Io, "/nonexistent-dir/x.jsonl",
                     "No such file or directory");
  if (fs::exists("/dev/full")) {
    MetricsLog full("/dev/full");
    EXPECT_KIRZL_ERROR(full.log({.step = 1}), ErrorCode::Io, "/dev/full", "No space left");
  }
}

TEST(MetricsLog, ConcurrentWritersNeverInterleave) {
  const std::string p = temp_path("threads.jsonl");
  fs::remove(p);
  {
    MetricsLog log(p);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        for (int k = 0; k < 200; ++k)
          log.log(MetricsRecord{.step = k, .epoch = t}.set("payload", std::string(100 + t, 'a' + t)));
      });
    for (auto& th : threads) th.join();
  }
  auto lines = read_lines(p);
  ASSERT_EQ(lines.size(), 800u);
  for (const auto& l : lines) {
    nlohmann::ordered_json v = json::parse_untrusted(l);
    ASSERT_TRUE(v.is_object());
    int64_t epoch = v.at("epoch").get<int64_t>();
    EXPECT_EQ(v.at("payload"), std::string(100 + epoch, static_cast<char>('a' + epoch)));
  }
  fs::remove(p);
}

}  // namespace
}  // namespace kirzl::io
