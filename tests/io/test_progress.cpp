// ProgressBar: plain lines for logs, in-place redraws for terminals, formatting helpers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include <kirzl/io/progress.hpp>

#include "support/expect_error.hpp"

namespace kirzl::io {
namespace {

// Everything written to a FILE* backed by memory.
class Capture {
 public:
  Capture() : f_(open_memstream(&buf_, &len_)) {}
  ~Capture() {
    if (f_) std::fclose(f_);
    std::free(buf_);
  }
  std::FILE* file() { return f_; }
  std::string text() {
    std::fflush(f_);
    return std::string(buf_, len_);
  }

 private:
  char* buf_ = nullptr;
  size_t len_ = 0;
  std::FILE* f_;
};

// A clock that moves only when told, for ProgressBar::Options::clock: the throttle is exact.
class FakeClock {
 public:
  std::function<std::chrono::steady_clock::time_point()> function() {
    return [this] { return now_; };
  }
  void advance(std::chrono::steady_clock::duration d) { now_ += d; }

 private:
  std::chrono::steady_clock::time_point now_{};
};

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] == '\n') {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  if (start < s.size()) out.push_back(s.substr(start));
  return out;
}

bool has_control_chars(const std::string& s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n') return true;
  return false;
}

TEST(ProgressFormat, DurationsAndRates) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(42.4), "0:42");
  EXPECT_EQ(format_duration(725), "12:05");
  EXPECT_EQ(format_duration(3723), "1:02:03");
  EXPECT_EQ(format_duration(-1), "?");
  EXPECT_EQ(format_duration(std::nan("")), "?");
  EXPECT_EQ(format_rate(512), "512");
  EXPECT_EQ(format_rate(41234), "41.2k");
  EXPECT_EQ(format_rate(1350000), "1.35M");
  EXPECT_EQ(format_rate(2.5e9), "2.5G");
  EXPECT_EQ(format_rate(3.25), "3.25");
}

TEST(ProgressBar, NonInteractivePrintsEveryTenPercentAndTheEnd) {
  Capture cap;
  {
    ProgressBar bar({.total_steps = 50, .epoch = 2, .epochs = 5, .label = "train", .out = cap.file()});
    EXPECT_FALSE(bar.interactive());  // a memory stream is no terminal
    for (int s = 1; s <= 50; ++s) bar.update(s, 1.0 / s, 1000.0 * s);
    bar.finish();
    bar.finish();  // idempotent
  }
  std::string out = cap.text();
  EXPECT_FALSE(has_control_chars(out)) << out;
  auto lines = split_lines(out);
  ASSERT_EQ(lines.size(), 10u) << out;
  EXPECT_EQ(lines[0].rfind("train epoch 2/5 step 5/50 (10%) loss 0.2000 5000 samples/s ETA ", 0), 0u) << lines[0];
  EXPECT_EQ(lines[4].rfind("train epoch 2/5 step 25/50 (50%) loss 0.0400 25k samples/s ETA ", 0), 0u) << lines[4];
  EXPECT_EQ(lines[9].rfind("train epoch 2/5 step 50/50 (100%) loss 0.0200 50k samples/s took ", 0), 0u)
      << lines[9];
}

TEST(ProgressBar, NonInteractiveOddTotalsAndFinishBeforeTheEnd) {
  Capture cap;
  {
    ProgressBar bar({.total_steps = 7, .label = "val", .out = cap.file(), .percent_every = 25});
    for (int s = 1; s <= 5; ++s) bar.update(s, std::nan(""));
  }  // destructor finishes: prints the last state when it was not printed
  auto lines = split_lines(cap.text());
  // 25% of 7 -> steps 2, 4, (6); stopped at 5, which finish() prints.
  ASSERT_EQ(lines.size(), 3u) << cap.text();
  EXPECT_EQ(lines[0].rfind("val step 2/7 (28%) ETA", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1].rfind("val step 4/7 (57%) ETA", 0), 0u) << lines[1];
  EXPECT_EQ(lines[2].rfind("val step 5/7 (71%) ETA", 0), 0u) << lines[2];
}

TEST(ProgressBar, UnknownTotalPrintsEveryHundredSteps) {
  Capture cap;
  {
    ProgressBar bar({.epoch = 1, .out = cap.file()});
    for (int s = 1; s <= 250; ++s) bar.update(s, 0.5);
  }
  auto lines = split_lines(cap.text());
  ASSERT_EQ(lines.size(), 3u) << cap.text();
  EXPECT_EQ(lines[0], "epoch 1 step 100 loss 0.5000");
  EXPECT_EQ(lines[1], "epoch 1 step 200 loss 0.5000");
  EXPECT_EQ(lines[2], "epoch 1 step 250 loss 0.5000");
}

TEST(ProgressBar, InteractiveRedrawsOneLineAtMostTenTimesASecond) {
  Capture cap;
  FakeClock clock;
  {
    ProgressBar bar({.total_steps = 1000, .epoch = 1, .epochs = 3, .label = "train", .out = cap.file(),
                     .interactive = true, .bar_width = 10, .clock = clock.function()});
    EXPECT_TRUE(bar.interactive());
    for (int s = 1; s <= 1000; ++s) {
      clock.advance(std::chrono::milliseconds(1));  // 1000 steps in one second: 10 redraws due
      bar.update(s, 2.0, 100.0);
    }
    bar.finish();
  }
  std::string out = cap.text();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
  // Steps 1, 101, 201, ..., 901 (each 100 ms after the previous draw), and the last.
  EXPECT_EQ(std::count(out.begin(), out.end(), '\r'), 11) << out;
  // The first draw, then the final one.
  EXPECT_EQ(out.rfind("\rtrain  epoch 1/3  [>         ]  1/1000    0%  loss 2.0000  100 samples/s  ETA ", 0), 0u)
      << out;
  auto last = out.substr(out.rfind('\r'));
  EXPECT_EQ(last.rfind("\rtrain  epoch 1/3  [==========]  1000/1000  100%  loss 2.0000  100 samples/s  took ", 0), 0u)
      << last;
}

TEST(ProgressBar, InteractiveThrottleLetsALaterUpdateThrough) {
  Capture cap;
  FakeClock clock;
  ProgressBar bar({.total_steps = 4, .out = cap.file(), .interactive = true, .bar_width = 4, .clock = clock.function()});
  bar.update(1, 1.0);
  clock.advance(std::chrono::milliseconds(99));
  bar.update(2, 1.0);  // within 100 ms of the first: skipped
  clock.advance(std::chrono::milliseconds(1));
  bar.update(3, 1.0);  // 100 ms after the first: drawn
  EXPECT_NE(cap.text().find("3/4"), std::string::npos) << "drawn by update(), before finish()";
  bar.finish();        // draws step 3 again? no: it was drawn; ends the line
  std::string out = cap.text();
  EXPECT_EQ(std::count(out.begin(), out.end(), '\r'), 2) << out;
  EXPECT_NE(out.find("3/4"), std::string::npos);
  EXPECT_EQ(out.find("2/4"), std::string::npos);
  EXPECT_EQ(out.back(), '\n');
}

TEST(ProgressBar, ShorterRedrawBlanksTheRestOfTheLine) {
  Capture cap;
  FakeClock clock;
  ProgressBar bar({.total_steps = 2, .out = cap.file(), .interactive = true, .bar_width = 0, .clock = clock.function()});
  bar.update(1, 123456.0, 1e6);  // long line
  clock.advance(std::chrono::milliseconds(100));
  bar.update(2, 1.0);  // shorter line: padded with spaces
  bar.finish();
  std::string out = cap.text();
  auto first = out.substr(1, out.find('\r', 1) - 1);
  auto second = out.substr(out.find('\r', 1) + 1);
  second.pop_back();  // '\n'
  EXPECT_EQ(second.size(), first.size()) << "[" << first << "] [" << second << "]";
  EXPECT_EQ(second.find_last_not_of(' ') + 1 < second.size(), true);
}

TEST(ProgressBar, DisabledDrawsNothingAndOptionsAreChecked) {
  Capture cap;
  {
    ProgressBar bar({.total_steps = 3, .enabled = false, .out = cap.file(), .interactive = true});
    for (int s = 1; s <= 3; ++s) bar.update(s, 1.0);
  }
  EXPECT_EQ(cap.text(), "");
  EXPECT_KIRZL_ERROR(ProgressBar({.total_steps = -1}), ErrorCode::InvalidArgument, "total_steps");
  EXPECT_KIRZL_ERROR(ProgressBar({.percent_every = 0}), ErrorCode::InvalidArgument, "percent_every");
}

}  // namespace
}  // namespace kirzl::io
