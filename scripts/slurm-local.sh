#!/usr/bin/env bash
# A one-node SLURM on this machine, for running kirzl's jobs (and its srun fault tests,
# tests/comm/faults/test_faults_srun.cpp) under srun as on a cluster.
#
#   scripts/slurm-local.sh up       install slurm-wlm and munge when missing, write the config,
#                                    start munged, slurmctld and slurmd, and wait for the node
#                                    to be idle (idempotent: a running cluster is left alone)
#   scripts/slurm-local.sh down     cancel the jobs, stop the three daemons
#   scripts/slurm-local.sh status   whether it runs, and sinfo
#   scripts/slurm-local.sh install  only install slurm-wlm and munge when missing (what up does
#                                    first); fails when apt-get cannot
# (start and stop are the older names of up and down, and still work.)
#
# The tests labelled `slurm` (tests/examples/test_*_slurm.cpp) and `srun`
# (tests/comm/faults/test_faults_srun.cpp) run their jobs on it; scripts/test.sh brings it up and
# down around them. docs/cluster.md shows the same jobs on a real cluster.
#
# Needs root (the daemons run as root, munged as the munge user). Everything it writes lives in
# KIRZL_SLURM_DIR (default /var/tmp/kirzl-slurm): the config, munge's socket, the daemons' state,
# logs and pid files. The one file outside it is /etc/slurm/slurm.conf, a link to the config there,
# since srun and sinfo look for it there; an /etc/slurm/slurm.conf that this script did not write
# is never replaced (then export SLURM_CONF=$KIRZL_SLURM_DIR/slurm.conf for the clients).
set -euo pipefail

export KIRZL_SCRIPT=slurm-local
# shellcheck source=scripts/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
die() { kirzl_die "$@"; }
need_root() { kirzl_need_root "the SLURM daemons and munged are started as root"; }

STATE="${KIRZL_SLURM_DIR:-/var/tmp/kirzl-slurm}"
CONF="$STATE/slurm.conf"
SYSTEM_CONF=/etc/slurm/slurm.conf
MARKER="Written by kirzl's scripts/slurm-local.sh"
NODE="$(hostname -s)"
# How long start waits for the node to become idle, in seconds.
START_TIMEOUT="${KIRZL_SLURM_START_TIMEOUT:-60}"

install_missing() {
  local missing=()
  command -v slurmctld >/dev/null || missing+=(slurmctld)
  command -v slurmd >/dev/null || missing+=(slurmd)
  command -v srun >/dev/null || missing+=(slurm-client)
  command -v munged >/dev/null || missing+=(munge)
  # slurm-wlm-basic-plugins carries mpi/pmix for srun (Open MPI's processes talk PMIx).
  dpkg-query -W -f='${Status}' slurm-wlm-basic-plugins 2>/dev/null | grep -q "install ok installed" ||
    missing+=(slurm-wlm-basic-plugins)
  kirzl_apt_install "${missing[@]}"
}

# The pid in file $1 when that process is alive.
live_pid() {
  local pid
  [ -f "$1" ] || return 1
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# Srun's MPI plugin: pmix when SLURM has it (Debian's Open MPI is built against PMIx and cannot
# start under pmi2), pmi2 otherwise. Looked up by the plugin's file, not with srun --mpi=list,
# which needs the config being written (and waits a minute for a missing one).
mpi_default() {
  if compgen -G "/usr/lib/*/slurm-wlm/mpi_pmix*.so" >/dev/null || compgen -G "/usr/lib*/slurm/mpi_pmix*.so" >/dev/null; then
    echo pmix
  else
    echo pmi2
  fi
}

write_config() {
  local cpus
  cpus="$(nproc)"
  mkdir -p "$STATE/ctld" "$STATE/d" "$STATE/munge" "$STATE/log" "$STATE/run"
  cat >"$CONF" <<EOF
# $MARKER: a one-node cluster for tests. Edits are overwritten.
ClusterName=kirzl
SlurmctldHost=$NODE(127.0.0.1)
# Daemons run as root, which this script needs anyway: no slurm user or file ownership to set up.
SlurmUser=root
SlurmdUser=root
# Credentials between srun, slurmctld and slurmd: munge, with its socket in the state directory.
AuthType=auth/munge
AuthInfo=socket=$STATE/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
# Track a job's processes by their parent chain, and bind nothing: no cgroups, which containers
# often lack or mount read-only.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Jobs get CPUs, not whole nodes; memory is not a resource (no RealMemory to guess).
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=$(mpi_default)
# A node that comes back (slurmd restarted) takes jobs again without an scontrol update.
ReturnToService=2
# Quick scheduling for a tiny queue; a cancelled or failed step's tasks get SIGKILL 5 s after
# SIGTERM (default 30 s).
SchedulerType=sched/builtin
KillWait=5
# This host and its CPUs. Jobs may share them (ctest -j runs several at once, each asking srun
# --overcommit for more tasks than CPUs), as under mpirun --oversubscribe.
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=local Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
  # The clients (srun, sinfo) read /etc/slurm/slurm.conf unless SLURM_CONF says otherwise.
  mkdir -p "$(dirname "$SYSTEM_CONF")"
  if [ -L "$SYSTEM_CONF" ] || [ ! -e "$SYSTEM_CONF" ] || grep -q "$MARKER" "$SYSTEM_CONF"; then
    ln -sfn "$CONF" "$SYSTEM_CONF"
  else
    echo "slurm-local: $SYSTEM_CONF is not ours; left alone: export SLURM_CONF=$CONF" >&2
  fi
}

start_munge() {
  live_pid "$STATE/munge/munged.pid" >/dev/null && return 0
  [ -f /etc/munge/munge.key ] || { mungekey --create --keyfile /etc/munge/munge.key && chown munge:munge /etc/munge/munge.key; }
  chown munge:munge "$STATE/munge"
  chmod 0700 "$STATE/munge"
  # --force: the state directory may sit under a world-writable /var/tmp, which munged distrusts.
  runuser -u munge -- munged --force --socket="$STATE/munge/munge.socket" --pid-file="$STATE/munge/munged.pid" \
    --log-file="$STATE/munge/munged.log" --seed-file="$STATE/munge/munged.seed" ||
    die "munged did not start; see $STATE/munge/munged.log"
  # Munge's clients (slurmctld, srun) connect to the socket: it must be reachable by everyone.
  chmod 0755 "$STATE/munge"
}

start_daemons() {
  if ! live_pid "$STATE/run/slurmctld.pid" >/dev/null; then
    SLURM_CONF="$CONF" slurmctld -f "$CONF" || die "slurmctld did not start; see $STATE/log/slurmctld.log"
  fi
  if ! live_pid "$STATE/run/slurmd.pid" >/dev/null; then
    SLURM_CONF="$CONF" slurmd -f "$CONF" || die "slurmd did not start; see $STATE/log/slurmd.log"
  fi
}

# Waits until sinfo shows the node idle (or mixed/allocated: already running jobs).
wait_idle() {
  local deadline=$((SECONDS + START_TIMEOUT)) state=""
  while ((SECONDS < deadline)); do
    state="$(SLURM_CONF="$CONF" sinfo -h -n "$NODE" -o %t 2>/dev/null | head -n1 || true)"
    case "$state" in
      idle | mix | alloc) return 0 ;;
      down* | drain* | drng*) SLURM_CONF="$CONF" scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.5
  done
  die "node $NODE not idle after ${START_TIMEOUT}s (sinfo state '${state:-none}'); see $STATE/log/slurmctld.log and $STATE/log/slurmd.log"
}

start() {
  need_root
  local t0=$SECONDS
  install_missing
  write_config
  start_munge
  start_daemons
  wait_idle
  echo "slurm-local: node $NODE is up ($(nproc) CPUs, $(grep '^MpiDefault=' "$CONF"), state in $STATE) after $((SECONDS - t0)) s"
}

# Sends TERM to the daemon of pid file $1, then KILL if it is still there after 10 s.
stop_pid() {
  local pid
  pid="$(live_pid "$1")" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$1"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$1"
}

stop() {
  need_root
  if live_pid "$STATE/run/slurmctld.pid" >/dev/null; then
    # Jobs first, so that no step's processes outlive the cluster.
    SLURM_CONF="$CONF" scancel --partition=local 2>/dev/null || true
    for _ in $(seq 100); do
      [ -z "$(SLURM_CONF="$CONF" squeue -h -p local 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  stop_pid "$STATE/run/slurmd.pid"
  stop_pid "$STATE/run/slurmctld.pid"
  stop_pid "$STATE/munge/munged.pid"
  echo "slurm-local: stopped"
}

status() {
  local up=0
  for d in munge/munged.pid run/slurmctld.pid run/slurmd.pid; do
    if pid="$(live_pid "$STATE/$d")"; then echo "$(basename "$d" .pid): running (pid $pid)"; else echo "$(basename "$d" .pid): stopped"; up=1; fi
  done
  ((up == 0)) && SLURM_CONF="$CONF" sinfo
  return $up
}

case "${1:-}" in
  up | start) start ;;
  down | stop) stop ;;
  status) status ;;
  install) need_root && install_missing ;;
  *) die "usage: $0 up|down|status|install (start and stop: the same as up and down)" ;;
esac
