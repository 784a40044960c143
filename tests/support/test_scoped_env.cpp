// ScopedEnv puts back the previous value, or the absence of one, however the scope is left.
#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "support/scoped_env.hpp"

namespace kirzl::testing {
namespace {

constexpr const char* kName = "KIRZL_TEST_SCOPED_ENV_VARIABLE";

TEST(ScopedEnv, RestoresAPreviousValue) {
  ScopedEnv outer(kName, "before");
  {
    ScopedEnv inner(kName, "during");
    EXPECT_STREQ(std::getenv(kName), "during");
    inner.set(std::nullopt);
    EXPECT_EQ(std::getenv(kName), nullptr);
  }
  EXPECT_STREQ(std::getenv(kName), "before");
}

TEST(ScopedEnv, RestoresAbsenceAlsoWhenLeftByAnException) {
  ASSERT_EQ(std::getenv(kName), nullptr);
  try {
    ScopedEnv env(kName, "during");
    throw std::runtime_error("an assertion returned early");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(std::getenv(kName), nullptr);
}

}  // namespace
}  // namespace kirzl::testing
