// ProgressBar: one line of training progress — epoch, step, loss, throughput, ETA.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>

namespace kirzl::io {

/// Shows training progress on a FILE*.
///
/// On a terminal (isatty, or interactive = true) it redraws one line in place (with a carriage
/// return), at most ~10 times a second (the last step is always drawn):
///   train epoch 2/5 [=========>          ] 230/469  49%  loss 0.4312  41.2k samples/s  ETA 0:06
/// Elsewhere (a log file, a pipe, a batch job) it prints a plain line, without control
/// characters, each time another 10% of total_steps is done (every 100 steps when total_steps is
/// unknown), and at the end:
///   train epoch 2/5 step 230/469 (49%) loss 0.4312 41.2k samples/s ETA 0:06
///
/// Not thread-safe: update() from the training thread only. The FILE* is borrowed, not closed.
class ProgressBar {
 public:
  /// What to draw and where: `io::ProgressBar bar({.total_steps = n, .label = "train"})`.
  /// Checked by the constructor.
  struct Options {
    int64_t total_steps = 0;  ///< steps in this epoch; 0 when unknown
    int64_t epoch = 0;        ///< shown as given ("epoch 2/5"); pass a 1-based number
    int64_t epochs = 0;       ///< 0: the epoch is shown without a total; both 0: no epoch shown
    std::string label = {};   ///< first word of the line, e.g. "train"
    bool enabled = true;      ///< false: draws nothing (e.g. on ranks other than 0)
    std::FILE* out = stderr;  ///< borrowed, never closed; nullptr draws nothing (as enabled = false)
    std::optional<bool> interactive = std::nullopt;  ///< nullopt: isatty(out)
    int percent_every = 10;   ///< non-interactive: a line per this many percent of total_steps
    int bar_width = 20;       ///< interactive: width of the [====>   ] bar
    /// The time source of the redraw throttle, the ETA and "took"; empty: steady_clock::now.
    /// Tests pass a fake clock to make the throttle exact.
    std::function<std::chrono::steady_clock::time_point()> clock = {};
  };

  /// Starts the clock of the throughput and ETA now and decides once whether the output is
  /// interactive. Throws Error{InvalidArgument} when total_steps < 0, percent_every is not in
  /// [1, 100] or bar_width is not in [0, 200].
  explicit ProgressBar(Options options);
  /// Calls finish() when it was not called.
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Reports that `step` steps (1-based count of finished steps) are done, with the latest loss
  /// and throughput (a NaN loss, a negative or NaN rate: not shown). Draws when due.
  void update(int64_t step, double loss, double samples_per_second = -1.0);
  /// Draws the final state and ends the line. Idempotent.
  void finish();

  /// True when the bar redraws one line in place (a terminal, or Options::interactive = true);
  /// false when it prints plain progress lines (a file or a pipe).
  bool interactive() const { return interactive_; }
  /// The text of the line for the current state (what update() would draw, without the carriage return).
  std::string line() const;

 private:
  void draw();
  double elapsed_s() const;
  std::chrono::steady_clock::time_point now() const;

  Options o_;
  bool interactive_ = false;
  bool finished_ = false;
  int64_t step_ = 0;
  double loss_ = std::nan(""), sps_ = -1.0;
  int64_t next_print_ = 0;       // non-interactive: print when step_ reaches this
  int64_t last_printed_ = -1;    // step of the last printed/drawn state
  size_t last_len_ = 0;          // interactive: length of the last drawn line
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool drawn_ = false;
};

/// "0:42", "12:05", "1:02:03" for a number of seconds (negative or non-finite: "?").
std::string format_duration(double seconds);
/// "512", "41.2k", "1.35M": a rate with a k/M/G suffix.
std::string format_rate(double value);

}  // namespace kirzl::io
