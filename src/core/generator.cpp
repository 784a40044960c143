#include "kirzl/core/generator.hpp"

namespace kirzl {

void Generator::manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(mu_);
  seed_ = seed;
  offset_ = 0;
}

uint64_t Generator::seed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seed_;
}

uint64_t Generator::offset() const {
  std::lock_guard<std::mutex> lock(mu_);
  return offset_;
}

Generator::Draw Generator::reserve(uint64_t n_blocks) {
  std::lock_guard<std::mutex> lock(mu_);
  const Draw draw{seed_, offset_};
  offset_ += n_blocks;
  return draw;
}

void Generator::set_offset(uint64_t offset) {
  std::lock_guard<std::mutex> lock(mu_);
  offset_ = offset;
}

std::array<uint32_t, 4> Generator::philox(uint64_t seed, uint64_t ctr, uint64_t subsequence) {
  // Philox4x32-10 (Salmon et al., SC'11): 10 rounds of multiply-xor with a Weyl key schedule.
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(ctr), c1 = static_cast<uint32_t>(ctr >> 32);
  uint32_t c2 = static_cast<uint32_t>(subsequence), c3 = static_cast<uint32_t>(subsequence >> 32);
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
    uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
    uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += kW0;
    k1 += kW1;
  }
  return {c0, c1, c2, c3};
}

// Note [per-thread default generator]
// The default generator used to be one process-wide Generator. With in-process ranks (threads of
// one process, comm::make_in_process_group) every rank then drew from the same stream in whatever
// order the scheduler picked, so dropout masks and randn differed between ranks, from run to run,
// and from what N processes (each with its own default generator) would draw. A GeneratorScope
// makes a generator the default of the calling thread only: default_generator() returns the
// thread's innermost installed generator, else the process-wide one. The thread-local pointer is
// the only per-thread state; the scope owns (or borrows) the generator and restores the previous
// pointer when it ends, so nesting works and a thread without a scope behaves exactly as before.
// Everything that means "the default generator" goes through default_generator(), including the
// rng.* metadata of checkpoints, which therefore save and restore the calling thread's stream.
namespace {
thread_local Generator* tls_default = nullptr;

Generator& process_default_generator() {
  static Generator g(0);
  return g;
}
}  // namespace

Generator& default_generator() { return tls_default ? *tls_default : process_default_generator(); }

GeneratorScope::GeneratorScope(uint64_t seed) : own_(std::in_place, seed), installed_(&*own_), previous_(tls_default) {
  tls_default = installed_;
}

GeneratorScope::GeneratorScope(Generator& gen) : installed_(&gen), previous_(tls_default) { tls_default = installed_; }

GeneratorScope::~GeneratorScope() { tls_default = previous_; }

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace kirzl
