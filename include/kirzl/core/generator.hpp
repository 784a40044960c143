// Seeded random numbers: the same seed gives the same numbers on every machine and device.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>

namespace kirzl {

/// A counter-based generator (Philox4x32-10). Each draw of n values consumes a block of counters,
/// so the stream depends only on the seed and the sequence of draws, never on the platform.
/// Thread-safe: draws are serialised by an internal mutex.
class Generator {
 public:
  /// A generator at the start (offset 0) of the stream of key `seed`.
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  /// Restarts the generator on the stream of key `seed`, at offset 0: the next draws repeat those
  /// of a fresh Generator(seed). Thread-safe.
  void manual_seed(uint64_t seed);
  /// The key of the current stream (the last seed set). Thread-safe.
  uint64_t seed() const;
  /// Where a draw's numbers come from: Philox blocks [offset, offset + n) under key `seed`.
  struct Draw {
    uint64_t seed;    ///< The key of the stream the draw belongs to.
    uint64_t offset;  ///< Its first Philox counter.
  };
  /// Reserves `n` blocks of four 32-bit values. Returns the seed and the first counter offset
  /// together, read under one lock: a manual_seed() from another thread between reading the seed
  /// and reserving would otherwise pair the old seed with the new stream's counters.
  Draw reserve(uint64_t n_blocks);
  /// The next Philox block a draw will use; with seed(), the pair that saves the stream's position.
  uint64_t offset() const;
  /// Moves the stream to block `offset` (keeping the seed): after `manual_seed(s); set_offset(o)`
  /// the draws continue exactly where a generator that reported seed() == s and offset() == o
  /// stood. Thread-safe.
  void set_offset(uint64_t offset);

  /// Philox4x32-10 of counter `ctr` under key `seed`: four independent uniform 32-bit words.
  static std::array<uint32_t, 4> philox(uint64_t seed, uint64_t ctr, uint64_t subsequence = 0);

 private:
  // Guards seed_ and offset_, for readers too: ranks run as threads (the in-process backend)
  // may seed the default generator while another initialises a module from it.
  mutable std::mutex mu_;
  uint64_t seed_;
  uint64_t offset_ = 0;
};

/// The calling thread's default generator, used by rand/randn/randint/dropout/module
/// initialisation (and saved/restored by io::save_checkpoint/load_checkpoint) unless a Generator
/// is passed explicitly: the innermost GeneratorScope alive on this thread, else the process-wide
/// one (seed 0 at start). See Note [per-thread default generator].
Generator& default_generator();
/// Re-seeds the calling thread's default generator (and resets its stream).
void manual_seed(uint64_t seed);

/// Makes a generator the calling thread's default_generator() for the lifetime of the scope, so
/// that ranks run as threads (comm::make_in_process_group) draw as N processes would: each rank
/// thread opens a scope first thing, and its dropout/randn/initialisation see only its own stream.
/// Scopes nest; destroying one puts back the default that was current when it was made (destroy
/// them in reverse order, as RAII does). Other threads are unaffected.
///
///   std::thread([&, r] {
///     kirzl::GeneratorScope rng;  // a fresh generator seeded 0, as in a new process
///     ...rank r's training...
///   });
class GeneratorScope {
 public:
  /// Installs a generator of its own seeded `seed` (offset 0), as a freshly started process has.
  explicit GeneratorScope(uint64_t seed = 0);
  /// Installs `gen`, which must outlive the scope; it may be shared with other threads (draws are
  /// serialised, but their order across threads is then up to the scheduler).
  explicit GeneratorScope(Generator& gen);
  ~GeneratorScope();
  GeneratorScope(const GeneratorScope&) = delete;
  GeneratorScope& operator=(const GeneratorScope&) = delete;

  /// The generator this scope installed.
  Generator& generator() { return *installed_; }

 private:
  std::optional<Generator> own_;
  Generator* installed_;
  Generator* previous_;
};

/// Uniform float in [0, 1) from the top 24 bits of a 32-bit word.
inline float uint_to_unit_float(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }
/// Uniform double in [0, 1) from two 32-bit words (53 bits).
inline double uint_to_unit_double(uint32_t hi, uint32_t lo) {
  uint64_t v = (static_cast<uint64_t>(hi) << 21) ^ (lo >> 11);
  return static_cast<double>(v & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

}  // namespace kirzl
