#!/usr/bin/python3
"""A line echo server that tells each client who it sees, and the clients of the packaging
tests (tests/packaging/dpkg_install_test.sh, tests/packaging/upgrade_test.sh).

The server greets every connection with "peer IP:PORT\\n" (the address it accepted from),
then echoes lines, and appends each peer to PEERLOG. A client compares that address with
its own getsockname(): equal means its connect reached the server directly; different means
something relayed it (interlockd connects upstream from its own socket).

  peer_echo.py server ADDR PORT PEERLOG      serve until killed
  peer_echo.py once ADDR PORT                one connect and one echo; prints proxied|direct
  peer_echo.py hold ADDR PORT STOPFILE       one session, a line every 100 ms until STOPFILE
                                             exists; exit 1 at the first lost or wrong echo
  peer_echo.py loop ADDR PORT STOPFILE       connects one after the other until STOPFILE
                                             exists; prints "proxied N direct N failed N"
"""
import os
import socket
import sys
import threading
import time


def serve(addr, port, peerlog):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(256)
    lock = threading.Lock()

    def handle(conn, peer):
        with conn:
            with lock, open(peerlog, "a") as f:
                f.write("%s:%d\n" % peer)
            try:
                conn.sendall(b"peer %s:%d\n" % (peer[0].encode(), peer[1]))
                while True:
                    data = conn.recv(65536)
                    if not data:
                        return
                    conn.sendall(data)
            except OSError:
                return

    while True:
        conn, peer = srv.accept()
        threading.Thread(target=handle, args=(conn, peer), daemon=True).start()


def connect(addr, port):
    """Returns (socket file, 'proxied'|'direct')."""
    s = socket.create_connection((addr, port), timeout=10)
    f = s.makefile("rwb", buffering=0)
    greeting = f.readline().decode().strip()
    me = "%s:%d" % s.getsockname()[:2]
    if not greeting.startswith("peer "):
        raise OSError("bad greeting %r" % greeting)
    return s, f, ("direct" if greeting[5:] == me else "proxied")


def echo(f, s, line):
    s.sendall(line)
    got = b""
    while not got.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("connection closed")
        got += chunk
    if got != line:
        raise OSError("echo %r != %r" % (got, line))


def main():
    mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "server":
        serve(addr, port, sys.argv[4])
    elif mode == "once":
        s, f, how = connect(addr, port)
        echo(f, s, b"hello\n")
        print(how)
    elif mode == "hold":
        stop = sys.argv[4]
        s, f, how = connect(addr, port)
        print(how, flush=True)
        n = 0
        while not os.path.exists(stop):
            n += 1
            try:
                echo(f, s, b"line %d\n" % n)
            except OSError as e:
                print("session lost at line %d: %s" % (n, e), flush=True)
                sys.exit(1)
            time.sleep(0.1)
        print("held %d lines" % n, flush=True)
    elif mode == "loop":
        stop = sys.argv[4]
        counts = {"proxied": 0, "direct": 0, "failed": 0}
        errors = []
        while not os.path.exists(stop):
            try:
                s, f, how = connect(addr, port)
                echo(f, s, b"ping\n")
                s.close()
                counts[how] += 1
            except OSError as e:
                counts["failed"] += 1
                errors.append(str(e))
            time.sleep(0.02)
        print("proxied %d direct %d failed %d" % (counts["proxied"], counts["direct"], counts["failed"]))
        for e in errors[:10]:
            print("error: %s" % e)
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
