#!/usr/bin/env bash
# The README's demo command: installs what is missing, builds, and runs the main demo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
kirzl_setup
kirzl_build build -DKIRZL_BUILD_EXAMPLES=ON
exec ./build/examples/spiral "$@"
