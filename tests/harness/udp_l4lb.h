#pragma once

// Parts shared by the UDP end-to-end tests (udp_e2e_test, dns_e2e_test): l4lb
// started on a udp:// listener, backends on 127.0.0.2-4, a UDP echo server in
// the test process, client sockets, and readers of l4lb's session log lines.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "tests/harness/process.h"

namespace l4lb::testing {

// Backend hosts, in order.
inline const std::vector<std::string> kUdpBackendHosts = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};

// Fast checks, so the timings in the tests are tenths of seconds.
inline const std::vector<std::string> kFastChecks = {
    "--health_interval=200ms", "--health_timeout=200ms", "--health_rise=2", "--health_fall=3"};
// A probe fails at most one interval (+10% jitter) after the kill, then fall - 1
// more; a probe that waits for nothing back costs a timeout; 300 ms for the log poll.
inline const absl::Duration kDownWithin = absl::Milliseconds(200 * 3 * 1.1 + 200 + 300);

// l4lb on udp://127.0.0.1:0 with `flags` (which may name another --listen).
std::unique_ptr<L4lb> StartUdpL4lb(std::vector<std::string> flags);
// "--backends=" the first `n` backend hosts, each on `port`.
std::string Backends(uint16_t port, size_t n);
// "127.0.0.1:PORT" of l4lb's (first) listener: where replies must come from.
std::string Listener(const L4lb& l4lb);

// `token` stands alone in `line`: "127.0.0.1:5000" is not in "127.0.0.1:50001",
// "idle" is in "close=idle" (and "close=idle_timeout") but not in "udp_idle".
bool HasToken(absl::string_view line, absl::string_view token);
// l4lb's access-log lines for UDP sessions holding every one of `tokens`.
std::vector<std::string> SessionLines(const L4lb& l4lb, const std::vector<std::string>& tokens);
// Waits up to 5 s for "`backend` ... is DOWN" in l4lb's log: how long it took.
// The checker logs the change just before it publishes the new snapshot, so this
// returns 20 ms after the line: by then every datagram must see the backend DOWN.
std::optional<absl::Duration> WaitForDown(const L4lb& l4lb, const std::string& backend);

// UdpEcho sends every datagram back to its source, byte for byte, from one
// socket on host:port (a thread: poll on the socket and a stop eventfd). Stop()
// closes the socket, so the kernel answers ICMP port unreachable from then on:
// a dead UDP server as a health check and a connected socket see it.
class UdpEcho {
 public:
  UdpEcho(const std::string& host, uint16_t port);
  ~UdpEcho();
  bool ok() const { return fd_ >= 0; }
  uint16_t port() const { return port_; }
  void Stop();
  // Datagrams echoed, health probes ("ping") left out.
  int data() const { return data_; }
  // The source port of the last non-probe datagram: l4lb's session socket.
  uint16_t last_peer_port();

 private:
  void Loop();

  int fd_ = -1;
  int stop_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> data_{0};
  std::mutex mu_;
  uint16_t last_peer_port_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

// A counter from the totals l4lb logs as it exits ("exiting: ... udp_evicted=N
// ..."), or -1 before that line is there.
int64_t ExitTotal(const L4lb& l4lb, const std::string& counter);

// A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"), or -1.
int64_t StatusKib(pid_t pid, const std::string& field);

// A client socket on `host` (port picked by the kernel) with room for bursts.
int Client(const std::string& host = "127.0.0.1");
// One datagram to l4lb and its answer, which must come from the listener's
// address; "" if none came within 2 s (or from elsewhere).
std::string RoundTrip(int fd, const L4lb& l4lb, const std::string& data);

}  // namespace l4lb::testing
