#!/usr/bin/env bash
# make bench: Trident under each MPM beside Apache httpd, nginx, h2o and lighttpd.
#
#   tests/bench/run.sh [BUILD_DIR]      (BUILD_DIR defaults to build; run `make build` first)
#
# 1. Installs what is missing (Debian packages, through sudo when not root) without letting
#    the packages start their system services, and stops any such service already running.
# 2. Runs tests/bench/bench.py: every server on its own free loopback port with a config
#    generated into a temporary folder, pinned to cpu 0; wrk and ab pinned to cpu 1.
# 3. Writes docs/benchmarks.md and docs/benchmarks.png (tests/bench/report.py).
#
# Environment: BENCH_SECONDS (default 5), BENCH_WARMUP (1), BENCH_ROUNDS (3), BENCH_CONNECTIONS (200),
# BENCH_SERVERS (e.g. "trident,nginx"), BENCH_SERVER_CPU (0), BENCH_CLIENT_CPU (1),
# BENCH_QUIET_WAIT (120), BENCH_TMP (work folder). Never run in CI: it takes minutes and loads the machine.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$repo/$build ;; esac

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

# The servers compared, the clients, and gnuplot for the plot (gnuplot-nox: no X11, and
# far smaller than python3-matplotlib; its pngcairo terminal draws the PNG).
packages=(apache2 nginx h2o lighttpd wrk apache2-utils gnuplot-nox python3 procps util-linux)
services=(apache2 apache-htcacheclean nginx h2o lighttpd)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done

policy=/usr/sbin/policy-rc.d
made_policy=
cleanup_policy() {
  if [ -n "$made_policy" ]; then $SUDO rm -f "$policy"; made_policy=; fi
}
trap cleanup_policy EXIT

if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing ${missing[*]}"
  # Debian's apache2, nginx, h2o and lighttpd start a service on port 80 when installed.
  # A policy-rc.d that says "no" (exit 101) keeps them from starting, for the time of the
  # install only; an existing policy-rc.d is left as it is.
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# made by trident tests/bench/run.sh for one apt-get install\nexit 101\n' |
      $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    made_policy=1
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  cleanup_policy
  # Installed for the benchmark only: not started at the next boot either.
  if [ -d /run/systemd/system ]; then
    for p in "${missing[@]}"; do
      case $p in
        apache2) units=(apache2 apache-htcacheclean) ;;
        nginx | h2o | lighttpd) units=("$p") ;;
        *) continue ;;
      esac
      $SUDO systemctl disable --quiet "${units[@]}" 2>/dev/null || true
    done
  fi
fi

# No system instance of a compared server may run beside the benchmark (it would take CPU
# and, on port 80, nothing of ours): stop each one found running, through its own service.
pidfile_of() {
  case $1 in
    apache2) echo /run/apache2/apache2.pid ;;
    apache-htcacheclean) echo /run/apache2/htcacheclean.pid ;;
    *) echo "/run/$1.pid" ;;
  esac
}
for s in "${services[@]}"; do
  running=
  if [ -d /run/systemd/system ]; then
    systemctl is-active --quiet "$s" 2>/dev/null && running=1
  else
    pidfile=$(pidfile_of "$s")
    if [ -r "$pidfile" ] && [ -d "/proc/$(cat "$pidfile")" ]; then running=1; fi
  fi
  if [ -n "$running" ]; then
    echo "bench: stopping the system service $s"
    if [ -d /run/systemd/system ]; then
      $SUDO systemctl stop "$s" || true
    else
      $SUDO service "$s" stop || true
    fi
  fi
done
if command -v ss >/dev/null && ss -Htln 'sport = :80' | grep -q .; then
  echo "bench: note: something still listens on port 80 (not ours; the benchmark uses its own ports)"
fi

[ -x "$build/trident" ] || { echo "bench: no $build/trident: run 'make build' first" >&2; exit 1; }

exec python3 "$here/bench.py" "$build" "$repo/docs"
