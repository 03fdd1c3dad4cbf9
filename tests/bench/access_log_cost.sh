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
remove_cgroups() {
  # cpu_time.py kills what a server's stop left behind before it removes the cgroup.
  [ -z "$cgroups" ] || python3 "$here/cpu_time.py" remove $cgroups || true
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
# mount), whose cpu.stat usage_usec is exact; elsewhere its threads' run times are added up
# (tests/bench/cpu_time.py, shared with bench.py).
probe=$(python3 "$here/cpu_time.py" make "trident-logbench-probe-$$")
if [ -n "$probe" ]; then
  rmdir "$probe"
else
  echo "bench-logging: no cgroup of our own here (run as root for one): CPU time from the live threads' schedstat"
fi

# Microseconds of CPU server $1 has used: of its cgroup $2, or of its tree when $2 is empty.
server_cpu_us() {
  if [ -n "$2" ]; then
    python3 "$here/cpu_time.py" usage "$2"
  else
    python3 "$here/cpu_time.py" usage - "$1"
  fi
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
  local jail=() group=
  if [ -n "$probe" ]; then
    # A fresh cgroup per start, joined before taskset and trident are exec'ed (same pid), so
    # every child the server forks is counted there.
    group=$(python3 "$here/cpu_time.py" make "trident-logbench-$$-$name")
    if [ -z "$group" ]; then
      echo "bench-logging: cannot make cgroup trident-logbench-$$-$name (left over?)" >&2
      exit 1
    fi
    cgroups="$cgroups $group"
    jail=(python3 "$here/cpu_time.py" run-in "$group")
  fi
  printf -v "group_$name" '%s' "$group"
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
  before_off=$(server_cpu_us "$pid_off" "$group_off") before_on=$(server_cpu_us "$pid_on" "$group_on")
  load_both "$seconds" "$first"
  after_off=$(server_cpu_us "$pid_off" "$group_off") after_on=$(server_cpu_us "$pid_on" "$group_on")
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
