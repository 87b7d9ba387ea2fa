#!/usr/bin/env python3
"""The pause a live upgrade (--takeover) puts in a stream's bytes.

N connections through l4lb to a backend in this script: S of them stream (the
backend writes a 256-byte chunk on each every millisecond), the others sit idle.
The script upgrades l4lb K times (the same binary starts with --takeover and the
running one hands everything over) and reports, per upgrade, the longest gap
between two chunks' arrivals on any stream during the takeover, beside the
longest gap of a window of the same length before it (the noise floor: this
script, the backend and l4lb share the machine). Target (issue 16): under
50 ms with 1,000 connections.

  bazel build -c opt //l4lb:l4lb
  bench/takeover_pause.py --connections=1000 --streams=20 --upgrades=10

It also checks what the e2e test does: no stream loses or reorders a byte
(each chunk carries its sequence number), every idle connection still echoes.
"""

import argparse
import os
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

CHUNK = 256


def free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Backend(threading.Thread):
    """Accepts on 127.0.0.2: a connection whose first byte is 'S' gets a
    numbered chunk every millisecond; others echo what they get."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.listener = socket.create_server(("127.0.0.2", port), backlog=4096)
        self.listener.setblocking(False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ, None)
        self.streams = {}  # socket -> next sequence number
        self.stop = False

    def run(self):
        next_tick = time.monotonic()
        while not self.stop:
            timeout = max(0.0, next_tick - time.monotonic())
            for key, _ in self.sel.select(timeout):
                if key.data is None:
                    try:
                        conn, _ = self.listener.accept()
                    except BlockingIOError:
                        continue
                    conn.setblocking(False)
                    self.sel.register(conn, selectors.EVENT_READ, "new")
                    continue
                conn = key.fileobj
                try:
                    data = conn.recv(65536)
                except (BlockingIOError, ConnectionError):
                    continue
                if not data:
                    self.sel.unregister(conn)
                    self.streams.pop(conn, None)
                    conn.close()
                    continue
                if key.data == "new" and data[:1] == b"S":
                    self.streams[conn] = 0
                    self.sel.modify(conn, selectors.EVENT_READ, "stream")
                    continue
                if key.data == "new":
                    self.sel.modify(conn, selectors.EVENT_READ, "echo")
                if key.data != "stream":
                    conn.sendall(data)
            now = time.monotonic()
            if now >= next_tick:
                for conn, seq in list(self.streams.items()):
                    try:
                        conn.send(struct.pack("!Q", seq) + b"x" * (CHUNK - 8))
                        self.streams[conn] = seq + 1
                    except (BlockingIOError, ConnectionError):
                        pass  # a full buffer: that stream's gap shows it
                next_tick = now + 0.001


class Streams(threading.Thread):
    """Reads every stream, checks the sequence, records arrival times."""

    def __init__(self, socks):
        super().__init__(daemon=True)
        self.sel = selectors.DefaultSelector()
        self.buffers = {}
        self.expect = {}
        self.arrivals = {}  # stream index -> list of monotonic times
        self.errors = []
        self.stop = False
        for i, s in enumerate(socks):
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, i)
            self.buffers[i] = b""
            self.expect[i] = 0
            self.arrivals[i] = []

    def run(self):
        while not self.stop:
            for key, _ in self.sel.select(0.05):
                i = key.data
                try:
                    data = key.fileobj.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    self.errors.append(f"stream {i}: EOF")
                    self.sel.unregister(key.fileobj)
                    continue
                now = time.monotonic()
                buf = self.buffers[i] + data
                while len(buf) >= CHUNK:
                    (seq,) = struct.unpack("!Q", buf[:8])
                    if seq != self.expect[i]:
                        self.errors.append(f"stream {i}: chunk {seq}, expected {self.expect[i]}")
                    self.expect[i] = seq + 1
                    buf = buf[CHUNK:]
                self.buffers[i] = buf
                self.arrivals[i].append(now)

    def longest_gap(self, start, end):
        worst = 0.0
        for times in self.arrivals.values():
            inside = [t for t in times if start <= t <= end]
            # The gap that spans the window's edges counts too.
            before = [t for t in times if t < start][-1:]
            after = [t for t in times if t > end][:1]
            seq = before + inside + after
            for a, b in zip(seq, seq[1:]):
                worst = max(worst, b - a)
        return worst


def start_l4lb(binary, args, log):
    return subprocess.Popen([binary] + args, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(path, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="bazel-bin/l4lb/l4lb")
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--streams", type=int, default=20)
    ap.add_argument("--upgrades", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--serve_backend", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_backend:
        # The backend in a process of its own: the reader's GIL must not pace it.
        b = Backend(args.serve_backend)
        b.run()
        return

    work = tempfile.mkdtemp(prefix="l4lb-takeover-pause-")
    backend_port = free_port("127.0.0.2")
    port = free_port("127.0.0.1")
    backend = subprocess.Popen([sys.executable, __file__, f"--serve_backend={backend_port}"])
    time.sleep(0.5)
    sock_path = os.path.join(work, "takeover.sock")
    flags = [f"--listen=127.0.0.1:{port}", f"--backends=127.0.0.2:{backend_port}",
             "--health_check=none", f"--threads={args.threads}", f"--takeover={sock_path}",
             "--access_log=false", "--logbuflevel=-1"]
    log = open(os.path.join(work, "l4lb.log"), "w")
    ready = os.path.join(work, "ready.0")
    proc = start_l4lb(args.binary, flags + [f"--ready_file={ready}"], log)
    if not wait_ready(ready, proc):
        sys.exit(f"l4lb did not start; see {log.name}")

    socks = []
    for i in range(args.connections):
        s = socket.socket()
        s.bind((f"127.1.{i // 200}.{i % 200 + 1}", 0))
        s.connect(("127.0.0.1", port))
        socks.append(s)
    streams = socks[:args.streams]
    idle = socks[args.streams:]
    for s in streams:
        s.sendall(b"S")
    for s in idle:
        s.sendall(b"ping")
        assert s.recv(4) == b"ping"
    reader = Streams(streams)
    reader.start()
    time.sleep(1.0)

    rows = []
    for n in range(1, args.upgrades + 1):
        ready = os.path.join(work, f"ready.{n}")
        start = time.monotonic()
        nxt = start_l4lb(args.binary, flags + [f"--ready_file={ready}"], log)
        if not wait_ready(ready, nxt):
            sys.exit(f"upgrade {n}: l4lb did not start; see {log.name}")
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            sys.exit(f"upgrade {n}: the old l4lb did not exit")
        time.sleep(0.3)  # the new one relays: the window closes after its first bytes
        end = time.monotonic()
        during = reader.longest_gap(start, end)
        baseline = reader.longest_gap(start - (end - start) - 0.5, start - 0.5)
        rows.append((n, during, baseline, proc.returncode))
        proc = nxt
        time.sleep(0.7)

    reader.stop = True
    reader.join()
    echoed = 0
    for s in idle:
        s.setblocking(True)
        s.settimeout(5)
        s.sendall(b"pong")
        echoed += s.recv(4) == b"pong"
    print(f"l4lb takeover pause: {args.connections} connections ({args.streams} streaming a "
          f"{CHUNK}-byte chunk per ms, {len(idle)} idle), {args.threads} worker threads")
    print(f"{'upgrade':>8} {'longest gap during':>20} {'longest gap before':>20} {'old exit':>9}")
    for n, during, baseline, code in rows:
        print(f"{n:>8} {during * 1000:>17.1f} ms {baseline * 1000:>17.1f} ms {code:>9}")
    gaps = [r[1] for r in rows]
    print(f"median {statistics.median(gaps) * 1000:.1f} ms, max {max(gaps) * 1000:.1f} ms "
          f"(target < 50 ms); noise floor median {statistics.median(r[2] for r in rows) * 1000:.1f} ms")
    print(f"stream errors: {len(reader.errors)} {reader.errors[:3]}; idle connections echoing "
          f"after: {echoed}/{len(idle)}")
    for s in socks:
        s.close()
    proc.terminate()
    proc.wait(timeout=40)
    backend.terminate()
    backend.wait()
    ok = not reader.errors and echoed == len(idle) and all(r[3] == 0 for r in rows)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
