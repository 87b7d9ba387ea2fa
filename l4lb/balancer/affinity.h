#pragma once

#include <array>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace l4lb::balancer {

// AffinityTable pins a client IP to one backend host for a while: HAProxy's
// stick table, for FTP. An FTP client's control connection and each of its
// passive data connections are separate TCP connections that must reach the
// same server; Maglev on the client IP already agrees across listeners, but not
// once the backend set differs between the lookups (a backend went down and came
// back, a data service lists its backends without ports or in another order).
//
// An entry lives while the client has connections through it and for `ttl`
// after its last one ends. The table holds at most `max_clients` entries: a new
// client beyond that evicts the least recently used one (counted in evictions()).
// Backends are named by their IP (16 bytes, IPv4 mapped), so services with
// different ports for the same hosts share pins.
//
// Thread safety: every method may be called from any thread (the workers of
// every service in the group share one table). Sharded by client so workers
// rarely meet on a lock; called once per new connection and once per close, not
// per byte.
class AffinityTable {
 public:
  using Ip = std::array<uint8_t, 16>;
  struct Options {
    absl::Duration ttl = absl::Minutes(10);
    size_t max_clients = 1 << 20;
  };

  explicit AffinityTable(const Options& options);
  AffinityTable(const AffinityTable&) = delete;
  AffinityTable& operator=(const AffinityTable&) = delete;

  // The backend `client` is pinned to, if its pin is live at `now_ns` (a
  // monotonic clock shared by the callers).
  std::optional<Ip> Lookup(const Ip& client, int64_t now_ns);

  // Names the entry a connection counts in: an entry evicted (or expired) and
  // created anew for the same client gets another one. Never 0.
  using Token = uint64_t;

  // A connection of `client` to `backend` is established: pins the client to it
  // (replacing an older pin, e.g. when the pinned backend was down) until
  // Release() of its last connection plus ttl. The connection keeps the token
  // for its Release().
  Token Acquire(const Ip& client, const Ip& backend, int64_t now_ns);
  // The connection that got `token` from Acquire() ended. A no-op if that entry
  // is gone: the connection no longer counts in the client's current entry, and
  // must not shorten the pin of the connections that do.
  void Release(const Ip& client, Token token, int64_t now_ns);

  absl::Duration ttl() const { return absl::Nanoseconds(ttl_ns_); }
  size_t size() const;
  uint64_t evictions() const;

 private:
  static constexpr int kShards = 16;
  struct Entry {
    Ip backend{};
    Token token = 0;            // what Acquire() handed to the connections counted in `live`
    uint32_t live = 0;          // connections open through this pin
    int64_t idle_since_ns = 0;  // when live last dropped to 0
    std::list<Ip>::iterator lru;
  };
  struct Shard {
    mutable std::mutex mu;
    absl::flat_hash_map<Ip, Entry> entries ABSL_GUARDED_BY(mu);
    std::list<Ip> lru ABSL_GUARDED_BY(mu);  // front: most recently used
    uint64_t evictions ABSL_GUARDED_BY(mu) = 0;
    // Tokens of this shard: the shard index in the low bits keeps them unique
    // across shards without a shared counter.
    Token next_token ABSL_GUARDED_BY(mu) = 0;
  };

  Shard& ShardFor(const Ip& client);
  bool Expired(const Entry& e, int64_t now_ns) const;

  const int64_t ttl_ns_;
  const size_t max_per_shard_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace l4lb::balancer
