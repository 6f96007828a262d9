#!/usr/bin/env python3
"""run_diff.py - the differential suite: every case natively and under the shim.

    run_diff.py --prog BUILD/tests/diff/diffcases --lib BUILD/preload/libgreen.so
                [--known tests/diff/known.txt] [--readme README]
                [--filter SUBSTR] [--jobs N] [--timeout S] [--verbose]
    run_diff.py --print-known --known tests/diff/known.txt

Each case (see tests/diff/diff.h) runs in three places, each natively and
with LD_PRELOAD=libgreen.so, each in a fresh process: on the main thread
("main"), inside a pthread that under the shim shares main's OS thread
("thread": a thread of main's hub) and inside a pthread on another OS
thread than main's ("other":
under the shim a thread of another hub; skipped when GREEN_HUBS=1, where
there is no other hub). The outputs of the native and the shim run of the
same place are compared line by line, together with how the process ended
(exit code, signal, or HANG after --timeout seconds).

A place that differs and is not listed runs again, both ways, up to
twice: it passes if a pair matches (printed as "flaky:", never hidden),
since a process that loses the CPU at the wrong moment changes a timed
case natively as much as under the shim; a real difference fails.

Before any case, `diffcases probe` must say that read and pthread_create
resolve to libc natively and to libgreen under the shim: otherwise the
comparison would prove nothing.

known.txt lists the cases that legitimately differ, one a line:
    CASE [main|thread|other]: reason
(no place = every place). A listed case that differs in none of its places fails
the run ("stale"), so the list stays true; with --readme, every line of it
must stand in README's "Known differences", word for word (wrapped as you
like: white space is folded before comparing).

Exit status 0 when every difference is known; the closing line reads
"diff: N passed, N failed".
"""
import argparse
import concurrent.futures as cf
import difflib
import os
import signal
import subprocess
import sys


PLACES = ("main", "thread", "other")


def run_one(prog, case, mode, lib, timeout):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if lib:
        env["LD_PRELOAD"] = lib
    try:
        p = subprocess.Popen([prog, "run", case, mode], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             env=env, start_new_session=True)
    except OSError as e:
        return ["spawn failed: %s" % e], ""
    try:
        out, err = p.communicate(timeout=timeout)
        status = ("exit %d" % p.returncode if p.returncode >= 0
                  else "signal %s" % signal.Signals(-p.returncode).name)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        status = "HANG"
    # Reap anything the case left in its session (children of a crashed case).
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    lines = out.decode(errors="replace").splitlines()
    lines.append("[%s]" % status)
    return lines, err.decode(errors="replace")


def load_known(path):
    known = {}
    if not path or not os.path.exists(path):
        return known, []
    raw = []
    for n, line in enumerate(open(path), 1):
        s = line.rstrip("\n")
        if not s.strip() or s.lstrip().startswith("#"):
            continue
        if ":" not in s:
            sys.exit("%s:%d: expected 'CASE [main|thread|other]: reason'" % (path, n))
        head, reason = s.split(":", 1)
        parts = head.split()
        case = parts[0]
        modes = parts[1:] or list(PLACES)
        for m in modes:
            if m not in PLACES:
                sys.exit("%s:%d: place must be main, thread or other" % (path, n))
            known[(case, m)] = reason.strip()
        raw.append(s)
    return known, raw


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prog")
    ap.add_argument("--lib")
    ap.add_argument("--known")
    ap.add_argument("--readme")
    ap.add_argument("--filter", default="")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--print-known", action="store_true")
    a = ap.parse_args()

    known, raw = load_known(a.known)
    if a.print_known:
        for s in raw:
            print("    " + s)
        return 0
    if not a.prog or not a.lib:
        ap.error("--prog and --lib are required")

    probe_native = subprocess.run([a.prog, "probe"], capture_output=True, text=True,
                                  env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"})
    probe_shim = subprocess.run([a.prog, "probe"], capture_output=True, text=True,
                                env=dict(os.environ, LD_PRELOAD=a.lib))
    # Natively the calls reach libc (or, in a sanitizer build, the
    # sanitizer's interceptors in front of it).
    if probe_native.stdout.strip() not in ("read=libc pthread_create=libc",
                                           "read=sanitizer pthread_create=sanitizer") or \
       probe_shim.stdout.strip() != "read=libgreen pthread_create=libgreen":
        print("diff: the shim is not in charge (or native is not native):")
        print("  native: %r\n  shim:   %r %s" % (probe_native.stdout, probe_shim.stdout,
                                              probe_shim.stderr[-500:]))
        print("diff: 0 passed, 1 failed")
        return 1

    cases = subprocess.run([a.prog, "list"], capture_output=True, text=True,
                           check=True).stdout.split()
    cases = [c for c in cases if a.filter in c]
    places = [m for m in PLACES if m != "other" or os.environ.get("GREEN_HUBS") != "1"]
    jobs = [(c, m) for c in cases for m in places]

    flaky = []

    def work(job):
        c, m = job
        nat, nerr = run_one(a.prog, c, m, None, a.timeout)
        shim, serr = run_one(a.prog, c, m, a.lib, a.timeout)
        # A place that differs and is not a known difference runs again,
        # natively and under the shim, up to twice; it passes if a pair
        # matches, and is reported as flaky either way. The cases time
        # waits against alarms and sleeps: on a loaded machine a process
        # that loses the CPU for tens of milliseconds at the wrong moment
        # (between arming an alarm and the wait it must interrupt) changes
        # the result natively as much as under the shim. A real difference
        # comes back on every try and fails.
        tries = 0
        first = None
        while nat != shim and (c, m) not in known and tries < 2:
            tries += 1
            if first is None:
                first = next((x for x in difflib.unified_diff(nat, shim, lineterm="", n=0)
                              if x[:1] in "+-" and x[:3] not in ("---", "+++")), "?")
            nat2, nerr2 = run_one(a.prog, c, m, None, a.timeout)
            shim2, serr2 = run_one(a.prog, c, m, a.lib, a.timeout)
            if nat2 == shim2:
                flaky.append((c, m, tries, first))
                nat, nerr, shim, serr = nat2, nerr2, shim2, serr2
                break
        return c, m, nat, shim, nerr, serr
    passed = failed = knownc = skipped = 0
    sanitized = bool(os.environ.get("GREEN_SANITIZED"))
    bad, stale = [], []
    listed_same, differs_known = {}, set()
    with cf.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        for c, m, nat, shim, nerr, serr in ex.map(work, jobs):
            same = nat == shim
            # A case may end in a signal (the comparison covers it), but
            # natively it must neither hang nor fail.
            native_ok = nat[-1] == "[exit 0]" or nat[-1].startswith("[signal")
            k = known.get((c, m))
            if sanitized and ("Sanitizer" in nerr or "runtime error:" in nerr or
                              nat[-1] == "[HANG]"):
                # The sanitizer's own interceptors reject what the case does
                # on purpose (a bad pointer for EFAULT), or its runtime hangs
                # natively (a lock of its own held across fork): nothing to
                # compare.
                skipped += 1
                if a.verbose:
                    print("skip   %s %s: the sanitizer stops it natively" % (c, m))
                continue
            if not native_ok:
                bad.append((c, m, "the case itself fails natively", nat, shim, nerr))
                failed += 1
            elif same and k is None:
                passed += 1
                if a.verbose:
                    print("same   %s %s" % (c, m))
            elif same:
                # Listed but the same here: fine if it differs in another
                # listed place (a hub made earlier or later, as in a
                # sanitizer build, moves some differences between places).
                passed += 1
                listed_same.setdefault(c, []).append(m)
            elif k is not None:
                differs_known.add(c)
                knownc += 1
                passed += 1
                if a.verbose:
                    print("known  %s %s: %s" % (c, m, k))
            else:
                bad.append((c, m, "differs", nat, shim, serr))
                failed += 1
    for c, m, why, nat, shim, err in bad:
        print("\n=== %s [%s]: %s" % (c, m, why))
        for line in difflib.unified_diff(nat, shim, "native", "shim", lineterm="", n=2):
            print("  " + line)
        if err.strip():
            print("  stderr: " + err.strip()[-800:].replace("\n", "\n  stderr: "))
    for c, m, n, first in flaky:
        print("flaky: %s [%s] differed (%s) and matched on retry %d of 2" % (c, m, first, n))
    for c, places in sorted(listed_same.items()):
        if c not in differs_known and all(m in places for (kc, m) in known if kc == c):
            stale.append((c, "/".join(places)))
            # The plain build keeps the list true; a sanitizer build makes
            # the hub at start-up, which removes some differences.
            if not sanitized:
                failed += 1
    for c, m in stale:
        print("stale: %s [%s] is listed in known.txt but no longer differs" % (c, m))
    if a.readme and raw:
        # Compared with white space folded: README wraps the lines.
        text = " ".join(open(a.readme).read().split())
        for s in raw:
            if " ".join(s.split()) not in text:
                print("README: known difference not documented word for word: %s" % s)
                failed += 1
    print("\ndiff: %d cases, %d places compared; %d differ as documented in known.txt"
          % (len(cases), len(jobs), knownc))
    if skipped:
        print("diff: %d places skipped: the sanitizer's runtime stops them natively"
              % skipped)
    print("diff: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
