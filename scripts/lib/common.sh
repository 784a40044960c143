# shellcheck shell=bash
# Shell functions shared by kirzl's scripts (sourced, never run). A script sets KIRZL_SCRIPT to
# its own name first; messages are prefixed with it.
#   kirzl_die MESSAGE...         print "NAME: MESSAGE" on stderr and exit 1
#   kirzl_need_root WHY          die unless running as root, saying why root is needed
#   kirzl_apt_install PKG...     apt-get update and install the packages (with sudo when not
#                                root); the caller decides which are missing

kirzl_die() {
  echo "${KIRZL_SCRIPT:-kirzl}: $*" >&2
  exit 1
}

kirzl_need_root() {
  [ "$(id -u)" -eq 0 ] || kirzl_die "run as root ($1)"
}

kirzl_apt_install() {
  (($#)) || return 0
  echo "${KIRZL_SCRIPT:-kirzl}: installing $*"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
