#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace l4lb::stats {

// One live TCP connection as GET /connections lists it.
struct LiveConnection {
  uint16_t service = 0;
  std::string client;   // "1.2.3.4:5678" (the PROXY header's source, when one came)
  std::string backend{};  // the address connected to; "" while no backend is picked yet
  const char* state = "";  // "connecting", "relaying", "flushing", "closing"
  absl::Duration age{};
  uint64_t bytes_up = 0;    // client -> backend
  uint64_t bytes_down = 0;  // backend -> client
};

// ConnectionList lets another thread see one worker's live connections without
// touching them: the connections belong to the worker's thread alone. The asker
// posts a request and wakes the worker (its eventfd); the worker, at that wakeup,
// writes a bounded list of its connections and signals; the asker waits a
// bounded time. A worker that is gone or stuck costs the asker its timeout,
// never the worker anything: when nobody asks, the worker's cost is one atomic
// load per wakeup by its eventfd.
//
// Thread safety: Ask() from any thread (askers take turns); pending(), request()
// and Answer() from the worker's thread.
class ConnectionList {
 public:
  struct Request {
    int service = -1;  // -1: every service
    size_t limit = 0;
  };

  // The worker's connections (at most request.limit), or nullopt if it did not
  // answer within `timeout`. `wake` makes the worker look (writes its eventfd).
  std::optional<std::vector<LiveConnection>> Ask(const Request& request, absl::Duration timeout,
                                                 const std::function<void()>& wake);

  bool pending() const { return pending_.load(std::memory_order_acquire); }
  Request request() const;
  // Ignored if the asker gave up in the meantime.
  void Answer(std::vector<LiveConnection> connections);

 private:
  std::mutex ask_mu_;  // one asker at a time
  mutable std::mutex mu_;
  std::condition_variable answered_;
  std::atomic<bool> pending_{false};
  Request request_ ABSL_GUARDED_BY(mu_);
  std::optional<std::vector<LiveConnection>> answer_ ABSL_GUARDED_BY(mu_);
};

}  // namespace l4lb::stats
