#!/usr/bin/env python3
"""The health checker's cost in a large farm (issue 17): N backends probed
every second, no traffic, side by side with HAProxy's checks of the same farm.

The farm is this script: N listening sockets on 127.0.0.5 that accept and close
(a TCP check: connect, then close). l4lb runs with --health_check=tcp
--health_interval=1s, HAProxy with `check inter 1s` on every server; each is
measured alone for --seconds after a warm-up, as CPU time (utime + stime from
/proc) over wall time: the share of one core. Target: under 2 % of one core
for l4lb with 1,000 backends.

  bazel build -c opt //l4lb:l4lb
  bench/health_cpu.py --backends=1000 --seconds=30
"""

import argparse
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Farm(threading.Thread):
    def __init__(self, n):
        super().__init__(daemon=True)
        self.sel = selectors.DefaultSelector()
        self.ports = []
        self.accepted = 0
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.5", 0))
            s.listen(64)
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ)
            self.ports.append(s.getsockname()[1])

    def run(self):
        while True:
            for key, _ in self.sel.select(1.0):
                try:
                    conn, _ = key.fileobj.accept()
                    conn.close()
                    self.accepted += 1
                except BlockingIOError:
                    pass


def measure(name, argv, warmup, seconds, farm):
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(warmup)
    if proc.poll() is not None:
        sys.exit(f"{name} exited: {argv}")
    pids = [proc.pid]
    before = sum(cpu_seconds(p) for p in pids)
    probes_before = farm.accepted
    start = time.monotonic()
    time.sleep(seconds)
    used = sum(cpu_seconds(p) for p in pids) - before
    wall = time.monotonic() - start
    probes = farm.accepted - probes_before
    proc.terminate()
    proc.wait(timeout=40)
    return used / wall, probes / wall


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="bazel-bin/l4lb/l4lb")
    ap.add_argument("--backends", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=5)
    args = ap.parse_args()
    farm = Farm(args.backends)
    farm.start()
    work = tempfile.mkdtemp(prefix="l4lb-health-cpu-")
    backends = ",".join(f"127.0.0.5:{p}" for p in farm.ports)
    listen = socket.socket()
    listen.bind(("127.0.0.1", 0))
    port = listen.getsockname()[1]
    listen.close()
    rows = []
    l4lb = [args.binary, f"--listen=127.0.0.1:{port}", f"--backends={backends}",
            "--health_check=tcp", "--health_interval=1s", "--health_timeout=500ms",
            "--threads=1", "--access_log=false"]
    rows.append(("l4lb",) + measure("l4lb", l4lb, args.warmup, args.seconds, farm))
    cfg = os.path.join(work, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("global\n  maxconn 8000\n  nbthread 1\ndefaults\n  mode tcp\n  timeout connect 500ms\n"
                "  timeout client 30s\n  timeout server 30s\n  timeout check 500ms\n"
                f"frontend fe\n  bind 127.0.0.1:{port}\n  default_backend farm\nbackend farm\n")
        for i, p in enumerate(farm.ports):
            f.write(f"  server s{i} 127.0.0.5:{p} check inter 1s\n")
    rows.append(("haproxy",) + measure("haproxy", ["haproxy", "-f", cfg, "-db"], args.warmup,
                                       args.seconds, farm))
    print(f"health checks of {args.backends} backends every second, no traffic, "
          f"{args.seconds:.0f} s measured after {args.warmup:.0f} s, kernel {os.uname().release}")
    print(f"{'':>8} {'CPU (share of one core)':>24} {'probes/s':>10}")
    for name, cpu, rate in rows:
        print(f"{name:>8} {cpu * 100:>22.2f} % {rate:>10.0f}")
    print(f"l4lb / haproxy CPU: {rows[0][1] / rows[1][1]:.2f}x")


if __name__ == "__main__":
    main()
