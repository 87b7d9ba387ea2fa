"""The concurrency phases of bench/compare.py (issue 17, "many flows at once"; not in the
default --phases):
  flows100, flows1000: that many bulk TCP flows through the balancer at once. iperf3
    takes at most 128 streams per client and serves one test at a time, so a phase runs
    K one-test iperf3 servers (`-s -1`, fresh per run) on distinct ports and K clients
    started together (flows100: 1 x -P 100, flows1000: 8 x -P 125); the balancer has
    K listeners, listener i -> server i (l4lb: K [[service]]s in a --config file).
    Figures: aggregate Gbit/s, balancer CPU-seconds per GB, per-flow throughput
    min/median/max and min over median (target: no flow below half the median).
  keepalive1000: 1,000 keep-alive wrk clients on the backend nginx's /1k (measured by
    compare.measure_wrk); the table shows the median and every run's p99.
"""

import json
import os
import platform
import statistics
import subprocess
import time

from compare_balancers import (BACKEND_HOST, LISTEN_HOST, Direct, cpu_seconds, fmt,
                               free_ports, print_rows, wait_tcp_listening)

# phase -> (iperf3 client/server pairs, streams per client)
FLOW_PHASES = {"flows100": (1, 100), "flows1000": (8, 125)}
# phase -> wrk connections
KEEPALIVE_PHASES = {"keepalive1000": 1000}
CONCURRENCY_PHASES = list(FLOW_PHASES) + list(KEEPALIVE_PHASES)


def start_iperf_servers(n, cpus):
    """n one-test iperf3 servers on BACKEND_HOST; each exits after its test. Ready is
    read from /proc: a test connection would be taken for the test."""
    ports = free_ports(BACKEND_HOST, n)
    procs = [subprocess.Popen(["taskset", "-c", cpus, "iperf3", "-s", "-1", "-B", BACKEND_HOST,
                               "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for port in ports]
    for port in ports:
        if not wait_tcp_listening(BACKEND_HOST, port):
            for p in procs:
                p.kill()
                p.wait()
            raise RuntimeError(f"iperf3 server on {BACKEND_HOST}:{port} did not start")
    return procs, ports


def measure_flows(phase, balancer, args):
    pairs, streams = FLOW_PHASES[phase]
    servers, backend_ports = start_iperf_servers(pairs, args.client_cpus)
    try:
        ports = balancer.start_flows(backend_ports)
        host = BACKEND_HOST if isinstance(balancer, Direct) else LISTEN_HOST
        pids = balancer.pids()
        cpu0 = cpu_seconds(pids)
        # -i 0: no per-second reports, only the end (125 streams' intervals are large).
        argvs = [["taskset", "-c", args.client_cpus, "iperf3", "-c", host, "-p", str(port),
                  "-t", str(args.seconds), "-P", str(streams), "-i", "0", "-J"]
                 for port in ports]
        clients = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for argv in argvs]
        outs = [json.loads(c.communicate(timeout=args.seconds + 60)[0]) for c in clients]
        cpu = cpu_seconds(pids) - cpu0
    finally:
        balancer.stop()
        for p in servers:
            if p.poll() is None:
                p.terminate()
            p.wait()
    flows, received_bytes, bits_per_second = [], 0, 0.0
    for out in outs:
        if "error" in out:
            raise RuntimeError(f"{balancer.name} {phase}: iperf3: {out['error']}")
        flows += [s["receiver"]["bits_per_second"] for s in out["end"]["streams"]]
        received_bytes += out["end"]["sum_received"]["bytes"]
        bits_per_second += out["end"]["sum_received"]["bits_per_second"]
    # Every flow went through the balancer and was counted: fewer streams in the
    # results means some never connected, and the figures would flatter it.
    if len(flows) != pairs * streams:
        raise RuntimeError(f"{balancer.name} {phase}: {len(flows)} flows in iperf3's results, "
                           f"want {pairs * streams}")
    median = statistics.median(flows)
    return {
        "gbps": bits_per_second / 1e9,
        "cpu_per_gb": cpu / (received_bytes / 1e9) if pids and received_bytes else None,
        "flow_min_mbps": min(flows) / 1e6,
        "flow_median_mbps": median / 1e6,
        "flow_max_mbps": max(flows) / 1e6,
        "flow_min_over_median": min(flows) / median if median else None,
        "cmd": " ".join(["iperf3", "-c", "HOST", "-p", "PORT_i"] + argvs[0][8:]),
    }


def print_flows_table(results, runs, phases, commands, flows_commands, args):
    """One table for the concurrency phases, ratios to HAProxy, then every run's
    keep-alive p99 (the issue's target is a median of several runs)."""
    names = [n for n in results if any(p in results[n] for p in phases)]
    rows = []
    for phase, (pairs, streams) in FLOW_PHASES.items():
        n = f"{pairs * streams:,} flows"
        rows += [
            (f"{n}: aggregate Gbit/s", phase, "gbps", ".2f", True),
            (f"{n}: CPU-s per GB", phase, "cpu_per_gb", ".3f", True),
            (f"{n}: per-flow min, Mbit/s", phase, "flow_min_mbps", ".0f", True),
            (f"{n}: per-flow median, Mbit/s", phase, "flow_median_mbps", ".0f", True),
            (f"{n}: per-flow max, Mbit/s", phase, "flow_max_mbps", ".0f", True),
            (f"{n}: min / median (target >= 0.5)", phase, "flow_min_over_median", ".2f", False),
        ]
    for phase, clients in KEEPALIVE_PHASES.items():
        n = f"{clients:,} keep-alive clients"
        rows += [
            (f"{n}: requests/s", phase, "rps", ".0f", True),
            (f"{n}: p50, µs", phase, "p50_us", ".0f", True),
            (f"{n}: p99, µs", phase, "p99_us", ".0f", True),
            (f"{n}: CPU µs per request", phase, "cpu_us_per_req", ".2f", True),
        ]
    print(f"\nConcurrent flows. {time.strftime('%Y-%m-%d')}, kernel {platform.release()}, "
          f"{os.cpu_count()} CPUs; balancer on CPU {args.balancer_cpus}, clients and backends on "
          f"CPU {args.client_cpus}; {args.threads} balancer thread(s); {args.seconds} s per run, "
          f"median of {args.repeat} interleaved runs. Ratios are to HAProxy.\n")
    print("| figure | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    print_rows([r for r in rows if r[1] in phases], names, results, "haproxy")
    for phase in KEEPALIVE_PHASES:
        if phase not in phases:
            continue
        per_run = "; ".join(
            f"{n} " + ", ".join(fmt(r.get("p99_us"), ".0f") for r in runs[n, phase])
            for n in names if (n, phase) in runs)
        print(f"\n{phase}: p99 per run, µs: {per_run}")
        errors = "; ".join(f"{n}: {results[n][phase]['errors']}" for n in names
                           if results[n].get(phase, {}).get("errors"))
        if errors:
            print(f"\n{phase} wrk errors: {errors}")
    print("\nCommands (balancers pinned with `taskset -c "
          f"{args.balancer_cpus}`, clients and backends with `taskset -c {args.client_cpus}`):")
    for n in names:
        parts = []
        if n in flows_commands:
            parts.append(f"flows: `{flows_commands[n]}`")
        if n in commands and any(p in KEEPALIVE_PHASES for p in phases):
            parts.append(f"keep-alive: `{commands[n]}`")
        print(f"- {n}: " + "; ".join(parts))
    for phase in phases:
        first = next((results[n][phase] for n in names if phase in results[n]), None)
        if not first:
            continue
        if phase in FLOW_PHASES:
            pairs, _ = FLOW_PHASES[phase]
            print(f"- {phase} clients: {pairs} x `{first['cmd']}`, started together, client i to "
                  f"listener i (HOST {LISTEN_HOST}; direct: {BACKEND_HOST}); servers: {pairs} x `iperf3 -s -1 -B {BACKEND_HOST} -p PORT_i`, "
                  "fresh per run")
        else:
            print(f"- {phase} client: `{first['cmd']}`")
    if any(p in FLOW_PHASES for p in phases):
        print("- flows: listener i -> iperf3 server i (l4lb: one [[service]] per listener in a "
              "--config file, health checks off; HAProxy: a frontend/backend pair each, maxconn "
              "4000, maxpipes 2000; nginx: a stream server block each); per-flow figures are "
              "iperf3's receiver bits/s of each stream, the aggregate its sum_received")
    print("- CPU: utime+stime of the balancer's processes (/proc/PID/stat) over the run")
