"""The UDP phases of bench/compare.py (udp_rr64, udp_rr1400, udp_flood,
udp_flood_paced): direct, l4lb and nginx (`listen ... udp`) in front of
bench/udp_load's echo server, driven by its clients. HAProxy has no UDP.
"""

import json
import os
import platform
import socket
import subprocess
import time

from compare_balancers import (BACKEND_HOST, LISTEN_HOST, Direct, cpu_seconds, free_udp_port,
                               print_rows, wait_udp_bound)


def udp_drops(host, port):
    """Datagrams dropped at full receive buffers by the sockets bound to host:port
    (the drops column of /proc/net/udp), or None if none is bound."""
    want = "%08X:%04X" % (int.from_bytes(socket.inet_aton(host), "little"), port)
    with open("/proc/net/udp") as f:
        drops = [int(line.split()[-1]) for line in list(f)[1:] if line.split()[1] == want]
    return sum(drops) if drops else None


# phase -> (udp_load mode, datagram bytes, paced)
UDP_PHASES = {
    "udp_rr64": ("rr", 64, False),
    "udp_rr1400": ("rr", 1400, False),
    "udp_flood": ("flood", 64, False),
    "udp_flood_paced": ("flood", 64, True),
}


def measure_udp(phase, balancer, args):
    """A fresh echo backend per run (its counts are the flood's delivery), the
    balancer in front of it, udp_load's clients on the client CPU. CPU is read
    from the end of the clients' warm-up (sessions made) to just after they stop."""
    if balancer.argv_udp(0, 0) is None:
        return None
    mode, size, paced = UDP_PHASES[phase]
    backend_port = free_udp_port(BACKEND_HOST)
    # Floods: the echo server shares its CPU with a client that never waits; at
    # equal priority the flood starves it and the loss is the load's (nice -10).
    # Request/response clients wait for each reply: equal priority.
    nice = ["nice", "-n", "-10"] if mode == "flood" else []
    echo = subprocess.Popen(
        nice + ["taskset", "-c", args.client_cpus, args.udp_load, "--mode=echo",
                f"--listen={BACKEND_HOST}:{backend_port}"],
        stdout=subprocess.PIPE, text=True)
    try:
        if not wait_udp_bound(BACKEND_HOST, backend_port):
            raise RuntimeError("udp_load echo did not start")
        port = balancer.start(backend_port, udp=True)
        host = BACKEND_HOST if isinstance(balancer, Direct) else LISTEN_HOST
        pids = balancer.pids()
        argv = ["taskset", "-c", args.client_cpus, args.udp_load, f"--mode={mode}",
                f"--target={host}:{port}", f"--clients={args.udp_clients}", f"--size={size}",
                f"--seconds={args.seconds}", "--warmup_ms=300"]
        if paced:
            argv.append(f"--rate={args.udp_flood_rate}")
        client = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        cpu0 = cpu_seconds(pids)
        out = json.loads(client.communicate(timeout=args.seconds + 30)[0])
        time.sleep(0.1)  # what was in flight at the end, forwarded
        cpu = cpu_seconds(pids) - cpu0
        # Where a flood's loss happened: the balancer's listening socket, or the
        # backend's (the echo server shares the client CPU with the flood).
        drops_balancer = None if isinstance(balancer, Direct) else udp_drops(LISTEN_HOST, port)
        drops_backend = udp_drops(BACKEND_HOST, backend_port)
        balancer.stop()
    finally:
        echo.terminate()
        counts = json.loads(echo.communicate(timeout=10)[0].splitlines()[-1])
    cmd = " ".join(argv[3:])
    if mode == "rr":
        return {
            "udp_rate": out["rate"],
            "udp_p50_us": out["p50_us"],
            "udp_p99_us": out["p99_us"],
            "udp_loss_pct": 100.0 * out["loss"],
            "udp_cpu_us": cpu / out["replies"] * 1e6 if pids and out["replies"] else None,
            "udp_cpu_cores": cpu / out["seconds"] if pids else None,
            "cmd": cmd,
        }
    delivered = counts["sunk"]
    return {
        "udp_sent_rate": out["rate"],
        "udp_rate": delivered / out["seconds"],
        "udp_loss_pct": 100.0 * (1 - delivered / out["counted"]) if out["counted"] else None,
        "udp_drops_balancer": drops_balancer,
        "udp_drops_backend": drops_backend,
        "udp_cpu_us": cpu / delivered * 1e6 if pids and delivered else None,
        "udp_cpu_cores": cpu / out["seconds"] if pids else None,
        "cmd": cmd,
    }


def print_udp_table(results, phases, commands, args):
    """The udp_* phases: one table, ratios to nginx (HAProxy has no UDP)."""
    names = [n for n in results if any(p in results[n] for p in phases)]
    rows = [
        ("request/response 64 B, replies/s", "udp_rr64", "udp_rate", ".0f"),
        ("rr 64 B: p50 RTT, µs", "udp_rr64", "udp_p50_us", ".0f"),
        ("rr 64 B: p99 RTT, µs", "udp_rr64", "udp_p99_us", ".0f"),
        ("rr 64 B: loss, %", "udp_rr64", "udp_loss_pct", ".3f"),
        ("rr 64 B: CPU µs per reply", "udp_rr64", "udp_cpu_us", ".2f"),
        ("rr 64 B: balancer cores busy", "udp_rr64", "udp_cpu_cores", ".2f"),
        ("request/response 1400 B, replies/s", "udp_rr1400", "udp_rate", ".0f"),
        ("rr 1400 B: p50 RTT, µs", "udp_rr1400", "udp_p50_us", ".0f"),
        ("rr 1400 B: p99 RTT, µs", "udp_rr1400", "udp_p99_us", ".0f"),
        ("rr 1400 B: loss, %", "udp_rr1400", "udp_loss_pct", ".3f"),
        ("rr 1400 B: CPU µs per reply", "udp_rr1400", "udp_cpu_us", ".2f"),
        ("flood 64 B: sent, datagrams/s", "udp_flood", "udp_sent_rate", ".0f"),
        ("flood 64 B: delivered, datagrams/s", "udp_flood", "udp_rate", ".0f"),
        ("flood 64 B: loss, %", "udp_flood", "udp_loss_pct", ".3f"),
        ("flood 64 B: dropped at the balancer's socket", "udp_flood", "udp_drops_balancer", ".0f"),
        ("flood 64 B: dropped at the backend's socket", "udp_flood", "udp_drops_backend", ".0f"),
        ("flood 64 B: CPU µs per datagram", "udp_flood", "udp_cpu_us", ".2f"),
        ("flood 64 B: balancer cores busy", "udp_flood", "udp_cpu_cores", ".2f"),
        (f"paced {args.udp_flood_rate}/s: delivered, datagrams/s", "udp_flood_paced",
         "udp_rate", ".0f"),
        (f"paced {args.udp_flood_rate}/s: loss, %", "udp_flood_paced", "udp_loss_pct", ".3f"),
        (f"paced {args.udp_flood_rate}/s: dropped at the balancer's socket", "udp_flood_paced",
         "udp_drops_balancer", ".0f"),
        (f"paced {args.udp_flood_rate}/s: CPU µs per datagram", "udp_flood_paced",
         "udp_cpu_us", ".2f"),
    ]
    print(f"\n{time.strftime('%Y-%m-%d')}, kernel {platform.release()}, {os.cpu_count()} CPUs; "
          f"balancer on CPU {args.balancer_cpus}, udp_load clients and echo backend on CPU "
          f"{args.client_cpus}; {args.threads} balancer thread(s); {args.udp_clients} client "
          f"sockets from as many addresses; {args.seconds} s per run, median of {args.repeat} "
          "interleaved runs. Ratios are to nginx.\n")
    print("| figure | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    print_rows([(label, phase, key, spec, True) for label, phase, key, spec in rows
                if phase in phases], names, results, "nginx")
    print("\nCommands (balancers pinned with `taskset -c "
          f"{args.balancer_cpus}`, clients and echo backend with `taskset -c {args.client_cpus}`):")
    for n in names:
        print(f"- {n}: `{commands.get(n, '')}`")
    for p in phases:
        first = next((results[n][p] for n in names if p in results[n]), None)
        if first:
            print(f"- {p} client: `{first['cmd']}`")
    print(f"- backend: `udp_load --mode=echo --listen={BACKEND_HOST}:PORT`, under `nice -n -10` "
          "for the floods (a fresh one per run; "
          "its count of flood datagrams is what was delivered)")
    print("- CPU: utime+stime of the balancer's processes over the measured part of the run; "
          "per reply (rr: two datagrams relayed) or per delivered datagram (flood)")

