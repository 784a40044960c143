// Test support: assert that a call throws kirzl::Error with a given code and message words.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <kirzl/core/error.hpp>

namespace kirzl::testing {

template <class F>
void expect_error(F&& f, ErrorCode code, const std::vector<std::string>& words) {
  try {
    f();
    ADD_FAILURE() << "expected kirzl::Error [" << error_code_name(code) << "], nothing was thrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const auto& w : words)
      EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << "message lacks '" << w << "': " << e.what();
  }
}

}  // namespace kirzl::testing

#define EXPECT_KIRZL_ERROR(stmt, code, ...) ::kirzl::testing::expect_error([&] { (void)(stmt); }, (code), {__VA_ARGS__})
