#include "spiral_args.hpp"

namespace kirzl::examples {

SpiralArgs parse_spiral_args(int argc, const char* const* argv) {
  SpiralArgs a;
  FlagParser p("spiral", "A two-layer MLP learns to separate three interleaved spirals.");
  p.add_int("--steps", a.steps, "SGD steps", 1, 100'000'000);
  p.add_double("--lr", a.lr, "learning rate", [](double v) { return v > 0 ? "" : "a number > 0"; });
  p.add_uint("--seed", a.seed, "seed of the data and the initial model");
  // Bounded so that a typo cannot ask for a weight matrix larger than memory.
  p.add_int("--hidden", a.hidden, "width of the hidden layer", 1, 1 << 20);
  p.parse(argc, argv);
  return a;
}

}  // namespace kirzl::examples
