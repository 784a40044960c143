// Benchmarks that run a PyTorch peer (bench/peers/*.py) as a child process in the same run as
// kirzl's side, and report the rate the peer measured itself.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>
#include <string>

namespace kirzl::bench {

// Runs `command` once per iteration and reports the number after `"<counter>": ` in its output
// as the counter `counter`. A peer that cannot run (no torch, no GPU) prints why, and the
// benchmark is skipped with that text.
inline void run_peer(benchmark::State& state, const std::string& command, const std::string& counter) {
  const std::string key = "\"" + counter + "\": ";
  double rate = 0;
  for (auto _ : state) {
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen((command + " 2>&1").c_str(), "r"), &pclose);
    if (!pipe) return state.SkipWithError("cannot start python3");
    std::string out;
    char buf[512];
    while (std::fgets(buf, sizeof buf, pipe.get())) out += buf;
    const auto at = out.find(key);
    if (at == std::string::npos) return state.SkipWithError(("PyTorch peer: " + out.substr(0, 200)).c_str());
    rate = std::stod(out.substr(at + key.size()));
  }
  state.counters[counter] = rate;
}

}  // namespace kirzl::bench
