#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace l4lb::testing {

// NetNamespace is a network namespace of the test's own, `ip netns add
// PREFIX-PID`, loopback up. Enter() makes one that the calling thread enters:
// the sockets it opens, the threads it starts (UdpEcho) and the processes it
// spawns (l4lb) from then on live there, so sysctls such as the local port range
// can be narrowed without touching the host. Create() makes one to wire up
// beside it (veth pairs between namespaces: Ip()), visited for a while (Visit)
// or run in (Exec). The destructor returns the thread to the namespace it came
// from (Enter) and deletes the namespace, on failure too: declare it before
// anything that runs inside it, so that goes first. A namespace left behind by
// a test process that was killed (a timeout) is deleted by the next one made
// with the same prefix.
//
// Thread safety: enter and leave on the same thread (setns is per thread).
class NetNamespace {
 public:
  static absl::StatusOr<std::unique_ptr<NetNamespace>> Enter(const std::string& prefix);
  static absl::StatusOr<std::unique_ptr<NetNamespace>> Create(const std::string& prefix);
  ~NetNamespace();
  NetNamespace(const NetNamespace&) = delete;
  NetNamespace& operator=(const NetNamespace&) = delete;

  const std::string& name() const { return name_; }
  // sysctl -w KEY=VALUE inside the namespace (net.* keys are per namespace).
  absl::Status Sysctl(const std::string& key, const std::string& value);
  // `ip -n NAME ARGS...` (10 s at most): addresses, links, routes and rules.
  absl::Status Ip(const std::vector<std::string>& args);
  // `argv` as a command run inside: ip netns exec NAME argv...
  std::vector<std::string> Exec(const std::vector<std::string>& argv) const;

  // The calling thread is inside `ns` while a Visit lives (sockets it opens,
  // processes it starts), then back where it was.
  class Visit {
   public:
    explicit Visit(const NetNamespace& ns);
    ~Visit();
    Visit(const Visit&) = delete;
    Visit& operator=(const Visit&) = delete;

   private:
    int original_ = -1;
  };

 private:
  NetNamespace(std::string name, int original) : name_(std::move(name)), original_(original) {}
  static absl::StatusOr<std::unique_ptr<NetNamespace>> Make(const std::string& prefix, bool enter);

  std::string name_;
  int original_ = -1;  // /proc/thread-self/ns/net before entering; -1: not entered
};

}  // namespace l4lb::testing
