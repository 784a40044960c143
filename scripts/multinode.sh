#!/usr/bin/env bash
# Several emulated nodes on this machine, for running kirzl's jobs across "nodes" with mpirun
# (issue #17 item 2; docs/multinode.md). Needs root.
#
#   scripts/multinode.sh up [N] [--rate R] [--delay D]
#                               N nodes (2..4, default 2) named kirzl-node1..N; idempotent: nodes
#                               that are up with the same N are kept (their links reshaped)
#   scripts/multinode.sh down   removes everything `up` made: the nodes' processes, namespaces,
#                               links, the bridge or the link emulator, and the state directory
#   scripts/multinode.sh status the nodes, their addresses, link shaping and holder processes
#   scripts/multinode.sh mpirun-args
#                               prints the mpirun options that start ranks on the nodes (one line,
#                               for `mpirun $(scripts/multinode.sh mpirun-args) -np 4 prog`)
#
# Note [emulated nodes]: a node is a network namespace and a UTS namespace (its own interfaces,
# loopback and hostname), kept alive by a holder process (`sleep infinity` started by unshare)
# whose pid is in $STATE/<node>.pid. Mounts and pids are shared with the host, so /tmp, /dev/shm
# and the build tree are the same everywhere, and a test can see and signal every rank. Each node
# has one link, eth0 inside the node, to a switch that also reaches the host's interface kzmn-br,
# which carries the host's address (so mpirun and its daemon run on the host and reach the nodes'
# daemons). Ranks on one node share its hostname, so Open MPI puts them in shared memory (btl
# vader); ranks on different nodes talk TCP over the links, each limited to the rate in each
# direction and delayed where a node sends (so one way between two nodes, or from a node to the
# host, takes the delay once; from the host to a node none). Three shapers (KIRZL_MULTINODE_SHAPER;
# auto takes netem where it can, else linkemu when a delay is asked for, else tbf):
#   netem    where the kernel has sch_netem: a veth pair per node (eth0 inside, kzmn-v<i> on the
#            host) on the bridge kzmn-br, tc's netem with delay and rate on both ends' egress;
#   linkemu  where it has not (this machine's kernel) but TAP devices can be made: the process
#            scripts/multinode/linkemu.cpp (built into $STATE) is the switch, one TAP per node moved
#            into the node as eth0 and one TAP on the host named kzmn-br, and delays and paces the
#            frames itself (pid in $STATE/linkemu.pid, counters in $STATE/linkemu.log). Its MTU is
#            65000 (1 Gbit/s is then ~2,000 frames a second, not 83,000, for a process to move);
#   tbf      else: veth and bridge as for netem, tc's tbf with the rate only (the delay is not
#            applied, and `up` says so).
# Open MPI starts its daemon on each node through scripts/multinode/rsh-agent, which enters the
# node's namespaces as ssh would log into another host. Addresses come from RFC 2544's
# benchmarking range (198.18.0.0/15): host .1, node i .(10+i); no other interface is touched.
#
# Environment: KIRZL_MULTINODE_DIR (state, default /var/tmp/kirzl-multinode),
# KIRZL_MULTINODE_RATE (default 1gbit), KIRZL_MULTINODE_DELAY (one-way latency between two nodes,
# default 200us; 0 for none), KIRZL_MULTINODE_SUBNET (first three octets, default 198.18.0),
# KIRZL_MULTINODE_SHAPER (auto, netem, linkemu or tbf; default auto: netem where the kernel has
# it, else linkemu when a delay is asked for, else tbf).
set -euo pipefail

export KIRZL_SCRIPT=multinode
# shellcheck source=scripts/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
die() { kirzl_die "$@"; }
need_root() { kirzl_need_root "namespaces, links and tc need it"; }

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${KIRZL_MULTINODE_DIR:-/var/tmp/kirzl-multinode}"
RATE="${KIRZL_MULTINODE_RATE:-1gbit}"
DELAY="${KIRZL_MULTINODE_DELAY:-200us}"
NET="${KIRZL_MULTINODE_SUBNET:-198.18.0}"
SHAPER="${KIRZL_MULTINODE_SHAPER:-auto}"
BRIDGE=kzmn-br  # the host's interface: the bridge, or with linkemu the host's TAP
AGENT="$ROOT/scripts/multinode/rsh-agent"
LINKEMU_SRC="$ROOT/scripts/multinode/linkemu.cpp"
LINKEMU_MTU=65000

install_missing() {
  local missing=()
  command -v ip >/dev/null && command -v tc >/dev/null || missing+=(iproute2)
  command -v unshare >/dev/null && command -v nsenter >/dev/null || missing+=(util-linux)
  kirzl_apt_install "${missing[@]}"
}

# The pid in file $1 when that process is alive.
live_pid() {
  local pid
  [ -f "$1" ] || return 1
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [ -n "$pid" ] && running "$pid" && echo "$pid"
}

# Whether process $1 runs (exists and is no zombie: a killed holder whose parent has not reaped it
# yet is gone for our purposes).
running() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [ "${stat%% *}" != Z ]
}

# The node count that is up (every node's holder alive), or nothing.
nodes_up() {
  local n i
  n="$(cat "$STATE/nodes" 2>/dev/null)" || return 1
  for ((i = 1; i <= n; i++)); do live_pid "$STATE/kirzl-node$i.pid" >/dev/null || return 1; done
  echo "$n"
}

# Runs a command inside node $1 (1-based).
in_node() {
  local i=$1
  shift
  nsenter -t "$(cat "$STATE/kirzl-node$i.pid")" --net --uts -- "$@"
}

# Shapes the egress of device $2 (in node $1, or on the host when $1 is "host"): the rate on
# both ends of a node's link (each direction), the delay only where a node sends (its eth0), so
# that one way between two nodes, or between a node and the host, takes the delay once.
shape() {
  local where=$1 dev=$2 run=() delay=()
  [ "$where" = host ] || run=(nsenter -t "$(cat "$STATE/kirzl-node$where.pid")" --net --)
  [ "$where" = host ] || [ "$DELAY" = 0 ] || delay=(delay "$DELAY")
  "${run[@]}" tc qdisc del dev "$dev" root 2>/dev/null || true
  if [ "$(cat "$STATE/shaping")" = netem ]; then
    "${run[@]}" tc qdisc add dev "$dev" root netem "${delay[@]}" rate "$RATE" limit 10000
  else
    # Burst: 256 KiB, a few segmentation-offloaded packets (a smaller one splits them); queue up to 50 ms.
    "${run[@]}" tc qdisc add dev "$dev" root tbf rate "$RATE" burst 256kb latency 50ms
  fi
}

# Which shaper the links get: KIRZL_MULTINODE_SHAPER, or with auto netem where the kernel has it,
# else linkemu when a delay is asked for and TAP devices can be made, else tbf (the rate alone; see
# Note [emulated nodes]).
choose_shaping() {
  case "$SHAPER" in
    auto)
      if have_netem; then
        echo netem
      elif [ "$DELAY" != 0 ] && have_tap; then
        echo linkemu
      else
        echo tbf
      fi
      ;;
    netem)
      have_netem || die "KIRZL_MULTINODE_SHAPER=netem, but tc cannot add a netem qdisc (no sch_netem in this kernel, or a bad rate or delay)"
      echo netem
      ;;
    linkemu)
      have_tap || die "KIRZL_MULTINODE_SHAPER=linkemu, but no TAP device can be made (ip tuntap add failed: no /dev/net/tun?)"
      echo linkemu
      ;;
    tbf) echo tbf ;;
    *) die "KIRZL_MULTINODE_SHAPER must be auto, netem, linkemu or tbf (got '$SHAPER')" ;;
  esac
}

# Whether tc can add a netem qdisc with this delay and rate (on a probe device, removed again).
have_netem() {
  local probe=kzmn-probe delay=() rc=0
  [ "$DELAY" = 0 ] || delay=(delay "$DELAY")
  ip link del "$probe" 2>/dev/null || true
  ip link add "$probe" type dummy 2>/dev/null || ip link add "$probe" type veth peer name "$probe-p"
  tc qdisc add dev "$probe" root netem "${delay[@]}" rate "$RATE" 2>/dev/null || rc=1
  ip link del "$probe" 2>/dev/null || true
  return "$rc"
}

# Whether a TAP device can be made (/dev/net/tun works; a probe device, removed again).
have_tap() {
  local probe=kzmn-probe
  ip link del "$probe" 2>/dev/null || true
  ip tuntap add dev "$probe" mode tap 2>/dev/null || return 1
  ip link del "$probe"
}

start_node() {
  local i=$1 name="kirzl-node$1" pid
  rm -f "$STATE/$name.ready"
  # The holder: unshare execs sh, which execs sleep, all in one process (no --fork); it owns the
  # node's namespaces. setsid and closed descriptors keep it from holding a caller's terminal or pipe.
  # shellcheck disable=SC2016 # $1 and $2 are the inner sh's
  setsid unshare --net --uts -- sh -c 'hostname "$1" && ip link set lo up && touch "$2" && exec sleep infinity' \
    sh "$name" "$STATE/$name.ready" </dev/null >/dev/null 2>&1 &
  pid=$!
  disown "$pid"  # not this shell's job: down may kill it without a word from bash
  echo "$pid" >"$STATE/$name.pid"
  for _ in $(seq 100); do
    [ -e "$STATE/$name.ready" ] && break
    kill -0 "$pid" 2>/dev/null || die "the holder of $name (pid $pid) ended at start"
    sleep 0.05
  done
  [ -e "$STATE/$name.ready" ] || die "the holder of $name (pid $pid) did not start within 5 s"
  rm -f "$STATE/$name.ready"
}

# The links of nodes 1..$1 with shaper $2, and the host's interface $BRIDGE with the host's address
# (Note [emulated nodes]); the state files link and shaping say how they are shaped.
make_links() {
  local n=$1 shaping=$2 i
  echo "$shaping" >"$STATE/shaping"
  echo "$RATE $DELAY" >"$STATE/link"
  if [ "$shaping" = linkemu ]; then
    start_linkemu "$n"
    ip link set "$BRIDGE" mtu "$LINKEMU_MTU"
  else
    ip link del "$BRIDGE" 2>/dev/null || true
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for ((i = 1; i <= n; i++)); do
    # An eth0 left from other links (up again with another shaper) goes first.
    in_node "$i" ip link del eth0 2>/dev/null || true
    if [ "$shaping" = linkemu ]; then
      # The emulator keeps its fd of the TAP kzmn-n<i>, which goes on working in the node.
      ip link set "kzmn-n$i" netns "$(cat "$STATE/kirzl-node$i.pid")"
    else
      ip link del "kzmn-v$i" 2>/dev/null || true
      ip link add "kzmn-v$i" type veth peer name "kzmn-n$i"
      ip link set "kzmn-n$i" netns "$(cat "$STATE/kirzl-node$i.pid")"
      ip link set "kzmn-v$i" master "$BRIDGE" up
    fi
    in_node "$i" ip link set "kzmn-n$i" name eth0
    [ "$shaping" != linkemu ] || in_node "$i" ip link set eth0 mtu "$LINKEMU_MTU"
    in_node "$i" ip addr add "$NET.$((10 + i))/24" dev eth0
    in_node "$i" ip link set eth0 up
    if [ "$shaping" != linkemu ]; then
      shape host "kzmn-v$i"
      shape "$i" eth0
    fi
  done
}

# Removes what make_links made but the nodes' namespaces: the emulator (its TAPs go with it, also
# those in the nodes), or the veth pairs (both ends) and the bridge.
remove_links() {
  local i
  stop_linkemu
  for i in 1 2 3 4; do ip link del "kzmn-v$i" 2>/dev/null || true; done
  ip link del "$BRIDGE" 2>/dev/null || true
}

# Builds the link emulator into $STATE/linkemu when it is missing or older than its sources.
build_linkemu() {
  local bin="$STATE/linkemu"
  [ "$bin" -nt "$LINKEMU_SRC" ] && [ "$bin" -nt "$(dirname "$LINKEMU_SRC")/tc_units.hpp" ] && return 0
  command -v c++ >/dev/null || kirzl_apt_install g++
  c++ -O2 -std=c++20 -pthread -o "$bin.new" "$LINKEMU_SRC" || die "building the link emulator failed (c++ ... $LINKEMU_SRC)"
  mv "$bin.new" "$bin"
}

# Starts the link emulator for nodes 1..$1: it makes the TAPs kzmn-n<i> (delay and rate, for each
# node's link) and kzmn-br (the host's: neither) and writes its pid file once they are there.
start_linkemu() {
  local n=$1 i pid ports
  build_linkemu
  for ((i = 1; i <= n; i++)); do ip link del "kzmn-n$i" 2>/dev/null || true; done
  ip link del "$BRIDGE" 2>/dev/null || true
  read -r -a ports <<<"$(linkemu_ports "$n")"
  rm -f "$STATE/linkemu.pid"
  echo "multinode: $(date '+%F %T') up $n: linkemu ${ports[*]}" >>"$STATE/linkemu.log"
  # As a node's holder: its own session, no terminal or pipe of the caller's held open.
  setsid "$STATE/linkemu" --pidfile "$STATE/linkemu.pid" "${ports[@]}" </dev/null >>"$STATE/linkemu.log" 2>&1 &
  pid=$!
  disown "$pid"
  for _ in $(seq 100); do
    [ -e "$STATE/linkemu.pid" ] && return 0
    running "$pid" || die "the link emulator ended at start ($STATE/linkemu.log: $(tail -n 3 "$STATE/linkemu.log" | tr '\n' ' '))"
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  die "the link emulator (pid $pid) did not make its TAP devices within 5 s ($STATE/linkemu.log)"
}

# The emulator's ports for nodes 1..$1, as its arguments: NAME:DELAY:RATE each.
linkemu_ports() {
  local i
  for ((i = 1; i <= $1; i++)); do printf 'kzmn-n%d:%s:%s ' "$i" "$DELAY" "$RATE"; done
  echo "$BRIDGE:0:0"
}

# Whether the link emulator runs with the ports for nodes 1..$1 (its command line, not the state
# files, says with which), built from the source as it is.
linkemu_runs_with() {
  local pid args
  pid="$(live_pid "$STATE/linkemu.pid")" || return 1
  [ "$STATE/linkemu" -nt "$LINKEMU_SRC" ] || return 1
  args="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
  [ "${args% }" = "$STATE/linkemu --pidfile $STATE/linkemu.pid $(linkemu_ports "$1")" ]
}

# Stops the link emulator, if it runs, and waits until it is gone (with it its TAPs).
stop_linkemu() {
  local pid
  pid="$(live_pid "$STATE/linkemu.pid")" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    running "$pid" || return 0
    sleep 0.02
  done
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    running "$pid" || return 0
    sleep 0.02
  done
}

write_hostfile() {
  local n=$1 i
  {
    echo "# Written by kirzl's scripts/multinode.sh: $n emulated nodes, 2 slots each."
    for ((i = 1; i <= n; i++)); do echo "kirzl-node$i slots=2"; done
  } >"$STATE/hostfile"
}

up() {
  need_root
  local n=2 t0=$SECONDS i
  while (($#)); do
    case "$1" in
      --rate) RATE="$2"; shift 2 ;;
      --delay) DELAY="$2"; shift 2 ;;
      [0-9]*) n="$1"; shift ;;
      *) die "up: unknown argument '$1' (usage: up [N] [--rate R] [--delay D])" ;;
    esac
  done
  [[ "$n" =~ ^[2-4]$ ]] || die "up: N must be 2, 3 or 4 (got '$n')"
  install_missing
  mkdir -p "$STATE"
  local shaping
  shaping="$(choose_shaping)"
  if [ "$(nodes_up || true)" = "$n" ]; then
    # Already up: only the links may change.
    relink "$n" "$shaping"
    return 0
  fi
  [ -f "$STATE/nodes" ] && down_quiet
  # A failed start leaves nothing behind.
  trap down_quiet EXIT
  mkdir -p "$STATE"
  echo "$n" >"$STATE/nodes"
  for ((i = 1; i <= n; i++)); do start_node "$i"; done
  make_links "$n" "$shaping"
  write_hostfile "$n"
  check_links "$n"
  trap - EXIT
  echo "multinode: $n nodes up (kirzl-node1..$n at $NET.11..$((10 + n)), host $NET.1 on $BRIDGE; $(link_text)) after $((SECONDS - t0)) s"
  warn_no_delay
}

# The links of the $1 nodes that are up, shaped anew with shaper $2: veth links with the same qdisc
# are reshaped in place (connections across them go on); an emulator with the same shaping that
# runs is kept; else the links are made anew (connections across them break).
relink() {
  local n=$1 shaping=$2 i old
  old="$(cat "$STATE/shaping" 2>/dev/null || true)"
  if [ "$shaping" = "$old" ] && [ "$shaping" != linkemu ]; then
    echo "$RATE $DELAY" >"$STATE/link"
    for ((i = 1; i <= n; i++)); do shape host "kzmn-v$i" && shape "$i" eth0; done
    echo "multinode: $n nodes already up; links reshaped ($(link_text))"
  elif [ "$shaping" = "$old" ] && linkemu_runs_with "$n"; then
    echo "$RATE $DELAY" >"$STATE/link"
    echo "multinode: $n nodes already up; links kept ($(link_text))"
  else
    # A failure here leaves nothing behind, as at a first start.
    trap down_quiet EXIT
    remove_links
    make_links "$n" "$shaping"
    check_links "$n"
    trap - EXIT
    echo "multinode: $n nodes already up; links made anew, connections across them broken ($(link_text))"
  fi
  warn_no_delay
}

# Every node reaches the host, and the next node.
check_links() {
  local n=$1 i
  for ((i = 1; i <= n; i++)); do
    reaches "$i" "$NET.1" || die "kirzl-node$i does not reach the host at $NET.1"
    reaches "$i" "$NET.$((10 + i % n + 1))" || die "kirzl-node$i does not reach kirzl-node$((i % n + 1))"
  done
}

warn_no_delay() {
  if [ "$(cat "$STATE/shaping")" = tbf ] && [ "$DELAY" != 0 ]; then
    local why="this kernel has no sch_netem and no TAP device can be made for linkemu"
    [ "$SHAPER" = auto ] || why="KIRZL_MULTINODE_SHAPER=$SHAPER"
    echo "multinode: $why: links are limited to $RATE by tbf, the delay $DELAY is not applied" >&2
  fi
  return 0
}

# Whether node $1 reaches address $2: a TCP connection to port 9 (discard) is accepted or refused
# (refused: the address answered), rather than timing out (no ping in a minimal image).
reaches() {
  local out
  out="$(in_node "$1" timeout 3 bash -c "exec 3<>/dev/tcp/$2/9" 2>&1)" && return 0
  [[ "$out" == *refused* ]]
}

link_text() {
  local shaping
  shaping="$(cat "$STATE/shaping" 2>/dev/null || true)"
  case "$shaping" in
    netem | linkemu) echo "links: $RATE each way, $DELAY one way ($shaping)" ;;
    *) echo "links: $RATE (tbf; no delay)" ;;
  esac
}

# Every process in node $1's network namespace (the holder, and what was started inside: Open
# MPI's daemons and ranks).
node_processes() {
  local holder=$1 ns p
  ns="$(readlink "/proc/$holder/ns/net" 2>/dev/null)" || return 0
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$ns" ] && echo "${p#/proc/}"
  done
  return 0
}

down_quiet() {
  local f pid pids
  # The emulator first: it ends with an error when a node's namespace (with its TAP) goes first.
  stop_linkemu
  for f in "$STATE"/kirzl-node*.pid; do
    [ -f "$f" ] || continue
    if pid="$(live_pid "$f")"; then
      pids="$(node_processes "$pid")"
      # shellcheck disable=SC2086 # one word per pid
      kill -KILL $pids 2>/dev/null || true
      for _ in $(seq 100); do
        running "$pid" || break
        sleep 0.02
      done
    fi
    rm -f "$f"
  done
  # The node-side ends vanish with their namespaces; the host-side ends with them, or here.
  remove_links
  rm -rf "$STATE"
}

down() {
  need_root
  local t0=$SECONDS
  down_quiet
  echo "multinode: down after $((SECONDS - t0)) s"
}

status() {
  local n i pid
  if ! n="$(nodes_up)"; then
    echo "multinode: not up (scripts/multinode.sh up 2)"
    return 1
  fi
  read -r RATE DELAY <"$STATE/link"
  echo "multinode: $n nodes, $(link_text), state in $STATE"
  if [ "$(cat "$STATE/shaping")" = linkemu ]; then
    if ! pid="$(live_pid "$STATE/linkemu.pid")"; then
      echo "multinode: the link emulator is not running, the nodes have no links (its log: $STATE/linkemu.log; scripts/multinode.sh up $n starts it again)"
      return 1
    fi
    echo "link emulator: pid $pid, log $STATE/linkemu.log (kill -USR1 $pid writes its counters there)"
  fi
  for ((i = 1; i <= n; i++)); do
    pid="$(cat "$STATE/kirzl-node$i.pid")"
    echo "kirzl-node$i: holder pid $pid, $(in_node "$i" hostname), $(in_node "$i" ip -4 -o addr show dev eth0 | awk '{print $4}')," \
      "$(($(node_processes "$pid" | wc -l) - 1)) other processes"
  done
  return 0
}

# The mpirun options for the nodes (Note [emulated nodes]); see docs/multinode.md.
mpirun_args() {
  [ -f "$STATE/hostfile" ] || die "not up (scripts/multinode.sh up 2)"
  # plm_rsh_no_tree_spawn: mpirun starts every node's daemon itself (through the agent).
  # btl self,vader,tcp: shared memory inside a node, TCP between nodes, only on the test subnet.
  echo "--hostfile $STATE/hostfile --mca plm_rsh_agent $AGENT --mca plm_rsh_no_tree_spawn 1" \
    "--mca btl self,vader,tcp --mca btl_tcp_if_include $NET.0/24 --mca oob_tcp_if_include $NET.0/24"
}

case "${1:-}" in
  up) shift && up "$@" ;;
  down) down ;;
  status) status ;;
  mpirun-args) mpirun_args ;;
  *) die "usage: $0 up [N] [--rate R] [--delay D] | down | status | mpirun-args" ;;
esac
