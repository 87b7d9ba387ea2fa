#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "l4lb/takeover/channel.h"
#include "l4lb/takeover/outbox.h"
#include "l4lb/takeover/wire.h"

namespace l4lb::takeover {

// Donor is the running process's side of a live upgrade: a thread that
// listens at the takeover socket and, when a new l4lb connects (taker.h),
// hands it everything, in the order wire.h shows:
//
//   1. the new binary's Hello: a wire version this one cannot write is
//      refused (HelloReply with the reason), and nothing else moves;
//   2. every listening socket (Hooks::listeners): from now on both processes
//      hold them, and only this one accepts;
//   3. the new one's Ready (its config runs on those sockets, holding its
//      accepts): the workers pause accepting (clients queue in the backlogs,
//      none is refused) and hand over each relaying connection
//      (Hooks::begin_export; worker_takeover.cc), sent as they come, then Done;
//   4. the new one's Ack: the handed connections are its own
//      (Hooks::end_export(true)), handed_over() turns true and main drains what
//      is left (connections that were flushing or closing) and exits.
// Any failure on the way (a timeout, the channel breaking because the new
// process died, an Ack that does not match) ends the attempt with
// end_export(false): this process takes back what it handed and serves on,
// and waits for the next attempt. One attempt at a time.
//
// Thread safety: handed_over() from any thread; the hooks run on the donor's thread.
class Donor {
 public:
  struct ListenerFds {
    Listener record;
    std::vector<int> fds;  // the process's own, one per worker; Send() copies them
  };
  struct Hooks {
    std::function<std::vector<ListenerFds>()> listeners;
    // Every worker of every config still running here pauses accepting and
    // hands its connections to `out` (out->Expect() for each).
    std::function<void(Outbox* out)> begin_export;
    std::function<void(bool handed_over)> end_export;
  };
  struct Options {
    std::string path;  // the unix socket, e.g. /run/l4lb/takeover.sock
    uint32_t workers = 1;
    std::string build;  // this binary's version line, for the new one's log
    // For each step the new process takes (Hello, Ready, Ack) and for the
    // workers' hand-over (connections still connecting finish first).
    absl::Duration timeout = absl::Seconds(30);
    Hooks hooks;
  };

  // Listens at options.path (replacing a stale socket file) and starts the thread.
  static absl::StatusOr<std::unique_ptr<Donor>> Start(Options options);
  ~Donor();  // stops listening; an attempt in progress ends first
  Donor(const Donor&) = delete;
  Donor& operator=(const Donor&) = delete;

  // A takeover completed: the next process serves everything this one had.
  bool handed_over() const { return handed_over_.load(std::memory_order_acquire); }

 private:
  Donor(Options options, ChannelListener listener)
      : options_(std::move(options)), listener_(std::move(listener)) {}
  void Loop();
  // One attempt, on `channel`; ok only if the new process took everything.
  absl::Status Serve(Channel& channel);
  absl::Status Export(Channel& channel, uint64_t listeners);

  const Options options_;
  ChannelListener listener_;
  // Every attempt's outbox lives as long as the donor: a worker that has not
  // yet seen a failed attempt's end may still push into it.
  std::vector<std::unique_ptr<Outbox>> outboxes_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> handed_over_{false};
  std::thread thread_;
};

}  // namespace l4lb::takeover
