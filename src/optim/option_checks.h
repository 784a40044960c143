// Internal: validation of optimizer and scheduler options. Every failure is
// Error{InvalidArgument} naming the optimizer, the option and the bad value.
#pragma once

#include <cmath>
#include <string>

#include "kirzl/core/error.hpp"

namespace kirzl::optim::detail {

/// value >= 0 (NaN fails).
inline void check_non_negative(const std::string& who, const char* option, double value) {
  KIRZL_CHECK(value >= 0.0, who, ": option '", option, "' must be >= 0, got ", value);
}

/// value > 0 (NaN fails).
inline void check_positive(const std::string& who, const char* option, double value) {
  KIRZL_CHECK(value > 0.0, who, ": option '", option, "' must be > 0, got ", value);
}

/// 0 <= value < 1 (NaN fails).
inline void check_unit_interval(const std::string& who, const char* option, double value) {
  KIRZL_CHECK(value >= 0.0 && value < 1.0, who, ": option '", option, "' must be in [0, 1), got ", value);
}

inline void check_finite(const std::string& who, const char* option, double value) {
  KIRZL_CHECK(std::isfinite(value), who, ": option '", option, "' must be finite, got ", value);
}

}  // namespace kirzl::optim::detail
