#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"

namespace l4lb::testing {

// Blocking IPv4 TCP helpers for tests. Each returns -1 on failure.
int ListenTcp(const std::string& host, uint16_t* port);  // port 0: pick one, written back
int ConnectTcp(const std::string& host, uint16_t port, const std::string& source = "");
void SetRecvTimeout(int fd, absl::Duration timeout);
bool SendAll(int fd, const void* data, size_t len);
bool SendAll(int fd, const std::string& data);
// Reads until EOF (or error/timeout set on the socket): what arrived, and the
// errno that ended it (0 for a clean EOF).
std::string ReadToEof(int fd, int* error = nullptr);
// Reads exactly n bytes (or less at EOF/error).
std::string ReadN(int fd, size_t n);
// A port on `host` where nothing listens: connects are refused.
uint16_t RefusingPort(const std::string& host);
// A port free on every one of `hosts` at once.
uint16_t FreePortOnAll(const std::vector<std::string>& hosts);

// IPv4 UDP helpers. BindUdp returns -1 on failure; port 0: the kernel picks one,
// written back. The socket is unconnected: it sends to and hears from anyone.
int BindUdp(const std::string& host, uint16_t* port);
// SO_RCVBUF and SO_SNDBUF of `bytes` each, above net.core.rmem_max/wmem_max when
// the test runs as root (the *BUFFORCE options), so bursts and 64 KiB datagrams fit.
void SetUdpBuffers(int fd, int bytes);
// One datagram, whole, to host:port.
bool SendTo(int fd, const std::string& host, uint16_t port, const std::string& data);
// The next datagram (any size up to IPv4's 65507 bytes) within `timeout`, or
// nullopt. `from` (if given) gets its source as "IP:PORT".
std::optional<std::string> RecvFrom(int fd, absl::Duration timeout, std::string* from = nullptr);
// The "IP:PORT" a socket is bound to.
std::string LocalAddress(int fd);
// A port free on every one of `hosts` for UDP and for TCP alike (dnsmasq binds
// both; a UDP service's TCP health check may probe the same number).
uint16_t FreeUdpPortOnAll(const std::vector<std::string>& hosts);

// EchoServer echoes every byte on every connection (one epoll thread, any number
// of connections) and closes its side after the client's EOF.
class EchoServer {
 public:
  explicit EchoServer(const std::string& host);
  ~EchoServer();
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  int open_connections() const { return open_.load(); }

 private:
  void Loop();
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::atomic<int> open_{0};
  std::thread thread_;
};

// OneShotServer accepts one connection and runs `handler(fd)` on it in a thread;
// the fd is closed after the handler returns (unless the handler closed it).
class OneShotServer {
 public:
  OneShotServer(const std::string& host, std::function<void(int)> handler);
  ~OneShotServer();
  uint16_t port() const { return port_; }
  // Waits for the handler to finish.
  bool Join(absl::Duration timeout);

 private:
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// A deterministic byte stream (xorshift64*): a sender and a checker regenerate
// the same bytes, so 256 MiB are compared exactly without being stored.
class Stream {
 public:
  explicit Stream(uint64_t seed) : state_(seed | 1) {}
  void Fill(uint8_t* out, size_t len);

 private:
  uint64_t Next();
  uint64_t state_;
  uint64_t word_ = 0;
  int left_ = 0;  // bytes of word_ not yet used
};

// Writes `size` bytes of Stream(seed) to `path` (`seed` tells files apart), 1 MiB
// at a time: a 200 MiB file never sits in memory.
void WriteRandomFile(const std::string& path, uint64_t size, uint64_t seed);

}  // namespace l4lb::testing
