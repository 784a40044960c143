#!/usr/bin/env bash
# Several emulated nodes on this machine, for running kirzl's jobs across "nodes" with mpirun
# (issue #17 item 2; docs/multinode.md). Needs root.
#
#   scripts/multinode.sh up [N] [--rate R] [--delay D]
#                               N nodes (2..4, default 2) named kirzl-node1..N; idempotent: nodes
#                               that are up with the same N are kept (their links reshaped)
#   scripts/multinode.sh down   removes everything `up` made: the nodes' processes, namespaces,
#                               links, the bridge and the state directory
#   scripts/multinode.sh status the nodes, their addresses, link shaping and holder processes
#   scripts/multinode.sh mpirun-args
#                               prints the mpirun options that start ranks on the nodes (one line,
#                               for `mpirun $(scripts/multinode.sh mpirun-args) -np 4 prog`)
#
# Note [emulated nodes]: a node is a network namespace and a UTS namespace (its own interfaces,
# loopback and hostname), kept alive by a holder process (`sleep infinity` started by unshare)
# whose pid is in $STATE/<node>.pid. Mounts and pids are shared with the host, so /tmp, /dev/shm
# and the build tree are the same everywhere, and a test can see and signal every rank. Each node
# has one veth pair: eth0 inside the node, kzmn-v<i> on the host, enslaved to the bridge kzmn-br,
# which also carries the host's address (so mpirun and its daemon run on the host and reach the
# nodes' daemons). Ranks on one node share its hostname, so Open MPI puts them in shared memory
# (btl vader); ranks on different nodes talk TCP over the veth links, which `tc` shapes in both
# directions (egress of both ends of each pair; the delay where a node sends): netem with delay and
# rate where the kernel has sch_netem, else tbf with the rate only (then the delay is not applied,
# and `up` says so).
# Open MPI starts its daemon on each node through scripts/multinode/rsh-agent, which enters the
# node's namespaces as ssh would log into another host. Addresses come from RFC 2544's
# benchmarking range (198.18.0.0/15): host .1, node i .(10+i); no other interface is touched.
#
# Environment: KIRZL_MULTINODE_DIR (state, default /var/tmp/kirzl-multinode),
# KIRZL_MULTINODE_RATE (default 1gbit), KIRZL_MULTINODE_DELAY (one-way latency between two nodes,
# default 200us; 0 for none), KIRZL_MULTINODE_SUBNET (first three octets, default 198.18.0).
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
BRIDGE=kzmn-br
AGENT="$ROOT/scripts/multinode/rsh-agent"

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

# Which qdisc can shape here: netem when the kernel has it (and a delay is asked for), else tbf.
choose_shaping() {
  local probe=kzmn-probe
  ip link del "$probe" 2>/dev/null || true
  ip link add "$probe" type dummy 2>/dev/null || ip link add "$probe" type veth peer name "$probe-p"
  if [ "$DELAY" != 0 ] && tc qdisc add dev "$probe" root netem delay "$DELAY" rate "$RATE" 2>/dev/null; then
    echo netem
  else
    echo tbf
  fi
  ip link del "$probe" 2>/dev/null || true
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
  ip link del "kzmn-v$i" 2>/dev/null || true
  ip link add "kzmn-v$i" type veth peer name "kzmn-n$i"
  ip link set "kzmn-n$i" netns "$pid"
  ip link set "kzmn-v$i" master "$BRIDGE" up
  in_node "$i" ip link set "kzmn-n$i" name eth0
  in_node "$i" ip addr add "$NET.$((10 + i))/24" dev eth0
  in_node "$i" ip link set eth0 up
  shape host "kzmn-v$i"
  shape "$i" eth0
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
  if [ "$(nodes_up || true)" = "$n" ]; then
    # Already up: only the shaping may change.
    choose_shaping >"$STATE/shaping"
    for ((i = 1; i <= n; i++)); do shape host "kzmn-v$i" && shape "$i" eth0; done
    echo "$RATE $DELAY" >"$STATE/link"
    echo "multinode: $n nodes already up; links reshaped ($(link_text))"
    warn_no_delay
    return 0
  fi
  [ -f "$STATE/nodes" ] && down_quiet
  # A failed start leaves nothing behind.
  trap down_quiet EXIT
  mkdir -p "$STATE"
  choose_shaping >"$STATE/shaping"
  echo "$RATE $DELAY" >"$STATE/link"
  ip link add "$BRIDGE" type bridge 2>/dev/null || true
  ip addr replace "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  echo "$n" >"$STATE/nodes"
  for ((i = 1; i <= n; i++)); do start_node "$i"; done
  write_hostfile "$n"
  # Every node reaches the host, and the next node.
  for ((i = 1; i <= n; i++)); do
    reaches "$i" "$NET.1" || die "kirzl-node$i does not reach the host at $NET.1"
    reaches "$i" "$NET.$((10 + i % n + 1))" || die "kirzl-node$i does not reach kirzl-node$((i % n + 1))"
  done
  trap - EXIT
  echo "multinode: $n nodes up (kirzl-node1..$n at $NET.11..$((10 + n)), host $NET.1 on $BRIDGE; $(link_text)) after $((SECONDS - t0)) s"
  warn_no_delay
}

warn_no_delay() {
  if [ "$(cat "$STATE/shaping")" = tbf ] && [ "$DELAY" != 0 ]; then
    echo "multinode: this kernel has no sch_netem: links are limited to $RATE by tbf, the delay $DELAY is not applied" >&2
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
  if [ "$(cat "$STATE/shaping" 2>/dev/null)" = netem ]; then
    echo "links: $RATE each way, $DELAY one way (netem)"
  else
    echo "links: $RATE (tbf; no delay)"
  fi
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
  local f pid pids i
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
  for i in 1 2 3 4; do ip link del "kzmn-v$i" 2>/dev/null || true; done
  ip link del "$BRIDGE" 2>/dev/null || true
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
