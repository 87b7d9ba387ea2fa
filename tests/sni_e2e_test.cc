// SNI routing for TLS passthrough (sni_routes), end to end: the built l4lb in
// front of three real TLS servers (Debian's nginx, each with its own
// self-signed certificate), reached by real TLS clients (openssl s_client,
// curl). Which certificate comes back tells which backend the ClientHello's
// server name was routed to; that the handshake completes at all tells that
// l4lb replayed the peeked hello byte-exact.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

#include "tests/harness/http_client.h"
#include "tests/harness/process.h"
#include "tests/harness/servers.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Forwards one TLS connection to l4lb the way a hostile or unlucky network
// would deliver it: the client's first record (its ClientHello) re-framed into
// TLS records of at most `record_bytes` each (RFC 8446 5.1 allows a handshake
// message over any number of records), each record sent as its own TCP segment
// a few ms apart; then everything else as it comes, both ways. `prefix` goes
// first (a PROXY header, as an upstream balancer sends it).
class Dribbler {
 public:
  Dribbler(uint16_t to, size_t record_bytes, std::string prefix = "")
      : to_(to), record_bytes_(record_bytes), prefix_(std::move(prefix)) {
    listen_fd_ = ListenTcp("127.0.0.1", &port_);
    thread_ = std::thread([this] { Run(); });
  }
  ~Dribbler() {
    thread_.join();
    close(listen_fd_);
  }
  uint16_t port() const { return port_; }
  int records_sent() const { return records_; }

 private:
  void Run() {
    pollfd accept_poll{.fd = listen_fd_, .events = POLLIN, .revents = 0};
    if (poll(&accept_poll, 1, 10'000) != 1) return;
    const int client = accept(listen_fd_, nullptr, nullptr);
    const int server = ConnectTcp("127.0.0.1", to_);
    if (client < 0 || server < 0) return;
    const int one = 1;
    setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    SetRecvTimeout(client, absl::Seconds(5));
    if (!prefix_.empty() && !SendAll(server, prefix_)) return;
    const std::string header = ReadN(client, 5);
    if (header.size() == 5) {
      const size_t length = (static_cast<uint8_t>(header[3]) << 8) | static_cast<uint8_t>(header[4]);
      const std::string body = ReadN(client, length);
      for (size_t at = 0; at < body.size(); at += record_bytes_) {
        const std::string part = body.substr(at, record_bytes_);
        std::string record = header.substr(0, 3);
        record.push_back(static_cast<char>(part.size() >> 8));
        record.push_back(static_cast<char>(part.size() & 0xff));
        record += part;
        if (!SendAll(server, record)) break;
        ++records_;
        absl::SleepFor(absl::Milliseconds(2));
      }
    }
    // The rest, both ways, until either side ends (bounded: 10 s of silence).
    pollfd fds[2] = {{.fd = client, .events = POLLIN, .revents = 0},
                     {.fd = server, .events = POLLIN, .revents = 0}};
    char buf[16384];
    while (poll(fds, 2, 10'000) > 0) {
      const int from = (fds[0].revents != 0) ? 0 : 1;
      const ssize_t n = read(fds[from].fd, buf, sizeof(buf));
      if (n <= 0 || !SendAll(fds[1 - from].fd, buf, static_cast<size_t>(n))) break;
    }
    close(client);
    close(server);
  }

  uint16_t to_;
  size_t record_bytes_;
  std::string prefix_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::atomic<int> records_{0};
  std::thread thread_;
};

class SniTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const struct {
      const char* host;
      const char* cert;
      const char* body;
    } backends[] = {{"127.0.0.2", "a.example.com", "site-a\n"},
                    {"127.0.0.3", "wild.example.com", "site-b\n"},
                    {"127.0.0.4", "default.example.net", "default\n"}};
    for (const auto& b : backends) {
      absl::StatusOr<TlsCert> cert = MakeTlsCert(b.cert);
      ASSERT_TRUE(cert.ok()) << cert.status();
      const uint16_t port = FreePortOnAll({b.host});
      absl::StatusOr<Server> server = StartNginxTls(b.host, port, b.body, *cert);
      ASSERT_TRUE(server.ok()) << server.status();
      servers_.push_back(*std::move(server));
    }
    WriteRandomFile(servers_[0].files + "/big.bin", 3 << 20, 7);
    ASSERT_NE(https_ = FreePortOnAll({"127.0.0.1"}), 0);
    ASSERT_NE(strict_ = FreePortOnAll({"127.0.0.1"}), 0);
    ASSERT_NE(behind_ = FreePortOnAll({"127.0.0.1"}), 0);
    ASSERT_NE(admin_ = FreePortOnAll({"127.0.0.1"}), 0);
    const std::string config = TempDir() + "/sni.toml";
    std::ofstream(config) << absl::StrCat(
        "[admin]\nlisten = \"127.0.0.1:", admin_, "\"\n\n",
        "[defaults]\nconnect_timeout = \"1s\"\n",
        "[defaults.health]\ncheck = \"tcp\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\n",
        "fall = 1\nrise = 1\n\n",
        // The front door: its own backend is the default route.
        "[[service]]\nname = \"https\"\nlisten = [\"127.0.0.1:", https_, "\"]\n",
        "backends = [\"127.0.0.4:", servers_[2].port, "\"]\n", "sni_timeout = \"1s\"\n",
        "sni_routes = [\n",
        "  { names = [\"a.example.com\"], service = \"site-a\" },\n",
        "  { names = [\"*.example.com\", \"example.com\"], service = \"site-b\" },\n]\n\n",
        // Routes only: what no route takes is refused.
        "[[service]]\nname = \"strict\"\nlisten = [\"127.0.0.1:", strict_, "\"]\n",
        "sni_timeout = \"1s\"\n",
        "[[service.sni_routes]]\nnames = [\"a.example.com\"]\nservice = \"site-a\"\n\n",
        // Behind another balancer: a PROXY header first, then the hello.
        "[[service]]\nname = \"behind\"\nlisten = [\"127.0.0.1:", behind_, "\"]\n",
        "accept_proxy_from = [\"127.0.0.0/8\"]\n",
        "[[service.sni_routes]]\nnames = [\"*.example.com\"]\nservice = \"site-b\"\n\n",
        // Pools: no listener, reached through the routes.
        "[[service]]\nname = \"site-a\"\nbackends = [\"127.0.0.2:", servers_[0].port, "\"]\n\n",
        "[[service]]\nname = \"site-b\"\nbackends = [\"127.0.0.3:", servers_[1].port, "\"]\n");
    absl::StatusOr<std::unique_ptr<L4lb>> l4lb =
        L4lb::Start({"--config=" + config, "--threads=2"});
    ASSERT_TRUE(l4lb.ok()) << l4lb.status();
    l4lb_ = *std::move(l4lb);
  }

  // The CN of the certificate a TLS handshake through `port` sent back
  // ("" if the handshake failed); `sni` nullopt: no server_name at all.
  static std::string CertName(uint16_t port, const std::optional<std::string>& sni) {
    std::vector<std::string> argv = {"openssl", "s_client", "-connect",
                                     absl::StrCat("127.0.0.1:", port), "-brief"};
    if (sni) {
      argv.insert(argv.end(), {"-servername", *sni});
    } else {
      argv.push_back("-noservername");
    }
    const CommandResult r = RunCommand(argv, absl::Seconds(10));
    // -brief: "Peer certificate: CN = a.example.com" on stderr.
    const std::string all = r.out + r.err;
    const size_t at = all.find("Peer certificate: CN = ");
    if (at == std::string::npos) return "";
    const size_t start = at + sizeof("Peer certificate: CN = ") - 1;
    return all.substr(start, all.find('\n', start) - start);
  }
  // curl to https://NAME:PORT/path with NAME resolved to l4lb: the body.
  static CommandResult Curl(uint16_t port, const std::string& name, const std::string& path,
                            const std::string& out = "") {
    std::vector<std::string> argv = {"curl", "-sSk", "--max-time", "10", "--resolve",
                                     absl::StrCat(name, ":", port, ":127.0.0.1"),
                                     absl::StrCat("https://", name, ":", port, path)};
    if (!out.empty()) argv.insert(argv.end(), {"-o", out});
    return RunCommand(argv, absl::Seconds(15));
  }
  // The service's entry in /status (null if none).
  nlohmann::json Service(const std::string& service) const {
    const nlohmann::json status = nlohmann::json::parse(Http("GET", admin_, "/status").body,
                                                        nullptr, /*allow_exceptions=*/false);
    if (!status.is_object()) return nullptr;
    for (const nlohmann::json& s : status["services"]) {
      if (s.value("name", "") == service) return s;
    }
    return nullptr;
  }
  uint64_t Refused(const std::string& service, const std::string& reason) const {
    const nlohmann::json s = Service(service);
    return s.is_object() ? s["refused"].value(reason, UINT64_MAX) : UINT64_MAX;
  }
  uint64_t Count(const std::string& service, const std::string& key) const {
    const nlohmann::json s = Service(service);
    return s.is_object() ? s.value(key, UINT64_MAX) : UINT64_MAX;
  }
  // Sends `bytes` (then shuts down writing if `fin`), and returns how long
  // until l4lb closed the connection, and what it answered.
  struct Cut {
    absl::Duration after;
    std::string answer;
    int error = 0;
  };
  Cut SendAndWaitForClose(uint16_t port, const std::string& bytes, bool fin) const {
    const int fd = ConnectTcp("127.0.0.1", port);
    EXPECT_GE(fd, 0);
    SetRecvTimeout(fd, absl::Seconds(8));
    const absl::Time start = absl::Now();
    EXPECT_TRUE(SendAll(fd, bytes));
    if (fin) shutdown(fd, SHUT_WR);
    Cut cut;
    cut.answer = ReadToEof(fd, &cut.error);
    cut.after = absl::Now() - start;
    close(fd);
    return cut;
  }

  std::vector<Server> servers_;
  uint16_t https_ = 0, strict_ = 0, behind_ = 0, admin_ = 0;
  std::unique_ptr<L4lb> l4lb_;
};

TEST_F(SniTest, ServerNamePicksTheRouteAndItsCertificateComesBack) {
  EXPECT_EQ(CertName(https_, "a.example.com"), "a.example.com");
  EXPECT_EQ(CertName(https_, "A.Example.COM"), "a.example.com");  // names ignore case
  EXPECT_EQ(CertName(https_, "b.example.com"), "wild.example.com");
  EXPECT_EQ(CertName(https_, "x.y.example.com"), "wild.example.com");
  EXPECT_EQ(CertName(https_, "example.com"), "wild.example.com");
  EXPECT_EQ(CertName(https_, "other.org"), "default.example.net");
  EXPECT_EQ(CertName(https_, std::nullopt), "default.example.net");
  // curl as a browser would: the body says which backend served it.
  EXPECT_EQ(Curl(https_, "a.example.com", "/").out, "site-a\n");
  EXPECT_EQ(Curl(https_, "www.example.com", "/").out, "site-b\n");
  EXPECT_EQ(Curl(https_, "shop.other.org", "/").out, "default\n");
  // Counted by the front and by the service each was routed to (HAProxy's
  // frontend and backend), and gone from both once closed.
  EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] {
    return Count("https", "accepted_connections") == 10 &&
           Count("site-a", "accepted_connections") == 3 &&
           Count("site-b", "accepted_connections") == 4 &&
           Count("https", "active_connections") == 0 && Count("site-a", "active_connections") == 0;
  })) << Count("https", "accepted_connections") << " " << Count("site-a", "accepted_connections")
      << " " << Count("site-b", "accepted_connections");
}

TEST_F(SniTest, DownloadThroughARouteIsByteExact) {
  const std::string out = TempDir() + "/big.out";
  const CommandResult r = Curl(https_, "a.example.com", "/big.bin", out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string got = ReadWhole(out);
  EXPECT_EQ(got.size(), 3u << 20);
  EXPECT_TRUE(got == ReadWhole(servers_[0].files + "/big.bin"));
}

TEST_F(SniTest, HelloSplitOverManyRecordsAndSegmentsIsRoutedAndReplayed) {
  for (const char* name : {"a.example.com", "b.example.com"}) {
    Dribbler dribbler(https_, /*record_bytes=*/7);
    EXPECT_EQ(CertName(dribbler.port(), std::string(name)),
              std::string(name) == "a.example.com" ? "a.example.com" : "wild.example.com");
    EXPECT_GE(dribbler.records_sent(), 20) << "the hello was not split";
  }
}

// An upstream balancer's PROXY header is read first; the hello after it routes,
// and the access log names the client the header gave.
TEST_F(SniTest, AfterAProxyHeader) {
  Dribbler dribbler(behind_, /*record_bytes=*/64, "PROXY TCP4 198.51.100.7 127.0.0.1 4321 443\r\n");
  EXPECT_EQ(CertName(dribbler.port(), std::string("www.example.com")), "wild.example.com");
  EXPECT_TRUE(WaitFor(absl::Seconds(3), [&] {
    return l4lb_->HasLine("client=198.51.100.7:4321", "close=done");
  })) << l4lb_->Log();
}

// One byte per record, each its own segment: legal, but l4lb would copy the
// growing hello once per record; past its copy budget the client is closed.
TEST_F(SniTest, AHelloInTooManyPiecesIsRefused) {
  Dribbler dribbler(https_, /*record_bytes=*/1);
  EXPECT_EQ(CertName(dribbler.port(), std::string("a.example.com")), "");
  EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] { return Refused("https", "bad_tls") == 1; }));
  EXPECT_TRUE(l4lb_->HasLine("ClientHello in too many pieces", "127.0.0.1")) << l4lb_->Log();
}

TEST_F(SniTest, NotTlsTakesTheDefaultRouteOrIsRefused) {
  // Plain HTTP on the front door reaches the default backend, which answers in
  // the clear that this is its TLS port.
  const Cut http = SendAndWaitForClose(https_, "GET / HTTP/1.0\r\n\r\n", /*fin=*/false);
  EXPECT_TRUE(absl::StrContains(http.answer, "HTTP/1.1 400")) << http.answer;
  EXPECT_TRUE(absl::StrContains(http.answer, "HTTPS port")) << http.answer;
  // The strict door has no default: not TLS, no SNI, an unknown name: reset.
  const Cut refused = SendAndWaitForClose(strict_, "GET / HTTP/1.0\r\n\r\n", /*fin=*/false);
  EXPECT_EQ(refused.answer, "");
  EXPECT_EQ(refused.error, ECONNRESET);
  EXPECT_EQ(CertName(strict_, "b.example.com"), "");
  EXPECT_EQ(CertName(strict_, std::nullopt), "");
  EXPECT_EQ(CertName(strict_, "a.example.com"), "a.example.com");
  EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] { return Refused("strict", "no_route") == 3; }))
      << Refused("strict", "no_route");
  EXPECT_EQ(Refused("https", "no_route"), 0u);
}

TEST_F(SniTest, MalformedLateOrCutHellosAreClosedAndCounted) {
  // A ClientHello whose session id claims 33 bytes (at most 32).
  std::string bad = std::string("\x16\x03\x01\x00\x27", 5) + std::string("\x01\x00\x00\x23", 4) +
                    "\x03\x03" + std::string(32, 'r') + "\x21";
  const Cut malformed = SendAndWaitForClose(https_, bad, /*fin=*/false);
  EXPECT_EQ(malformed.error, ECONNRESET);
  EXPECT_LT(malformed.after, absl::Milliseconds(500));
  // The start of a record, then silence: cut at sni_timeout (1 s, on a 100 ms tick).
  const Cut late = SendAndWaitForClose(https_, std::string("\x16\x03\x01", 3), /*fin=*/false);
  EXPECT_EQ(late.error, ECONNRESET);
  EXPECT_GE(late.after, absl::Milliseconds(900));
  EXPECT_LT(late.after, absl::Seconds(3));
  // Half a hello, then the client's FIN: it can never be complete.
  const Cut cut = SendAndWaitForClose(https_, std::string("\x16\x03\x01\x00\x40\x01", 6), /*fin=*/true);
  EXPECT_EQ(cut.error, ECONNRESET);
  EXPECT_LT(cut.after, absl::Milliseconds(500));
  EXPECT_TRUE(WaitFor(absl::Seconds(2), [&] { return Refused("https", "bad_tls") == 3; }))
      << Refused("https", "bad_tls");
  // None of them reached a backend, and TLS clients still get through.
  EXPECT_EQ(CertName(https_, "a.example.com"), "a.example.com");
}

TEST_F(SniTest, StalledHellosCannotHoldFdsPastTheTimeout) {
  const int baseline = l4lb_->FdCount();
  std::vector<int> fds;
  for (int i = 0; i < 300; ++i) {
    const int fd = ConnectTcp("127.0.0.1", https_);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, std::string("\x16\x03\x01\x01", 4)));
    fds.push_back(fd);
  }
  EXPECT_TRUE(WaitFor(absl::Seconds(1), [&] { return l4lb_->FdCount() >= baseline + 250; }));
  // Nothing was connected to a backend meanwhile: the fds are the clients'.
  EXPECT_LT(l4lb_->FdCount(), baseline + 320);
  EXPECT_TRUE(l4lb_->FdsBackTo(baseline, absl::Seconds(4)));
  for (int fd : fds) close(fd);
  EXPECT_EQ(CertName(https_, "b.example.com"), "wild.example.com");
}

// The flag-defined service: each --sni_routes route brings its own backends;
// without --backends there is no default route.
TEST_F(SniTest, FlagDefinedService) {
  absl::StatusOr<std::unique_ptr<L4lb>> flags = L4lb::Start(
      {"--listen=127.0.0.1:0", "--health_check=none",
       absl::StrCat("--sni_routes=a.example.com=127.0.0.2:", servers_[0].port,
                    ";*.example.com|example.com=127.0.0.3:", servers_[1].port)});
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_EQ(CertName((*flags)->port(), "a.example.com"), "a.example.com");
  EXPECT_EQ(CertName((*flags)->port(), "example.com"), "wild.example.com");
  EXPECT_EQ(CertName((*flags)->port(), "other.org"), "");
  for (const auto& [flag, error] : std::vector<std::pair<std::string, std::string>>{
           {"--sni_routes=a.*.com=127.0.0.2:1", "--sni_routes: server name pattern \"a.*.com\""},
           {"--sni_routes=a.example.com", "--sni_routes: \"a.example.com\": want NAMES=BACKENDS"},
           {"--sni_routes=a.example.com=127.0.0.2:1;A.example.com=127.0.0.3:1", "given twice"},
           {"--sni_timeout=1s", "--sni_timeout: needs --sni_routes"}}) {
    const CommandResult r = RunCommand(
        {L4lbBinary(), "--listen=127.0.0.1:0", "--backends=127.0.0.2:1", flag}, absl::Seconds(10));
    EXPECT_EQ(r.exit_code, 2) << flag;
    EXPECT_TRUE(absl::StrContains(r.err, error)) << flag << "\n" << r.err;
  }
}

TEST_F(SniTest, EachRouteHasItsOwnHealth) {
  servers_[1].process->Stop(SIGKILL, absl::Seconds(5));  // site-b's only backend
  EXPECT_TRUE(WaitFor(absl::Seconds(3), [&] { return CertName(https_, "b.example.com").empty(); }));
  EXPECT_EQ(CertName(https_, "a.example.com"), "a.example.com");
  EXPECT_EQ(CertName(https_, "other.org"), "default.example.net");
  const nlohmann::json status = nlohmann::json::parse(Http("GET", admin_, "/status").body, nullptr,
                                                      /*allow_exceptions=*/false);
  bool seen = false;
  for (const nlohmann::json& s : status["services"]) {
    if (s.value("name", "") != "site-b") continue;
    seen = true;
    EXPECT_EQ(s["listen"].size(), 0u);
    EXPECT_EQ(s["backends"][0].value("state", ""), "DOWN") << s.dump();
  }
  EXPECT_TRUE(seen) << status.dump();
}

}  // namespace
}  // namespace l4lb::testing
