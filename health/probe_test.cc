#include "health/probe.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace l4lb::health {
namespace {

// Binds fd to 127.0.0.1 on a port the kernel picks: that port.
uint16_t BindLoopback(int fd) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  bind(fd, reinterpret_cast<sockaddr*>(&a), len);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

net::SocketAddress Loopback(uint16_t port) {
  return *net::SocketAddress::Parse(absl::StrCat("127.0.0.1:", port));
}

// A loopback listener that answers one connection: reads `read_first` bytes if
// asked (a request), then writes `reply` and closes after the peer does.
class OneReply {
 public:
  explicit OneReply(std::string reply, size_t read_first = 0) : reply_(std::move(reply)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    port_ = BindLoopback(fd_);
    listen(fd_, 4);
    thread_ = std::thread([this, read_first] {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      size_t got = 0;
      while (got < read_first) {
        const ssize_t n = read(c, buf, sizeof(buf));
        if (n <= 0) break;
        request_.append(buf, n);
        got += n;
      }
      (void)!write(c, reply_.data(), reply_.size());
      while (read(c, buf, sizeof(buf)) > 0) {
      }
      close(c);
    });
  }
  ~OneReply() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  net::SocketAddress address() const { return Loopback(port_); }
  const std::string& request() const { return request_; }

 private:
  std::string reply_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::string request_;
  std::thread thread_;
};

// Drives a probe like the checker does, for at most `timeout_ms`.
void Drive(Probe& probe, int timeout_ms = 2000) {
  for (int waited = 0; !probe.done() && waited < timeout_ms; waited += 10) {
    pollfd p{.fd = probe.fd(), .events = probe.events(), .revents = 0};
    if (poll(&p, 1, 10) > 0) probe.OnReady(p.revents);
  }
  probe.TimeOut();
}

// A loopback port where nothing listens: TCP connects are refused, UDP
// datagrams draw an ICMP port unreachable.
uint16_t RefusedPort(int type = SOCK_STREAM) {
  const int fd = socket(AF_INET, type, 0);
  const uint16_t port = BindLoopback(fd);
  close(fd);  // bound, never listened or read
  return port;
}

ProbeSpec Spec(ProbeSpec::Kind kind) {
  ProbeSpec spec;
  spec.kind = kind;
  return spec;
}

TEST(ProbeTest, TcpConnectPassesAndRefusedFails) {
  OneReply server("");
  const ProbeSpec spec = Spec(ProbeSpec::Kind::kTcp);
  Probe ok(spec, server.address());
  Drive(ok);
  EXPECT_TRUE(ok.ok()) << ok.reason();

  Probe refused(spec, Loopback(RefusedPort()));
  Drive(refused);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(refused.reason(), "connect: Connection refused");
}

TEST(ProbeTest, ProbePortOverridesTheTrafficPort) {
  OneReply server("");
  ProbeSpec spec = Spec(ProbeSpec::Kind::kTcp);
  spec.port = server.address().port();
  Probe probe(spec, Loopback(RefusedPort()));
  Drive(probe);
  EXPECT_TRUE(probe.ok()) << probe.reason();
}

TEST(ProbeTest, SendExpectSendsAndMatchesThePrefix) {
  OneReply server("+PONG\r\n", /*read_first=*/6);
  ProbeSpec spec = Spec(ProbeSpec::Kind::kSendExpect);
  spec.send = "PING\r\n";
  spec.expect = "+PONG";
  Probe probe(spec, server.address());
  Drive(probe);
  EXPECT_TRUE(probe.ok()) << probe.reason();
  EXPECT_EQ(server.request(), "PING\r\n");
}

TEST(ProbeTest, SendExpectWrongReplyNamesWhatCame) {
  OneReply server("-ERR nope\r\n");
  ProbeSpec spec = Spec(ProbeSpec::Kind::kSendExpect);
  spec.expect = "+OK";
  Probe probe(spec, server.address());
  Drive(probe);
  EXPECT_FALSE(probe.ok());
  EXPECT_EQ(probe.reason(), "bad reply: got \"-ERR nope\\r\\n\", want \"+OK\"");
}

TEST(ProbeTest, FtpWantsA220Greeting) {
  OneReply good("220 (vsFTPd 3.0.3)\r\n");
  Probe ok(Spec(ProbeSpec::Kind::kFtp), good.address());
  Drive(ok);
  EXPECT_TRUE(ok.ok()) << ok.reason();

  OneReply busy("421 Too many users\r\n");
  Probe bad(Spec(ProbeSpec::Kind::kFtp), busy.address());
  Drive(bad);
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StartsWith(bad.reason(), "bad banner: got \"421 Too many")) << bad.reason();
}

TEST(ProbeTest, SshAcceptsLinesBeforeTheVersionAndRejectsHttp) {
  OneReply good("hello there\r\nSSH-2.0-OpenSSH_9.2p1 Debian\r\n");
  Probe ok(Spec(ProbeSpec::Kind::kSsh), good.address());
  Drive(ok);
  EXPECT_TRUE(ok.ok()) << ok.reason();

  OneReply http("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
  Probe bad(Spec(ProbeSpec::Kind::kSsh), http.address());
  Drive(bad);
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StrContains(bad.reason(), "HTTP/1.1 400")) << bad.reason();
  EXPECT_TRUE(absl::StrContains(bad.reason(), "want \"SSH-2.0-\"")) << bad.reason();
}

TEST(ProbeTest, SilentServerTimesOutNamingThePhase) {
  OneReply silent("", /*read_first=*/1 << 20);  // waits for a request that never comes
  Probe probe(Spec(ProbeSpec::Kind::kSsh), silent.address());
  Drive(probe, /*timeout_ms=*/100);
  EXPECT_FALSE(probe.ok());
  EXPECT_EQ(probe.reason(), "timeout while waiting for the reply");
}

TEST(ProbeTest, HttpChecksTheStatusClass) {
  OneReply good("HTTP/1.1 204 No Content\r\n\r\n", /*read_first=*/10);
  ProbeSpec spec = Spec(ProbeSpec::Kind::kHttp);
  spec.http_path = "/healthz";
  Probe ok(spec, good.address());
  Drive(ok);
  EXPECT_TRUE(ok.ok()) << ok.reason();
  EXPECT_TRUE(absl::StartsWith(good.request(), "GET /healthz HTTP/1.0\r\n")) << good.request();

  OneReply error("HTTP/1.1 503 Service Unavailable\r\n\r\n", /*read_first=*/10);
  Probe bad(spec, error.address());
  Drive(bad);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.reason(), "HTTP status 503, want 2xx/3xx");

  OneReply ssh("SSH-2.0-OpenSSH_9.2\r\n", /*read_first=*/10);
  Probe not_http(spec, ssh.address());
  Drive(not_http);
  EXPECT_FALSE(not_http.ok());
  EXPECT_TRUE(absl::StartsWith(not_http.reason(), "not an HTTP reply")) << not_http.reason();
}

TEST(ProbeParseTest, KindsStatusesAndEscapes) {
  EXPECT_EQ(*ParseProbeKind("ssh"), ProbeSpec::Kind::kSsh);
  EXPECT_EQ(ParseProbeKind("smtp").status().message(),
            "\"smtp\": want none, tcp, send_expect, ftp, ssh, http, udp or dns");
  EXPECT_EQ(*ParseHttpStatuses("2xx, 3XX"), (std::vector<char>{'2', '3'}));
  EXPECT_EQ(ParseHttpStatuses("200").status().message(),
            "\"200\": want status classes like 2xx,3xx");
  EXPECT_EQ(*Unescape("PING\\r\\n\\x00"), std::string("PING\r\n\0", 7));
  EXPECT_FALSE(Unescape("bad\\").ok());
}

// A UDP socket on 127.0.0.1 that answers one datagram with reply(datagram).
class UdpResponder {
 public:
  explicit UdpResponder(std::function<std::string(const std::string&)> reply)
      : fd_(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    address_ = Loopback(BindLoopback(fd_));
    thread_ = std::thread([this, reply = std::move(reply)] {
      char buf[2048];
      sockaddr_storage from{};
      socklen_t from_len = sizeof(from);
      pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
      if (poll(&p, 1, 3000) != 1) return;
      const ssize_t n =
          recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n < 0) return;
      const std::string out = reply(std::string(buf, n));
      sendto(fd_, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&from), from_len);
    });
  }
  ~UdpResponder() {
    thread_.join();
    close(fd_);
  }
  const net::SocketAddress& address() const { return address_; }

 private:
  int fd_;
  net::SocketAddress address_;
  std::thread thread_;
};

TEST(ProbeTest, UdpSendsADatagramAndMatchesTheReply) {
  UdpResponder echo([](const std::string& in) { return in; });
  ProbeSpec spec = Spec(ProbeSpec::Kind::kUdp);
  spec.send = "ping";
  spec.expect = "pi";
  Probe probe(spec, echo.address());
  Drive(probe);
  EXPECT_TRUE(probe.ok()) << probe.reason();

  UdpResponder wrong([](const std::string&) { return std::string("nope"); });
  Probe bad(spec, wrong.address());
  Drive(bad);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.reason(), "bad reply: got \"nope\", want \"pi\"");
}

TEST(ProbeTest, UdpClosedPortFailsOnThePortUnreachable) {
  ProbeSpec spec = Spec(ProbeSpec::Kind::kUdp);
  spec.send = "ping";
  Probe probe(spec, Loopback(RefusedPort(SOCK_DGRAM)));
  Drive(probe, /*timeout_ms=*/500);
  ASSERT_TRUE(probe.done()) << "an ICMP error must not wait for the timeout";
  EXPECT_FALSE(probe.ok());
  EXPECT_EQ(probe.reason(), "recv: Connection refused");
}

TEST(ProbeTest, DnsWantsAReplyToItsOwnQuery) {
  std::string query;
  UdpResponder server([&query](const std::string& in) {
    query = in;
    std::string out = in;
    out[2] = static_cast<char>(out[2] | 0x80);  // QR: a response
    out[3] = 5;                                 // REFUSED still proves a live server
    return out;
  });
  Probe probe(Spec(ProbeSpec::Kind::kDns), server.address());
  Drive(probe);
  EXPECT_TRUE(probe.ok()) << probe.reason();
  ASSERT_EQ(query.size(), 17u);  // header + root name + type + class
  EXPECT_EQ(query[5], 1) << "one question";

  UdpResponder echo([](const std::string& in) { return in; });  // QR clear: not a reply
  Probe bad(Spec(ProbeSpec::Kind::kDns), echo.address());
  Drive(bad);
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StartsWith(bad.reason(), "not a DNS reply to our query")) << bad.reason();
}

}  // namespace
}  // namespace l4lb::health
