#include "tests/harness/udp_l4lb.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

#include "tests/harness/sockets.h"

namespace l4lb::testing {

std::unique_ptr<L4lb> StartUdpL4lb(std::vector<std::string> flags) {
  // A drain keeps UDP sessions until they idle out: 1 s, not 30, at each test's end.
  flags.insert(flags.begin(), {"--listen=udp://127.0.0.1:0", "--drain_timeout=1s"});
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(flags);
  EXPECT_TRUE(l4lb.ok()) << l4lb.status();
  return l4lb.ok() ? *std::move(l4lb) : nullptr;
}

std::string Backends(uint16_t port, size_t n) {
  std::string out = "--backends=";
  for (size_t i = 0; i < n; ++i) {
    absl::StrAppend(&out, i ? "," : "", kUdpBackendHosts[i], ":", port);
  }
  return out;
}

std::string Listener(const L4lb& l4lb) { return absl::StrCat("127.0.0.1:", l4lb.ports()[0]); }

bool HasToken(absl::string_view line, absl::string_view token) {
  const auto word = [](char c) { return absl::ascii_isalnum(c) || c == '_' || c == '.'; };
  for (size_t at = line.find(token); at != absl::string_view::npos; at = line.find(token, at + 1)) {
    const size_t end = at + token.size();
    if ((at == 0 || !word(line[at - 1])) && (end == line.size() || !absl::ascii_isalnum(line[end])))
      return true;
  }
  return false;
}

std::vector<std::string> SessionLines(const L4lb& l4lb, const std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(l4lb.Log(), '\n')) {
    if (!absl::StrContains(line, "udp session")) continue;
    bool all = true;
    for (const std::string& token : tokens) all = all && HasToken(line, token);
    if (all) out.emplace_back(line);
  }
  return out;
}

std::optional<absl::Duration> WaitForDown(const L4lb& l4lb, const std::string& backend) {
  const absl::Time start = absl::Now();
  if (!WaitFor(absl::Seconds(5), [&] { return l4lb.HasLine(backend, "is DOWN"); })) {
    return std::nullopt;
  }
  const absl::Duration took = absl::Now() - start;
  absl::SleepFor(absl::Milliseconds(20));
  return took;
}

UdpEcho::UdpEcho(const std::string& host, uint16_t port) {
  fd_ = BindUdp(host, &port);
  port_ = port;
  SetUdpBuffers(fd_, 8 << 20);
  stop_fd_ = eventfd(0, EFD_CLOEXEC);
  thread_ = std::thread([this] { Loop(); });
}

UdpEcho::~UdpEcho() {
  Stop();
  close(stop_fd_);
}

void UdpEcho::Stop() {
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  (void)!write(stop_fd_, &one, sizeof(one));
  thread_.join();
  close(fd_);
}

uint16_t UdpEcho::last_peer_port() {
  std::lock_guard<std::mutex> lock(mu_);
  return last_peer_port_;
}

void UdpEcho::Loop() {
  pollfd fds[2] = {{.fd = fd_, .events = POLLIN, .revents = 0},
                   {.fd = stop_fd_, .events = POLLIN, .revents = 0}};
  std::string buf(65536, '\0');
  while (poll(fds, 2, -1) >= 0 && fds[1].revents == 0) {
    sockaddr_storage from;
    socklen_t len = sizeof(from);
    const ssize_t n = recvfrom(fd_, buf.data(), buf.size(), MSG_DONTWAIT,
                               reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) continue;
    // Counted before the echo goes out: a client that has its reply may read
    // data() at once.
    if (absl::string_view(buf.data(), n) != "ping") {
      ++data_;
      const sockaddr_in& in = reinterpret_cast<const sockaddr_in&>(from);
      std::lock_guard<std::mutex> lock(mu_);
      last_peer_port_ = ntohs(in.sin_port);
    }
    sendto(fd_, buf.data(), n, 0, reinterpret_cast<sockaddr*>(&from), len);
  }
}

int64_t ExitTotal(const L4lb& l4lb, const std::string& counter) {
  for (absl::string_view line : absl::StrSplit(l4lb.Log(), '\n')) {
    if (!absl::StrContains(line, "exiting: ")) continue;
    for (absl::string_view field : absl::StrSplit(line, ' ')) {
      int64_t value = -1;
      if (absl::ConsumePrefix(&field, counter + "=") && absl::SimpleAtoi(field, &value)) {
        return value;
      }
    }
  }
  return -1;
}

int64_t StatusKib(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    if (!absl::StartsWith(line, field + ":")) continue;
    int64_t kib = -1;
    const absl::string_view value =
        absl::StripAsciiWhitespace(absl::string_view(line).substr(field.size() + 1));
    return absl::SimpleAtoi(value.substr(0, value.find(' ')), &kib) ? kib : -1;
  }
  return -1;
}

int Client(const std::string& host) {
  uint16_t port = 0;
  const int fd = BindUdp(host, &port);
  if (fd >= 0) SetUdpBuffers(fd, 1 << 20);
  return fd;
}

std::string RoundTrip(int fd, const L4lb& l4lb, const std::string& data) {
  if (!SendTo(fd, "127.0.0.1", l4lb.port(), data)) return "";
  std::string from;
  const std::optional<std::string> reply = RecvFrom(fd, absl::Seconds(2), &from);
  EXPECT_TRUE(!reply || from == Listener(l4lb)) << "reply from " << from;
  return reply && from == Listener(l4lb) ? *reply : "";
}

}  // namespace l4lb::testing
