#!/usr/bin/env python3
"""Trident's benchmark: every server on one core, the client on another, over loopback.

Called by tests/bench/run.sh (which installs the servers and the clients first); run it
directly only on a machine that has them. Environment:

  BENCH_SECONDS      measured seconds per test (default 5)
  BENCH_WARMUP       warm-up seconds before each test, same client, not measured (default 1)
  BENCH_ROUNDS       times every server is measured on every test, one round after the
                     other (default 3); a round goes test by test, every server in turn
                     (the even rounds in reverse order), each started afresh for each
                     test; per server and test the round with the median CPU time per
                     request is reported, with the range of all rounds
  BENCH_CONNECTIONS  concurrent connections (default 200)
  BENCH_SERVERS      comma-separated filter on server names, e.g. "trident,nginx"
                     (a name matches itself and "name-mpm"; default: all; "apache-stock"
                     is Apache's prefork and worker with EnableSendfile Off, as shipped)
  BENCH_SERVER_CPU   cpu the servers are pinned to (default 0)
  BENCH_CLIENT_CPU   cpu wrk, ab and this script are pinned to (default 1)
  BENCH_QUIET_WAIT   seconds the whole run may spend waiting, before a test, for the two
                     cpus to be idle when another job is using them (default 120)
  BENCH_TMP          work folder (default: a new folder under $TMPDIR); it keeps the
                     generated configs, the server logs, the raw client output and
                     results.json, and is left in place for inspection

Usage: bench.py BUILD_DIR DOCS_DIR
"""

import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from cpu_time import CpuGroup, cgroup_works, process_tree, read_stat, tree_cpu_us

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

SMALL_NAME, SMALL_SIZE = "index.html", 885
LARGE_NAME, LARGE_SIZE = "1mib.bin", 1 << 20

TESTS = [
    # id, tool, file, label
    ("ka-small", "wrk", SMALL_NAME, "keep-alive 885 B"),
    ("ka-large", "wrk", LARGE_NAME, "keep-alive 1 MiB"),
    ("close-small", "ab", SMALL_NAME, "close 885 B"),
    ("close-large", "ab", LARGE_NAME, "close 1 MiB"),
]

START_TIMEOUT = 15.0  # seconds for a server to answer its first request
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
SAMPLE_INTERVAL = 1.0  # PSS sampling period during a test


def env_int(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        sys.exit(f"bench: {name} must be an integer")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- /proc: process trees


def core_times(cpu):
    """(busy, total, softirq) jiffies of one cpu since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                total = sum(v[:8])  # guest time is already in user
                return total - v[3] - v[4], total, v[6]
    return 0, 0, 0


def core_busy(before, after):
    """Busy and softirq percentages of a cpu between two core_times samples."""
    total = after[1] - before[1]
    if total <= 0:
        return None, None
    return 100.0 * (after[0] - before[0]) / total, 100.0 * (after[2] - before[2]) / total


def quiet_wait(cpus, budget, limit=30.0, threshold=10.0):
    """Wait until the cpus are (nearly) idle: another job on the machine skews every number.

    Samples one second at a time, for at most `limit` seconds and at most budget[0] in all
    (budget is a one-item list, spent in place). Returns the busy percentages of the cpus
    in the last second."""
    start = time.monotonic()
    while True:
        before = [core_times(c) for c in cpus]
        time.sleep(1.0)
        busy = [core_busy(b, core_times(c))[0] or 0.0 for b, c in zip(before, cpus)]
        waited = time.monotonic() - start
        if max(busy) < threshold or waited >= limit or waited >= budget[0]:
            budget[0] = max(0.0, budget[0] - waited)
            return busy


def tree_pss_kib(root):
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


class PssSampler(threading.Thread):
    def __init__(self, root):
        super().__init__(daemon=True)
        self.root, self.max_kib, self.stop = root, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.max_kib = max(self.max_kib, tree_pss_kib(self.root))
            self.stop.wait(SAMPLE_INTERVAL)

    def finish(self):
        self.stop.set()
        self.join(5)
        return self.max_kib


# ---------------------------------------------------------------- helpers


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, timeout=2.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/" + path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, len(body), resp.getheader("Server", "")
    finally:
        conn.close()


def make_docroot(path):
    os.makedirs(path, exist_ok=True)
    head = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<title>Trident benchmark</title>\n</head>\n<body>\n<h1>It works</h1>\n"
        "<p>This page is served by every server in Trident's benchmark. It is exactly "
        "885 bytes long, about the size of a small HTML page.</p>\n<p>"
    )
    tail = "</p>\n</body>\n</html>\n"
    filler = "The quick brown fox jumps over the lazy dog. "
    body = head
    while len(body) + len(tail) < SMALL_SIZE:
        body += filler
    body = body[: SMALL_SIZE - len(tail)] + tail
    assert len(body.encode()) == SMALL_SIZE
    with open(os.path.join(path, SMALL_NAME), "w") as f:
        f.write(body)
    # 1 MiB of deterministic, incompressible bytes: SHA-256 in counter mode.
    with open(os.path.join(path, LARGE_NAME), "wb") as f:
        for i in range(LARGE_SIZE // 32):
            f.write(hashlib.sha256(i.to_bytes(8, "little")).digest())
    for name in (SMALL_NAME, LARGE_NAME):
        os.chmod(os.path.join(path, name), 0o644)
    os.chmod(path, 0o755)


def render(template, values):
    with open(os.path.join(HERE, "servers", template)) as f:
        text = f.read()
    for key, val in values.items():
        text = text.replace(f"@{key}@", str(val))
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise RuntimeError(f"{template}: unreplaced {left}")
    return text


def version_string(cmd, pattern, package=None):
    """'1.22.1 (Debian 1.22.1-9+deb12u11)': what the program says, and its package."""
    if cmd[0] == os.path.basename(cmd[0]):
        try:
            cmd = [find_exe(cmd[0])] + cmd[1:]
        except RuntimeError as e:
            return str(e)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        m = re.search(pattern, p.stdout + p.stderr)
        out = m.group(1) if m else "?"
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"? ({e})"
    if package:
        deb = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package],
                             capture_output=True, text=True).stdout.strip()
        if deb:
            out += f" (Debian {package} {deb})"
    return out


# ---------------------------------------------------------------- servers


def server_list(build_dir):
    """(name, mpm, kind) of every server to measure, in report order."""
    mpms = sorted(
        f[len("mpm_") : -len(".so")]
        for f in os.listdir(build_dir)
        if f.startswith("mpm_") and f.endswith(".so")
    )
    order = {"prefork": 0, "worker": 1, "event": 2}
    mpms.sort(key=lambda m: (order.get(m, 9), m))
    servers = [("trident", m, "trident") for m in mpms]
    servers += [("apache", m, "apache") for m in ("prefork", "worker", "event")]
    # The twins of Trident's blocking MPMs once more as Debian ships them, with Apache's
    # default EnableSendfile Off (the entries above have it on, as every other server here
    # sends files with sendfile): what a user of a stock install would move from.
    servers += [("apache-stock", m, "apache") for m in ("prefork", "worker")]
    servers += [("nginx", "", "nginx"), ("h2o", "", "h2o"), ("lighttpd", "", "lighttpd")]
    return servers


EXE = {"apache": "apache2", "nginx": "nginx", "h2o": "h2o", "lighttpd": "lighttpd"}


def find_exe(name):
    """Debian's binary: sbin is not always on a user's PATH, and h2o lives in /usr/bin."""
    path = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin")
    if not path:
        raise RuntimeError(f"{name} not found (is its Debian package installed?)")
    return path


def server_setup(name, kind, mpm, port, rundir, docroot, build_dir, as_root):
    """Write the config into rundir; return the command line (without taskset)."""
    user = {
        "trident": "user: www-data\ngroup: www-data",
        "apache": "User www-data\nGroup www-data",
        "nginx": "user www-data;",
        "h2o": "user: www-data",
        "lighttpd": 'server.username = "www-data"\nserver.groupname = "www-data"',
    }[kind] if as_root else ""
    values = {
        "PORT": port,
        "RUNDIR": rundir,
        "DOCROOT": docroot,
        "MPM": mpm,
        "MODULE_DIR": build_dir,
        "USER_BLOCK": user,
        "SENDFILE": "Off" if name == "apache-stock" else "On",
    }
    ext = {"trident": "yaml", "h2o": "yaml"}.get(kind, "conf")
    conf = os.path.join(rundir, f"{kind}.{ext}")
    with open(conf, "w") as f:
        f.write(render(f"{kind}.conf.in", values))
    if kind == "trident":
        return [os.path.join(build_dir, "trident"), "-f", conf]
    exe = find_exe(EXE[kind])
    if kind == "apache":
        return [exe, "-DFOREGROUND", "-f", conf]
    if kind == "nginx":
        return [exe, "-p", rundir, "-e", os.path.join(rundir, "error.log"), "-c", conf]
    if kind == "h2o":
        return [exe, "-c", conf]
    if kind == "lighttpd":
        return [exe, "-D", "-f", conf]
    raise ValueError(kind)


def tail(path, n=6):
    try:
        with open(path, errors="replace") as f:
            lines = [l.rstrip() for l in f.readlines() if l.strip()]
        return " | ".join(lines[-n:])
    except OSError:
        return ""


class Server:
    def __init__(self, cmd, cpu, logpath, rundir, cgroup_name=None):
        """cgroup_name: run the server in a cgroup of that name and take its CPU time from
        there; None: tree_cpu_us() over its process tree."""
        self.cmd, self.logpath, self.rundir = cmd, logpath, rundir
        argv = ["taskset", "-c", str(cpu)] + cmd
        self.cgroup = CpuGroup.make(cgroup_name) if cgroup_name else None
        if cgroup_name and not self.cgroup:
            raise OSError(f"cannot create cgroup {cgroup_name}")
        if self.cgroup:
            argv = self.cgroup.wrap(argv)
        try:
            self.logf = open(logpath, "w")
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self.logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError:
            if self.cgroup:
                self.cgroup.remove(0)
            raise
        self.pid = self.proc.pid  # sh and taskset exec the server: same pid

    def cpu_us(self):
        """CPU time the server has used since it started, in microseconds."""
        return self.cgroup.usage_us() if self.cgroup else tree_cpu_us(self.pid)

    def alive(self):
        return self.proc.poll() is None

    def why_dead(self):
        msg = f"exited with status {self.proc.returncode}"
        detail = tail(self.logpath) or tail(os.path.join(self.rundir, "error.log"))
        return msg + (f": {detail}" if detail else "")

    def stop(self):
        """SIGTERM to the server's own pid, then SIGKILL to what is left of its tree."""
        tree = []
        if self.alive():
            tree = [(p, read_stat(p)) for p in process_tree(self.pid)]
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log(f"pid {self.pid} ignored SIGTERM for {STOP_TIMEOUT:.0f}s: SIGKILL")
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        # Children the master left behind: same pid and same start time as before.
        deadline = time.monotonic() + STOP_TIMEOUT
        for pid, st in tree:
            if pid == self.pid or not st:
                continue
            while time.monotonic() < deadline:
                now = read_stat(pid)
                if not now or now[1] != st[1]:
                    break
                time.sleep(0.1)
            else:
                now = read_stat(pid)
                if now and now[1] == st[1]:
                    log(f"leftover child {pid}: SIGKILL")
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        if self.cgroup and not self.cgroup.remove():
            log(f"{self.cgroup.path}: processes survived SIGKILL; cgroup left in place")
        self.logf.close()


def wait_ready(server, port):
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if not server.alive():
            return server.why_dead()
        try:
            status, size, _ = http_get(port, SMALL_NAME, timeout=1.0)
            if status == 200 and size == SMALL_SIZE:
                return None
            last = f"GET /{SMALL_NAME}: status {status}, {size} bytes"
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    return f"not ready after {START_TIMEOUT:.0f}s ({last})"


def check_files(port):
    for name, size in ((SMALL_NAME, SMALL_SIZE), (LARGE_NAME, LARGE_SIZE)):
        try:
            status, got, _ = http_get(port, name, timeout=5.0)
        except OSError as e:
            return f"GET /{name}: {e}"
        if status != 200 or got != size:
            return f"GET /{name}: status {status}, {got} bytes (want 200, {size})"
    return None


# ---------------------------------------------------------------- clients


def client_cmd(tool, port, name, seconds, conns):
    url = f"http://127.0.0.1:{port}/{name}"
    if tool == "wrk":
        return ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "5s", "--latency", url]
    # -n is a ceiling (ab keeps per-request timings, so not unbounded); -t ends the run.
    # -n must follow -t, which would otherwise reset it to 50000.
    return ["ab", "-r", "-q", "-c", str(conns), "-t", str(seconds), "-n", str(min(60000 * seconds, 3_000_000)), url]


def run_client(cmd, cpu, seconds, outpath):
    """Run a client pinned to cpu; return (exit status, cpu seconds used, wall seconds)."""
    with open(outpath, "w") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            ["taskset", "-c", str(cpu)] + cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
        deadline = t0 + seconds + 60
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, ru = os.wait4(proc.pid, 0)
                proc.returncode = -9
                break
            time.sleep(0.05)
        wall = time.monotonic() - t0
    return proc.returncode, ru.ru_utime + ru.ru_stime, wall


UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(text):
    r = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+),", text)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    if m:
        r["p99_ms"] = float(m.group(1)) * UNIT_MS[m.group(2)]
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    detail = []
    if m:
        errors += sum(int(x) for x in m.groups())
        detail.append(m.group(0))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
        detail.append(m.group(0))
    r["errors"] = errors
    r["error_detail"] = "; ".join(detail)
    return r


def parse_ab(text):
    r = {}
    m = re.search(r"Complete requests:\s+(\d+)", text)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Requests per second:\s+([\d.]+)", text)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"^\s+99%\s+(\d+)", text, re.M)
    if m:
        r["p99_ms"] = float(m.group(1))
    errors, detail = 0, []
    m = re.search(r"Failed requests:\s+(\d+)(.*?)(?=\n\S)", text, re.S)
    if m:
        errors += int(m.group(1))
        if int(m.group(1)):
            detail.append("Failed requests: " + m.group(1) + " " + " ".join(m.group(2).split()))
    m = re.search(r"Non-2xx responses:\s+(\d+)", text)
    if m:
        errors += int(m.group(1))
        detail.append(m.group(0))
    r["errors"] = errors
    r["error_detail"] = "; ".join(detail)
    return r


# ---------------------------------------------------------------- main


def machine_info(build_dir):
    cpu = "?"
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first CPU's block is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    if "model name" in fields:
        # Family and model tell CPU generations apart where the name does not ("AMD EPYC").
        # Without PCID every switch between processes empties the TLB, which costs the
        # multi-process servers more than the single-process ones.
        pcid = "PCID" if "pcid" in fields.get("flags", "").split() else "no PCID"
        cpu = (f"{fields['model name']} (family {fields.get('cpu family', '?')}, "
               f"model {fields.get('model', '?')}, {pcid})")
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = f"{kib / 1048576:.1f} GiB"
    except OSError:
        pass
    debian = "?"
    try:
        with open("/etc/debian_version") as f:
            debian = f.read().strip()
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "debian": debian,
        "trident_commit": commit,
        "versions": {
            "trident": version_string([os.path.join(build_dir, "trident"), "-v"], r"Trident/(\S+)"),
            "apache": version_string(["apache2", "-v"], r"Apache/(\S+)", "apache2"),
            "nginx": version_string(["nginx", "-v"], r"nginx/(\S+)", "nginx"),
            "h2o": version_string(["h2o", "-v"], r"h2o version (\S+)", "h2o"),
            "lighttpd": version_string(["lighttpd", "-v"], r"lighttpd/(\S+)", "lighttpd"),
            "wrk": version_string(["wrk", "-v"], r"wrk (\S+)", "wrk"),
            "ab": version_string(["ab", "-V"], r"Version (\S+)", "apache2-utils"),
        },
    }


def merge_rounds(round_rows):
    """One row per server and test: the round with the median CPU µs per request (the lower
    middle one of an even count), carrying the range of every round, the errors of all of
    them, the largest PSS, and the first failure if any round failed."""
    groups = {}
    for r in round_rows:
        groups.setdefault((r["server"], r["mpm"], r["test"]), []).append(r)
    merged = []
    for group in groups.values():
        measured = sorted((r for r in group if r.get("cpu_us_per_req") is not None),
                          key=lambda r: r["cpu_us_per_req"])
        row = dict(measured[(len(measured) - 1) // 2] if measured else group[-1])
        row["rounds"] = len(group)
        row["cpu_us_per_req_rounds"] = [r.get("cpu_us_per_req") for r in group]
        row["rps_rounds"] = [r.get("rps") for r in group]
        if any("errors" in r for r in group):
            row["errors"] = sum(r.get("errors") or 0 for r in group)
        loaded = [r for r in group if r.get("pss_loaded_kib") is not None]
        if loaded:
            top = max(loaded, key=lambda r: r["pss_loaded_kib"])
            row["pss_loaded_kib"] = top["pss_loaded_kib"]
            row["processes_loaded"] = top.get("processes_loaded")
        failed = [r for r in group if "failed" in r]
        if failed:
            row["failed"] = f"round {failed[0].get('round', '?')}: {failed[0]['failed']}"
        details = [r["error_detail"] for r in group if r.get("error_detail")]
        if details:
            row["error_detail"] = details[0]
        merged.append(row)
    return merged


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    build_dir = os.path.abspath(sys.argv[1])
    docs_dir = os.path.abspath(sys.argv[2])
    seconds = env_int("BENCH_SECONDS", 5)
    warmup = env_int("BENCH_WARMUP", 1)
    rounds = env_int("BENCH_ROUNDS", 3)
    conns = env_int("BENCH_CONNECTIONS", 200)
    scpu = env_int("BENCH_SERVER_CPU", 0)
    ccpu = env_int("BENCH_CLIENT_CPU", 1)
    only = [s for s in os.environ.get("BENCH_SERVERS", "").split(",") if s]
    if seconds < 1:
        sys.exit("bench: BENCH_SECONDS must be at least 1")
    if rounds < 1:
        sys.exit("bench: BENCH_ROUNDS must be at least 1")
    if not os.access(os.path.join(build_dir, "trident"), os.X_OK):
        sys.exit(f"bench: no {build_dir}/trident; run `make build` first")
    cpus = sorted(os.sched_getaffinity(0))
    if scpu not in cpus or ccpu not in cpus:
        sys.exit(f"bench: cpus {scpu} (server) and {ccpu} (client) must be among {cpus}")
    if scpu == ccpu:
        log("warning: server and client share a cpu; numbers will not compare with a two-core run")
    # This script's own sampling runs beside the client, not on the server's core.
    os.sched_setaffinity(0, {ccpu})
    as_root = os.geteuid() == 0

    work = os.environ.get("BENCH_TMP") or tempfile.mkdtemp(prefix="trident-bench-")
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o755)
    docroot = os.path.join(work, "docroot")
    make_docroot(docroot)

    servers = server_list(build_dir)
    if only:
        servers = [s for s in servers if s[0] in only or f"{s[0]}-{s[1]}" in only]
    per_test = warmup + seconds + 2
    est = rounds * len(servers) * len(TESTS) * (per_test + 6)
    log(f"{rounds} rounds of {len(servers)} servers x {len(TESTS)} tests, {seconds}s each "
        f"(+{warmup}s warm-up): about {est // 60} min {est % 60} s; work folder {work}")

    info = machine_info(build_dir)
    # A server's CPU time: from a cgroup of its own where one can be made (root, and cgroup
    # v2), otherwise from its live threads' run times and its reaped children's (/proc).
    cpu_source = "cgroup" if cgroup_works() else "threads"
    if cpu_source == "threads":
        log("no cgroup v2 of our own here (run as root for one): server CPU time from each "
            "live thread's schedstat and the reaped children's cutime/cstime")
    info.update(seconds=seconds, warmup=warmup, rounds=rounds, connections=conns,
                server_cpu=scpu, client_cpu=ccpu, as_root=as_root, work=work,
                cpu_source=cpu_source)
    # "round_rows": every measurement; "rows": one per server and test, merged over rounds.
    results = {"machine": info, "servers": [], "rows": [], "round_rows": []}
    # Seconds this run may spend, in all, waiting for another job to leave the cpus alone.
    quiet_budget = [float(env_int("BENCH_QUIET_WAIT", 120))]
    started_at = time.monotonic()

    current = None

    def add_rows(rows):
        results["round_rows"] += rows
        results["rows"] = merge_rounds(results["round_rows"])

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)

    def measure(rnd, name, mpm, kind, test):
        """Starts one server afresh, runs `test` against it, stops it."""
        nonlocal current
        tid, tool, fname, tlabel = test
        label = f"{name}-{mpm}" if mpm else name
        rundir = os.path.join(work, label, f"round{rnd}", tid)
        shutil.rmtree(rundir, ignore_errors=True)
        os.makedirs(rundir)
        os.chmod(rundir, 0o755)
        if as_root:
            # lighttpd and h2o open their logs after switching to www-data.
            shutil.chown(rundir, "www-data", "www-data")
        port = free_port()
        # The first start of a server stands for it in the report.
        entry = next((e for e in results["servers"] if e["label"] == label), None)
        if entry is None:
            entry = {"server": name, "mpm": mpm, "label": label, "port": port}
            results["servers"].append(entry)
        first = "command" not in entry
        rows = []

        def fail(reason):
            log(f"{label}: FAILED: {reason}")
            for e in results["servers"]:  # the entry the report shows
                if e["label"] == label:
                    e.setdefault("failed", f"round {rnd}: {reason}")
            rows.append({"server": name, "mpm": mpm, "test": tid, "test_label": tlabel,
                         "round": rnd, "failed": reason})

        try:
            cmd = server_setup(name, kind, mpm, port, rundir, docroot, build_dir, as_root)
        except (OSError, RuntimeError) as e:
            fail(f"config: {e}")
            add_rows(rows)
            return
        if first:
            entry["command"] = ["taskset", "-c", str(scpu)] + cmd
        log(f"{label}: round {rnd}: starting on 127.0.0.1:{port}: {' '.join(cmd)}")
        try:
            cgroup = f"trident-bench-{os.getpid()}-{label}-{rnd}-{tid}" if cpu_source == "cgroup" else None
            current = Server(cmd, scpu, os.path.join(rundir, "stdout.log"), rundir, cgroup)
        except OSError as e:
            fail(f"start: {e}")
            add_rows(rows)
            return
        try:
            why = wait_ready(current, port) or check_files(port)
            if why:
                fail(why)
                return
            time.sleep(2)  # let a prefork pool reach its start size
            pss_idle = tree_pss_kib(current.pid)
            processes_idle = len(process_tree(current.pid))
            if first:
                entry["pss_idle_kib"] = pss_idle
                entry["processes_idle"] = processes_idle
                entry["server_header"] = http_get(port, SMALL_NAME)[2]
            row = {"server": name, "mpm": mpm, "test": tid, "test_label": tlabel,
                   "round": rnd, "tool": tool, "port": port, "pss_idle_kib": pss_idle,
                   "processes_idle": processes_idle}
            rows.append(row)
            if not current.alive():
                row["failed"] = "server died: " + current.why_dead()
                log(f"{label} {tid}: {row['failed']}")
                return
            if warmup > 0:
                run_client(client_cmd(tool, port, fname, warmup, conns), ccpu, warmup,
                           os.path.join(rundir, f"{tid}.warmup.txt"))
            busy = quiet_wait([scpu, ccpu], quiet_budget)
            if max(busy) >= 10.0:
                log(f"{label} {tid}: cpus not quiet before the run "
                    f"({', '.join(f'{b:.0f}%' for b in busy)} busy): measuring anyway")
            cmd = client_cmd(tool, port, fname, seconds, conns)
            row["command"] = ["taskset", "-c", str(ccpu)] + cmd
            out = os.path.join(rundir, f"{tid}.txt")
            sampler = PssSampler(current.pid)
            cpu0 = current.cpu_us()
            cores0 = core_times(scpu), core_times(ccpu)
            sampler.start()
            status, client_cpu_s, wall = run_client(cmd, ccpu, seconds, out)
            cpu1 = current.cpu_us()
            cores1 = core_times(scpu), core_times(ccpu)
            row["server_core_busy_pct"], row["server_core_softirq_pct"] = core_busy(cores0[0], cores1[0])
            row["client_core_busy_pct"], row["client_core_softirq_pct"] = core_busy(cores0[1], cores1[1])
            # CPU on either core that is neither ours nor softirq: another job's.
            row["other_load_pct"] = max(
                (row["server_core_busy_pct"] or 0) - (row["server_core_softirq_pct"] or 0)
                - 100.0 * (cpu1 - cpu0) / 1e6 / wall,
                (row["client_core_busy_pct"] or 0) - (row["client_core_softirq_pct"] or 0)
                - 100.0 * client_cpu_s / wall,
                0.0)
            row["pss_loaded_kib"] = max(sampler.finish(), tree_pss_kib(current.pid))
            row["processes_loaded"] = len(process_tree(current.pid))
            with open(out, errors="replace") as f:
                text = f.read()
            parsed = parse_wrk(text) if tool == "wrk" else parse_ab(text)
            row.update(parsed)
            row["client_cpu_pct"] = 100.0 * client_cpu_s / wall if wall else 0.0
            row["server_cpu_us"] = cpu1 - cpu0
            if parsed.get("requests"):
                row["cpu_us_per_req"] = (cpu1 - cpu0) / parsed["requests"]
                # Server CPU share of one core over the client's run.
                row["server_cpu_pct"] = 100.0 * (cpu1 - cpu0) / 1e6 / wall
            if status != 0 or "rps" not in parsed:
                row["failed"] = f"{tool} exited {status}: " + " | ".join(text.strip().splitlines()[-3:])
            if not current.alive():
                row["failed"] = "server died: " + current.why_dead()
            log(f"{label} {tid} #{rnd}: {row.get('rps', 0):.0f} req/s, p99 {row.get('p99_ms', 0):.2f} ms, "
                f"errors {row.get('errors', '?')}, {row.get('cpu_us_per_req', 0):.1f} us/req, "
                f"PSS {row['pss_loaded_kib'] / 1024:.1f} MiB; cpu{scpu} {row['server_core_busy_pct'] or 0:.0f}% busy "
                f"(server tree {row.get('server_cpu_pct', 0):.0f}%), cpu{ccpu} {row['client_core_busy_pct'] or 0:.0f}% "
                f"(client {row['client_cpu_pct']:.0f}%)"
                + (f"; other load {row['other_load_pct']:.0f}%" if row["other_load_pct"] >= 10 else "")
                + (f"  FAILED: {row['failed']}" if "failed" in row else ""))
        finally:
            current.stop()
            current = None
            add_rows(rows)
            with open(os.path.join(work, "results.json"), "w") as f:
                json.dump(results, f, indent=1)

    try:
        # Test by test, every server in turn: the machine's speed drifts from one minute to
        # the next, so two servers compared on one test are measured close together. The
        # even rounds go in reverse order, so that a drift within a test's minute favours
        # neither the servers measured first nor those measured last.
        for rnd in range(1, rounds + 1):
            order = servers if rnd % 2 == 1 else servers[::-1]
            for test in TESTS:
                for name, mpm, kind in order:
                    measure(rnd, name, mpm, kind, test)
    except KeyboardInterrupt:
        log("interrupted: stopping the server under test")
        if current:
            current.stop()
        sys.exit(130)

    results["machine"]["elapsed_s"] = round(time.monotonic() - started_at)
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    log(f"measured in {results['machine']['elapsed_s']} s; results in {work}/results.json")
    rc = subprocess.run([sys.executable, os.path.join(HERE, "report.py"),
                         os.path.join(work, "results.json"), docs_dir]).returncode
    sys.exit(rc)


if __name__ == "__main__":
    main()
