// Prints docs/environment.md (scripts/gen-environment-doc.sh writes it into the repository).
#include <cstdio>

#include <kirzl/environment.hpp>

int main() {
  std::fputs(kirzl::env::reference_markdown().c_str(), stdout);
  return 0;
}
