# libgreen-gdb.py - gdb commands for libgreen green threads.
#
#   info green [all]     green threads of the selected OS thread (or of every
#                        OS thread): id, name, state, what each waits on
#   green bt ID [ARGS]   backtrace of green thread ID; ARGS go to `bt`
#                        (e.g. `green bt 5 full`)
#   green bt all [ARGS]  backtraces of every green thread
#   green list [all]     same as info green
#
# Installed next to libgreen.so for gdb's auto-load (see docs/debugging.md);
# or load it by hand with `source /path/to/libgreen-gdb.py`.
#
# How it finds the threads. libgreen records every hub (struct green__ctx)
# with the kernel tid of its OS thread in the array green__ctx_slots
# (libgreen/monitor.c); each ctx lists its green threads through
# ctx->all / thread->all_next. Reading a plain global needs only libgreen's
# debug info, not libthread_db (which the TLS variable green__tls_ctx would
# need). A stripped libgreen has neither: build with -g (meson's default
# debugoptimized does).
#
# Without debug info (--buildtype=release, a stripped package) the struct
# layouts are unknown, so `info green` falls back to the one exported
# entry point that walks them: it calls green_dump(fd) in the live inferior,
# on each OS thread it lists, into a memfd that we read back through
# /proc/PID/fd (no malloc in the inferior: the memfd's name is an empty
# string, any NUL byte of green_dump's own code; the other threads stay
# stopped: scheduler-locking is on for the call). `green bt` needs a parked
# thread's saved stack pointer, which green_dump does not print: it says
# so and asks for debug info. A core file without debug info gets that
# message for both commands.
#
# How `green bt` works. A parked green thread is not an OS thread: gdb
# knows nothing about its stack. Its saved stack pointer (thread->sp)
# points at the frame green__ctx_switch pushed (libgreen/arch/x86_64.S:
# [sp] MXCSR + x87 CW, then r15 r14 r13 r12 rbx rbp, then the return
# address). We save the registers of the OS thread that owns the green
# thread, load the parked thread's callee-saved registers, stack pointer
# and pc as green__ctx_switch would on resume, run `bt`, and put every
# register back, whatever happens. This only makes sense while the process
# is stopped, and it never resumes it. The running green thread of an OS
# thread is that OS thread's own stack: plain `bt` on that gdb thread.
#
# Rejected: unwinding the green stack ourselves (gdb's unwinder handles
# inlined frames, CFI and signal frames; ours would not); a frame
# unwinder/sniffer plugin (gdb cannot splice a second stack into one
# thread's frame chain).

import re
import struct
import time

import gdb

_SLOTS_MAX = 1024
_THREADS_MAX = 100000

# x86_64.S / aarch64.S frame layouts: (frame size in bytes, register names
# by 8-byte word; None = not a general register), word index of the return
# address, and the stack-pointer / pc names.
_LAYOUTS = {
    "x86_64": dict(
        words=[None, "r15", "r14", "r13", "r12", "rbx", "rbp"],
        ret=7, size=64, sp="rsp", pc="rip",
        save=["rip", "rsp", "rbp", "rbx", "r12", "r13", "r14", "r15"]),
    "aarch64": dict(
        words=["x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26",
               "x27", "x28", "x29"],
        ret=11, size=176, sp="sp", pc="pc",
        save=["pc", "sp", "x19", "x20", "x21", "x22", "x23", "x24", "x25",
              "x26", "x27", "x28", "x29", "x30"]),
}


def _arch():
    name = gdb.selected_inferior().architecture().name()
    if "x86-64" in name or "x86_64" in name:
        return "x86_64"
    if "aarch64" in name:
        return "aarch64"
    return None


def _short(value, prefix):
    s = str(value)
    return s[len(prefix):].lower() if s.startswith(prefix) else s


def _has_debug_info():
    """True when gdb knows libgreen's structures (DWARF of libgreen)."""
    try:
        gdb.lookup_type("struct green__ctx")
        return True
    except gdb.error:
        return False


def _has_symbol(name):
    try:
        gdb.parse_and_eval("&" + name)
        return True
    except gdb.error:
        return False


_NO_DEBUG = ("libgreen was built without debug info (e.g. --buildtype=release "
             "or a stripped package): %s needs it; build libgreen with -g "
             "(meson's default buildtype debugoptimized does)")


def _slots():
    """Yield (tid, ctx) for every recorded hub whose OS thread is alive."""
    try:
        n = int(gdb.parse_and_eval("green__ctx_nslots"))
        arr = gdb.parse_and_eval("green__ctx_slots")
        arr[0]["tid"]
    except gdb.error:
        if _has_symbol("green_dump"):
            raise gdb.GdbError("libgreen: " + _NO_DEBUG % "this command")
        raise gdb.GdbError("libgreen: no green__ctx_slots here: libgreen is "
                           "not loaded yet")
    live = {t.ptid[1] for t in gdb.selected_inferior().threads()}
    for i in range(min(n, _SLOTS_MAX)):
        tid = int(arr[i]["tid"])
        ctx = arr[i]["ctx"]
        if tid > 0 and int(ctx) != 0 and tid in live:
            yield tid, ctx


def _threads(ctx):
    """Yield the green threads of ctx (bounded walk of ctx->all)."""
    t = ctx["all"]
    for _ in range(_THREADS_MAX):
        if int(t) == 0:
            return
        yield t
        t = t["all_next"]


def _describe(t):
    why = _short(t["why"], "GREEN_WHY_")
    arg = int(t["why_arg"])
    if why == "fd":
        mask = arg >> 32
        return "fd %d %s" % (arg & 0xffffffff,
                             {1: "read", 2: "write"}.get(mask, "read+write"))
    if why == "poll" and arg:
        return "poll of %d fds" % arg
    if why == "file_lock":
        return "file lock of fd %d" % arg
    if why == "ipc":
        kinds = {1: "semop of set", 2: "msgsnd to queue", 3: "msgrcv from queue",
                 4: "mq_send to fd", 5: "mq_receive from fd"}
        return "%s %d" % (kinds.get(arg >> 32, "?"), arg & 0xffffffff)
    if why == "join" and arg:
        other = gdb.Value(arg).cast(t.type)
        return "join of %d" % int(other["id"])
    if why == "cond":
        why = "condvar"
    if arg and why != "sleep":
        return "%s 0x%x" % (why, arg)
    return why


def _line(ctx, t, now):
    state = _short(t["state"], "GREEN_")
    s = "%6d  %-20s %-8s" % (int(t["id"]), t["name"].string(), state)
    if state == "parked":
        s += " on " + _describe(t)
        if now is not None and int(t["park_since"]) > 0:
            s += " for %.3f s" % ((now - int(t["park_since"])) / 1e9)
    if int(t) == int(ctx["current"]):
        s += " (current)"
    return s


def _is_live():
    """True for a running process (not a core file, not an exec file)."""
    inf = gdb.selected_inferior()
    if inf.pid == 0:
        return False
    conn = getattr(inf, "connection", None)
    if conn is not None:
        return conn.type != "core"
    return "core file" not in gdb.execute("info target", to_string=True)


def _now():
    # The inferior's green_now() is CLOCK_MONOTONIC of this machine; a core
    # file has no "now".
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) if _is_live() else None


def _selected_lwp():
    th = gdb.selected_thread()
    return th.ptid[1] if th else None


_DUMP_LINE = re.compile(
    r"^\s+(\d+)\s+(.*?)\s+(new|runnable|running|parked|done)\b\s*(.*)$")
_MFD_CLOEXEC = 1


def _call_locked(expr):
    """Evaluate expr (an inferior call) with the other threads kept stopped."""
    old = gdb.parameter("scheduler-locking")
    gdb.execute("set scheduler-locking on", to_string=True)
    try:
        return gdb.parse_and_eval(expr)
    finally:
        gdb.execute("set scheduler-locking %s" % old, to_string=True)


def _green_dump_text():
    """Run green_dump() on the selected OS thread into a memfd; its text."""
    inf = gdb.selected_inferior()
    addr = int(gdb.parse_and_eval("(unsigned long)&green_dump"))
    nul = bytes(inf.read_memory(addr, 256)).find(b"\0")
    if nul < 0:
        raise gdb.GdbError("libgreen: no NUL byte for a memfd name")
    fd = int(_call_locked("(int)memfd_create((const char *)%d, %d)" %
                          (addr + nul, _MFD_CLOEXEC)))
    if fd < 0:
        raise gdb.GdbError("libgreen: memfd_create failed in the inferior")
    try:
        _call_locked("((void (*)(int))green_dump)(%d)" % fd)
        with open("/proc/%d/fd/%d" % (inf.pid, fd), "rb") as f:
            return f.read().decode(errors="replace")
    finally:
        _call_locked("(int)close(%d)" % fd)


def _info_green_from_dump(want_all):
    if not _is_live():
        raise gdb.GdbError("libgreen: " + _NO_DEBUG % "info green on a core "
                           "file")
    if not _has_symbol("green_dump"):
        raise gdb.GdbError("libgreen: no green_dump here: libgreen is not "
                           "loaded yet")
    before = gdb.selected_thread()
    threads = (sorted(gdb.selected_inferior().threads(), key=lambda t: t.num)
               if want_all else [before])
    shown = 0
    try:
        for th in threads:
            th.switch()
            gdb.newest_frame().select()
            text = _green_dump_text()
            if "no green threads on this OS thread" in text:
                continue
            shown += 1
            lines = text.splitlines()
            print("Green threads of OS thread LWP %d (no debug info: from "
                  "green_dump):" % th.ptid[1])
            print("%6s  %-20s %-8s %s" % ("ID", "NAME", "STATE", "WAITS ON"))
            for line in lines:
                m = _DUMP_LINE.match(line)
                if m:
                    rest = m.group(4)
                    print("%6d  %-20s %-8s%s" % (int(m.group(1)), m.group(2),
                                                 m.group(3),
                                                 (" " + rest) if rest else ""))
                elif not line.startswith("libgreen: green threads of"):
                    print(line)
    finally:
        if before is not None and before.is_valid():
            before.switch()
    if not shown:
        print("No green threads on %s." %
              ("any OS thread" if want_all
               else "OS thread LWP %s (try `info green all`)" % before.ptid[1]))


def info_green(arg):
    want_all = arg.strip() == "all"
    if not _has_debug_info():
        _info_green_from_dump(want_all)
        return
    lwp = _selected_lwp()
    now = _now()
    shown = 0
    for tid, ctx in _slots():
        if not want_all and tid != lwp:
            continue
        shown += 1
        cur = ctx["current"]
        hub_running = int(cur) == int(ctx["hub"])
        try:
            idx = int(ctx["hub_index"])
        except gdb.error:
            idx = -1
        print("Green threads of OS thread LWP %d%s%s:" %
              (tid, (" (hub %d)" % idx) if idx >= 0 else "",
               ", hub running" if hub_running else ""))
        print("%6s  %-20s %-8s %s" % ("ID", "NAME", "STATE", "WAITS ON"))
        for t in _threads(ctx):
            print(_line(ctx, t, now))
    if not shown:
        if lwp is None:
            print("No green threads: the program is not running.")
        else:
            print("No green threads on %s." %
                  ("any OS thread" if want_all
                   else "OS thread LWP %s (try `info green all`)" % lwp))


def _find(gid):
    for tid, ctx in _slots():
        for t in _threads(ctx):
            if int(t["id"]) == gid:
                return tid, ctx, t
        if int(ctx["hub"]["id"]) == gid:
            return tid, ctx, ctx["hub"]
    raise gdb.GdbError("no green thread %d (see `info green all`)" % gid)


def _gdb_thread(lwp):
    for th in gdb.selected_inferior().threads():
        if th.ptid[1] == lwp:
            return th
    raise gdb.GdbError("OS thread %d is not known to gdb" % lwp)


def _bt_parked(t, layout, bt_args):
    sp = int(t["sp"])
    if sp == 0:
        raise gdb.GdbError("green thread %d has no saved stack" % int(t["id"]))
    words = struct.unpack("<%dQ" % (layout["ret"] + 1),
                          bytes(gdb.selected_inferior().read_memory(
                              sp, 8 * (layout["ret"] + 1))))
    gdb.newest_frame().select()
    frame = gdb.selected_frame()
    saved = {r: int(frame.read_register(r)) for r in layout["save"]}
    try:
        for i, reg in enumerate(layout["words"]):
            if reg:
                gdb.execute("set $%s = %d" % (reg, words[i]), to_string=True)
        gdb.execute("set $%s = %d" % (layout["sp"], sp + layout["size"]),
                    to_string=True)
        gdb.execute("set $%s = %d" % (layout["pc"], words[layout["ret"]]),
                    to_string=True)
        gdb.execute("bt " + bt_args)
    finally:
        for r, v in saved.items():
            gdb.execute("set $%s = %d" % (r, v), to_string=True)
        gdb.newest_frame().select()


def _bt_one(tid, ctx, t, bt_args):
    gid = int(t["id"])
    state = _short(t["state"], "GREEN_")
    print('Green thread %d "%s" (%s) on OS thread %d:' %
          (gid, t["name"].string(), state, tid))
    if state == "done":
        raise gdb.GdbError("green thread %d has finished: no stack" % gid)
    before = gdb.selected_thread()
    try:
        _gdb_thread(tid).switch()
        if int(t) == int(ctx["current"]):
            gdb.execute("bt " + bt_args)      # it is the OS thread's stack
            return
        try:
            gdb.parse_and_eval("green__ctx_start")
        except gdb.error:
            raise gdb.GdbError("green bt: this libgreen switches with "
                               "ucontext; only the assembly switch is supported")
        if not _is_live():
            raise gdb.GdbError("green bt: a parked thread's backtrace needs a "
                               "live process (gdb cannot load registers into "
                               "a core file's threads)")
        arch = _arch()
        if arch not in _LAYOUTS:
            raise gdb.GdbError("green bt: unsupported architecture")
        _bt_parked(t, _LAYOUTS[arch], bt_args)
    finally:
        if before is not None and before.is_valid():
            before.switch()


def _bt_all(bt_args):
    """green bt all: every green thread of every OS thread, like
    `thread apply all bt`; one that cannot be shown does not stop the rest."""
    for tid, ctx in _slots():
        for t in _threads(ctx):
            try:
                _bt_one(tid, ctx, t, bt_args)
            except gdb.GdbError as e:
                print(str(e))
            print()


def green_bt(arg):
    argv = arg.split(None, 1)
    if not argv:
        raise gdb.GdbError("usage: green bt ID|all [bt arguments]")
    if not _has_debug_info() and _has_symbol("green_dump"):
        raise gdb.GdbError("libgreen: " + _NO_DEBUG % "green bt (a parked "
                           "thread's saved registers are found through "
                           "libgreen's structures)")
    bt_args = argv[1] if len(argv) > 1 else ""
    if argv[0] == "all":
        _bt_all(bt_args)
        return
    try:
        gid = int(argv[0], 0)
    except ValueError:
        raise gdb.GdbError("green bt: ID must be a number or all, not %r" % argv[0])
    tid, ctx, t = _find(gid)
    _bt_one(tid, ctx, t, bt_args)


class InfoGreen(gdb.Command):
    """List green threads: info green [all].
Without "all": the green threads of the selected OS thread."""

    def __init__(self):
        super().__init__("info green", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        info_green(arg)


class Green(gdb.Command):
    """libgreen green threads: green list [all], green bt ID|all [bt args]."""

    def __init__(self):
        super().__init__("green", gdb.COMMAND_USER, prefix=True)


class GreenList(gdb.Command):
    """List green threads (same as info green): green list [all]."""

    def __init__(self):
        super().__init__("green list", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        info_green(arg)


class GreenBt(gdb.Command):
    """Backtrace of a green thread: green bt ID|all [bt arguments].
A parked thread's saved registers are loaded into its OS thread for the
duration of the backtrace and restored afterwards."""

    def __init__(self):
        super().__init__("green bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        green_bt(arg)


InfoGreen()
Green()
GreenList()
GreenBt()
