// Test support: the largest element-wise difference between two sets of parameter values (one
// vector per parameter, as the DDP and ZeRO tests collect them).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace kirzl::testing {

inline double max_diff(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t k = 0; k < a[i].size(); ++k) d = std::max(d, static_cast<double>(std::fabs(a[i][k] - b[i][k])));
  return d;
}

}  // namespace kirzl::testing
