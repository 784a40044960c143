// Typed, checked reads of the KIRZL_* environment variables declared in
// include/kirzl/environment.hpp (internal). Each function takes the variable's name, which must be
// declared there, and throws Error{InvalidArgument} naming the variable, the value found and what
// was expected when the value is malformed. An unset or empty variable gives std::nullopt/false.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kirzl::env {

/// A Flag variable: false when unset or empty.
bool flag(std::string_view name);

/// An Integer variable, checked against its declared [min, max].
std::optional<long long> integer(std::string_view name);

/// A Seconds variable (positive, finite).
std::optional<double> seconds(std::string_view name);

/// A Path or Choice variable, as set (a Choice is checked against its declared words).
std::optional<std::string> text(std::string_view name);

}  // namespace kirzl::env
