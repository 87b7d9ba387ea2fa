#include "tests/harness/sockets.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace l4lb::testing {
namespace {

sockaddr_in Addr(const std::string& host, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  return a;
}

}  // namespace

int ListenTcp(const std::string& host, uint16_t* port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a = Addr(host, *port);
  socklen_t len = sizeof(a);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || listen(fd, 4096) != 0) {
    close(fd);
    return -1;
  }
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

int ConnectTcp(const std::string& host, uint16_t port, const std::string& source) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (!source.empty()) {
    sockaddr_in s = Addr(source, 0);
    if (bind(fd, reinterpret_cast<sockaddr*>(&s), sizeof(s)) != 0) {
      close(fd);
      return -1;
    }
  }
  sockaddr_in a = Addr(host, port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void SetRecvTimeout(int fd, absl::Duration timeout) {
  const timeval tv = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

bool SendAll(int fd, const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    const ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n <= 0) return false;
    p += n;
    len -= n;
  }
  return true;
}

bool SendAll(int fd, const std::string& data) { return SendAll(fd, data.data(), data.size()); }

std::string ReadToEof(int fd, int* error) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      out.append(buf, n);
      continue;
    }
    if (error != nullptr) *error = n == 0 ? 0 : errno;
    return out;
  }
}

std::string ReadN(int fd, size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    const ssize_t r = recv(fd, out.data() + got, n - got, 0);
    if (r <= 0) break;
    got += r;
  }
  out.resize(got);
  return out;
}

uint16_t RefusingPort(const std::string& host) {
  uint16_t port = 0;
  const int fd = ListenTcp(host, &port);
  close(fd);  // nothing listens there now: connects get RST
  return port;
}

uint16_t FreePortOnAll(const std::vector<std::string>& hosts) {
  for (int tries = 0; tries < 100; ++tries) {
    uint16_t port = 0;
    const int first = ListenTcp(hosts[0], &port);
    bool ok = first >= 0;
    std::vector<int> held = {first};
    for (size_t i = 1; ok && i < hosts.size(); ++i) {
      uint16_t same = port;
      const int fd = ListenTcp(hosts[i], &same);
      ok = fd >= 0;
      held.push_back(fd);
    }
    for (int fd : held) {
      if (fd >= 0) close(fd);
    }
    if (ok) return port;
  }
  return 0;
}

int BindUdp(const std::string& host, uint16_t* port) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Addr(host, *port);
  socklen_t len = sizeof(a);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0) {
    close(fd);
    return -1;
  }
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

void SetUdpBuffers(int fd, int bytes) {
  for (const auto& [force, plain] :
       {std::pair{SO_RCVBUFFORCE, SO_RCVBUF}, {SO_SNDBUFFORCE, SO_SNDBUF}}) {
    if (setsockopt(fd, SOL_SOCKET, force, &bytes, sizeof(bytes)) != 0) {
      setsockopt(fd, SOL_SOCKET, plain, &bytes, sizeof(bytes));  // capped at the sysctl max
    }
  }
}

bool SendTo(int fd, const std::string& host, uint16_t port, const std::string& data) {
  const sockaddr_in a = Addr(host, port);
  return sendto(fd, data.data(), data.size(), 0, reinterpret_cast<const sockaddr*>(&a),
                sizeof(a)) == static_cast<ssize_t>(data.size());
}

std::optional<std::string> RecvFrom(int fd, absl::Duration timeout, std::string* from) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string buf(65536, '\0');
  for (;;) {
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    const int wait_ms = static_cast<int>(
        absl::ToInt64Milliseconds(std::max(deadline - absl::Now(), absl::ZeroDuration())));
    if (poll(&p, 1, wait_ms) <= 0) return std::nullopt;
    sockaddr_in a{};
    socklen_t len = sizeof(a);
    const ssize_t n =
        recvfrom(fd, buf.data(), buf.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&a), &len);
    // An ICMP error queued on a connected socket surfaces here once; keep waiting.
    if (n < 0) {
      if (absl::Now() >= deadline) return std::nullopt;
      continue;
    }
    buf.resize(n);
    if (from != nullptr) {
      char ip[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &a.sin_addr, ip, sizeof(ip));
      *from = absl::StrCat(ip, ":", ntohs(a.sin_port));
    }
    return buf;
  }
}

std::string LocalAddress(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a.sin_addr, ip, sizeof(ip));
  return absl::StrCat(ip, ":", ntohs(a.sin_port));
}

uint16_t FreeUdpPortOnAll(const std::vector<std::string>& hosts) {
  for (int tries = 0; tries < 100; ++tries) {
    uint16_t port = 0;
    std::vector<int> held = {BindUdp(hosts[0], &port)};
    for (size_t i = 0; i < hosts.size() && held.back() >= 0; ++i) {
      uint16_t same = port;
      if (i > 0) held.push_back(BindUdp(hosts[i], &same));
      if (held.back() >= 0) held.push_back(ListenTcp(hosts[i], &same));
    }
    const bool ok = held.back() >= 0;
    for (int fd : held) {
      if (fd >= 0) close(fd);
    }
    if (ok) return port;
  }
  return 0;
}

EchoServer::EchoServer(const std::string& host) {
  listen_fd_ = ListenTcp(host, &port_);
  fcntl(listen_fd_, F_SETFL, O_NONBLOCK);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  stop_fd_ = eventfd(0, EFD_CLOEXEC);
  epoll_event ev{.events = EPOLLIN, .data = {.fd = listen_fd_}};
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.fd = stop_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd_, &ev);
  thread_ = std::thread([this] { Loop(); });
}

EchoServer::~EchoServer() {
  const uint64_t one = 1;
  (void)!write(stop_fd_, &one, sizeof(one));
  thread_.join();
  close(listen_fd_);
  close(epoll_fd_);
  close(stop_fd_);
}

void EchoServer::Loop() {
  struct Conn {
    std::string pending;  // read, not yet written back
    bool eof = false;
  };
  std::map<int, Conn> conns;
  const auto finish = [&](int fd) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    conns.erase(fd);
    --open_;
  };
  epoll_event events[256];
  for (;;) {
    const int n = epoll_wait(epoll_fd_, events, 256, 1000);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == stop_fd_) {
        for (auto& [cfd, c] : conns) close(cfd);
        return;
      }
      if (fd == listen_fd_) {
        for (;;) {
          const int c = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          ++accepted_;
          ++open_;
          conns[c] = Conn{};
          epoll_event ev{.events = EPOLLIN | EPOLLOUT | EPOLLET, .data = {.fd = c}};
          epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c, &ev);
        }
        continue;
      }
      auto it = conns.find(fd);
      if (it == conns.end()) continue;
      Conn& c = it->second;
      char buf[65536];
      bool dead = false;
      while (!c.eof) {
        const ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r > 0) {
          c.pending.append(buf, r);
        } else if (r == 0) {
          c.eof = true;
        } else {
          dead = errno != EAGAIN;
          break;
        }
        // Write back as we go so a large stream does not pile up here.
        while (!c.pending.empty()) {
          const ssize_t w = send(fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL);
          if (w <= 0) break;
          c.pending.erase(0, w);
        }
        if (c.pending.size() > (1 << 20)) break;  // wait for EPOLLOUT
      }
      while (!dead && !c.pending.empty()) {
        const ssize_t w = send(fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL);
        if (w <= 0) {
          dead = errno != EAGAIN;
          break;
        }
        c.pending.erase(0, w);
      }
      if (dead || (c.eof && c.pending.empty())) finish(fd);
    }
  }
}

OneShotServer::OneShotServer(const std::string& host, std::function<void(int)> handler) {
  listen_fd_ = ListenTcp(host, &port_);
  thread_ = std::thread([this, handler = std::move(handler)] {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      handler(fd);
      close(fd);
    }
    done_ = true;
  });
}

OneShotServer::~OneShotServer() {
  shutdown(listen_fd_, SHUT_RDWR);  // wakes accept() if nobody came
  thread_.join();
  close(listen_fd_);
}

bool OneShotServer::Join(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done_ && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  return done_;
}

uint64_t Stream::Next() {
  state_ ^= state_ >> 12;
  state_ ^= state_ << 25;
  state_ ^= state_ >> 27;
  return state_ * 0x2545F4914F6CDD1DULL;
}

void Stream::Fill(uint8_t* out, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    if (left_ == 0) {
      word_ = Next();
      left_ = 8;
    }
    out[i] = static_cast<uint8_t>(word_);
    word_ >>= 8;
    --left_;
  }
}

void WriteRandomFile(const std::string& path, uint64_t size, uint64_t seed) {
  Stream stream(seed);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  std::vector<uint8_t> chunk(1 << 20);
  for (uint64_t left = size; left > 0;) {
    const size_t n = std::min<uint64_t>(left, chunk.size());
    stream.Fill(chunk.data(), n);
    out.write(reinterpret_cast<const char*>(chunk.data()), n);
    left -= n;
  }
}

}  // namespace l4lb::testing
