#!/usr/bin/env python3
"""check_http.py - protocol checks for the demo's HTTP servers.

Runs against a server already listening on 127.0.0.1:PORT (green_http, with
or without --hooks, or legacy_http) whose generated body is BODY bytes:

    demo/explicit/check_http.py PORT [BODY]

Each check prints PASS or FAIL; the exit status is 1 if any failed. Every
socket has a timeout, so a hung server fails the check instead of hanging.
"""
import socket
import sys
import time

REQ = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    return s


def read_to_end(s):
    """All bytes until EOF; returns (bytes, 'eof' | 'reset' | 'timeout')."""
    out = b""
    while True:
        try:
            d = s.recv(65536)
        except socket.timeout:
            return out, "timeout"
        except ConnectionResetError:
            return out, "reset"
        if not d:
            return out, "eof"
        out += d


def read_responses(s, n):
    """Read n complete 200 responses; returns the bytes left over."""
    buf = b""
    for _ in range(n):
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                raise AssertionError("EOF before a complete head")
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 200 "):
            raise AssertionError("status %r" % head[:20])
        lengths = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
        size = int(lengths[0].split(b":")[1])
        while len(rest) < size:
            d = s.recv(65536)
            if not d:
                raise AssertionError("EOF inside a body")
            rest += d
        buf = rest[size:]
    return buf


def byte_by_byte(port, body):
    s = connect(port)
    for b in REQ:
        s.send(bytes([b]))
        time.sleep(0.001)
    return read_responses(s, 1) == b""


def pipelined(port, body):
    s = connect(port)
    s.sendall(REQ * 200)
    return read_responses(s, 200) == b""


def bodies_in_odd_pieces(port, body):
    data = (b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" + REQ) * 20
    s = connect(port)
    for i in range(0, len(data), 7):
        s.send(data[i:i + 7])
    return read_responses(s, 40) == b""


def connection_close(port, body):
    s = connect(port)
    s.sendall(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    out, how = read_to_end(s)
    return how == "eof" and out.count(b"HTTP/1.1 200") == 1 and b"Connection: close" in out


def http10_closes(port, body):
    s = connect(port)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    out, how = read_to_end(s)
    return how == "eof" and out.startswith(b"HTTP/1.1 200")


def http10_keep_alive(port, body):
    s = connect(port)
    s.sendall(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n" * 2)
    return read_responses(s, 2) == b""


def head_has_no_body(port, body):
    s = connect(port)
    s.sendall(b"HEAD / HTTP/1.1\r\nConnection: close\r\n\r\n")
    out, how = read_to_end(s)
    return how == "eof" and out.endswith(b"\r\n\r\n") and b"Content-Length: %d" % body in out


def status_of(port, data):
    s = connect(port)
    s.sendall(data)
    out, _ = read_to_end(s)
    return out[:12]


def garbage_is_400(port, body):
    return status_of(port, b"garbage\r\n\r\n") == b"HTTP/1.1 400"


def chunked_is_501(port, body):
    req = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    return status_of(port, req) == b"HTTP/1.1 501"


def conflicting_lengths_are_400(port, body):
    req = b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
    return status_of(port, req) == b"HTTP/1.1 400"


def oversize_head_is_431(port, body):
    req = b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n"
    return status_of(port, req) == b"HTTP/1.1 431"


def close_with_unread_input_keeps_answer(port, body):
    """More pipelined input than the server buffers: closing without
    draining would reset the connection and destroy the answer."""
    s = connect(port)
    s.sendall(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n" + REQ * 3000)
    time.sleep(0.1)
    out, how = read_to_end(s)
    return how == "eof" and out.count(b"HTTP/1.1 200") == 1


def slow_reader(port, body):
    s = connect(port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(REQ * 3)
    time.sleep(0.3)
    return read_responses(s, 3) == b""


def half_close(port, body):
    s = connect(port)
    s.sendall(REQ)
    s.shutdown(socket.SHUT_WR)
    out, how = read_to_end(s)
    return how == "eof" and out.count(b"HTTP/1.1 200") == 1


CHECKS = [byte_by_byte, pipelined, bodies_in_odd_pieces, connection_close,
          http10_closes, http10_keep_alive, head_has_no_body, garbage_is_400,
          chunked_is_501, conflicting_lengths_are_400, oversize_head_is_431,
          close_with_unread_input_keeps_answer, slow_reader, half_close]


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    port = int(sys.argv[1])
    body = int(sys.argv[2]) if len(sys.argv) == 3 else 128
    failed = 0
    for check in CHECKS:
        try:
            ok = check(port, body)
        except (AssertionError, OSError) as e:
            ok = False
            print("     %s: %s" % (check.__name__, e))
        failed += not ok
        print("%s %s" % ("PASS" if ok else "FAIL", check.__name__))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
