#!/usr/bin/env python3
# What sharing one local port between UDP sockets connected to different
# backends would give and cost (l4lb/udp/DESIGN.md). Run as root, in a throwaway
# network namespace with a 1000-port range:
#   ip netns add l4lb-udpshare && ip -n l4lb-udpshare link set lo up
#   ip netns exec l4lb-udpshare sysctl -w net.ipv4.ip_local_port_range="40000 40999"
#   ip netns exec l4lb-udpshare python3 tools/udp_port_sharing.py; ip netns del l4lb-udpshare
import socket, select, sys
BACKENDS = [("127.0.0.%d" % i, 5300) for i in (2, 3, 4)]
echo = []
for b in BACKENDS:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(b); s.setblocking(False); echo.append(s)
def pump():
    for s in echo:
        while True:
            try: d, a = s.recvfrom(2048)
            except BlockingIOError: break
            s.sendto(d, a)
def recv(sock, t=0.05):
    pump()
    pl = select.poll(); pl.register(sock, select.POLLIN)
    if not pl.poll(t * 1000): return None
    return sock.recv(2048)

# (a) the kernel's own autobind, no sharing
socks = []
while True:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try: s.connect(BACKENDS[len(socks) % 3])
    except OSError as e: print("no sharing: %d sessions fit, then %s" % (len(socks), e)); s.close(); break
    socks.append(s)
for s in socks: s.close()

# (b) sharing: a port taken by autobind (no SO_REUSEADDR, so unique on the host), then
# SO_REUSEADDR set so sockets to the other backends can bind it explicitly.
shared = []
ports = []
while True:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try: s.connect(BACKENDS[0])
    except OSError as e: s.close(); break
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    p = s.getsockname()[1]; ports.append(p); shared.append((s, BACKENDS[0]))
    for b in BACKENDS[1:]:
        t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(("0.0.0.0", p)); t.connect(b); shared.append((t, b))
print("sharing: %d sessions fit on %d ports with %d backends" % (len(shared), len(ports), len(BACKENDS)))
# (c) every one of them gets its own replies, none another's
bad = 0
for i, (s, b) in enumerate(shared):
    s.send(b"s%d" % i)
    got = recv(s, 1.0)
    if got != b"s%d" % i: bad += 1
print("sharing: %d of %d sessions got a reply that was not theirs or none" % (bad, len(shared)))
# (d) an unconnected SO_REUSEADDR socket on a shared port (a would-be thief) gets none of them
p = ports[0]
thief = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
thief.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
thief.bind(("0.0.0.0", p))
got = []
for i, (s, b) in enumerate(shared[:3]):
    s.send(b"again%d" % i); got.append(recv(s, 1.0))
print("unconnected reuse socket on the port: sessions got %s, thief got %s" % (got, recv(thief, 0.2)))
# a plain listener without SO_REUSEADDR cannot bind the port at all
plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try: plain.bind(("0.0.0.0", p)); print("plain bind: succeeded (!)")
except OSError as e: print("plain bind of a shared port: %s" % e)
# (e) the hazard: a second SO_REUSEADDR socket connected to the SAME 4-tuple
twin = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
twin.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
twin.bind(("0.0.0.0", p)); twin.connect(shared[0][1])
shared[0][0].send(b"first"); twin.send(b"twin")
a = [recv(shared[0][0], 0.5), recv(shared[0][0], 0.2)]; t = [recv(twin, 0.2), recv(twin, 0.2)]
print("same 4-tuple twice: first socket got %s, twin got %s" % (a, t))
# (f) a foreign SO_REUSEADDR socket's autobind may land on a shared port
for s, b in shared: s.close()
del shared
own = []
for i in range(900):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(BACKENDS[0]); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); own.append(s)
ownports = set(s.getsockname()[1] for s in own)
hits = 0
for i in range(200):
    f = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); f.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    f.connect(BACKENDS[1]); hits += f.getsockname()[1] in ownports; f.close()
print("foreign SO_REUSEADDR autobinds landing on one of our 900 shared ports: %d of 200" % hits)
hits = 0
for i in range(50):
    f = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try: f.connect(BACKENDS[1]); hits += f.getsockname()[1] in ownports
    except OSError: pass
    f.close()
print("foreign plain autobinds landing on one of them: %d of 50" % hits)
