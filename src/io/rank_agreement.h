// Internal: every rank of a communicator learns whether a phase of work failed on any rank, and
// all throw the same Error. See Note [sharded checkpoint commit].
#pragma once

#include <functional>
#include <string>

#include "kirzl/comm.hpp"
#include "kirzl/core/error.hpp"

namespace kirzl::io::detail {

/// What a phase ended with on this rank.
struct Outcome {
  int code = -1;  ///< -1: ok; otherwise an ErrorCode
  std::string message;
};

/// Runs f, turning an exception into an Outcome (a non-kirzl exception counts as Error{Io}).
template <class F>
Outcome attempt(F&& f) {
  try {
    f();
    return {};
  } catch (const Error& e) {
    return {static_cast<int>(e.code()), e.message()};
  } catch (const std::exception& e) {
    return {static_cast<int>(ErrorCode::Io), e.what()};
  }
}

/// A collective: every rank learns whether any rank failed in this phase, which, and the first
/// one's message. On failure runs `cleanup` (which must not throw) and throws on every rank
/// "<who>: <where>: <phase> failed on rank(s) R of N; <consequence>. Rank F: <message>", with
/// Error{Io} if any failed rank's error was Io, else the first one's code.
void agree(comm::Communicator& comm, const Outcome& mine, const std::string& who, const std::string& where,
           const std::string& phase, const std::string& consequence, const std::function<void()>& cleanup = {});

}  // namespace kirzl::io::detail
