// The flags of examples/spiral.cpp (see Note [pure example parsers] in args.hpp).
#pragma once

#include <cstdint>

#include "args.hpp"

namespace kirzl::examples {

struct SpiralArgs {
  int steps = 1500;
  double lr = 0.5;
  uint64_t seed = 0;
  int points_per_class = 200;
  int hidden = 64;
};

/// Parses spiral's flags; throws ArgsError or HelpRequested, never prints or exits.
SpiralArgs parse_spiral_args(int argc, const char* const* argv);

}  // namespace kirzl::examples
