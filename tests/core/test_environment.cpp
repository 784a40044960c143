// The KIRZL_* registry (include/kirzl/environment.hpp): checked reads, the generated reference
// page, and that kirzl's sources read no variable the registry does not declare.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include <kirzl/comm.hpp>
#include <kirzl/environment.hpp>

#include "core/environment.h"
#include "support/expect_error.hpp"

namespace fs = std::filesystem;
using kirzl::ErrorCode;

namespace {

// Sets (or unsets) a variable for the scope and restores the previous state, even when an
// assertion returns early.
class EnvOverride {
 public:
  EnvOverride(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    value ? ::setenv(name, value, 1) : ::unsetenv(name);
  }
  ~EnvOverride() { old_ ? ::setenv(name_.c_str(), old_->c_str(), 1) : ::unsetenv(name_.c_str()); }
  EnvOverride(const EnvOverride&) = delete;
  EnvOverride& operator=(const EnvOverride&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

TEST(Environment, DeclarationsAreComplete) {
  std::set<std::string_view> names;
  for (const auto& v : kirzl::env::variables()) {
    EXPECT_TRUE(v.name.starts_with("KIRZL_")) << v.name;
    EXPECT_TRUE(names.insert(v.name).second) << v.name << " is declared twice";
    EXPECT_FALSE(v.meaning.empty()) << v.name;
    EXPECT_FALSE(v.fallback.empty()) << v.name;
    EXPECT_FALSE(v.area.empty()) << v.name;
    if (v.type == kirzl::env::Type::Integer) { EXPECT_LE(v.min, v.max) << v.name; }
    if (v.type == kirzl::env::Type::Choice) { EXPECT_FALSE(v.choices.empty()) << v.name; }
  }
  EXPECT_EQ(&kirzl::env::variable("KIRZL_TIMEOUT"), &kirzl::env::variables()[0]);
  EXPECT_KIRZL_ERROR(kirzl::env::variable("KIRZL_NO_SUCH_THING"), ErrorCode::InvalidArgument, "KIRZL_NO_SUCH_THING");
}

TEST(Environment, FlagsAcceptTheUsualWordsAndRejectOthers) {
  for (const char* yes : {"1", "true", "TRUE", "yes", "On"}) {
    EnvOverride e("KIRZL_VERBOSE", yes);
    EXPECT_TRUE(kirzl::env::flag("KIRZL_VERBOSE")) << yes;
  }
  for (const char* no : {"0", "false", "No", "off", ""}) {
    EnvOverride e("KIRZL_VERBOSE", no);
    EXPECT_FALSE(kirzl::env::flag("KIRZL_VERBOSE")) << no;
  }
  {
    EnvOverride e("KIRZL_VERBOSE", nullptr);
    EXPECT_FALSE(kirzl::env::flag("KIRZL_VERBOSE"));
  }
  EnvOverride e("KIRZL_VERBOSE", "maybe");
  EXPECT_KIRZL_ERROR(kirzl::env::flag("KIRZL_VERBOSE"), ErrorCode::InvalidArgument, "KIRZL_VERBOSE", "'maybe'",
                     "1/true");
}

TEST(Environment, IntegersAreCheckedAgainstTheirDeclaredRange) {
  {
    EnvOverride e("KIRZL_MPI_MAX_COUNT", "4096");
    EXPECT_EQ(kirzl::env::integer("KIRZL_MPI_MAX_COUNT"), 4096);
  }
  {
    EnvOverride e("KIRZL_MPI_MAX_COUNT", nullptr);
    EXPECT_EQ(kirzl::env::integer("KIRZL_MPI_MAX_COUNT"), std::nullopt);
  }
  for (const char* bad : {"0", "-5", "12abc", "1e3", "99999999999999999999999", " 7", "2147483648"}) {
    EnvOverride e("KIRZL_MPI_MAX_COUNT", bad);
    EXPECT_KIRZL_ERROR(kirzl::env::integer("KIRZL_MPI_MAX_COUNT"), ErrorCode::InvalidArgument, "KIRZL_MPI_MAX_COUNT",
                       std::string("'") + bad + "'", "[1, 1073741824]");
  }
}

TEST(Environment, SecondsArePositiveNumbers) {
  {
    EnvOverride e("KIRZL_TIMEOUT", "2.5");
    EXPECT_EQ(kirzl::env::seconds("KIRZL_TIMEOUT"), 2.5);
  }
  for (const char* bad : {"abc", "0", "-1", "inf", "nan", "10s"}) {
    EnvOverride e("KIRZL_TIMEOUT", bad);
    EXPECT_KIRZL_ERROR(kirzl::env::seconds("KIRZL_TIMEOUT"), ErrorCode::InvalidArgument, "KIRZL_TIMEOUT",
                       "positive number of seconds");
  }
}

TEST(Environment, ChoicesAreCheckedPathsAreNot) {
  {
    EnvOverride e("KIRZL_BACKEND", "mpi");
    EXPECT_EQ(kirzl::env::text("KIRZL_BACKEND"), "mpi");
  }
  {
    EnvOverride e("KIRZL_BACKEND", "gloo");
    EXPECT_KIRZL_ERROR(kirzl::env::text("KIRZL_BACKEND"), ErrorCode::InvalidArgument, "KIRZL_BACKEND", "'gloo'",
                       "auto|inprocess|mpi|nccl");
  }
  EnvOverride e("KIRZL_TIMELINE", "/tmp/any thing");
  EXPECT_EQ(kirzl::env::text("KIRZL_TIMELINE"), "/tmp/any thing");
}

// A typo in the timeout once fell back to 300 s without a word; now the group refuses to start.
TEST(Environment, AMalformedTimeoutStopsTheCommunicatorWithTheVariablesName) {
  EnvOverride e("KIRZL_TIMEOUT", "ten");
  EXPECT_KIRZL_ERROR(kirzl::comm::make_in_process_group(2), ErrorCode::InvalidArgument, "KIRZL_TIMEOUT", "'ten'");
}

TEST(Environment, TheReferencePageIsUpToDate) {
  const fs::path page = fs::path(KIRZL_SOURCE_DIR) / "docs" / "environment.md";
  const std::string expected = kirzl::env::reference_markdown();
  for (const auto& v : kirzl::env::variables())
    EXPECT_NE(expected.find("`" + std::string(v.name) + "`"), std::string::npos) << v.name;
  EXPECT_EQ(read_file(page), expected) << page << " is stale: run scripts/gen-environment-doc.sh";
}

// Every quoted "KIRZL_..." name in kirzl's own code is declared, and only the registry calls getenv
// on one, so that a new variable cannot be read without being documented.
TEST(Environment, TheSourcesReadOnlyDeclaredVariables) {
  const fs::path root = KIRZL_SOURCE_DIR;
  const std::regex quoted("\"(KIRZL_[A-Z0-9_]+)\"");
  const std::regex direct("getenv\\(\\s*\"KIRZL_");
  int files = 0;
  for (const char* dir : {"src", "include", "examples", "python/src"}) {
    if (!fs::exists(root / dir)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(root / dir)) {
      const std::string ext = entry.path().extension().string();
      if (!entry.is_regular_file() || (ext != ".cpp" && ext != ".h" && ext != ".hpp" && ext != ".cu" && ext != ".cuh"))
        continue;
      ++files;
      const std::string text = read_file(entry.path());
      const std::string rel = fs::relative(entry.path(), root).string();
      for (auto it = std::sregex_iterator(text.begin(), text.end(), quoted); it != std::sregex_iterator(); ++it) {
        const std::string name = (*it)[1];
        bool declared = false;
        for (const auto& v : kirzl::env::variables()) declared |= v.name == name;
        EXPECT_TRUE(declared) << rel << " names " << name << ", which include/kirzl/environment.hpp does not declare";
      }
      if (rel != "src/core/environment.cpp") {
        EXPECT_FALSE(std::regex_search(text, direct)) << rel << " reads a KIRZL_ variable with getenv; use core/environment.h";
      }
    }
  }
  EXPECT_GT(files, 100) << "the scan found too few sources under " << root;
}
