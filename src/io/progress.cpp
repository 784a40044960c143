#include "kirzl/io/progress.hpp"

#include <algorithm>
#include <cmath>

#include <unistd.h>

#include "kirzl/core/error.hpp"

namespace kirzl::io {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e9) return "?";
  auto s = static_cast<int64_t>(std::llround(seconds));
  char buf[48];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return buf;
}

std::string format_rate(double v) {
  if (!std::isfinite(v)) return "?";
  char buf[48];
  double a = std::fabs(v);
  if (a >= 1e9) std::snprintf(buf, sizeof buf, "%.3gG", v / 1e9);
  else if (a >= 1e6) std::snprintf(buf, sizeof buf, "%.3gM", v / 1e6);
  else if (a >= 1e4) std::snprintf(buf, sizeof buf, "%.3gk", v / 1e3);
  else if (a >= 100) std::snprintf(buf, sizeof buf, "%.0f", v);
  else std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

ProgressBar::ProgressBar(Options options) : o_(std::move(options)) {
  KIRZL_CHECK(o_.total_steps >= 0, "ProgressBar: total_steps must be >= 0, got ", o_.total_steps);
  KIRZL_CHECK(o_.percent_every >= 1 && o_.percent_every <= 100, "ProgressBar: percent_every must be in [1, 100], got ",
              o_.percent_every);
  KIRZL_CHECK(o_.bar_width >= 0 && o_.bar_width <= 200, "ProgressBar: bar_width must be in [0, 200], got ", o_.bar_width);
  if (!o_.out) o_.enabled = false;
  interactive_ = o_.interactive.value_or(o_.out && ::isatty(::fileno(o_.out)) == 1);
  start_ = last_draw_ = now();
  next_print_ = o_.total_steps > 0 ? std::max<int64_t>(1, (o_.total_steps * o_.percent_every + 99) / 100) : 100;
}

ProgressBar::~ProgressBar() { finish(); }

std::chrono::steady_clock::time_point ProgressBar::now() const {
  return o_.clock ? o_.clock() : std::chrono::steady_clock::now();
}

double ProgressBar::elapsed_s() const { return std::chrono::duration<double>(now() - start_).count(); }

std::string ProgressBar::line() const {
  const char* sep = interactive_ ? "  " : " ";
  std::string s;
  auto add = [&](const std::string& part) {
    if (!s.empty()) s += sep;
    s += part;
  };
  char buf[96];
  if (!o_.label.empty()) add(o_.label);
  if (o_.epochs > 0) {
    std::snprintf(buf, sizeof buf, "epoch %lld/%lld", static_cast<long long>(o_.epoch), static_cast<long long>(o_.epochs));
    add(buf);
  } else if (o_.epoch > 0) {
    add("epoch " + std::to_string(o_.epoch));
  }
  const int64_t total = o_.total_steps;
  if (total > 0) {
    const double frac = std::clamp(static_cast<double>(step_) / static_cast<double>(total), 0.0, 1.0);
    if (interactive_ && o_.bar_width > 0) {
      int filled = static_cast<int>(frac * o_.bar_width);
      std::string bar(1, '[');
      bar.append(static_cast<size_t>(filled), '=');
      if (filled < o_.bar_width) bar += '>';
      bar.append(static_cast<size_t>(o_.bar_width - filled - (filled < o_.bar_width ? 1 : 0)), ' ');
      bar += ']';
      add(bar);
    }
    std::snprintf(buf, sizeof buf, interactive_ ? "%lld/%lld" : "step %lld/%lld", static_cast<long long>(step_),
                  static_cast<long long>(total));
    add(buf);
    std::snprintf(buf, sizeof buf, interactive_ ? "%3d%%" : "(%d%%)", static_cast<int>(frac * 100.0));
    add(buf);
  } else {
    add("step " + std::to_string(step_));
  }
  if (std::isfinite(loss_)) {
    std::snprintf(buf, sizeof buf, std::fabs(loss_) < 1000 ? "loss %.4f" : "loss %.4g", loss_);
    add(buf);
  }
  if (std::isfinite(sps_) && sps_ >= 0) add(format_rate(sps_) + " samples/s");
  const double elapsed = elapsed_s();
  if (total > 0 && step_ >= total) add("took " + format_duration(elapsed));
  else if (total > 0 && step_ > 0)
    add("ETA " + format_duration(elapsed / static_cast<double>(step_) * static_cast<double>(total - step_)));
  return s;
}

void ProgressBar::draw() {
  std::string text = line();
  if (interactive_) {
    std::string out = "\r" + text;
    // Blank out the rest of a longer previous line without terminal escape codes.
    if (last_len_ > text.size()) out.append(last_len_ - text.size(), ' ');
    last_len_ = text.size();
    std::fputs(out.c_str(), o_.out);
  } else {
    text += '\n';
    std::fputs(text.c_str(), o_.out);
  }
  std::fflush(o_.out);
  last_printed_ = step_;
  last_draw_ = now();
  drawn_ = true;
}

void ProgressBar::update(int64_t step, double loss, double samples_per_second) {
  if (!o_.enabled || finished_) return;
  step_ = step;
  loss_ = loss;
  sps_ = samples_per_second;
  const bool at_end = o_.total_steps > 0 && step >= o_.total_steps;
  if (interactive_) {
    if (!drawn_ || at_end || now() - last_draw_ >= std::chrono::milliseconds(100)) draw();
    return;
  }
  if (at_end) {
    if (last_printed_ != step) draw();
    return;
  }
  if (step >= next_print_) {
    draw();
    if (o_.total_steps > 0) {
      // The next multiple of percent_every percent above this step.
      int64_t k = step * 100 / (o_.total_steps * o_.percent_every) + 1;
      next_print_ = std::max<int64_t>(step + 1, (o_.total_steps * o_.percent_every * k + 99) / 100);
    } else {
      next_print_ = (step / 100 + 1) * 100;
    }
  }
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  if (!o_.enabled) return;
  if (interactive_) {
    if (!drawn_) return;
    if (last_printed_ != step_) draw();
    std::fputc('\n', o_.out);
    std::fflush(o_.out);
  } else if (step_ > 0 && last_printed_ != step_) {
    draw();
  }
}

}  // namespace kirzl::io
