#!/usr/bin/env python3
"""Side by side, in one run: direct, l4lb, HAProxy (mode tcp, splice-auto) and nginx
stream, with the same backends, the same clients and the same thread count.

The balancer under test is pinned to --balancer_cpus, clients and backends to
--client_cpus, so the balancer's own cost shows. Figures:
  iperf3 1 and 4 streams (Gbit/s), CPU-seconds per GB forwarded;
  wrk with Connection: close against nginx serving 1 KiB (new connections/s),
  CPU per connection, TCP segments per connection (system-wide);
  wrk keep-alive latency p50/p99;
  RSS growth per idle connection (N idle clients held open);
  iou-wrk threads seen in l4lb under load (must be 0: splice runs on the worker).
UDP phases (udp_rr64, udp_rr1400, udp_flood, udp_flood_paced; not in the default
--phases; bench/compare_udp.py) put direct, l4lb and nginx (`listen ... udp`) in front of
bench/udp_load's echo server and drive them with its clients: 64 sockets from 64 source
addresses, request/response (replies/s, p50/p99 round trip, loss, CPU per reply) and a
one-way flood (datagrams/s delivered, loss, CPU per datagram). HAProxy has no UDP.
Concurrency phases (flows100, flows1000, keepalive1000; not in the default --phases;
bench/compare_flows.py): 100 and 1,000 bulk flows at once through K listeners to K
iperf3 servers (aggregate Gbit/s, CPU per GB, per-flow min/median/max), and 1,000
keep-alive wrk clients (requests/s, p50, p99 of every run, CPU per request).
--short_options adds l4lb-fast (--defer_accept --backend_tfo) and haproxy-fast
(bind defer-accept, server tfo), sets net.ipv4.tcp_fastopen=3 for the run (restored
at exit) and the backend nginx listens with fastopen; the close phase then shows the
TCP Fast Open counters too.
The balancers and /proc readers are in bench/compare_balancers.py.
Run it through bench/compare.sh (installs the tools, builds l4lb -c opt).
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import socket
import subprocess
import sys
import tempfile
import time

from compare_balancers import (BACKEND_HOST, FILE_SIZES, L4LB_LIMITS, LISTEN_HOST, Direct,
                               HAProxy, HAProxyFast, HAProxyStick, L4lb, L4lbAdmin, NginxStream,
                               cpu_seconds, fmt, free_port, iou_workers, ratio, rss_bytes,
                               wait_listening)
from compare_flows import (CONCURRENCY_PHASES, FLOW_PHASES, KEEPALIVE_PHASES, measure_flows,
                           print_flows_table)
from compare_udp import UDP_PHASES, measure_udp, print_udp_table

TCP_FASTOPEN = "/proc/sys/net/ipv4/tcp_fastopen"


def start_backends(work, cpus, fastopen=False):
    """iperf3 server and an nginx HTTP server on 127.0.0.2 serving /1k (1 KiB) and
    /SIZE files for the copy-threshold sweep (FILE_SIZES). fastopen: nginx takes TCP
    Fast Open SYNs (for --short_options)."""
    procs = []
    iperf_port = free_port(BACKEND_HOST)
    procs.append(
        subprocess.Popen(
            ["taskset", "-c", cpus, "iperf3", "-s", "-B", BACKEND_HOST, "-p", str(iperf_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    http_port = free_port(BACKEND_HOST)
    www = os.path.join(work, "www")
    os.makedirs(www, exist_ok=True)
    for name, size in FILE_SIZES.items():
        with open(os.path.join(www, name), "wb") as f:
            f.write(b"x" * size)
    tfo = " fastopen=4096" if fastopen else ""
    cfg = os.path.join(work, "backend-nginx.conf")
    with open(cfg, "w") as f:
        f.write(
            f"""daemon off;
worker_processes 1;
user root;
pid {work}/backend-nginx.pid;
error_log {work}/backend-nginx.error.log;
worker_rlimit_nofile 20000;
events {{ worker_connections 20000; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_header_timeout 600s;
    client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work};
    uwsgi_temp_path {work}; scgi_temp_path {work};
    server {{ listen {BACKEND_HOST}:{http_port} backlog=4096{tfo}; root {www}; }}
}}
"""
        )
    procs.append(
        subprocess.Popen(
            ["taskset", "-c", cpus, "/usr/sbin/nginx", "-c", cfg, "-e", f"{work}/backend-nginx.error.log"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    for port in (iperf_port, http_port):
        if not wait_listening(BACKEND_HOST, port):
            raise RuntimeError(f"backend on {BACKEND_HOST}:{port} did not start")
    return procs, iperf_port, http_port


def run(argv, timeout):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def measure_iperf(balancer, backend_port, args, streams):
    port = balancer.start(backend_port)
    host = BACKEND_HOST if isinstance(balancer, Direct) else LISTEN_HOST
    pids = balancer.pids()
    cpu0 = cpu_seconds(pids)
    argv = ["taskset", "-c", args.client_cpus, "iperf3", "-c", host, "-p", str(port),
            "-t", str(args.seconds), "-P", str(streams), "-J"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    workers = 0
    while proc.poll() is None:
        if pids:
            workers = max(workers, iou_workers(pids[0]))
        time.sleep(0.2)
    out = json.loads(proc.stdout.read())
    cpu = cpu_seconds(pids) - cpu0
    balancer.stop()
    received = out["end"]["sum_received"]
    gbytes = received["bytes"] / 1e9
    return {
        "gbps": received["bits_per_second"] / 1e9,
        "cpu_per_gb": cpu / gbytes if pids else None,
        "iou_wrk": workers if isinstance(balancer, L4lb) else None,
        "cmd": " ".join(argv[3:]),
    }


def parse_wrk(text):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    total = int(re.search(r"(\d+) requests in", text).group(1))
    errors = re.search(r"Socket errors: (.*)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    lat = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if m:
            scale = {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]
            lat[pct] = float(m.group(1)) * scale
    return rps, total, lat, (errors.group(1) if errors else ""), int(non2xx.group(1)) if non2xx else 0


def tcp_counters():
    """System-wide TCP counters: Tcp OutSegs/InSegs (/proc/net/snmp) and the TCP Fast
    Open ones (/proc/net/netstat TcpExt)."""
    out = {}
    for path, prefix, keys in (("/proc/net/snmp", "Tcp:", ("OutSegs", "InSegs")),
                               ("/proc/net/netstat", "TcpExt:",
                                ("TCPFastOpenActive", "TCPFastOpenPassive"))):
        with open(path) as f:
            lines = [line.split() for line in f if line.startswith(prefix)]
        table = dict(zip(lines[0][1:], map(int, lines[1][1:])))
        out.update((k, table.get(k, 0)) for k in keys)
    return out


def measure_wrk(balancer, backend_port, args, close, path="1k", cpu_per_request=False,
                connections=None):
    port = balancer.start(backend_port)
    host = BACKEND_HOST if isinstance(balancer, Direct) else LISTEN_HOST
    pids = balancer.pids()
    tcp0 = tcp_counters()
    cpu0 = cpu_seconds(pids)
    argv = ["taskset", "-c", args.client_cpus, "wrk", "-t1",
            f"-c{connections or args.wrk_connections}", f"-d{args.seconds}s", "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://{host}:{port}/{path}")
    out = run(argv, args.seconds + 30).stdout
    cpu = cpu_seconds(pids) - cpu0
    tcp = {k: v - tcp0[k] for k, v in tcp_counters().items()}
    balancer.stop()
    rps, total, lat, errors, non2xx = parse_wrk(out)
    per_request = cpu / total * 1e6 if (pids and total) else None
    per_conn = (lambda n: n / total if close and total else None)
    return {
        "out_segs_per_conn": per_conn(tcp["OutSegs"]),
        "in_segs_per_conn": per_conn(tcp["InSegs"]),
        "tfo_active": tcp["TCPFastOpenActive"] if close else None,
        "tfo_passive": tcp["TCPFastOpenPassive"] if close else None,
        "rps": rps,
        "cpu_us_per_conn": per_request if close else None,
        "cpu_us_per_req": per_request if cpu_per_request else None,
        "p50_us": lat.get("50"),
        "p99_us": lat.get("99"),
        "errors": (errors + (f" non-2xx: {non2xx}" if non2xx else "")).strip(),
        "cmd": " ".join(argv[3:]),
    }


def measure_idle(balancer, backend_port, args):
    if isinstance(balancer, Direct):
        return {"rss_per_conn": None}
    port = balancer.start(backend_port)
    time.sleep(0.5)
    pids = balancer.pids()
    rss0 = rss_bytes(pids)
    socks = []
    try:
        for _ in range(args.idle):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect((LISTEN_HOST, port))
            socks.append(s)
        # Every client relayed to the backend: poll the balancer's fd count.
        deadline = time.time() + 20
        while time.time() < deadline:
            fds = sum(len(os.listdir(f"/proc/{p}/fd")) for p in pids if os.path.exists(f"/proc/{p}/fd"))
            if fds >= 2 * args.idle:
                break
            time.sleep(0.2)
        time.sleep(1.0)
        rss1 = rss_bytes(balancer.pids())
    finally:
        for s in socks:
            s.close()
        balancer.stop()
    return {"rss_per_conn": (rss1 - rss0) / args.idle, "rss_base": rss0}


def measure(phase, balancer, iperf_port, http_port, args):
    if phase in UDP_PHASES:
        return measure_udp(phase, balancer, args)
    if phase in FLOW_PHASES:
        return measure_flows(phase, balancer, args)
    if phase in KEEPALIVE_PHASES:
        return measure_wrk(balancer, http_port, args, close=False, cpu_per_request=True,
                           connections=KEEPALIVE_PHASES[phase])
    if phase == "iperf1":
        return measure_iperf(balancer, iperf_port, args, 1)
    if phase == "iperf4":
        return measure_iperf(balancer, iperf_port, args, 4)
    if phase == "close":
        return measure_wrk(balancer, http_port, args, close=True)
    if phase == "keepalive":
        return measure_wrk(balancer, http_port, args, close=False)
    if phase == "idle":
        return measure_idle(balancer, http_port, args)
    raise SystemExit(f"compare: --phases: unknown measurement {phase!r}")


def median_result(reps):
    """Per key: the median of the numeric values, the first of anything else."""
    out = {}
    for key, first in reps[0].items():
        values = [r[key] for r in reps if r.get(key) is not None]
        if key == "iou_wrk" and values:
            out[key] = max(values)  # any io-wq thread in any run counts
        elif isinstance(first, (int, float)) and not isinstance(first, bool) and values:
            out[key] = statistics.median(values)
        elif key == "errors":
            out[key] = " ".join(r[key] for r in reps if r[key]).strip()
        else:
            out[key] = first
    return out


def make_balancers(args, work):
    common = (work, args.balancer_cpus, args.threads)
    balancers = [Direct("direct", *common), L4lb(args.l4lb, args.l4lb_args, "l4lb", *common)]
    if args.l4lb_baseline:
        balancers.append(L4lb(args.l4lb_baseline, args.l4lb_args, "l4lb-base", *common))
    if args.short_options:
        balancers.append(L4lb(args.l4lb, args.l4lb_args, "l4lb-fast", *common,
                              settings={"defer_accept": True, "backend_tfo": True}))
    if args.limits:
        # Per-client limits are per service: the flows phases' --config has none.
        balancers.append(L4lb(args.l4lb, (args.l4lb_args + " " + L4LB_LIMITS).strip(),
                              "l4lb-limits", *common, flows=False))
    if args.admin_scrape:
        balancers.append(L4lbAdmin(args.l4lb, args.l4lb_args, "l4lb-admin", *common))
    if args.policies:
        for policy in ("maglev_bounded", "least_conn", "round_robin"):
            balancers.append(L4lb(args.l4lb, args.l4lb_args, "l4lb-" + policy, *common,
                                  settings={"balance": policy}))
    balancers.append(HAProxy("haproxy", *common))
    if args.short_options:
        balancers.append(HAProxyFast("haproxy-fast", *common))
    if args.limits:
        balancers.append(HAProxyStick("haproxy-stick", *common))
    balancers.append(NginxStream("nginx", *common))
    if args.only:
        balancers = [b for b in balancers if b.name in args.only.split(",")]
    return balancers


def set_tcp_fastopen(value):
    """Writes net.ipv4.tcp_fastopen; returns the value it had."""
    with open(TCP_FASTOPEN) as f:
        old = f.read().strip()
    with open(TCP_FASTOPEN, "w") as f:
        f.write(value)
    return old


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--l4lb", required=True, help="path to the l4lb binary (-c opt)")
    ap.add_argument("--l4lb_args", default="", help="more l4lb flags, space-separated")
    ap.add_argument("--limits", action="store_true",
                    help="also l4lb-limits (a deny list, per-client rate and connection limits "
                         "that are never hit) and haproxy-stick (the same with a stick table)")
    ap.add_argument("--admin_scrape", action="store_true",
                    help="also l4lb-admin: l4lb with --admin on and /metrics scraped every "
                         "second during each measurement (the cost of metrics)")
    ap.add_argument("--policies", action="store_true",
                    help="also l4lb-maglev_bounded, l4lb-least_conn and l4lb-round_robin: the "
                         "same binary with --balance set (what each policy's pick costs)")
    ap.add_argument("--l4lb_baseline", default="",
                    help="another l4lb binary (e.g. built from an older commit), measured in the "
                         "same run as column l4lb-base: before and after side by side")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--balancer_cpus", default="0")
    ap.add_argument("--client_cpus", default="1")
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per figure, balancers interleaved; the median is shown")
    ap.add_argument("--wrk_connections", type=int, default=32)
    ap.add_argument("--idle", type=int, default=7000, help="idle connections (fd limit!)")
    ap.add_argument("--only", default="", help="comma-separated subset of balancers")
    ap.add_argument("--phases", default="iperf1,iperf4,close,keepalive,idle",
                    help="comma-separated subset of the measurements (UDP: "
                         + ",".join(UDP_PHASES) + "; concurrency: "
                         + ",".join(CONCURRENCY_PHASES) + ")")
    ap.add_argument("--short_options", action="store_true",
                    help="also l4lb-fast (--defer_accept --backend_tfo) and haproxy-fast (bind "
                         "defer-accept, server tfo); net.ipv4.tcp_fastopen=3 during the run "
                         "and the backend nginx listens with fastopen=4096")
    ap.add_argument("--udp_load", default="",
                    help="path to bench/udp_load (-c opt), for the udp_* phases")
    ap.add_argument("--udp_clients", type=int, default=64,
                    help="udp_* phases: client sockets, each from its own 127.0.1.x address")
    ap.add_argument("--udp_flood_rate", type=int, default=50000,
                    help="udp_flood_paced: datagrams/s in all, below every balancer's saturation")
    args = ap.parse_args()
    phases = args.phases.split(",")
    udp_phases = [p for p in phases if p in UDP_PHASES]
    if udp_phases and not args.udp_load:
        raise SystemExit("compare: the udp_* phases need --udp_load=PATH (bazel-bin/bench/udp_load)")

    tcp_phases = [p for p in phases if p not in UDP_PHASES]
    table_phases = [p for p in tcp_phases if p not in CONCURRENCY_PHASES]
    concurrency_phases = [p for p in phases if p in CONCURRENCY_PHASES]
    work = tempfile.mkdtemp(prefix="l4lb-bench-")
    balancers = make_balancers(args, work)
    results, commands, udp_commands = {b.name: {} for b in balancers}, {}, {}
    flows_commands = {}
    runs = {}  # (balancer, phase) -> one result dict per repetition
    backends, old_fastopen = [], None
    try:
        if args.short_options:
            # TFO needs both ends on (1: client, 2: server); restored whatever happens.
            old_fastopen = set_tcp_fastopen("3")
        backends, iperf_port, http_port = (
            start_backends(work, args.client_cpus, fastopen=args.short_options)
            if tcp_phases else ([], None, None))
        # Repetitions interleave the balancers, so drift on a shared machine hits
        # all of them alike; each figure is the median of its repetitions.
        for rep in range(args.repeat):
            for phase in phases:
                if phase == "idle" and rep > 0:
                    continue  # RSS is deterministic enough, and slow to measure
                for b in balancers:
                    if phase in UDP_PHASES and b.argv_udp(0, 0) is None:
                        continue  # HAProxy: no UDP
                    if phase in FLOW_PHASES and not b.flows:
                        continue
                    print(f"[{rep + 1}/{args.repeat}] {b.name} {phase}", file=sys.stderr)
                    runs.setdefault((b.name, phase), []).append(
                        measure(phase, b, iperf_port, http_port, args))
                    if phase in FLOW_PHASES:
                        flows_commands[b.name] = b.flows_command
                    else:
                        (udp_commands if phase in UDP_PHASES else commands)[b.name] = b.command
    finally:
        for b in balancers:
            b.stop()
        for p in backends:
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)
        if old_fastopen is not None:
            set_tcp_fastopen(old_fastopen)
    for (name, phase), reps in runs.items():
        results[name][phase] = median_result(reps)
    if udp_phases:
        print_udp_table(results, udp_phases, udp_commands, args)
    if concurrency_phases:
        print_flows_table(results, runs, concurrency_phases, commands, flows_commands, args)
    if table_phases:
        print_tcp_table(results, table_phases, commands, args)


def print_tcp_table(results, phases, commands, args):
    results = {n: r for n, r in results.items() if any(p in r for p in phases)}
    ref = results.get("haproxy")
    rows = [
        ("iperf3 1 stream, Gbit/s", "iperf1", "gbps", ".2f"),
        ("iperf3 4 streams, Gbit/s", "iperf4", "gbps", ".2f"),
        ("CPU-s per GB (1 stream)", "iperf1", "cpu_per_gb", ".3f"),
        ("CPU-s per GB (4 streams)", "iperf4", "cpu_per_gb", ".3f"),
        ("new connections/s (wrk, close)", "close", "rps", ".0f"),
        ("CPU µs per connection", "close", "cpu_us_per_conn", ".1f"),
        ("TCP segments sent per connection¹", "close", "out_segs_per_conn", ".1f"),
        ("TCP segments received per connection¹", "close", "in_segs_per_conn", ".1f"),
    ] + ([
        ("TCP Fast Open connects (close run)¹", "close", "tfo_active", ".0f"),
        ("TCP Fast Open accepts (close run)¹", "close", "tfo_passive", ".0f"),
    ] if args.short_options else []) + [
        ("keep-alive requests/s", "keepalive", "rps", ".0f"),
        ("keep-alive p50, µs", "keepalive", "p50_us", ".0f"),
        ("keep-alive p99, µs", "keepalive", "p99_us", ".0f"),
        ("RSS per idle connection, bytes", "idle", "rss_per_conn", ".0f"),
        ("iou-wrk threads under load", "iperf1", "iou_wrk", "d"),
    ]
    rows = [(label, lambda r, p=phase, k=key: r[p].get(k), spec)
            for label, phase, key, spec in rows if phase in phases]
    names = list(results)
    try:
        with open("/proc/sys/net/ipv4/tcp_congestion_control") as f:
            congestion = f.read().strip()
    except OSError:
        congestion = "unknown"
    print(f"\n{time.strftime('%Y-%m-%d')}, kernel {platform.release()} "
          f"(TCP congestion control {congestion}), "
          f"{os.cpu_count()} CPUs; balancer on CPU {args.balancer_cpus}, clients and backends "
          f"on CPU {args.client_cpus}; {args.threads} balancer thread(s); {args.seconds} s per run, "
          f"median of {args.repeat} interleaved runs; "
          f"{args.idle} idle connections. Ratios are to HAProxy.\n")
    print("| figure | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for label, get, spec in rows:
        cells = []
        for n in names:
            v = get(results[n])
            cells.append(fmt(v, spec) + (ratio(v, get(ref)) if ref and n != "haproxy" else ""))
        print(f"| {label} | " + " | ".join(cells) + " |")
    errors = {n: " ".join(results[n][p]["errors"] for p in ("close", "keepalive")
                          if p in results[n]) for n in names}
    if any(e.strip() for e in errors.values()):
        print("\nwrk errors: " + "; ".join(f"{n}: {e.strip()}" for n, e in errors.items() if e.strip()))
    print("\nCommands (balancers pinned with `taskset -c "
          f"{args.balancer_cpus}`, clients with `taskset -c {args.client_cpus}`):")
    for n in names:
        print(f"- {n}: `{commands[n]}`")
    first = results[names[0]]
    for key in [p for p in ("iperf1", "iperf4", "close", "keepalive") if p in first]:
        print(f"- client: `{first[key]['cmd']}`")
    print("- CPU: utime+stime of the balancer's processes (/proc/PID/stat) over the run; "
          "RSS: VmRSS growth with the idle clients connected")
    if "close" in phases:
        print("- ¹ system-wide on loopback, so client, balancer and backend segments alike: "
              "deltas of Tcp OutSegs/InSegs (/proc/net/snmp) over the close run, divided by its "
              "requests" + ("; TCP Fast Open: TcpExt TCPFastOpenActive (connects that sent data "
                            "in the SYN) and TCPFastOpenPassive (SYNs with data accepted), "
                            "/proc/net/netstat, per run" if args.short_options else ""))


if __name__ == "__main__":
    main()