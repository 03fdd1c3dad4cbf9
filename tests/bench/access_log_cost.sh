#!/usr/bin/env bash
# make bench-logging: what the access log costs. For each MPM, Trident serves the same small
# file with `access_log: off`, then with the combined format to a file, under wrk
# (keep-alive, pinned to another cpu than the server). Prints server CPU microseconds per
# request for both (the medians of BENCH_ROUNDS interleaved rounds) and fails when logging
# costs more than BENCH_LOG_BUDGET percent (10).
#
#   tests/bench/access_log_cost.sh [BUILD_DIR]    (BUILD_DIR defaults to build)
#
# Environment: BENCH_SECONDS (6 per run), BENCH_ROUNDS (5), BENCH_CONNECTIONS (50),
# BENCH_MPMS ("prefork worker event"), BENCH_SERVER_CPU (0), BENCH_CLIENT_CPU (1),
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
rounds=${BENCH_ROUNDS:-5}
[ "$rounds" -ge 1 ] 2>/dev/null || { echo "bench-logging: BENCH_ROUNDS must be 1 or more"; exit 1; }

command -v wrk >/dev/null || { echo "bench-logging: wrk is missing (make deps)"; exit 1; }
work=$(mktemp -d /tmp/trident-logbench-XXXXXX)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
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

# Clock ticks the server has used: the master (with its reaped children) and live children.
server_ticks() {
  local total=0 pid fields
  for pid in "$server_pid" $(cat /proc/"$server_pid"/task/*/children 2>/dev/null); do
    fields=$(sed 's/.*) //' /proc/"$pid"/stat 2>/dev/null) || continue
    # After the name: field 14 utime is the 12th, then stime, cutime, cstime.
    total=$((total + $(echo "$fields" | awk '{print $12 + $13 + $14 + $15}')))
  done
  echo "$total"
}

# Prints "requests cpu_us_per_request" for one run.
run_one() {
  local mpm=$1 log=$2 port
  port=$(free_port)
  cat > "$work/trident.yaml" <<CONF
mpm: $mpm
listen: ["127.0.0.1:$port"]
document_root: $work/root
module_dir: $build
access_log: $log
error_log: {path: $work/error.log, level: warn}
$user_block
CONF
  taskset -c "$server_cpu" "$build/trident" -f "$work/trident.yaml" > "$work/server.out" &
  server_pid=$!
  for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.1
  done
  taskset -c "$client_cpu" wrk -t1 -c"$connections" -d1s "http://127.0.0.1:$port/" >/dev/null
  local before after requests
  before=$(server_ticks)
  requests=$(taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"${seconds}s" \
    "http://127.0.0.1:$port/" | awk '/requests in/ {print $1}')
  after=$(server_ticks)
  kill "$server_pid"
  wait "$server_pid" || true
  server_pid=
  local hz
  hz=$(getconf CLK_TCK)
  awk -v r="$requests" -v t=$((after - before)) -v hz="$hz" \
    'BEGIN { printf "%d %.2f\n", r, (r > 0 ? t * 1000000 / hz / r : 0) }'
}

# One run's server CPU µs per request, into the variable named $3. run_one runs in this
# shell, not in a subshell, so that the EXIT trap knows its server and stops it if the run
# fails half way.
measure() {
  run_one "$1" "$2" > "$work/result"
  local requests us
  read -r requests us < "$work/result"
  if [ "${requests:-0}" -le 0 ]; then
    echo "bench-logging: $1 with access_log $2 served no request" >&2
    exit 1
  fi
  printf -v "$3" '%s' "$us"
}

median() {
  tr ' ' '\n' | grep . | LC_ALL=C sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

status=0
printf '%-8s %14s %14s %8s   %s\n' mpm "off us/req" "combined us/req" "cost" "rounds (off/combined)"
for mpm in $mpms; do
  # Interleaved rounds, the order flipped each round, and the medians compared: on a shared
  # machine one pair of runs has differed by 14-28 % with nothing changed.
  offs= ons= detail=
  for round in $(seq "$rounds"); do
    if [ $((round % 2)) = 1 ]; then
      measure "$mpm" off off_us
      measure "$mpm" "{path: $work/access.log, format: combined}" on_us
    else
      measure "$mpm" "{path: $work/access.log, format: combined}" on_us
      measure "$mpm" off off_us
    fi
    rm -f "$work/access.log"
    offs="$offs $off_us" ons="$ons $on_us" detail="$detail $off_us/$on_us"
  done
  off_us=$(echo "$offs" | median)
  on_us=$(echo "$ons" | median)
  cost=$(awk -v off="$off_us" -v on="$on_us" 'BEGIN { printf "%.1f", (off > 0 ? (on - off) * 100 / off : 0) }')
  printf '%-8s %14s %14s %7s%%  %s\n' "$mpm" "$off_us" "$on_us" "$cost" "$detail"
  if awk -v c="$cost" -v b="$budget" 'BEGIN { exit !(c > b) }'; then
    echo "bench-logging: $mpm: combined logging costs ${cost}% (budget ${budget}%)"
    status=1
  fi
  rm -f "$work/access.log"
done
exit $status
