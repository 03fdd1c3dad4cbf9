#!/usr/bin/env bash
# make bench-logging: what the access log costs. For each MPM, two Trident servers serve the
# same small file at the same time, pinned to the same cpu: one with `access_log: off`, one
# with the combined format to a file. One wrk each (keep-alive, on another cpu) loads them
# together. Prints server CPU microseconds per request for both (medians over BENCH_ROUNDS
# rounds) and the cost, the median of the rounds' ratios, and fails when logging costs more
# than BENCH_LOG_BUDGET percent (10).
#
# Run side by side, both servers see the same machine: on a shared host whose speed drifts
# by 25-50 % from one run to the next, back-to-back runs (even five interleaved pairs) gave
# the same build costs from -8 % to +28 %, and side by side the rounds agree within a few
# percent. The roles swap every round (which starts first, which wrk starts first), so
# with an even number of rounds neither server has the better seat in the median.
#
#   tests/bench/access_log_cost.sh [BUILD_DIR]    (BUILD_DIR defaults to build)
#
# Environment: BENCH_SECONDS (6 per round), BENCH_ROUNDS (6), BENCH_CONNECTIONS (50 per
# server), BENCH_MPMS ("prefork worker event"), BENCH_SERVER_CPU (0), BENCH_CLIENT_CPU (1),
# BENCH_LOG_BUDGET (10).
# Loopback only; never in CI: it loads the machine.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$repo/$build ;; esac
seconds=${BENCH_SECONDS:-6}
connections=${BENCH_CONNECTIONS:-50}
mpms=${BENCH_MPMS:-prefork worker event}
server_cpu=${BENCH_SERVER_CPU:-0}
client_cpu=${BENCH_CLIENT_CPU:-1}
budget=${BENCH_LOG_BUDGET:-10}
rounds=${BENCH_ROUNDS:-6}
[ "$rounds" -ge 1 ] 2>/dev/null || { echo "bench-logging: BENCH_ROUNDS must be 1 or more"; exit 1; }

command -v wrk >/dev/null || { echo "bench-logging: wrk is missing (make deps)"; exit 1; }
work=$(mktemp -d /tmp/trident-logbench-XXXXXX)
servers=  # pids of the servers running now, for the EXIT trap
clients=  # and of the wrk processes
cgroups=  # and the cgroups made for the servers (see server_cpu_us)
stop_clients() {
  local pid
  for pid in $clients; do kill "$pid" 2>/dev/null || true; done
  for pid in $clients; do wait "$pid" 2>/dev/null || true; done
  clients=
}
stop_servers() {
  local pid
  for pid in $servers; do kill "$pid" 2>/dev/null || true; done
  for pid in $servers; do wait "$pid" 2>/dev/null || true; done
  servers=
}
# rmdir succeeds once the last process of a cgroup has exited. One the server's stop left
# behind is killed after 5 s (cgroup.kill, kernel 5.14, else pid by pid).
remove_cgroups() {
  local group pid n
  for group in $cgroups; do
    for n in $(seq 70); do
      rmdir "$group" 2>/dev/null && break
      [ -d "$group" ] || break
      if [ "$n" = 50 ]; then
        echo 1 > "$group/cgroup.kill" 2>/dev/null ||
          for pid in $(cat "$group/cgroup.procs" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
      fi
      sleep 0.1
    done
    if [ -d "$group" ]; then
      echo "bench-logging: $group: processes survived SIGKILL; cgroup left in place" >&2
    fi
  done
  cgroups=
}
cleanup() {
  stop_clients
  stop_servers
  remove_cgroups
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/root"
# Started as root, trident runs its children as an unprivileged user, who must read the site.
user_block=
if [ "$(id -u)" = 0 ]; then
  chmod 755 "$work"
  user_block=$'user: www-data\ngroup: www-data'
fi
head -c 1024 /dev/urandom | base64 > "$work/root/index.html"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Each server runs in a cgroup v2 of its own where one can be made (root, and a cgroup2
# mount), whose cpu.stat usage_usec is exact. The fallback adds up the live threads' exact
# run times and the reaped children's; not /proc/PID/stat's utime and stime, which count
# each process in 10 ms units and undercount a server of many (see docs/benchmarks.md).
cgroup_root=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
probe=$cgroup_root/trident-logbench-probe-$$
if [ -n "$cgroup_root" ] && mkdir "$probe" 2>/dev/null; then
  sh -c 'echo $$ > "$0"/cgroup.procs' "$probe" 2>/dev/null || cgroup_root=
  rmdir "$probe" 2>/dev/null || true
else
  cgroup_root=
fi
[ -n "$cgroup_root" ] ||
  echo "bench-logging: no cgroup of our own here (run as root for one): CPU time from the live threads' schedstat"

# Microseconds of CPU server $1 (named $2) has used.
server_cpu_us() {
  if [ -n "$cgroup_root" ]; then
    awk '$1 == "usage_usec" { print $2 }' "$cgroup_root/trident-logbench-$$-$2/cpu.stat"
    return
  fi
  # The master and its live children: the exact run time of every live thread (schedstat,
  # ns), plus what the children they reaped used (cutime, cstime: clock ticks).
  # Without schedstat files (a kernel without CONFIG_SCHED_INFO), the process's own utime
  # and stime, in clock ticks.
  local ticks=0 ns=0 pid fields run
  for pid in "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    fields=$(sed 's/.*) //' /proc/"$pid"/stat 2>/dev/null) || continue
    # After the name: field 14 utime is the 12th, then stime, cutime, cstime. mawk prints a
    # sum past 2^31 as 1.2e+10, and its %d stops at 2^31: %.0f keeps every digit.
    ticks=$((ticks + $(echo "$fields" | awk '{printf "%.0f", $14 + $15}')))
    run=$(cat /proc/"$pid"/task/*/schedstat 2>/dev/null |
      awk '{s += $1; n++} END {if (n) printf "%.0f", s; else print "none"}')
    if [ "$run" = none ]; then
      ticks=$((ticks + $(echo "$fields" | awk '{printf "%.0f", $12 + $13}')))
    else
      ns=$((ns + run))
    fi
  done
  echo $((ticks * 1000000 / $(getconf CLK_TCK) + ns / 1000))
}

# Starts server $1 (off or on) under MPM $2; sets port_$1 and pid_$1.
start_server() {
  local name=$1 mpm=$2 port log=off
  # Two free ports asked for in a row may be the same one: neither is bound yet.
  while port=$(free_port); [ "$port" = "${port_off:-}" ] || [ "$port" = "${port_on:-}" ]; do :; done
  [ "$name" = on ] && log="{path: $work/access.log, format: combined}"
  cat > "$work/$name.yaml" <<CONF
mpm: $mpm
listen: ["127.0.0.1:$port"]
document_root: $work/root
module_dir: $build
access_log: $log
error_log: {path: $work/error-$name.log, level: warn}
$user_block
CONF
  local jail=()
  if [ -n "$cgroup_root" ]; then
    # A fresh cgroup per start: the shell moves itself in, then execs taskset and trident
    # (same pid), so every child the server forks is counted there.
    local group=$cgroup_root/trident-logbench-$$-$name
    if ! mkdir "$group"; then
      echo "bench-logging: cannot make cgroup $group (left over from the round before?)" >&2
      exit 1
    fi
    cgroups="$cgroups $group"
    jail=(sh -c 'echo $$ > "$0"/cgroup.procs && exec "$@"' "$group")
  fi
  "${jail[@]}" taskset -c "$server_cpu" "$build/trident" -f "$work/$name.yaml" > "$work/server-$name.out" &
  printf -v "pid_$name" '%s' "$!"
  printf -v "port_$name" '%s' "$port"
  servers="$servers $!"
}

wait_ready() {
  for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
    sleep 0.1
  done
  echo "bench-logging: no server on port $1" >&2
  exit 1
}

# wrk against both servers at once for $1 seconds, the one named $2 started first; the
# request counts go to $work/requests-off and $work/requests-on.
load_both() {
  local seconds=$1 first=$2 second=off pid
  [ "$first" = off ] && second=on
  for name in "$first" "$second"; do
    local port_var=port_$name
    taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"${seconds}s" \
      "http://127.0.0.1:${!port_var}/" > "$work/wrk-$name.out" &
    clients="$clients $!"
  done
  for pid in $clients; do wait "$pid"; done
  clients=
  for name in off on; do
    local pid_var=pid_$name
    if ! kill -0 "${!pid_var}" 2>/dev/null; then
      echo "bench-logging: the server with access_log $name stopped while loaded" >&2
      tail -n 5 "$work/server-$name.out" "$work/error-$name.log" >&2 2>/dev/null || true
      exit 1
    fi
  done
  for name in off on; do
    awk '/requests in/ {print $1}' "$work/wrk-$name.out" > "$work/requests-$name"
  done
}

# One round: both servers side by side. Sets off_us, on_us and ratio (on / off).
round() {
  local mpm=$1 first=$2 requests_off requests_on
  local before_off before_on after_off after_on
  local second=off
  [ "$first" = off ] && second=on
  port_off= port_on=
  start_server "$first" "$mpm"
  start_server "$second" "$mpm"
  wait_ready "$port_off"
  wait_ready "$port_on"
  load_both 1 "$first"
  before_off=$(server_cpu_us "$pid_off" off) before_on=$(server_cpu_us "$pid_on" on)
  load_both "$seconds" "$first"
  after_off=$(server_cpu_us "$pid_off" off) after_on=$(server_cpu_us "$pid_on" on)
  stop_servers
  remove_cgroups
  rm -f "$work/access.log"
  requests_off=$(cat "$work/requests-off") requests_on=$(cat "$work/requests-on")
  if [ "${requests_off:-0}" -le 0 ] || [ "${requests_on:-0}" -le 0 ]; then
    echo "bench-logging: $mpm served no request (off: ${requests_off:-0}, on: ${requests_on:-0})" >&2
    exit 1
  fi
  if [ $((after_off - before_off)) -le 0 ] || [ $((after_on - before_on)) -le 0 ]; then
    echo "bench-logging: $mpm: a server used no CPU time while loaded" >&2
    exit 1
  fi
  off_us=$(awk -v r="$requests_off" -v t=$((after_off - before_off)) 'BEGIN { printf "%.2f", t / r }')
  on_us=$(awk -v r="$requests_on" -v t=$((after_on - before_on)) 'BEGIN { printf "%.2f", t / r }')
  ratio=$(awk -v off="$off_us" -v on="$on_us" 'BEGIN { printf "%.4f", (off > 0 ? on / off : 0) }')
}

median() {
  tr ' ' '\n' | grep . | LC_ALL=C sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

status=0
printf '%-8s %14s %14s %8s   %s\n' mpm "off us/req" "combined us/req" "cost" "rounds (off/combined)"
for mpm in $mpms; do
  offs= ons= ratios= detail=
  for n in $(seq "$rounds"); do
    if [ $((n % 2)) = 1 ]; then round "$mpm" off; else round "$mpm" on; fi
    offs="$offs $off_us" ons="$ons $on_us" ratios="$ratios $ratio" detail="$detail $off_us/$on_us"
  done
  off_us=$(echo "$offs" | median)
  on_us=$(echo "$ons" | median)
  cost=$(echo "$ratios" | median | awk '{ printf "%.1f", ($1 - 1) * 100 }')
  printf '%-8s %14s %14s %7s%%  %s\n' "$mpm" "$off_us" "$on_us" "$cost" "$detail"
  if awk -v c="$cost" -v b="$budget" 'BEGIN { exit !(c > b) }'; then
    echo "bench-logging: $mpm: combined logging costs ${cost}% (budget ${budget}%)"
    status=1
  fi
done
exit $status
