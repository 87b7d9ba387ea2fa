#!/usr/bin/env python3
"""Side by side, in one run: direct, l4lb, HAProxy (mode tcp, splice-auto) and nginx
stream, with the same backends, the same clients and the same thread count.

The balancer under test is pinned to --balancer_cpus, clients and backends to
--client_cpus, so the balancer's own cost shows. Figures:
  iperf3 1 and 4 streams (Gbit/s), CPU-seconds per GB forwarded;
  wrk with Connection: close against nginx serving 1 KiB (new connections/s),
  CPU per connection;
  wrk keep-alive latency p50/p99;
  RSS growth per idle connection (N idle clients held open);
  iou-wrk threads seen in l4lb under load (must be 0: splice runs on the worker).
UDP phases (udp_rr64, udp_rr1400, udp_flood, udp_flood_paced; not in the default
--phases) put direct, l4lb and nginx (`listen ... udp`) in front of bench/udp_load's echo
server and drive them with its clients: 64 sockets from 64 source addresses,
request/response (replies/s, p50/p99 round trip, loss, CPU per reply) and a one-way
flood (datagrams/s delivered, loss, CPU per datagram). HAProxy has no UDP.
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
import threading
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
BACKEND_HOST = "127.0.0.2"
LISTEN_HOST = "127.0.0.1"
FILE_SIZES = {"1k": 1024, "4k": 4096, "16k": 16384, "64k": 65536, "256k": 262144}


def free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_listening(host, port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def free_udp_port(host):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def udp_bound(host, port):
    """Some socket is bound to host:port in /proc/net/udp (little-endian hex address)."""
    want = "%08X:%04X" % (int.from_bytes(socket.inet_aton(host), "little"), port)
    with open("/proc/net/udp") as f:
        return any(line.split()[1] == want for line in list(f)[1:])


def udp_drops(host, port):
    """Datagrams dropped at full receive buffers by the sockets bound to host:port
    (the drops column of /proc/net/udp), or None if none is bound."""
    want = "%08X:%04X" % (int.from_bytes(socket.inet_aton(host), "little"), port)
    with open("/proc/net/udp") as f:
        drops = [int(line.split()[-1]) for line in list(f)[1:] if line.split()[1] == want]
    return sum(drops) if drops else None


def wait_udp_bound(host, port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if udp_bound(host, port):
            return True
        time.sleep(0.05)
    return False


def descendants(pid):
    """pid and every process below it (nginx master + workers)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except OSError:
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime, all threads
        except OSError:
            pass
    return total / CLK_TCK


def rss_bytes(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def iou_workers(pid):
    try:
        return sum(
            1
            for t in os.listdir(f"/proc/{pid}/task")
            if open(f"/proc/{pid}/task/{t}/comm").read().startswith("iou-wrk")
        )
    except OSError:
        return 0


class Balancer:
    """One balancer process (or none, for direct), pinned, started per phase."""

    def __init__(self, name, work, cpus, threads):
        self.name, self.work, self.cpus, self.threads = name, work, cpus, threads
        self.proc = None
        self.command = ""

    def argv(self, listen_port, backend_port):
        raise NotImplementedError

    def argv_udp(self, listen_port, backend_port):
        return None  # no UDP proxying

    def start(self, backend_port, udp=False):
        self.port = (free_udp_port if udp else free_port)(LISTEN_HOST)
        argv = (self.argv_udp if udp else self.argv)(self.port, backend_port)
        self.command = " ".join(argv)
        if udp:
            self.udp_command = self.command
        self.log = open(os.path.join(self.work, f"{self.name}.log"), "a")
        self.proc = subprocess.Popen(
            ["taskset", "-c", self.cpus] + argv, stdout=self.log, stderr=self.log
        )
        ready = wait_udp_bound(LISTEN_HOST, self.port) if udp else wait_listening(LISTEN_HOST, self.port)
        if not ready:
            self.log.flush()
            with open(self.log.name) as f:
                raise RuntimeError(f"{self.name} did not start:\n{f.read()[-2000:]}")
        time.sleep(0.2)  # let nginx workers come up
        return self.port

    def pids(self):
        return descendants(self.proc.pid) if self.proc else []

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log.close()


class Direct(Balancer):
    def argv_udp(self, listen_port, backend_port):
        return []

    def start(self, backend_port, udp=False):
        self.command = "(client connects to the backend)"
        self.udp_command = self.command
        self.port = backend_port
        return backend_port

    def host(self):
        return BACKEND_HOST


class L4lb(Balancer):
    def __init__(self, binary, extra, *args):
        super().__init__(*args)
        self.binary = binary
        self.extra = extra.split()

    def argv(self, listen_port, backend_port):
        return [
            self.binary,
            f"--listen={LISTEN_HOST}:{listen_port}",
            f"--backends={BACKEND_HOST}:{backend_port}",
            f"--threads={self.threads}",
            "--access_log=false",  # the peers log nothing either
            "--idle_timeout=0",
        ] + self.extra

    def argv_udp(self, listen_port, backend_port):
        # UDP services are probed only when told how: none here, like nginx.
        return [
            self.binary,
            f"--listen=udp://{LISTEN_HOST}:{listen_port}",
            f"--backends={BACKEND_HOST}:{backend_port}",
            f"--threads={self.threads}",
            "--access_log=false",
        ] + self.extra


class L4lbAdmin(L4lb):
    """l4lb with the admin endpoint on and /metrics scraped every second while it
    is measured, as a Prometheus server would: what metrics cost the data plane.
    The admin threads are l4lb's, so their CPU counts in l4lb's figures."""

    def argv(self, listen_port, backend_port):
        self.admin_port = free_port(LISTEN_HOST)
        return super().argv(listen_port, backend_port) + [
            f"--admin={LISTEN_HOST}:{self.admin_port}"]

    def start(self, backend_port):
        port = super().start(backend_port)
        self.scrapes, self.scrape_errors = 0, 0
        self.stopping = threading.Event()
        url = f"http://{LISTEN_HOST}:{self.admin_port}/metrics"

        def scrape():
            while not self.stopping.wait(1.0):
                try:
                    with urllib.request.urlopen(url, timeout=2) as r:
                        r.read()
                    self.scrapes += 1
                except OSError:
                    self.scrape_errors += 1

        self.scraper = threading.Thread(target=scrape, daemon=True)
        self.scraper.start()
        return port

    def stop(self):
        if self.proc:
            self.stopping.set()
            self.scraper.join()
            if self.scrapes == 0 or self.scrape_errors:
                print(f"{self.name}: {self.scrapes} scrapes, {self.scrape_errors} failed",
                      file=sys.stderr)
        super().stop()


class HAProxy(Balancer):
    def argv(self, listen_port, backend_port):
        cfg = os.path.join(self.work, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(
                f"""global
    nbthread {self.threads}
    # 2 fds per relayed connection + 2 per pipe: what the 20,000 open-files
    # limit allows (HAProxy refuses to start above it). 500 pipes cover every
    # transfer in flight here.
    maxconn 9000
    maxpipes 500
defaults
    mode tcp
    option splice-auto
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend fe
    bind {LISTEN_HOST}:{listen_port}
    default_backend be
backend be
    server s1 {BACKEND_HOST}:{backend_port}
"""
            )
        return ["haproxy", "-db", "-f", cfg]


class HAProxyStick(HAProxy):
    """HAProxy doing what l4lb-limits does: a stick table tracking every client's
    concurrent connections and connection rate, checked at accept (never hit)."""

    def argv(self, listen_port, backend_port):
        argv = super().argv(listen_port, backend_port)
        cfg = argv[-1]
        with open(cfg) as f:
            text = f.read()
        text = text.replace(
            f"    bind {LISTEN_HOST}:{listen_port}\n",
            f"    bind {LISTEN_HOST}:{listen_port}\n"
            "    stick-table type ip size 100k expire 30s store conn_cur,conn_rate(1s)\n"
            "    tcp-request connection track-sc0 src\n"
            "    tcp-request connection reject if { sc_conn_cur(0) gt 100000 }\n"
            "    tcp-request connection reject if { sc_conn_rate(0) gt 1000000 }\n")
        cfg = os.path.join(self.work, "haproxy-stick.cfg")
        with open(cfg, "w") as f:
            f.write(text)
        return argv[:-1] + [cfg]


# What --limits turns on in l4lb: every per-client check on every accept, with
# bounds no benchmark client reaches (the cost of checking, not of refusing).
L4LB_LIMITS = ("--client_max_connections=100000 --client_rate=1000000/s "
               "--client_burst=1000000 --deny=203.0.113.0/24")


class NginxStream(Balancer):
    def _config(self, name, listen, timeout, backend_port):
        cfg = os.path.join(self.work, name)
        with open(cfg, "w") as f:
            f.write(
                f"""load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
worker_processes {self.threads};
user root;
pid {self.work}/nginx-stream.pid;
error_log {self.work}/nginx-stream.error.log;
worker_rlimit_nofile 20000;
events {{ worker_connections 20000; }}
stream {{
    server {{
        listen {listen} reuseport;
        proxy_pass {BACKEND_HOST}:{backend_port};
        proxy_timeout {timeout};
    }}
}}
"""
            )
        return ["/usr/sbin/nginx", "-c", cfg, "-e", f"{self.work}/nginx-stream.error.log"]

    def argv(self, listen_port, backend_port):
        return self._config("nginx-stream.conf", f"{LISTEN_HOST}:{listen_port}", "300s", backend_port)

    def argv_udp(self, listen_port, backend_port):
        # Sessions as long-lived as l4lb's (proxy_responses unset: any number of
        # replies; a session ends after proxy_timeout without a datagram).
        return self._config("nginx-stream-udp.conf", f"{LISTEN_HOST}:{listen_port} udp", "30s",
                            backend_port)


def start_backends(work, cpus):
    """iperf3 server and an nginx HTTP server on 127.0.0.2 serving /1k (1 KiB) and
    /SIZE files for the copy-threshold sweep (FILE_SIZES)."""
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
    server {{ listen {BACKEND_HOST}:{http_port} backlog=4096; root {www}; }}
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


def measure_wrk(balancer, backend_port, args, close, path="1k", cpu_per_request=False):
    port = balancer.start(backend_port)
    host = BACKEND_HOST if isinstance(balancer, Direct) else LISTEN_HOST
    pids = balancer.pids()
    cpu0 = cpu_seconds(pids)
    argv = ["taskset", "-c", args.client_cpus, "wrk", "-t1", f"-c{args.wrk_connections}",
            f"-d{args.seconds}s", "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://{host}:{port}/{path}")
    out = run(argv, args.seconds + 30).stdout
    cpu = cpu_seconds(pids) - cpu0
    balancer.stop()
    rps, total, lat, errors, non2xx = parse_wrk(out)
    per_request = cpu / total * 1e6 if (pids and total) else None
    return {
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


def measure(phase, balancer, iperf_port, http_port, args):
    if phase in UDP_PHASES:
        return measure_udp(phase, balancer, args)
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


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def ratio(v, ref, lower_is_better=False):
    if v is None or ref in (None, 0):
        return ""
    return f" ({v / ref:.2f}x)"


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
                         + ",".join(UDP_PHASES) + ")")
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

    work = tempfile.mkdtemp(prefix="l4lb-bench-")
    tcp_phases = [p for p in phases if p not in UDP_PHASES]
    backends, iperf_port, http_port = (
        start_backends(work, args.client_cpus) if tcp_phases else ([], None, None))
    common = (work, args.balancer_cpus, args.threads)
    balancers = [Direct("direct", *common), L4lb(args.l4lb, args.l4lb_args, "l4lb", *common)]
    if args.l4lb_baseline:
        balancers.append(L4lb(args.l4lb_baseline, args.l4lb_args, "l4lb-base", *common))
    if args.limits:
        balancers.append(L4lb(args.l4lb, (args.l4lb_args + " " + L4LB_LIMITS).strip(),
                              "l4lb-limits", *common))
    if args.admin_scrape:
        balancers.append(L4lbAdmin(args.l4lb, args.l4lb_args, "l4lb-admin", *common))
    if args.policies:
        for policy in ("maglev_bounded", "least_conn", "round_robin"):
            balancers.append(L4lb(args.l4lb, (args.l4lb_args + " --balance=" + policy).strip(),
                                  "l4lb-" + policy, *common))
    balancers.append(HAProxy("haproxy", *common))
    if args.limits:
        balancers.append(HAProxyStick("haproxy-stick", *common))
    balancers.append(NginxStream("nginx", *common))
    if args.only:
        balancers = [b for b in balancers if b.name in args.only.split(",")]
    results, commands, udp_commands = {b.name: {} for b in balancers}, {}, {}
    runs = {}  # (balancer, phase) -> one result dict per repetition
    try:
        # Repetitions interleave the balancers, so drift on a shared machine hits
        # all of them alike; each figure is the median of its repetitions.
        for rep in range(args.repeat):
            for phase in phases:
                if phase == "idle" and rep > 0:
                    continue  # RSS is deterministic enough, and slow to measure
                for b in balancers:
                    if phase in UDP_PHASES and b.argv_udp(0, 0) is None:
                        continue  # HAProxy: no UDP
                    print(f"[{rep + 1}/{args.repeat}] {b.name} {phase}", file=sys.stderr)
                    runs.setdefault((b.name, phase), []).append(
                        measure(phase, b, iperf_port, http_port, args))
                    (udp_commands if phase in UDP_PHASES else commands)[b.name] = b.command
    finally:
        for b in balancers:
            b.stop()
        for p in backends:
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)
    for (name, phase), reps in runs.items():
        results[name][phase] = median_result(reps)
    if udp_phases:
        print_udp_table(results, udp_phases, udp_commands, args)
    if not tcp_phases:
        return

    ref = results.get("haproxy")
    rows = [
        ("iperf3 1 stream, Gbit/s", "iperf1", "gbps", ".2f"),
        ("iperf3 4 streams, Gbit/s", "iperf4", "gbps", ".2f"),
        ("CPU-s per GB (1 stream)", "iperf1", "cpu_per_gb", ".3f"),
        ("CPU-s per GB (4 streams)", "iperf4", "cpu_per_gb", ".3f"),
        ("new connections/s (wrk, close)", "close", "rps", ".0f"),
        ("CPU µs per connection", "close", "cpu_us_per_conn", ".1f"),
        ("keep-alive requests/s", "keepalive", "rps", ".0f"),
        ("keep-alive p50, µs", "keepalive", "p50_us", ".0f"),
        ("keep-alive p99, µs", "keepalive", "p99_us", ".0f"),
        ("RSS per idle connection, bytes", "idle", "rss_per_conn", ".0f"),
        ("iou-wrk threads under load", "iperf1", "iou_wrk", "d"),
    ]
    rows = [(label, lambda r, p=phase, k=key: r[p].get(k), spec)
            for label, phase, key, spec in rows if phase in args.phases.split(",")]
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


def print_udp_table(results, phases, commands, args):
    """The udp_* phases: one table, ratios to nginx (HAProxy has no UDP)."""
    names = [n for n in results if any(p in results[n] for p in phases)]
    ref = results.get("nginx", {})
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
    for label, phase, key, spec in rows:
        if phase not in phases:
            continue
        cells = []
        for n in names:
            v = results[n].get(phase, {}).get(key)
            r = ref.get(phase, {}).get(key)
            cells.append(fmt(v, spec) + (ratio(v, r) if n != "nginx" and v and r else ""))
        print(f"| {label} | " + " | ".join(cells) + " |")
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


if __name__ == "__main__":
    main()
