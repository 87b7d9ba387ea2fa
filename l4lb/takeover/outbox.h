#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "l4lb/takeover/wire.h"

namespace l4lb::takeover {

// Outbox carries the connections the running process's workers hand over to
// the thread that sends them to the new process (donor.h), in the order they
// were ready, and tells that thread when every worker has no more to give.
//
//   Outbox out(/*workers=*/2);   // or Outbox(0) and Expect() per worker asked
//   // worker threads: out.Push({record, {client_fd, backend_fd, ...}}); out.WorkerDone();
//   // the sender:     while (auto item = out.Next(timeout)) ... (nullopt: all done)
//
// The fds stay the workers' (they close them only once the new process has
// acknowledged, or go on with them if it never does): Send() hands the kernel
// copies.
//
// Thread safety: Push and WorkerDone from any thread; Next from one.
class Outbox {
 public:
  struct Item {
    bool udp = false;      // a UDP session (udp_record), else a TCP connection (record)
    Connection record{};
    UdpSession udp_record{};
    std::vector<int> fds{};  // client, backend, pipes: Connection::fd_count(); UDP: its socket
  };

  explicit Outbox(size_t workers) : waiting_for_(workers) {}

  // One more worker will push and then call WorkerDone() (before it is asked).
  void Expect();
  void Push(Item item);
  // One worker has pushed all it will (each worker calls it once).
  void WorkerDone();
  // The next item; nullopt once every worker is done and every item taken;
  // DeadlineExceeded if nothing came within `timeout` ("takeover: workers
  // still handing over after ...").
  absl::StatusOr<std::optional<Item>> Next(absl::Duration timeout);
  // Items pushed so far.
  size_t pushed() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> items_ ABSL_GUARDED_BY(mu_);
  size_t waiting_for_ ABSL_GUARDED_BY(mu_);
  size_t pushed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace l4lb::takeover
