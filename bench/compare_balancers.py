"""The balancers bench/compare.py measures side by side (direct, l4lb, HAProxy, nginx
stream), how each is configured, started pinned and stopped, and what is read about
their processes from /proc (CPU, RSS, io-wq threads). compare.py, compare_udp.py and
compare_flows.py measure them; this file measures nothing.
"""

import os
import socket
import subprocess
import sys
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


def free_ports(host, n):
    """n distinct free ports: all bound at once, so none is handed out twice."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tcp_listening(host, port):
    """Some socket listens on host:port (/proc/net/tcp, state 0A), seen without
    connecting: a one-test iperf3 server takes any connection for its test."""
    want = "%08X:%04X" % (int.from_bytes(socket.inet_aton(host), "little"), port)
    with open("/proc/net/tcp") as f:
        return any(fields[1] == want and fields[3] == "0A"
                   for fields in (line.split() for line in list(f)[1:]))


def wait_until(ready, timeout=10.0):
    """Polls ready() every 50 ms: True as soon as it is, False after timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ready():
            return True
        time.sleep(0.05)
    return False


def wait_tcp_listening(host, port, timeout=10.0):
    return wait_until(lambda: tcp_listening(host, port), timeout)


def can_connect(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_listening(host, port, timeout=10.0):
    return wait_until(lambda: can_connect(host, port), timeout)


def free_udp_port(host):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def udp_bound(host, port):
    """Some socket is bound to host:port in /proc/net/udp (little-endian hex address)."""
    want = "%08X:%04X" % (int.from_bytes(socket.inet_aton(host), "little"), port)
    with open("/proc/net/udp") as f:
        return any(line.split()[1] == want for line in list(f)[1:])


def wait_udp_bound(host, port, timeout=10.0):
    return wait_until(lambda: udp_bound(host, port), timeout)


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


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def ratio(v, ref, lower_is_better=False):
    if v is None or ref in (None, 0):
        return ""
    return f" ({v / ref:.2f}x)"


def print_rows(rows, names, results, ref_name):
    """Markdown rows (label, phase, key, spec, with_ratio) of a table whose columns are
    `names`; each cell the figure and, with_ratio, its ratio to ref_name's."""
    ref = results.get(ref_name, {})
    for label, phase, key, spec, with_ratio in rows:
        cells = []
        for n in names:
            v = results[n].get(phase, {}).get(key)
            r = ref.get(phase, {}).get(key)
            cells.append(fmt(v, spec) + (ratio(v, r) if with_ratio and n != ref_name else ""))
        print(f"| {label} | " + " | ".join(cells) + " |")


class Balancer:
    """One balancer process (or none, for direct), pinned, started per phase."""

    flows = True  # runs the flows phases (K listeners: argv_flows)

    def __init__(self, name, work, cpus, threads):
        self.name, self.work, self.cpus, self.threads = name, work, cpus, threads
        self.proc = None
        self.command = ""

    def argv(self, listen_port, backend_port):
        raise NotImplementedError

    def argv_udp(self, listen_port, backend_port):
        return None  # no UDP proxying

    def argv_flows(self, pairs):
        """One process with a listener per (listen_port, backend_port) pair."""
        raise NotImplementedError

    def start(self, backend_port, udp=False):
        self.port = (free_udp_port if udp else free_port)(LISTEN_HOST)
        argv = (self.argv_udp if udp else self.argv)(self.port, backend_port)
        self.command = " ".join(argv)
        if udp:
            self.udp_command = self.command
            self._launch(argv, lambda: udp_bound(LISTEN_HOST, self.port))
        else:
            self._launch(argv, lambda: can_connect(LISTEN_HOST, self.port))
        return self.port

    def start_flows(self, backend_ports):
        """Listener i -> backend_ports[i]; returns the listeners' ports. Ready when all
        listen, seen in /proc: a test connection would be relayed to a one-test iperf3."""
        ports = free_ports(LISTEN_HOST, len(backend_ports))
        argv = self.argv_flows(list(zip(ports, backend_ports)))
        self.flows_command = " ".join(argv)
        self._launch(argv, lambda: all(tcp_listening(LISTEN_HOST, p) for p in ports))
        return ports

    def _launch(self, argv, ready, timeout=10.0):
        """Starts argv pinned; waits until ready() or the process exits (a refused
        flag or config: its log says why)."""
        self.log = open(os.path.join(self.work, f"{self.name}.log"), "a")
        self.proc = subprocess.Popen(
            ["taskset", "-c", self.cpus] + argv, stdout=self.log, stderr=self.log
        )
        deadline = time.time() + timeout
        while not ready() and self.proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        if self.proc.poll() is not None or not ready():
            self.log.flush()
            self.stop()
            with open(self.log.name) as f:
                raise RuntimeError(f"{self.name} did not start:\n{f.read()[-2000:]}")
        time.sleep(0.2)  # let nginx workers come up

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

    def argv_flows(self, pairs):
        return []

    def start(self, backend_port, udp=False):
        self.command = "(client connects to the backend)"
        self.udp_command = self.command
        self.port = backend_port
        return backend_port

    def start_flows(self, backend_ports):
        self.flows_command = "(clients connect to the backends)"
        return list(backend_ports)

    def host(self):
        return BACKEND_HOST


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return f'"{v}"' if isinstance(v, str) else str(v)


class L4lb(Balancer):
    """`settings` are per-service options (e.g. {"balance": "least_conn"}): flags
    (--balance=least_conn, --defer_accept for True) on the command line, keys of
    every [[service]] in the flows phases' --config file."""

    def __init__(self, binary, extra, *args, settings=None, flows=True):
        super().__init__(*args)
        self.binary = binary
        self.extra = extra.split()
        self.settings = settings or {}
        self.flows = flows

    def setting_flags(self):
        return [f"--{k}" if v is True else f"--{k}={v}" for k, v in self.settings.items()]

    def argv(self, listen_port, backend_port):
        return [
            self.binary,
            f"--listen={LISTEN_HOST}:{listen_port}",
            f"--backends={BACKEND_HOST}:{backend_port}",
            f"--threads={self.threads}",
            "--access_log=false",  # the peers log nothing either
            "--idle_timeout=0",
        ] + self.extra + self.setting_flags()

    def argv_udp(self, listen_port, backend_port):
        # UDP services are probed only when told how: none here, like nginx.
        return [
            self.binary,
            f"--listen=udp://{LISTEN_HOST}:{listen_port}",
            f"--backends={BACKEND_HOST}:{backend_port}",
            f"--threads={self.threads}",
            "--access_log=false",
        ] + self.extra + self.setting_flags()

    def argv_flows(self, pairs):
        cfg = os.path.join(self.work, f"{self.name}-flows.toml")
        with open(cfg, "w") as f:
            for i, (listen_port, backend_port) in enumerate(pairs):
                f.write(f'[[service]]\nname = "flows{i}"\nlisten = ["{LISTEN_HOST}:{listen_port}"]\n'
                        f'backends = ["{BACKEND_HOST}:{backend_port}"]\nidle_timeout = "0s"\n')
                f.writelines(f"{k} = {toml_value(v)}\n" for k, v in self.settings.items())
                # A probe would be a test to a one-test iperf3 server; HAProxy and
                # nginx probe nothing here either.
                f.write('[service.health]\ncheck = "none"\n\n')
        return [self.binary, f"--config={cfg}", f"--threads={self.threads}",
                "--access_log=false"] + self.extra


class L4lbAdmin(L4lb):
    """l4lb with the admin endpoint on and /metrics scraped every second while it
    is measured, as a Prometheus server would: what metrics cost the data plane.
    The admin threads are l4lb's, so their CPU counts in l4lb's figures."""

    def __init__(self, *args):
        super().__init__(*args, flows=False)

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
    bind_options = ""    # appended to every bind line (HAProxyFast)
    server_options = ""  # appended to every server line

    def argv(self, listen_port, backend_port):
        # 2 fds per relayed connection + 2 per pipe: what the 20,000 open-files limit
        # allows (HAProxy refuses to start above it). 500 pipes cover every transfer
        # in flight here.
        return self._config([(listen_port, backend_port)], maxconn=9000, maxpipes=500)

    def argv_flows(self, pairs):
        # Up to 1,000 bulk flows at once: a pipe for each (4,000 x 2 + 2,000 x 2 fds).
        return self._config(pairs, maxconn=4000, maxpipes=2000)

    def _config(self, pairs, maxconn, maxpipes):
        proxies = "".join(
            f"""frontend fe{tag}
    bind {LISTEN_HOST}:{listen_port}{self.bind_options}
    default_backend be{tag}
backend be{tag}
    server s1 {BACKEND_HOST}:{backend_port}{self.server_options}
""" for tag, (listen_port, backend_port) in
            ((str(i) if len(pairs) > 1 else "", pair) for i, pair in enumerate(pairs)))
        cfg = os.path.join(self.work, f"{self.name}.cfg")
        with open(cfg, "w") as f:
            f.write(
                f"""global
    nbthread {self.threads}
    maxconn {maxconn}
    maxpipes {maxpipes}
defaults
    mode tcp
    option splice-auto
    timeout connect 5s
    timeout client 300s
    timeout server 300s
"""
                + proxies
            )
        return ["haproxy", "-db", "-f", cfg]


class HAProxyFast(HAProxy):
    """HAProxy with what l4lb-fast turns on: the listener accepts once the client's
    first bytes are in (TCP_DEFER_ACCEPT), and connects to the backend with TCP Fast
    Open (needs net.ipv4.tcp_fastopen & 1 and a backend listening with fastopen).
    HAProxy sends data in the SYN only if it holds some when it connects; in mode tcp
    2.6 connects at accept, so the close phase's TFO counters show whether it ever did."""

    bind_options = " defer-accept"
    server_options = " tfo"


class HAProxyStick(HAProxy):
    """HAProxy doing what l4lb-limits does: a stick table tracking every client's
    concurrent connections and connection rate, checked at accept (never hit)."""

    flows = False  # like l4lb-limits

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
        with open(cfg, "w") as f:
            f.write(text)
        return argv[:-1] + [cfg]


# What --limits turns on in l4lb: every per-client check on every accept, with
# bounds no benchmark client reaches (the cost of checking, not of refusing).
L4LB_LIMITS = ("--client_max_connections=100000 --client_rate=1000000/s "
               "--client_burst=1000000 --deny=203.0.113.0/24")


class NginxStream(Balancer):
    def _config(self, name, servers, timeout):
        """servers: (listen, backend_port) pairs, one stream server block each."""
        blocks = "".join(
            f"""    server {{
        listen {listen} reuseport;
        proxy_pass {BACKEND_HOST}:{backend_port};
        proxy_timeout {timeout};
    }}
""" for listen, backend_port in servers)
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
{blocks}}}
"""
            )
        return ["/usr/sbin/nginx", "-c", cfg, "-e", f"{self.work}/nginx-stream.error.log"]

    def argv(self, listen_port, backend_port):
        return self._config("nginx-stream.conf", [(f"{LISTEN_HOST}:{listen_port}", backend_port)],
                            "300s")

    def argv_udp(self, listen_port, backend_port):
        # Sessions as long-lived as l4lb's (proxy_responses unset: any number of
        # replies; a session ends after proxy_timeout without a datagram).
        return self._config("nginx-stream-udp.conf",
                            [(f"{LISTEN_HOST}:{listen_port} udp", backend_port)], "30s")

    def argv_flows(self, pairs):
        return self._config("nginx-stream-flows.conf",
                            [(f"{LISTEN_HOST}:{lp}", bp) for lp, bp in pairs], "300s")
