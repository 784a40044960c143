#!/usr/bin/env bash
# Regenerates docs/environment.md from the registry of KIRZL_* variables
# (include/kirzl/environment.hpp). Usage: scripts/gen-environment-doc.sh [BUILD_DIR] (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build}"
[ -f "$dir/build.ninja" ] || [ -f "$dir/Makefile" ] || { echo "gen-environment-doc: configure $dir first (scripts/test.sh does)" >&2; exit 2; }
cmake --build "$dir" --target environment_doc >/dev/null
"$dir/tests/environment_doc" > docs/environment.md
echo "wrote docs/environment.md"
