#!/usr/bin/env python3
"""A benchmarked server's CPU time, for tests/bench/bench.py and access_log_cost.sh.

Exact where the server can run in a cgroup v2 of its own (root, and a cgroup2 mount): that
cgroup's cpu.stat usage_usec. Otherwise the run time of its tree's live threads plus its
reaped children's (tree_cpu_us). As a command, for the shell script:

  cpu_time.py make NAME              a new cgroup NAME, if one can be had here: prints its
                                     path, or nothing
  cpu_time.py run-in PATH CMD...     join cgroup PATH, then exec CMD (same pid)
  cpu_time.py usage PATH             microseconds of CPU so far of cgroup PATH
  cpu_time.py usage - PID            ... or of the process tree of PID
  cpu_time.py remove PATH...         remove cgroups, killing what is left in them
"""

import os
import signal
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (the first is field 3, state),
    or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()


def read_stat(pid):
    """(ppid, starttime) of a process, or None."""
    fields = stat_fields(pid)
    # ppid is field 4, starttime field 22.
    return (int(fields[1]), int(fields[19])) if fields else None


def process_tree(root):
    """Pids of root and all its descendants that are alive now."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = read_stat(int(name))
        if st:
            children.setdefault(st[0], []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    return [p for p in out if os.path.exists(f"/proc/{p}")]


def threads_run_ns(pid):
    """The kernel's exact run time of every live thread of a process, in nanoseconds, or
    None when it cannot be read (no such process, or a kernel without schedstat files)."""
    total, read = 0, False
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
                read = True
        except (OSError, ValueError, IndexError):
            pass  # the thread has just exited
    return total if read else None


def tree_cpu_us(root):
    """CPU time of the live tree and of the children it has reaped, in microseconds: the
    fallback when no cgroup can be had.

    Each live process counts the exact run time of its live threads (schedstat). A child
    that exits and is reaped during the run moves its time into its parent's cutime and
    cstime, so it keeps counting, in 10 ms units. What this misses is a thread that exits
    while its process lives on. utime and stime are the last resort, where schedstat
    cannot be read: in 10 ms units per process, they undercount a server of many."""
    ticks, ns = 0, 0
    for pid in process_tree(root):
        fields = stat_fields(pid)
        if not fields:
            continue
        # utime, stime, cutime, cstime are fields 14..17 (here 11..14).
        own, reaped = int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])
        run = threads_run_ns(pid)
        if run is None:
            ticks += own
        else:
            ns += run
        ticks += reaped
    return ticks * 1_000_000 // CLK_TCK + ns // 1000


# ---------------------------------------------------------------- a cgroup of its own


def cgroup2_mount():
    """Where a cgroup v2 hierarchy is mounted (the whole of /sys/fs/cgroup, or systemd's
    hybrid "unified" one beside the v1 controllers), or None."""
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and parts[2] == "cgroup2":
                    return parts[1]
    except OSError:
        pass
    return None


class CpuGroup:
    """A cgroup v2 of one server's own, for its CPU time.

    /proc/PID/stat counts in clock ticks (10 ms), and a server of many processes, each of
    which runs 10-25 ms in a 5-second test, loses much of its time there: Trident's
    prefork with 200 children under wrk's 1 MiB keep-alive test summed to 1.76 s there,
    against 2.67 s from the kernel's exact per-thread run times. A cgroup's usage_usec is
    exact, and counts every process and thread that ran in it, exited ones included; the
    fallback, tree_cpu_us(), misses threads that exit while their process lives on.
    cpu.stat exists in every v2 cgroup whether or not the cpu controller is enabled. The
    cgroup is made at the top of the hierarchy, so limits set on the bench's own cgroup
    (cpuset, cpu.max, memory.max) do not reach the server."""

    def __init__(self, path):
        self.path = path
        self.procs = os.path.join(path, "cgroup.procs")

    @staticmethod
    def make(name):
        """A new empty cgroup, or None when this machine or user cannot have one."""
        root = cgroup2_mount()
        if not root:
            return None
        path = os.path.join(root, name)
        try:
            os.mkdir(path)
        except OSError:
            return None
        return CpuGroup(path)

    def usage_us(self):
        with open(os.path.join(self.path, "cpu.stat")) as f:
            for line in f:
                key, value = line.split()
                if key == "usage_usec":
                    return int(value)
        raise OSError(f"{self.path}/cpu.stat: no usage_usec")

    def wrap(self, argv):
        """argv run by `cpu_time.py run-in`, which moves itself into the cgroup, then execs
        argv (same pid): every process the server forks starts inside it."""
        return [sys.executable, os.path.abspath(__file__), "run-in", self.path] + argv

    def remove(self, timeout=5.0):
        """rmdir, once the last process has exited. A process still there after `timeout`
        (one the server's stop left behind, reparented out of its tree) is killed first:
        through cgroup.kill where the kernel has it (5.14), else pid by pid."""
        deadline = time.monotonic() + timeout
        killed = False
        while True:
            try:
                os.rmdir(self.path)
                return True
            except FileNotFoundError:
                return True
            except OSError:
                if time.monotonic() > deadline:
                    if killed:
                        return False
                    self.kill_all()
                    killed = True
                    deadline = time.monotonic() + 2.0
                time.sleep(0.1)

    def kill_all(self):
        try:
            with open(os.path.join(self.path, "cgroup.kill"), "w") as f:
                f.write("1")
            return
        except OSError:
            pass
        try:
            with open(self.procs) as f:
                pids = [int(x) for x in f.read().split()]
        except OSError:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def cgroup_works():
    """Whether a process can be moved into a cgroup of our own here (root, and a writable
    cgroup v2 hierarchy): the same move every server start makes."""
    group = CpuGroup.make(f"trident-bench-probe-{os.getpid()}")
    if not group:
        return False
    try:
        ok = subprocess.run(group.wrap(["true"]), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        return ok and group.usage_us() >= 0
    except OSError:
        return False
    finally:
        group.remove()


def main(argv):
    if len(argv) >= 2 and argv[0] == "make":
        group = CpuGroup.make(argv[1]) if cgroup_works() else None
        print(group.path if group else "")
        return 0
    if len(argv) >= 3 and argv[0] == "run-in":
        with open(os.path.join(argv[1], "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
        # Python ignores SIGPIPE and SIGXFSZ; an exec'ed program would inherit that.
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL)
        os.execvp(argv[2], argv[2:])
    if len(argv) == 2 and argv[0] == "usage" and argv[1] != "-":
        print(CpuGroup(argv[1]).usage_us())
        return 0
    if len(argv) == 3 and argv[0] == "usage" and argv[1] == "-":
        print(tree_cpu_us(int(argv[2])))
        return 0
    if argv and argv[0] == "remove":
        status = 0
        for path in argv[1:]:
            if not CpuGroup(path).remove():
                print(f"{path}: processes survived SIGKILL; cgroup left in place", file=sys.stderr)
                status = 1
        return status
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
