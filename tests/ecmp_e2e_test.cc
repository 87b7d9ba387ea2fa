// Three l4lb instances behind a kernel ECMP route that a real BGP daemon
// (BIRD 2, tools/setup.sh) installs, as README "Several instances behind ECMP"
// tells operators. Network namespaces of the test's own:
//
//   client 10.92.100.1-48 (lo)          lb1 10.92.1.2 ── 10.93.1.2 ┐
//     10.92.0.2 ── 10.92.0.1 router ─── lb2 10.92.2.2 ── 10.93.2.2 ├── backend 10.94.0.1-3 (lo)
//            BIRD: ECMP 10.95.0.10 ──── lb3 10.92.3.2 ── 10.93.3.2 ┘   vsftpd x3, sshd x3
//
// Each lb runs l4lb --announce=10.95.0.10/32 and BIRD with
// conf/examples/bird-l4lb.conf (addresses substituted); the router runs BIRD
// with conf/examples/bird-router.conf, which merges the three eBGP routes into
// one multipath route (fib_multipath_hash_policy=1: an L4 hash, so one client
// address's connections spread over the instances). What each instance did is
// its access log; which instance holds a live connection is `ss` in its
// namespace.

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

#include "tests/harness/bird.h"
#include "tests/harness/netns.h"
#include "tests/harness/process.h"
#include "tests/harness/servers.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

constexpr char kVip[] = "10.95.0.10";
constexpr int kInstances = 3;
constexpr int kHosts = 3;
constexpr int kClients = 48;
constexpr uint16_t kPasvMin = 30000, kPasvMax = 30019;

std::string ClientIp(int k) { return absl::StrCat("10.92.100.", k + 1); }
std::string HostIp(int h) { return absl::StrCat("10.94.0.", h + 1); }
std::string LbIp(int i) { return absl::StrCat("10.92.", i + 1, ".2"); }
std::string RouterIp(int i) { return absl::StrCat("10.92.", i + 1, ".1"); }

struct Farm {
  std::unique_ptr<NetNamespace> router, client, backend;
  std::vector<std::unique_ptr<NetNamespace>> lb;
  std::vector<Server> ftp, ssh;  // per backend host
  Bird router_bird;
  std::vector<Bird> bird;                   // per instance
  std::vector<std::unique_ptr<L4lb>> l4lb;  // per instance
};

absl::Status Run(NetNamespace& ns, const std::vector<std::vector<std::string>>& steps) {
  for (const std::vector<std::string>& args : steps) {
    if (absl::Status s = ns.Ip(args); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Wire(Farm& f) {
  NetNamespace& router = *f.router;
  NetNamespace& client = *f.client;
  NetNamespace& backend = *f.backend;
  if (absl::Status s = Run(router, {{"link", "add", "to-client", "type", "veth", "peer", "name",
                                     "uplink", "netns", client.name()},
                                    {"addr", "add", "10.92.0.1/24", "dev", "to-client"},
                                    {"link", "set", "to-client", "up"},
                                    {"route", "add", "10.92.100.0/24", "via", "10.92.0.2"}});
      !s.ok()) {
    return s;
  }
  std::vector<std::vector<std::string>> client_steps = {
      {"addr", "add", "10.92.0.2/24", "dev", "uplink"},
      {"link", "set", "uplink", "up"},
      {"route", "add", "default", "via", "10.92.0.1"}};
  for (int k = 0; k < kClients; ++k) {
    client_steps.push_back({"addr", "add", ClientIp(k) + "/32", "dev", "lo"});
  }
  if (absl::Status s = Run(client, client_steps); !s.ok()) return s;
  std::vector<std::vector<std::string>> backend_steps;
  for (int h = 0; h < kHosts; ++h) {
    backend_steps.push_back({"addr", "add", HostIp(h) + "/32", "dev", "lo"});
  }
  for (int i = 0; i < kInstances; ++i) {
    NetNamespace& lb = *f.lb[i];
    const std::string n = absl::StrCat(i + 1);
    if (absl::Status s = Run(router, {{"link", "add", "to-lb" + n, "type", "veth", "peer", "name",
                                       "uplink", "netns", lb.name()},
                                      {"addr", "add", RouterIp(i) + "/24", "dev", "to-lb" + n},
                                      {"link", "set", "to-lb" + n, "up"}});
        !s.ok()) {
      return s;
    }
    if (absl::Status s =
            Run(lb, {{"link", "add", "to-backend", "type", "veth", "peer", "name", "lb" + n,
                      "netns", backend.name()},
                     {"addr", "add", LbIp(i) + "/24", "dev", "uplink"},
                     {"addr", "add", absl::StrCat("10.93.", n, ".2/24"), "dev", "to-backend"},
                     {"link", "set", "uplink", "up"},
                     {"link", "set", "to-backend", "up"},
                     {"route", "add", "default", "via", RouterIp(i)},
                     {"route", "add", "10.94.0.0/24", "via", absl::StrCat("10.93.", n, ".1")}});
        !s.ok()) {
      return s;
    }
    backend_steps.push_back({"addr", "add", absl::StrCat("10.93.", n, ".1/24"), "dev", "lb" + n});
    backend_steps.push_back({"link", "set", "lb" + n, "up"});
  }
  if (absl::Status s = Run(backend, backend_steps); !s.ok()) return s;
  if (absl::Status s = router.Sysctl("net.ipv4.ip_forward", "1"); !s.ok()) return s;
  return router.Sysctl("net.ipv4.fib_multipath_hash_policy", "1");
}

// The shipped example with this farm's addresses (its comments say what an
// operator changes: the same things).
std::string BirdConfig(const std::string& example,
                       const std::vector<std::pair<std::string, std::string>>& subs) {
  std::string text = ReadFile("conf/examples/" + example);
  EXPECT_FALSE(text.empty()) << example;
  return absl::StrReplaceAll(text, subs);
}

std::string L4lbConfig() {
  std::string backends21, backends22, hosts;
  for (int h = 0; h < kHosts; ++h) {
    absl::StrAppend(&backends21, h ? ", " : "", "\"", HostIp(h), ":21\"");
    absl::StrAppend(&backends22, h ? ", " : "", "\"", HostIp(h), ":22\"");
    // Port-less and in another order: the Maglev tables agree all the same.
    absl::StrAppend(&hosts, h ? ", " : "", "\"", HostIp(kHosts - 1 - h), "\"");
  }
  return absl::StrCat(
      "[defaults.health]\ninterval = \"300ms\"\ntimeout = \"300ms\"\nrise = 1\nfall = 2\n",
      "[[service]]\nname = \"ftp\"\nlisten = [\"", kVip, ":21\"]\nbackends = [", backends21,
      "]\naffinity_group = \"ftp\"\n[service.health]\ncheck = \"ftp\"\n",
      "[[service]]\nname = \"ftp-data\"\nlisten = [\"", kVip, ":", kPasvMin, "-", kPasvMax,
      "\"]\nbackends = [", hosts, "]\naffinity_group = \"ftp\"\n",
      "[service.health]\ncheck = \"ftp\"\nport = 21\n",
      "[[service]]\nname = \"sftp\"\nlisten = [\"", kVip, ":22\"]\nbackends = [", backends22,
      "]\n[service.health]\ncheck = \"ssh\"\n");
}

// Routes to the VIP in the router's kernel: the nexthops of its ECMP route, in
// the kernel's order.
std::vector<std::string> Nexthops(const Farm& f) {
  const CommandResult r =
      RunCommand(f.router->Exec({"ip", "route", "show", kVip}), absl::Seconds(5));
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    for (size_t w = 0; w + 1 < words.size(); ++w) {
      if (words[w] == "via") out.push_back(std::string(words[w + 1]));
    }
  }
  return out;
}

absl::StatusOr<Farm> MakeFarm() {
  Farm f;
  for (auto [slot, prefix] :
       {std::pair{&f.router, "l4lb-ecmp-rt"}, std::pair{&f.client, "l4lb-ecmp-cl"},
        std::pair{&f.backend, "l4lb-ecmp-be"}}) {
    absl::StatusOr<std::unique_ptr<NetNamespace>> ns = NetNamespace::Create(prefix);
    if (!ns.ok()) return ns.status();
    *slot = *std::move(ns);
  }
  for (int i = 0; i < kInstances; ++i) {
    absl::StatusOr<std::unique_ptr<NetNamespace>> ns =
        NetNamespace::Create(absl::StrCat("l4lb-ecmp-lb", i + 1));
    if (!ns.ok()) return ns.status();
    f.lb.push_back(*std::move(ns));
  }
  if (absl::Status s = Wire(f); !s.ok()) return s;
  {
    NetNamespace::Visit in(*f.backend);
    for (int h = 0; h < kHosts; ++h) {
      absl::StatusOr<Server> ftp = StartVsftpd(HostIp(h), 21,
                                               {.banner = absl::StrCat("host", h + 1),
                                                .pasv_min_port = kPasvMin,
                                                .pasv_max_port = kPasvMax,
                                                .pasv_address = kVip,
                                                .pasv_promiscuous = true});
      if (!ftp.ok()) return ftp.status();
      std::ofstream(ftp->files + "/hello.txt") << "hello from host" << h + 1 << "\n";
      f.ftp.push_back(*std::move(ftp));
      absl::StatusOr<Server> ssh =
          StartSshd(HostIp(h), 22, {.banner = absl::StrCat("host", h + 1)});
      if (!ssh.ok()) return ssh.status();
      f.ssh.push_back(*std::move(ssh));
    }
  }
  std::vector<std::pair<std::string, std::string>> router_subs = {{"192.0.2.10", kVip},
                                                                  {"198.51.100.1;", "10.92.0.1;"}};
  for (int i = 0; i < kInstances; ++i) {
    router_subs.push_back({absl::StrCat("198.51.100.1", i + 1), LbIp(i)});
  }
  absl::StatusOr<Bird> router_bird =
      StartBird(*f.router, "bird-router", BirdConfig("bird-router.conf", router_subs));
  if (!router_bird.ok()) return router_bird.status();
  f.router_bird = *std::move(router_bird);
  const std::string config = absl::StrCat(TempDir(), "/ecmp.", getpid(), ".toml");
  std::ofstream(config, std::ios::trunc) << L4lbConfig();
  for (int i = 0; i < kInstances; ++i) {
    absl::StatusOr<Bird> bird =
        StartBird(*f.lb[i], absl::StrCat("bird-lb", i + 1),
                  BirdConfig("bird-l4lb.conf", {{"192.0.2.10", kVip},
                                                {"198.51.100.11", LbIp(i)},
                                                {"65011", absl::StrCat(65011 + i)},
                                                {"198.51.100.1 as", RouterIp(i) + " as"}}));
    if (!bird.ok()) return bird.status();
    f.bird.push_back(*std::move(bird));
    NetNamespace::Visit in(*f.lb[i]);
    absl::StatusOr<std::unique_ptr<L4lb>> l4lb =
        L4lb::Start({"--config=" + config, "--threads=1", "--drain_timeout=3s",
                     absl::StrCat("--announce=", kVip, "/32"), "--withdraw_delay=1500ms"});
    if (!l4lb.ok()) return l4lb.status();
    f.l4lb.push_back(*std::move(l4lb));
  }
  return f;
}

// One access-log line: which instance, client, listener port, backend host.
struct Conn {
  int instance;
  std::string client;
  int port;  // the listener's
  std::string host;
};

// The access-log lines each instance wrote after `from` (its log's size then).
std::vector<Conn> ConnsSince(const Farm& f, const std::vector<size_t>& from) {
  std::vector<Conn> out;
  for (int i = 0; i < kInstances; ++i) {
    const std::string log = f.l4lb[i]->Log();
    for (absl::string_view line :
         absl::StrSplit(absl::string_view(log).substr(std::min(from[i], log.size())), '\n')) {
      const size_t at = line.find("conn client=");
      if (at == absl::string_view::npos) continue;
      Conn c{.instance = i, .client = "", .port = 0, .host = ""};
      for (absl::string_view word : absl::StrSplit(line.substr(at), ' ')) {
        const auto value = [&](absl::string_view key) {
          return word.substr(key.size(), word.rfind(':') - key.size());
        };
        if (absl::StartsWith(word, "client=")) c.client = std::string(value("client="));
        if (absl::StartsWith(word, "backend=")) c.host = std::string(value("backend="));
        if (absl::StartsWith(word, "listener=")) {
          c.port = std::atoi(std::string(word.substr(word.rfind(':') + 1)).c_str());
        }
      }
      out.push_back(c);
    }
  }
  return out;
}

std::vector<size_t> LogSizes(const Farm& f) {
  std::vector<size_t> out;
  for (const auto& l : f.l4lb) out.push_back(l ? l->Log().size() : 0);
  return out;
}

// Every client downloads a file over FTP (passive: EPSV) through the VIP;
// what each connection went through is read back from the access logs. The
// figures: downloads that failed, clients whose control and data connections
// reached different hosts, clients whose two connections went through
// different instances, and connections per instance.
struct Round {
  int failed = 0;
  int retried = 0;  // backend connects that failed and were retried elsewhere
  int split_hosts = 0;
  int across_instances = 0;
  std::vector<int> per_instance = std::vector<int>(kInstances);
  std::map<std::string, std::string> host_of;  // client -> backend host
};

Round FtpRound(Farm& f, int live_instances) {
  // The connections of what came before (a Loop's last ones) are logged as
  // they close, a moment after the client's close: a line that came after the
  // sizes were taken was counted in this round (CI once saw 97 of 96). The
  // sizes are taken once no log has grown for 200 ms (the logging thread polls
  // every 10 ms), at most 3 s.
  std::vector<size_t> from = LogSizes(f);
  for (const absl::Time deadline = absl::Now() + absl::Seconds(3); absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(200));
    const std::vector<size_t> now = LogSizes(f);
    if (now == from) break;
    from = now;
  }
  Round round;
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int k = t; k < kClients; k += 8) {
        const CommandResult r =
            RunCommand(f.client->Exec({"curl", "-sS", "-m", "5", "--interface", ClientIp(k),
                                       absl::StrCat("ftp://", kVip, "/hello.txt")}),
                       absl::Seconds(10));
        if (r.exit_code != 0 || !absl::StartsWith(r.out, "hello from host")) ++failed;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  round.failed = failed;
  std::vector<Conn> conns;
  // A data connection sent to the wrong host is refused there (nothing listens
  // on its port) and retried on the next: the transfer works, the log shows it.
  for (int i = 0; i < kInstances; ++i) {
    const std::string log = f.l4lb[i]->Log();
    for (absl::string_view line :
         absl::StrSplit(absl::string_view(log).substr(std::min(from[i], log.size())), '\n')) {
      round.retried +=
          absl::StrContains(line, ": connect: ") && absl::StrContains(line, "attempt ");
    }
  }
  // Lines come through each l4lb's logging thread: the last ones a moment later.
  WaitFor(absl::Seconds(5), [&] {
    conns = ConnsSince(f, from);
    return conns.size() >= 2u * kClients;
  });
  std::map<std::string, std::set<std::string>> hosts;
  std::map<std::string, std::set<int>> instances;
  for (const Conn& c : conns) {
    hosts[c.client].insert(c.host);
    instances[c.client].insert(c.instance);
    ++round.per_instance[c.instance];
  }
  for (const auto& [client, set] : hosts) {
    round.split_hosts += set.size() > 1;
    round.host_of[client] = *set.begin();
    round.across_instances += instances[client].size() > 1;
  }
  std::printf(
      "FTP round over %d instance(s): %zu connections (per instance %s), %d failed, "
      "%d client(s) split over hosts, %d client(s) through 2+ instances, %d connect(s) "
      "retried\n",
      live_instances, conns.size(), absl::StrJoin(round.per_instance, "/").c_str(), round.failed,
      round.split_hosts, round.across_instances, round.retried);
  EXPECT_EQ(conns.size(), 2u * kClients) << "a control and a data connection per client";
  return round;
}

// Live FTP control connections (banner read), from every client address.
struct Live {
  std::vector<int> fds;
  std::vector<std::string> local;  // "10.92.100.k:port", to find it in `ss`
  ~Live() {
    for (const int fd : fds) close(fd);
  }
};

void OpenLive(const Farm& f, Live* live) {
  NetNamespace::Visit in(*f.client);
  for (int k = 0; k < kClients; ++k) {
    const int fd = ConnectTcp(kVip, 21, ClientIp(k));
    ASSERT_GE(fd, 0) << ClientIp(k);
    SetRecvTimeout(fd, absl::Seconds(3));
    ASSERT_EQ(ReadN(fd, 3), "220");
    ReadN(fd, 1);  // so the next read starts at a reply
    live->fds.push_back(fd);
    live->local.push_back(LocalAddress(fd));
  }
}

// Which instance holds each live connection (its client side in `ss`), -1: none.
std::vector<int> Holders(const Farm& f, const Live& live) {
  std::vector<int> out(live.fds.size(), -1);
  for (int i = 0; i < kInstances; ++i) {
    const CommandResult r = RunCommand(
        f.lb[i]->Exec({"ss", "-tnH", "state", "established", "( sport = :21 )"}), absl::Seconds(5));
    for (size_t c = 0; c < live.local.size(); ++c) {
      if (absl::StrContains(r.out, " " + live.local[c] + " ") ||
          absl::StrContains(r.out, " " + live.local[c] + "\n")) {
        out[c] = i;
      }
    }
  }
  return out;
}

// NOOP on a live control connection: true if its backend still answers (not
// logged in, vsftpd says 530: any reply proves the path).
bool Answers(int fd) {
  char drain[512];
  while (recv(fd, drain, sizeof(drain), MSG_DONTWAIT) > 0) {
  }
  if (!SendAll(fd, "NOOP\r\n")) return false;
  const std::string reply = ReadN(fd, 3);
  return reply.size() == 3 && isdigit(static_cast<unsigned char>(reply[0]));
}

// New connections from every client address in turn, as fast as they complete,
// until `stop`: each must get the FTP greeting. Counts tries and failures.
struct Loop {
  std::atomic<bool> stop{false};
  std::atomic<int> tries{0}, failed{0};
  std::thread thread;
  void Start(const Farm& f) {
    thread = std::thread([this, &f] {
      NetNamespace::Visit in(*f.client);
      const absl::Time deadline = absl::Now() + absl::Seconds(20);
      for (int n = 0; !stop && absl::Now() < deadline; ++n) {
        const int fd = ConnectTcp(kVip, 21, ClientIp(n % kClients));
        bool ok = fd >= 0;
        if (ok) {
          SetRecvTimeout(fd, absl::Seconds(2));
          ok = ReadN(fd, 3) == "220";
          close(fd);
        }
        ++tries;
        failed += !ok;
        absl::SleepFor(absl::Milliseconds(5));
      }
    });
  }
  void Stop() {
    stop = true;
    thread.join();
  }
};

TEST(EcmpTest, ThreeInstancesAgreeDrainWithoutAFailureAndSurviveAKill) {
  const absl::Time start = absl::Now();
  absl::StatusOr<Farm> farm = MakeFarm();
  ASSERT_TRUE(farm.ok()) << farm.status();
  Farm& f = *farm;
  // Announced by all three, once each l4lb has checked its backends.
  ASSERT_TRUE(WaitFor(absl::Seconds(20), [&] { return Nexthops(f).size() == kInstances; }))
      << absl::StrJoin(Nexthops(f), ",") << "\n"
      << f.router_bird.process->Log() << f.l4lb[0]->Log();
  for (int i = 0; i < kInstances; ++i) {
    EXPECT_TRUE(f.l4lb[i]->HasLine("announce: route to 10.95.0.10/32 dev lo added in table 200",
                                   "backends checked"));
  }
  std::printf("ECMP route over %s after %s\n", absl::StrJoin(Nexthops(f), ", ").c_str(),
              absl::FormatDuration(absl::Now() - start).c_str());

  // 1. Spread and agreement: every client's control and data connections
  // reach one host, whichever instances they went through.
  Round first = FtpRound(f, kInstances);
  EXPECT_EQ(first.failed, 0);
  EXPECT_EQ(first.split_hosts, 0);
  EXPECT_EQ(first.retried, 0);
  for (int i = 0; i < kInstances; ++i) EXPECT_GT(first.per_instance[i], 0) << "instance " << i + 1;
  EXPECT_GT(first.across_instances, 0) << "no client tested the agreement across instances";
  // SFTP (port 22, another service) agrees with FTP on the host: same seeds.
  int sftp_ok = 0, sftp_same_host = 0;
  const std::vector<size_t> before_sftp = LogSizes(f);
  const std::string batch = absl::StrCat(TempDir(), "/ecmp-batch.", getpid());
  std::ofstream(batch) << "ls\n";
  for (int k = 0; k < 6; ++k) {
    std::vector<std::string> argv = {"sftp"};
    for (const std::string& o : SshClientOptions(22)) argv.push_back(o);
    for (const std::string& o : {std::string("-o"), "BindAddress=" + ClientIp(k), std::string("-b"),
                                 batch, absl::StrCat("root@", kVip)}) {
      argv.push_back(o);
    }
    sftp_ok += RunCommand(f.client->Exec(argv), absl::Seconds(10)).exit_code == 0;
  }
  std::vector<Conn> sftp;
  WaitFor(absl::Seconds(5), [&] { return (sftp = ConnsSince(f, before_sftp)).size() >= 6; });
  for (const Conn& c : sftp) sftp_same_host += c.host == first.host_of[c.client];
  EXPECT_EQ(sftp_ok, 6);
  EXPECT_EQ(sftp_same_host, 6) << "SFTP reached another host than the client's FTP";

  // 2. A backend host killed: every instance marks it DOWN within the health
  // bound (300 ms interval, fall 2, 300 ms timeout: ~1 s), and all agree on
  // where its clients go.
  f.ftp[0].process->Stop(SIGKILL, absl::Seconds(2));
  const absl::Time killed = absl::Now();
  for (int i = 0; i < kInstances; ++i) {
    EXPECT_TRUE(
        WaitFor(absl::Seconds(3),
                [&] { return f.l4lb[i]->HasLine("backend 10.94.0.1:21 (ftp) is DOWN", ""); }))
        << "instance " << i + 1 << "\n"
        << f.l4lb[i]->Log();
  }
  std::printf("host1's vsftpd DOWN on all instances %s after the kill\n",
              absl::FormatDuration(absl::Now() - killed).c_str());
  Round after_kill = FtpRound(f, kInstances);
  EXPECT_EQ(after_kill.failed, 0);
  EXPECT_EQ(after_kill.split_hosts, 0);
  EXPECT_EQ(after_kill.retried, 0);
  int moved = 0, kept = 0;
  for (const auto& [client, host] : first.host_of) {
    const std::string now = after_kill.host_of[client];
    EXPECT_NE(now, HostIp(0)) << client;
    if (host == HostIp(0)) {
      ++moved;
    } else {
      kept += now == host;
    }
  }
  EXPECT_EQ(kept, kClients - moved) << "only the dead host's clients move";

  // 3. One instance drained (SIGTERM): it removes the VIP's route from table
  // 200, BIRD withdraws, and only withdraw_delay later does it stop accepting
  // (the address stays meanwhile: SYNs the router sent before it converged
  // still land): no new connection fails. The middle
  // nexthop: with BIRD's plain multipath route (no resilient group) removing
  // it moves no flow of the others (README says why).
  Live live;
  OpenLive(f, &live);
  const std::vector<int> holders = Holders(f, live);
  const std::vector<std::string> hops = Nexthops(f);
  ASSERT_EQ(hops.size(), 3u);
  int drained = -1;
  for (int i = 0; i < kInstances; ++i) drained = hops[1] == LbIp(i) ? i : drained;
  ASSERT_GE(drained, 0);
  Loop loop;
  loop.Start(f);
  absl::SleepFor(absl::Milliseconds(300));
  const absl::Time drain_start = absl::Now();
  ASSERT_EQ(kill(f.l4lb[drained]->process().pid(), SIGTERM), 0);
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] { return Nexthops(f).size() == 2; }));
  const absl::Duration withdrawn = absl::Now() - drain_start;
  EXPECT_EQ(f.l4lb[drained]->process().Wait(absl::Seconds(8)), 0) << f.l4lb[drained]->Log();
  absl::SleepFor(absl::Milliseconds(300));
  loop.Stop();
  std::printf(
      "drain of instance %d: route withdrawn after %s; new connections: %d tried, %d "
      "failed\n",
      drained + 1, absl::FormatDuration(withdrawn).c_str(), loop.tries.load(), loop.failed.load());
  EXPECT_EQ(loop.failed, 0);
  EXPECT_GT(loop.tries, 50);
  // The order that makes it so, whatever the convergence time (6 ms here):
  // the address goes first, accepting stops withdraw_delay later.
  const std::string drained_log = f.l4lb[drained]->Log();
  const size_t removed = drained_log.find("announce: route to 10.95.0.10/32 dev lo removed");
  const size_t stopped = drained_log.find("drain: stopped accepting");
  ASSERT_NE(removed, std::string::npos) << drained_log;
  ASSERT_NE(stopped, std::string::npos) << drained_log;
  EXPECT_LT(removed, stopped) << "stopped accepting before the route was withdrawn";
  int others = 0, others_answer = 0, through_drained = 0, drained_answer = 0;
  for (size_t c = 0; c < live.fds.size(); ++c) {
    const bool answers = Answers(live.fds[c]);
    if (holders[c] == drained) {
      ++through_drained;
      drained_answer += answers;
    } else {
      ++others;
      others_answer += answers;
    }
  }
  std::printf(
      "live connections: through the others %d/%d answer; through the drained one %d/%d "
      "(its flows now reach another instance: see README)\n",
      others_answer, others, drained_answer, through_drained);
  EXPECT_EQ(others_answer, others);
  EXPECT_GT(through_drained, 0);

  // 4. Another instance's host hangs: l4lb killed (SIGKILL: its route stays
  // in table 200, nothing withdraws it) and BIRD frozen (SIGSTOP: no FIN, no more
  // keepalives), so only the router's 3 s hold time ends the session. From
  // then on the last instance carries every new connection, and its live
  // connections are untouched.
  int victim = -1, survivor = -1;
  for (int i = 0; i < kInstances; ++i) {
    if (i == drained) continue;
    (victim < 0 ? victim : survivor) = i;
  }
  f.l4lb[victim]->ExpectExit(128 + SIGKILL);
  const absl::Time kill_time = absl::Now();
  f.l4lb[victim]->process().Stop(SIGKILL, absl::Seconds(2));
  ASSERT_EQ(kill(f.bird[victim].process->pid(), SIGSTOP), 0);
  ASSERT_TRUE(WaitFor(absl::Seconds(6), [&] { return Nexthops(f).size() == 1; }))
      << absl::StrJoin(Nexthops(f), ",");
  const absl::Duration gone = absl::Now() - kill_time;
  std::printf("instance %d hung: route gone after %s (hold time 3 s)\n", victim + 1,
              absl::FormatDuration(gone).c_str());
  // The last keepalive came at most 1 s before the freeze, and BIRD shortens
  // each timer by up to a quarter (RFC 4271 section 10): at least 2.25 - 1 s.
  EXPECT_GE(gone, absl::Milliseconds(1200)) << "gone before the hold time: not what this tests";
  f.bird[victim].process->Stop(SIGKILL, absl::Seconds(2));
  Loop after;
  after.Start(f);
  absl::SleepFor(absl::Seconds(1));
  after.Stop();
  EXPECT_EQ(after.failed, 0) << after.tries;
  int survivor_live = 0, survivor_answer = 0;
  for (size_t c = 0; c < live.fds.size(); ++c) {
    if (holders[c] != survivor) continue;
    ++survivor_live;
    survivor_answer += Answers(live.fds[c]);
  }
  EXPECT_EQ(survivor_answer, survivor_live);
  const Round last = FtpRound(f, 1);
  EXPECT_EQ(last.failed, 0);
  EXPECT_EQ(last.per_instance[survivor], 2 * kClients);
  std::printf("whole test: %s\n", absl::FormatDuration(absl::Now() - start).c_str());
}

}  // namespace
}  // namespace l4lb::testing
