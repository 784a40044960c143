#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <unistd.h>

#include <kirzl/io/timeline.hpp>

#include "support/scoped_env.hpp"

using kirzl::io::Timeline;

TEST(Timeline, WritesChromeTraceJson) {
  auto path = std::filesystem::temp_directory_path() / ("kirzl_timeline_" + std::to_string(::getpid()) + ".json");
  {
    Timeline t(path.string(), 3);
    {
      Timeline::Scope s(t, "forward", "compute");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    t.span("all_reduce \"bucket 0\"", "comm", 10, 25, 1);
    EXPECT_EQ(t.size(), 2u);
  }  // written on destruction
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string json = ss.str();
  EXPECT_NE(json.find("\"traceEvents\""), std::string::npos);
  EXPECT_NE(json.find("\"name\": \"forward\", \"cat\": \"compute\", \"ph\": \"X\""), std::string::npos);
  EXPECT_NE(json.find("all_reduce \\\"bucket 0\\\""), std::string::npos);  // escaped
  EXPECT_NE(json.find("\"ts\": 10, \"dur\": 15, \"pid\": 3, \"tid\": 1"), std::string::npos);
  std::filesystem::remove(path);
}

TEST(Timeline, DisabledRecordsNothingAndPathFromEnv) {
  Timeline t;
  EXPECT_FALSE(t.enabled());
  t.span("x", "y", 0, 1);
  EXPECT_EQ(t.size(), 0u);
  kirzl::testing::ScopedEnv env("KIRZL_TIMELINE", "/tmp/trace");
  EXPECT_EQ(Timeline::path_from_env(2), "/tmp/trace.rank2.json");
  env.set("/tmp/t.json");
  EXPECT_EQ(Timeline::path_from_env(0), "/tmp/t.json");
  EXPECT_EQ(Timeline::path_from_env(1), "/tmp/t.rank1.json");
  env.set(std::nullopt);
  EXPECT_EQ(Timeline::path_from_env(0), "");
}
