// Every KIRZL_* environment variable kirzl reads, declared once: its name, type, default and
// meaning. kirzl's code reads these variables only through this registry, which checks their
// values (a bad value is an Error naming the variable), and docs/environment.md is generated from
// it (scripts/gen-environment-doc.sh; a test fails when the page is stale).
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace kirzl::env {

/// How a variable's value is read.
enum class Type {
  Flag,     ///< "1", "true", "yes", "on" or "0", "false", "no", "off" (any case); empty = unset
  Integer,  ///< a decimal integer within [min, max]
  Seconds,  ///< a positive decimal number of seconds, fractions allowed
  Path,     ///< a file path
  Choice,   ///< one of the words listed in `choices` (separated by '|')
};

/// One variable's declaration.
struct Variable {
  std::string_view name;       ///< "KIRZL_TIMEOUT"
  Type type;                   ///< how the value is parsed and checked
  std::string_view fallback;   ///< what applies when it is unset, in words
  std::string_view meaning;    ///< one or two sentences for the reference page
  std::string_view area;       ///< the section of the reference page
  long long min = 0;           ///< Integer only: the smallest accepted value
  long long max = 0;           ///< Integer only: the largest accepted value
  std::string_view choices;    ///< Choice only: "auto|inprocess|mpi|nccl"
};

/// Every variable kirzl reads, in the order of the reference page.
std::span<const Variable> variables();

/// The declaration of `name`; Error{InvalidArgument} when kirzl declares no such variable.
const Variable& variable(std::string_view name);

/// docs/environment.md: the reference page of every variable, generated from variables().
std::string reference_markdown();

}  // namespace kirzl::env
