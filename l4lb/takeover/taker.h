#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "l4lb/net/socket.h"
#include "l4lb/takeover/channel.h"
#include "l4lb/takeover/wire.h"

namespace l4lb::takeover {

// Taker is the new process's side of a live upgrade (donor.h has the other):
//
//   std::optional<Taker> t = *Taker::Connect(path, timeout, build);  // nullopt: nobody there
//   ... run the config on t->listeners(), accepts held ...
//   std::vector<Taker::Incoming> connections = *t->TakeConnections();
//   t->Ack(connections.size());   // from here on they are this process's
//   ... relay them, release the accepts ...
//
// Until Ack() the running process keeps (unpolled) every connection it sent:
// a new process that fails before (an error here, a crash) loses nothing.
//
// Thread safety: one thread.
class Taker {
 public:
  struct Incoming {
    Listener listener{};    // for listeners()
    bool udp = false;       // TakeConnections(): udp_session, else connection
    Connection connection{};
    UdpSession udp_session{};
    std::vector<net::Fd> fds{};
  };

  // The running l4lb at `path`, its Hello answered and its listeners in hand.
  // nullopt when no process listens there (no socket file, or a stale one):
  // a first start. FailedPrecondition when it refuses ("takeover refused by
  // the running l4lb: wire version 2, this l4lb writes 1").
  static absl::StatusOr<std::optional<Taker>> Connect(const std::string& path,
                                                      absl::Duration timeout,
                                                      const std::string& build);

  std::vector<Incoming>& listeners() { return listeners_; }
  uint32_t workers() const { return workers_; }

  // Tells the running process this one is Ready, then takes every connection
  // and UDP session it hands over, until its Done (whose counts must match).
  absl::StatusOr<std::vector<Incoming>> TakeConnections();
  absl::Status Ack(uint64_t adopted);

 private:
  Taker(Channel channel, absl::Duration timeout) : channel_(std::move(channel)), timeout_(timeout) {}
  struct Raw {
    Message message;
    std::vector<net::Fd> fds;
  };
  // The next message, its fds counted; a refusing HelloReply is an error.
  absl::StatusOr<Raw> Next();

  Channel channel_;
  absl::Duration timeout_;
  uint32_t workers_ = 0;
  std::vector<Incoming> listeners_;
};

}  // namespace l4lb::takeover
