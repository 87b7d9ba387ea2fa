// transparent = true (--transparent): l4lb connects to the backend from the
// client's own address (IP_TRANSPARENT), so the backend sees real clients. In
// three network namespaces of the test's own, wired as README "Transparent
// mode" tells operators:
//
//   client 10.91.1.2, .3, .5   veth   10.91.1.1  lb  10.91.2.1   veth   10.91.2.2 backend
//          fd91:1::2                  fd91:1::1 (l4lb)                  (nginx; default
//                                                                        route via the lb)
//
// On the lb, forwarding is off (nothing reaches the backend but through l4lb)
// and the backends' replies to client addresses are delivered locally:
//   ip rule add from 10.91.2.0/24 iif to-backend lookup 100
//   ip route add local 0.0.0.0/0 dev lo table 100
// The test thread lives in the lb namespace (l4lb starts there), nginx starts
// during a visit to the backend's, curl runs in the client's. What the backend
// saw is nginx's own access log: the peer address of each request.

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

#include "tests/harness/netns.h"
#include "tests/harness/process.h"
#include "tests/harness/servers.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

constexpr char kLb[] = "10.91.1.1";
constexpr char kClient[] = "10.91.1.2";
constexpr char kSecondClient[] = "10.91.1.3";
constexpr char kHostileClient[] = "10.91.1.5";
constexpr char kBackend[] = "10.91.2.2";
constexpr char kLbBackendSide[] = "10.91.2.1";

struct Topology {
  std::unique_ptr<NetNamespace> lb, client, backend;
};

absl::Status Wire(Topology& t) {
  NetNamespace& lb = *t.lb;
  NetNamespace& client = *t.client;
  NetNamespace& backend = *t.backend;
  const std::vector<std::pair<NetNamespace*, std::vector<std::string>>> steps = {
      {&lb,
       {"link", "add", "to-client", "type", "veth", "peer", "name", "to-lb", "netns",
        client.name()}},
      {&lb,
       {"link", "add", "to-backend", "type", "veth", "peer", "name", "to-lb", "netns",
        backend.name()}},
      {&client, {"addr", "add", "10.91.1.2/24", "dev", "to-lb"}},
      {&client, {"addr", "add", "10.91.1.3/24", "dev", "to-lb"}},
      {&client, {"addr", "add", "10.91.1.5/24", "dev", "to-lb"}},
      {&client, {"addr", "add", "fd91:1::2/64", "dev", "to-lb", "nodad"}},
      {&lb, {"addr", "add", "10.91.1.1/24", "dev", "to-client"}},
      {&lb, {"addr", "add", "fd91:1::1/64", "dev", "to-client", "nodad"}},
      {&lb, {"addr", "add", "10.91.2.1/24", "dev", "to-backend"}},
      {&backend, {"addr", "add", "10.91.2.2/24", "dev", "to-lb"}},
      {&client, {"link", "set", "to-lb", "up"}},
      {&lb, {"link", "set", "to-client", "up"}},
      {&lb, {"link", "set", "to-backend", "up"}},
      {&backend, {"link", "set", "to-lb", "up"}},
      {&backend, {"route", "add", "default", "via", "10.91.2.1"}},
      // The return path, as README "Transparent mode" has it.
      {&lb, {"rule", "add", "from", "10.91.2.0/24", "iif", "to-backend", "lookup", "100"}},
      {&lb, {"route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100"}},
  };
  for (const auto& [ns, args] : steps) {
    if (absl::Status s = ns->Ip(args); !s.ok()) return s;
  }
  return lb.Sysctl("net.ipv4.ip_forward", "0");
}

// The namespaces, wired; the calling thread inside the lb's. Unique names
// (prefix-PID): parallel test processes do not collide.
absl::StatusOr<Topology> MakeTopology() {
  Topology t;
  absl::StatusOr<std::unique_ptr<NetNamespace>> client = NetNamespace::Create("l4lb-tp-client");
  if (!client.ok()) return client.status();
  t.client = *std::move(client);
  absl::StatusOr<std::unique_ptr<NetNamespace>> backend = NetNamespace::Create("l4lb-tp-backend");
  if (!backend.ok()) return backend.status();
  t.backend = *std::move(backend);
  absl::StatusOr<std::unique_ptr<NetNamespace>> lb = NetNamespace::Enter("l4lb-tp-lb");
  if (!lb.ok()) return lb.status();
  t.lb = *std::move(lb);
  if (absl::Status s = Wire(t); !s.ok()) return s;
  return t;
}

// nginx on the backend's 10.91.2.2:80.
absl::StatusOr<Server> StartBackend(const Topology& t) {
  NetNamespace::Visit in(*t.backend);
  return StartNginx(kBackend, 80, "hello\n");
}

// The peer address nginx logged for the request of `path` (a unique query
// string per request), "" if none: the backend's own view of who connected.
std::string PeerOf(const Server& nginx, const std::string& path) {
  std::ifstream log(nginx.dir + "/access.log");
  for (std::string line; std::getline(log, line);) {
    if (absl::StrContains(line, absl::StrCat("\"GET ", path, " "))) {
      return std::string(line.substr(0, line.find(' ')));
    }
  }
  return "";
}

// curl in the client namespace from `source`, through l4lb: true on a 200.
bool Fetch(const Topology& t, uint16_t port, const std::string& source, const std::string& path) {
  const CommandResult r = RunCommand(
      t.client->Exec({"curl", "-sS", "-m", "5", "--interface", source, "-o", "/dev/null", "-w",
                      "%{http_code}", absl::StrCat("http://", kLb, ":", port, path)}),
      absl::Seconds(10));
  return r.exit_code == 0 && r.out == "200";
}

// The backend's view of one request from `source`, fetched through l4lb.
std::string BackendSees(const Topology& t, const Server& nginx, uint16_t port,
                        const std::string& source, const std::string& tag) {
  const std::string path = absl::StrCat("/?from=", source, "&t=", tag);
  if (!Fetch(t, port, source, path)) return "no 200";
  std::string peer;
  WaitFor(absl::Seconds(2), [&] { return !(peer = PeerOf(nginx, path)).empty(); });
  return peer;
}

// [::]: dual-stack, so IPv4 clients arrive as ::ffff:10.91.1.x and must leave
// towards the IPv4 backend as 10.91.1.x.
std::vector<std::string> Flags(bool transparent, const std::string& listen = "[::]:0") {
  std::vector<std::string> flags = {"--listen=" + listen,
                                    absl::StrCat("--backends=", kBackend, ":80"), "--threads=1",
                                    "--drain_timeout=1s"};
  if (transparent) flags.push_back("--transparent");
  return flags;
}

TEST(TransparentTest, TheBackendSeesEachClientsOwnAddressAndWithoutItTheBalancers) {
  absl::StatusOr<Topology> t = MakeTopology();
  ASSERT_TRUE(t.ok()) << t.status();
  absl::StatusOr<Server> nginx = StartBackend(*t);
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  {
    absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(Flags(/*transparent=*/true));
    ASSERT_TRUE(l4lb.ok()) << l4lb.status();
    EXPECT_EQ(BackendSees(*t, *nginx, (*l4lb)->port(), kClient, "1"), kClient) << (*l4lb)->Log();
    EXPECT_EQ(BackendSees(*t, *nginx, (*l4lb)->port(), kSecondClient, "2"), kSecondClient);
    EXPECT_EQ((*l4lb)->ConnectFailuresAndDowns(), "");
  }
  absl::StatusOr<std::unique_ptr<L4lb>> plain = L4lb::Start(Flags(/*transparent=*/false));
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(BackendSees(*t, *nginx, (*plain)->port(), kClient, "3"), kLbBackendSide)
      << "without transparent the backend sees l4lb's own address";
}

// 300 clients at once from one address, then IPv6 clients of the IPv4 backend
// (no address of theirs can reach it: each is closed, a local failure that is
// not held against the backend): every fd comes back, the next client is
// served and seen as itself.
TEST(TransparentTest, ManyClientsAndRefusedOnesLeaveNoFdAndNoMarkOnTheBackend) {
  absl::StatusOr<Topology> t = MakeTopology();
  ASSERT_TRUE(t.ok()) << t.status();
  absl::StatusOr<Server> nginx = StartBackend(*t);
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  std::vector<std::string> flags = Flags(/*transparent=*/true);
  flags.push_back("--health_interval=200ms");  // a mark would show as DOWN within the test
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(flags);
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();
  const uint16_t port = (*l4lb)->port();
  ASSERT_EQ(BackendSees(*t, *nginx, port, kClient, "warm"), kClient);
  const int baseline = (*l4lb)->FdCount();

  constexpr int kClients = 300;
  int answered = 0;
  {
    NetNamespace::Visit in(*t->client);
    std::vector<int> fds;
    for (int i = 0; i < kClients; ++i) {
      const int fd = ConnectTcp(kLb, port, kHostileClient);
      if (fd < 0) break;
      fds.push_back(fd);
      SetRecvTimeout(fd, absl::Seconds(5));
      SendAll(fd, absl::StrCat("GET /?hostile=", i, " HTTP/1.1\r\nHost: b\r\n\r\n"));
    }
    for (const int fd : fds) {
      answered += ReadN(fd, 12) == "HTTP/1.1 200";
      close(fd);
    }
  }
  EXPECT_EQ(answered, kClients);
  EXPECT_EQ(PeerOf(*nginx, "/?hostile=299"), kHostileClient);

  constexpr int kV6Clients = 20;
  int refused = 0;
  for (int i = 0; i < kV6Clients; ++i) {
    const CommandResult r =
        RunCommand(t->client->Exec({"curl", "-sS", "-m", "5", "-g",
                                    absl::StrCat("http://[fd91:1::1]:", port, "/?v6")}),
                   absl::Seconds(10));
    // Closed before any byte: an empty reply, or a reset if the request was
    // already there unread.
    refused += (r.exit_code == 52 || r.exit_code == 56) && r.out.empty();
  }
  EXPECT_EQ(refused, kV6Clients);
  EXPECT_TRUE((*l4lb)->HasLine("transparent: client [fd91:1::2]", "is IPv6, the backend IPv4"))
      << (*l4lb)->Log();
  // Access-log lines come through the logging thread: the last ones a moment later.
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] {
    return (*l4lb)->CountLines("client=[fd91:1::2]", "close=connect_failed") == kV6Clients;
  })) << (*l4lb)->Log();
  // Fewer is fine: the pipe pool is trimmed.
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] { return (*l4lb)->FdCount() <= baseline; }))
      << (*l4lb)->FdCount() << " fds, " << baseline << " before";
  absl::SleepFor(absl::Milliseconds(600));  // three probe intervals: time for a mark to show
  EXPECT_EQ((*l4lb)->ConnectFailuresAndDowns(), "");
  EXPECT_EQ(BackendSees(*t, *nginx, port, kSecondClient, "after"), kSecondClient);
}

// One client address has one ephemeral range towards a backend: 20 ports here.
// The 21st and later of its connections at once fail at connect (EADDRNOTAVAIL):
// each is closed and counted as l4lb's own failure, none is held against the
// backend, and another client address (a range of its own) is still served.
TEST(TransparentTest, AClientOutOfPortsTowardsTheBackendIsItsFailureNotTheBackends) {
  absl::StatusOr<Topology> t = MakeTopology();
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_TRUE(t->lb->Sysctl("net.ipv4.ip_local_port_range", "40000 40019").ok());
  // The health probes' TIME_WAIT ports (from 10.91.2.1) are reused: they must not
  // be what runs out.
  ASSERT_TRUE(t->lb->Sysctl("net.ipv4.tcp_tw_reuse", "1").ok());
  absl::StatusOr<Server> nginx = StartBackend(*t);
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  // A listening port outside the range: a bound port is one connect() never shares.
  std::vector<std::string> flags = Flags(/*transparent=*/true, "[::]:8080");
  flags.push_back("--health_interval=1s");
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(flags);
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();
  const uint16_t port = (*l4lb)->port();
  const int baseline = (*l4lb)->FdCount();

  constexpr int kPorts = 20, kClients = 30;
  struct Held {  // closed on every way out, failures too
    std::vector<int> fds;
    ~Held() {
      for (const int fd : fds) close(fd);
    }
  } held;
  {
    NetNamespace::Visit in(*t->client);
    for (int i = 0; i < kClients; ++i) {
      const int fd = ConnectTcp(kLb, port, kHostileClient);  // idle: nginx keeps it open
      ASSERT_GE(fd, 0) << i;
      held.fds.push_back(fd);
    }
  }
  // The access log names the client as the dual-stack listener saw it.
  const std::string client = absl::StrCat("client=[::ffff:", kHostileClient, "]");
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] {
    return (*l4lb)->CountLines(client, "close=connect_failed") >= kClients - kPorts;
  })) << (*l4lb)->Log();
  int closed = 0;  // by l4lb: EOF; the others wait for a request, open
  for (const int fd : held.fds) {
    char byte;
    closed += recv(fd, &byte, 1, MSG_DONTWAIT | MSG_PEEK) == 0;
  }
  EXPECT_EQ(closed, kClients - kPorts);
  EXPECT_EQ((*l4lb)->CountLines(client, "close=connect_failed"), kClients - kPorts);
  EXPECT_TRUE(
      (*l4lb)->HasLine("connect: Cannot assign requested address", "not the backend's fault"))
      << (*l4lb)->Log();
  // Held against the backend, a failure logs its attempt; a DOWN its health.
  EXPECT_EQ((*l4lb)->CountLines(": connect: ", "attempt "), 0) << (*l4lb)->Log();
  EXPECT_FALSE((*l4lb)->HasLine(" is DOWN", ""));
  EXPECT_TRUE(Fetch(*t, port, kClient, "/?other")) << (*l4lb)->Log();
  EXPECT_EQ(PeerOf(*nginx, "/?other"), kClient);
  for (const int fd : held.fds) close(fd);
  held.fds.clear();
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] { return (*l4lb)->FdCount() <= baseline; }))
      << (*l4lb)->FdCount() << " fds, " << baseline << " before";
}

// Without CAP_NET_ADMIN (and CAP_NET_RAW, which also allows IP_TRANSPARENT) l4lb
// refuses to start, exit 2, naming the service; a reload that turns transparent
// on is refused the same way while the running config goes on. Loopback only.
TEST(TransparentTest, WithoutCapNetAdminStartAndReloadAreRefusedNamingTheService) {
  const std::vector<std::string> setpriv = {"/usr/bin/setpriv", "--inh-caps=-all",
                                            "--bounding-set=-net_admin,-net_raw", "--",
                                            L4lbBinary()};
  const std::string config = absl::StrCat(TempDir(), "/transparent.", getpid(), ".toml");
  const auto write = [&](bool transparent) {
    std::ofstream(config, std::ios::trunc)
        << "[[service]]\nname = \"web\"\nlisten = [\"127.0.0.1:0\"]\n"
        << "backends = [\"127.0.0.2:80\"]\n"
        << (transparent ? "" : "#") << "transparent = true\n[service.health]\ncheck = \"none\"\n";
  };
  // Refused at start: by flag and by the file.
  std::vector<std::string> argv = setpriv;
  for (const char* flag : {"--listen=127.0.0.1:0", "--backends=127.0.0.2:80", "--transparent"}) {
    argv.push_back(flag);
  }
  CommandResult r = RunCommand(argv, absl::Seconds(10));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(
      r.err, "l4lb: --transparent: transparent: service \"127.0.0.1:0\": needs CAP_NET_ADMIN"))
      << r.err;
  write(true);
  argv = setpriv;
  argv.push_back("--config=" + config);
  r = RunCommand(argv, absl::Seconds(10));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, absl::StrCat("l4lb: ", config,
                                                    ": transparent: service \"web\": needs "
                                                    "CAP_NET_ADMIN (or CAP_NET_RAW)")))
      << r.err;

  // Refused at a reload: the running config stays.
  write(false);
  const std::string ready = config + ".ready";
  argv.push_back("--ready_file=" + ready);
  absl::StatusOr<std::unique_ptr<Process>> l4lb = Process::Start(argv, config + ".log");
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();
  ASSERT_TRUE(WaitFor(absl::Seconds(10), [&] { return !ReadFile(ready).empty(); }))
      << (*l4lb)->Log();
  write(true);
  ASSERT_EQ(kill((*l4lb)->pid(), SIGHUP), 0);
  EXPECT_TRUE(WaitFor(absl::Seconds(10), [&] {
    return absl::StrContains((*l4lb)->Log(), "reload failed: ") &&
           absl::StrContains((*l4lb)->Log(), "transparent: service \"web\": needs CAP_NET_ADMIN");
  })) << (*l4lb)->Log();
  EXPECT_TRUE((*l4lb)->Running());
  EXPECT_EQ((*l4lb)->Stop(SIGTERM, absl::Seconds(10)), 0) << (*l4lb)->Log();
}

}  // namespace
}  // namespace l4lb::testing
