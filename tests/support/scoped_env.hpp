// Test support: set or unset an environment variable for a scope, restoring on the way out.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>

namespace kirzl::testing {

/// Sets (or, given std::nullopt, unsets) `name` for the lifetime of the object; the destructor puts
/// back the previous value, or removes the variable if it had none, so an assertion that returns
/// early cannot leak the setting into later tests. Not thread-safe (no environment change is): use
/// it outside threads that read the environment.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::optional<std::string>& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) previous_ = old;
    set(value);
  }
  ~ScopedEnv() { set(previous_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

  /// Changes the value again within the scope (the destructor still restores the original).
  void set(const std::optional<std::string>& value) {
    if (value) ::setenv(name_.c_str(), value->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }

 private:
  std::string name_;
  std::optional<std::string> previous_;
};

}  // namespace kirzl::testing
