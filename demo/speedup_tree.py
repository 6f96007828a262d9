"""speedup_tree - a daemon measured whole: its process tree, read from /proc.

A daemon under test is rarely one process: apache2 runs its workers in
children of the parent we started, redis forks for BGSAVE and for AOF
rewrites, MariaDB's install script starts the server it bootstraps. What a
user pays for is the whole tree, so what demo/speedup --cmd and tools/compat
report is summed over it:

  threads   /proc/P/status Threads, summed: OS threads, the figure the shim
            is meant to shrink (green threads are not OS threads);
  rss       VmRSS, summed (shared pages of forked children count once per
            process, as ps and top count them: an upper bound);
  kernel    the kernel's memory that belongs to the tree and can be read
            per process: page tables (VmPTE) and one kernel stack per OS
            thread (THREAD_SIZE, 16 KiB on x86_64 and arm64). Socket
            buffers and other slab objects are not attributed per process
            by Linux; demo/speedup's --mem mode measures them system-wide;
  cpu       utime + stime of every live member, plus cutime + cstime
            (children it has already reaped: a BGSAVE child that has
            exited is still counted, in its parent).

The tree is found from /proc/P/task/T/children (every thread's children:
a child forked by a non-main thread is listed under that thread), walked
down from the root; when the kernel lacks that file (CONFIG_PROC_CHILDREN),
from every process's parent in /proc/*/stat. Every read tolerates a process
that has just exited: the sample is then of what is still there.

Rejected: psutil (not in the standard library, and the shim's tools must run
on a bare Debian); summing PSS from smaps_rollup (exact for shared pages, but
reading it walks every mapping and takes milliseconds per process, which
perturbs what it measures when sampled ten times a second).
"""

import os
import threading
import time

KSTACK_KIB = 16
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _children_from_tasks(pid):
    """Children of every thread of pid, or None when the file is missing."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(k) for k in f.read().split())
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue
            return None
        except (OSError, ValueError):
            continue
    return out


def _ppid_map():
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(name))
    return kids


def tree_pids(pid):
    """pid and every descendant of it that is alive (or a zombie)."""
    out, todo, seen, kids = [], [pid], set(), None
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        out.append(p)
        ch = _children_from_tasks(p) if kids is None else None
        if ch is None:
            if kids is None:
                kids = _ppid_map()
            ch = kids.get(p, [])
        todo.extend(ch)
    return out


def proc_sample(pid):
    """{threads, rss, pte (KiB), cpu (s)} of one process, or None if gone."""
    out = {"threads": 0, "rss": 0, "pte": 0, "cpu": 0.0}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key == "Threads":
                    out["threads"] = int(val.split()[0])
                elif key == "VmRSS":
                    out["rss"] = int(val.split()[0])
                elif key == "VmPTE":
                    out["pte"] = int(val.split()[0])
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out["cpu"] = sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return None
    return out


def tree_sample(pid):
    """The tree under pid, summed: procs, threads, rss, kernel (KiB), cpu (s).
    None when pid itself is gone."""
    total = {"procs": 0, "threads": 0, "rss": 0, "kernel": 0, "cpu": 0.0}
    for p in tree_pids(pid):
        s = proc_sample(p)
        if s is None:
            if p == pid:
                return None
            continue
        total["procs"] += 1
        total["threads"] += s["threads"]
        total["rss"] += s["rss"]
        total["kernel"] += s["pte"] + s["threads"] * KSTACK_KIB
        total["cpu"] += s["cpu"]
    return total


class TreeSampler:
    """Samples the trees of the roots it is given every period seconds, in a
    thread of its own, and keeps the peaks (threads, rss, kernel, procs)
    and the last sample of each root. add()/remove() while it runs."""

    KEYS = ("procs", "threads", "rss", "kernel")

    def __init__(self, period=0.1):
        self.period = period
        self.roots = []
        self.peak = dict.fromkeys(self.KEYS, 0)
        self.last = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def add(self, pid):
        with self._lock:
            self.roots.append(pid)
        self.sample()

    def remove(self, pid):
        self.sample()
        with self._lock:
            if pid in self.roots:
                self.roots.remove(pid)

    def sample(self):
        with self._lock:
            roots = list(self.roots)
        for r in roots:
            s = tree_sample(r)
            if s is None:
                continue
            with self._lock:
                self.last[r] = s
                for k in self.KEYS:
                    self.peak[k] = max(self.peak[k], s[k])

    def _run(self):
        while not self._stop.wait(self.period):
            self.sample()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)


def cpu_of(pid):
    """CPU seconds of the tree under pid so far (0.0 when gone)."""
    s = tree_sample(pid)
    return s["cpu"] if s else 0.0


if __name__ == "__main__":
    import json
    import sys
    for a in sys.argv[1:]:
        print(a, json.dumps(tree_sample(int(a))))
    if len(sys.argv) < 2:
        time.sleep(0)
        print(json.dumps(tree_sample(os.getpid())))
