#!/usr/bin/env bash
# The API reference: Doxygen over the public headers (include/kirzl/), as HTML in
# build/api-docs/html/index.html (not committed). Fails, listing them, when a public declaration
# has no documentation comment (WARN_IF_UNDOCUMENTED) or a comment is malformed, unless the
# warning is one of scripts/api-docs-baseline.txt: the declarations that were undocumented when
# this check began, a list that may only shrink. Document one and the script asks you to delete
# its line; a new undocumented declaration fails. Usage: scripts/api-docs.sh [OUTPUT_DIR]
# (default build/api-docs); --update-baseline rewrites the list (only to remove fixed lines).
# Needs doxygen (scripts/setup.sh installs it).
set -euo pipefail
export LC_ALL=C  # one sort order for sort and comm
cd "$(dirname "$0")/.."
update=0
if [ "${1:-}" = "--update-baseline" ]; then update=1; shift; fi
out="${1:-build/api-docs}"
baseline=scripts/api-docs-baseline.txt
command -v doxygen >/dev/null || { echo "api-docs: doxygen is not installed (apt-get install doxygen)" >&2; exit 2; }
mkdir -p "$out"
log="$out/warnings.log"
# Private members (implementation state) and the detail namespaces are not API: EXTRACT_PRIVATE
# stays off and EXCLUDE_SYMBOLS drops `detail`/`internal`. Macros are documented where they are
# API (KIRZL_CHECK...), so the preprocessor expands nothing and all of them are checked.
doxygen - >/dev/null <<DOXYFILE
PROJECT_NAME           = kirzl
PROJECT_BRIEF          = "Data-parallel training in C++20: CPU, CUDA, MPI, NCCL"
OUTPUT_DIRECTORY       = $out
INPUT                  = include/kirzl
RECURSIVE              = YES
FILE_PATTERNS          = *.hpp
STRIP_FROM_PATH        = include
STRIP_FROM_INC_PATH    = include
EXCLUDE_SYMBOLS        = detail detail::* internal internal::*
JAVADOC_AUTOBRIEF      = YES
EXTRACT_ALL            = NO
EXTRACT_PRIVATE        = NO
EXTRACT_STATIC         = YES
HIDE_UNDOC_MEMBERS     = NO
WARNINGS               = YES
WARN_IF_UNDOCUMENTED   = YES
WARN_IF_DOC_ERROR      = YES
WARN_NO_PARAMDOC       = NO
WARN_LOGFILE           = $log
WARN_AS_ERROR          = NO
QUIET                  = YES
GENERATE_HTML          = YES
GENERATE_LATEX         = NO
HAVE_DOT               = NO
ENABLE_PREPROCESSING   = YES
MACRO_EXPANSION        = NO
DOXYFILE
# A warning as "file: message", without the line number, so that edits elsewhere in a header do
# not change it; sorted and unique (one member can be warned about once per class inheriting it).
found="$out/undocumented.txt"
sed -n "s|^$PWD/||; s|^\([^:]*\):[0-9]*: warning: |\1: |p" "$log" | sort -u > "$found"
if [ "$update" = 1 ]; then
  comm -12 "$baseline" "$found" > "$baseline.new" && mv "$baseline.new" "$baseline"
  echo "api-docs: $(wc -l < "$baseline") line(s) left in $baseline"
fi
new="$(comm -13 "$baseline" "$found")"
fixed="$(comm -23 "$baseline" "$found")"
status=0
if [ -n "$new" ]; then
  echo "$new" >&2
  echo "api-docs: $(echo "$new" | wc -l) undocumented public declaration(s) or doc error(s) above: document each in include/kirzl/ (a /// comment)" >&2
  status=1
fi
if [ -n "$fixed" ]; then
  echo "$fixed" >&2
  echo "api-docs: the line(s) above are documented now: delete them from $baseline (scripts/api-docs.sh --update-baseline)" >&2
  status=1
fi
[ "$status" = 0 ] && echo "api-docs: wrote $out/html/index.html ($(wc -l < "$baseline") declarations still listed in $baseline)"
exit "$status"
