#pragma once

#include <array>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace l4lb::admission {

// ClientLimits is one service's per-client policy: a bound on a client's
// concurrent connections, a token bucket on its new connections, and bans for a
// client that keeps running its bucket dry. A "client" is its address cut to
// prefix_v4 / prefix_v6 bits (/24, /64: one network counts as one client).
//
// State lives in a table bounded by max_clients, in LRU order: a flood from
// countless (spoofed) addresses evicts the coldest entries, never grows memory.
// A banned entry is evicted only when no unbanned one is left in reach, and a
// client whose entry was evicted starts afresh (a full bucket), which errs on
// the side of admitting.
//
// Thread safety: every method from any thread. The workers of a service share
// one table, sharded by client (16 mutexes), so accepts serialize only when
// they hash to one shard; each call is one hash lookup under that lock.
class ClientLimits {
 public:
  using Ip = std::array<uint8_t, 16>;  // net::SocketAddress::IpBytes16()

  struct Options {
    uint32_t max_connections = 0;  // per client; 0: no bound
    double rate = 0;               // new connections per second; 0: no bound
    double burst = 0;              // bucket size; 0: max(1, rate)
    uint32_t ban_after = 0;        // refusals by rate within ban_window that ban; 0: never
    absl::Duration ban_window = absl::Seconds(10);
    absl::Duration ban_time = absl::Minutes(10);
    int prefix_v4 = 32;   // 0..32
    int prefix_v6 = 128;  // 0..128
    size_t max_clients = 100'000;
    // Bytes per second each way, for all of a client's connections together
    // (client_bandwidth); 0: no bound. Spent through Grant().
    uint64_t bandwidth = 0;
  };

  enum class Verdict : uint8_t { kAdmit, kLimited, kBanned };

  // What an admitted connection holds; hand it back to Release() at close with
  // the same client address. 8 bytes: every live connection carries one.
  struct Ticket {
    uint64_t generation = 0;  // 0: holds nothing (no concurrency bound)
  };

  explicit ClientLimits(const Options& options);
  ClientLimits(const ClientLimits&) = delete;
  ClientLimits& operator=(const ClientLimits&) = delete;

  // A new connection (or UDP session) of `client` at `now_ns` (monotonic).
  // kAdmit fills `ticket`.
  Verdict Admit(const Ip& client, int64_t now_ns, Ticket* ticket);
  // An admitted connection of `client` ended. A no-op if its entry was evicted
  // meanwhile (or the ticket holds nothing).
  void Release(const Ip& client, const Ticket& ticket);

  // Up to `want` bytes that one of `client`'s connections may read in
  // `direction` (0: client -> backend, 1: backend -> client) now; 0 when the
  // client's bucket for that direction is empty. Each direction is a token bucket
  // of Options::bandwidth bytes/s holding at most burst_bytes(). A worker asks
  // for grant_bytes() at a time and spends it locally, so the shard lock is
  // taken once per grant (about 50 times a second per busy flow), never per read.
  uint64_t Grant(const Ip& client, int direction, uint64_t want, int64_t now_ns);
  uint64_t bandwidth() const { return options_.bandwidth; }
  // What a connection asks Grant() for at a time: 20 ms at the rate, 4 KiB to 1 MiB.
  uint64_t grant_bytes() const { return grant_bytes_; }
  // The bucket: 100 ms at the rate, at least two grants.
  uint64_t burst_bytes() const { return burst_bytes_; }

  // Bans `client`'s key for `duration` / lifts a ban (admin, tests).
  void Ban(const Ip& client, absl::Duration duration, int64_t now_ns);
  void Unban(const Ip& client);
  bool Banned(const Ip& client, int64_t now_ns);

  // The table key of `client`: its address with the bits past the prefix cleared.
  Ip Key(const Ip& client) const;
  // Whether any bound is set (otherwise the service never calls Admit).
  bool active() const;
  size_t size() const;
  uint64_t evictions() const;

 private:
  static constexpr int kShards = 16;
  struct Entry {
    double tokens = 0;
    int64_t refilled_ns = 0;
    uint32_t live = 0;        // admitted connections not yet released
    uint32_t violations = 0;  // rate refusals in the current window
    int64_t window_start_ns = 0;
    int64_t banned_until_ns = 0;  // 0: not banned
    uint64_t generation = 0;      // tells this entry from an evicted predecessor
    // client_bandwidth buckets, [0] up and [1] down (Grant()).
    double bandwidth_tokens[2] = {0, 0};
    int64_t bandwidth_refilled_ns[2] = {0, 0};
    std::list<Ip>::iterator lru;
  };
  struct Shard {
    mutable std::mutex mu;
    absl::flat_hash_map<Ip, Entry> entries ABSL_GUARDED_BY(mu);
    std::list<Ip> lru ABSL_GUARDED_BY(mu);  // front: most recently used
    uint64_t evictions ABSL_GUARDED_BY(mu) = 0;
    uint64_t next_generation ABSL_GUARDED_BY(mu) = 1;
  };

  Shard& ShardFor(const Ip& key) const;
  // The entry of `key`, created (evicting to stay in bounds) if needed.
  Entry& Find(Shard& shard, const Ip& key, int64_t now_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);

  const Options options_;
  const double burst_;
  const int64_t ban_window_ns_;
  const int64_t ban_time_ns_;
  const size_t max_per_shard_;
  const uint64_t grant_bytes_;
  const uint64_t burst_bytes_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace l4lb::admission
