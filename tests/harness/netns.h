#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace l4lb::testing {

// NetNamespace is a network namespace of the test's own, `ip netns add
// PREFIX-PID`, loopback up, that the calling thread enters: the sockets it opens,
// the threads it starts (UdpEcho) and the processes it spawns (l4lb) from then on
// live there, so sysctls such as the local port range can be narrowed without
// touching the host. The destructor returns the thread to the namespace it came
// from and deletes the namespace, on failure too: declare it before anything
// that runs inside it, so that goes first.
//
// Thread safety: enter and leave on the same thread (setns is per thread).
class NetNamespace {
 public:
  static absl::StatusOr<std::unique_ptr<NetNamespace>> Enter(const std::string& prefix);
  ~NetNamespace();
  NetNamespace(const NetNamespace&) = delete;
  NetNamespace& operator=(const NetNamespace&) = delete;

  const std::string& name() const { return name_; }
  // sysctl -w KEY=VALUE inside the namespace (net.* keys are per namespace).
  absl::Status Sysctl(const std::string& key, const std::string& value);

 private:
  NetNamespace(std::string name, int original) : name_(std::move(name)), original_(original) {}

  std::string name_;
  int original_ = -1;  // /proc/thread-self/ns/net before entering
};

}  // namespace l4lb::testing
