#!/usr/bin/env python3
"""check_loadgen.py - does a load generator count what it should?

Starts small misbehaving HTTP servers on free loopback ports (threads in
this process) and runs the load generator against each, checking the
error kind it reports:

    demo/explicit/check_loadgen.py build/demo/explicit/green_loadgen

Works for loadgen_native too (same options and output keys). Exit status 1
if any check failed. Each run lasts one second.
"""
import socket
import subprocess
import sys
import threading
import time


def requests_of(conn):
    """Yield once per complete request head received on conn."""
    buf = b""
    while True:
        d = conn.recv(4096)
        if not d:
            return
        buf += d
        while b"\r\n\r\n" in buf:
            _, buf = buf.split(b"\r\n\r\n", 1)
            yield


def answer_404(c):
    for _ in requests_of(c):
        c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")


def answer_extra_byte(c):
    for _ in requests_of(c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcd")


def answer_then_close_early(c):
    for _ in requests_of(c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab")
        c.close()
        return


def never_answer(c):
    for _ in requests_of(c):
        pass


def answer_byte_by_byte(c):
    for _ in requests_of(c):
        for b in b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello":
            c.send(bytes([b]))
            time.sleep(0.0005)


def serve(handler):
    """Listen on a free port with one thread per connection; return it."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)

    def guarded(c):
        try:
            handler(c)
        except OSError:
            pass  # the load generator hung up on a bad answer, as it should
        finally:
            c.close()

    def accept_loop():
        while True:
            c, _ = lsock.accept()
            threading.Thread(target=guarded, args=(c,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    return lsock.getsockname()[1]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(loadgen, port, *extra):
    out = subprocess.run([loadgen, "--addr", "127.0.0.1:%d" % port, "--conns", "3",
                          "--duration", "1", "--timeout-ms", "200", *extra],
                         capture_output=True, text=True, timeout=30).stdout
    return dict(line.split("=", 1) for line in out.split())


# (handler or None for "nothing listening", extra options, key that must be
#  > 0, keys that must be 0)
CASES = [
    (answer_404, [], "err_status", ["requests"]),
    (answer_extra_byte, [], "err_verify", ["requests"]),
    (answer_then_close_early, [], "err_eof", ["requests"]),
    (never_answer, [], "err_timeout", ["requests"]),
    (answer_byte_by_byte, [], "requests", ["errors"]),
    (answer_byte_by_byte, ["--expect-body", "6"], "err_verify", ["requests"]),
    (None, [], "err_connect", ["requests"]),
]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    failed = 0
    for handler, extra, positive, zeros in CASES:
        port = serve(handler) if handler else free_port()
        r = run(sys.argv[1], port, *extra)
        ok = int(r.get(positive, 0)) > 0 and all(int(r.get(k, 1)) == 0 for k in zeros)
        failed += not ok
        name = handler.__name__ if handler else "nothing_listening"
        print("%s %s %s: %s=%s %s" % ("PASS" if ok else "FAIL", name, " ".join(extra),
                                      positive, r.get(positive),
                                      " ".join("%s=%s" % (k, r.get(k)) for k in zeros)))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
