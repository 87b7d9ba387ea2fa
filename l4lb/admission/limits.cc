#include "l4lb/admission/limits.h"

#include <algorithm>

#include "absl/hash/hash.h"

namespace l4lb::admission {
namespace {

// How far from the cold end eviction looks for an entry that is not banned
// before it takes the coldest one anyway: bounded work per new client, and bans
// survive a flood of new addresses unless it is made of bans.
constexpr int kEvictionScan = 8;

uint64_t GrantBytes(uint64_t bandwidth) {
  return std::clamp<uint64_t>(bandwidth / 50, 4 << 10, 1 << 20);
}

}  // namespace

ClientLimits::ClientLimits(const Options& options)
    : options_(options),
      burst_(options.burst > 0 ? options.burst : std::max(1.0, options.rate)),
      ban_window_ns_(absl::ToInt64Nanoseconds(options.ban_window)),
      ban_time_ns_(absl::ToInt64Nanoseconds(options.ban_time)),
      max_per_shard_(std::max<size_t>(1, (options.max_clients + kShards - 1) / kShards)),
      grant_bytes_(GrantBytes(options.bandwidth)),
      burst_bytes_(std::max(options.bandwidth / 10, 2 * grant_bytes_)),
      shards_(new Shard[kShards]) {}

bool ClientLimits::active() const {
  return options_.max_connections > 0 || options_.rate > 0 || options_.ban_after > 0;
}

ClientLimits::Ip ClientLimits::Key(const Ip& client) const {
  const bool v4 =
      std::all_of(client.begin(), client.begin() + 10, [](uint8_t b) { return b == 0; }) &&
      client[10] == 0xff && client[11] == 0xff;
  const int keep = v4 ? 96 + options_.prefix_v4 : options_.prefix_v6;
  Ip key = client;
  for (int bit = keep; bit < 128; ++bit) key[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  return key;
}

ClientLimits::Shard& ClientLimits::ShardFor(const Ip& key) const {
  // The low bits of absl::Hash feed the maps' own buckets; take high ones here.
  return shards_[(absl::Hash<Ip>{}(key) >> 56) % kShards];
}

ClientLimits::Entry& ClientLimits::Find(Shard& shard, const Ip& key, int64_t now_ns) {
  auto it = shard.entries.find(key);
  if (it != shard.entries.end()) {
    shard.lru.splice(shard.lru.begin(), shard.lru, it->second.lru);
    return it->second;
  }
  while (!shard.lru.empty() && shard.entries.size() >= max_per_shard_) {
    // Best: idle and not banned; then not banned (its connections' count is
    // lost, which errs toward admitting); a ban goes only if nothing else is in reach.
    auto victim = std::prev(shard.lru.end());
    auto unbanned = shard.lru.end();
    int scanned = 0;
    for (auto candidate = victim;; --candidate) {
      const Entry& e = shard.entries.find(*candidate)->second;
      if (e.banned_until_ns <= now_ns) {
        if (e.live == 0) {
          unbanned = candidate;
          break;
        }
        if (unbanned == shard.lru.end()) unbanned = candidate;
      }
      if (candidate == shard.lru.begin() || ++scanned >= kEvictionScan) break;
    }
    if (unbanned != shard.lru.end()) victim = unbanned;
    ++shard.evictions;
    shard.entries.erase(*victim);
    shard.lru.erase(victim);
  }
  shard.lru.push_front(key);
  Entry& e = shard.entries[key];
  e.tokens = burst_;
  e.refilled_ns = now_ns;
  e.window_start_ns = now_ns;
  for (int direction = 0; direction < 2; ++direction) {
    e.bandwidth_tokens[direction] = static_cast<double>(burst_bytes_);
    e.bandwidth_refilled_ns[direction] = now_ns;
  }
  e.generation = shard.next_generation++;
  e.lru = shard.lru.begin();
  return e;
}

ClientLimits::Verdict ClientLimits::Admit(const Ip& client, int64_t now_ns, Ticket* ticket) {
  const Ip key = Key(client);
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  Entry& e = Find(shard, key, now_ns);
  if (e.banned_until_ns > now_ns) return Verdict::kBanned;
  e.banned_until_ns = 0;  // a ban that ran out
  if (options_.rate > 0) {
    const double elapsed_s = static_cast<double>(now_ns - e.refilled_ns) / 1e9;
    e.tokens = std::min(burst_, e.tokens + elapsed_s * options_.rate);
    e.refilled_ns = now_ns;
    if (e.tokens < 1.0) {
      if (options_.ban_after > 0) {
        if (now_ns - e.window_start_ns > ban_window_ns_) {
          e.window_start_ns = now_ns;
          e.violations = 0;
        }
        if (++e.violations >= options_.ban_after) {
          e.banned_until_ns = now_ns + ban_time_ns_;
          e.violations = 0;
          return Verdict::kBanned;
        }
      }
      return Verdict::kLimited;
    }
  }
  if (options_.max_connections > 0 && e.live >= options_.max_connections) {
    return Verdict::kLimited;
  }
  // A refused attempt costs no token: only admitted connections spend the rate.
  if (options_.rate > 0) e.tokens -= 1.0;
  ticket->generation = 0;
  if (options_.max_connections > 0) {
    ++e.live;
    ticket->generation = e.generation;
  }
  return Verdict::kAdmit;
}

void ClientLimits::Release(const Ip& client, const Ticket& ticket) {
  if (ticket.generation == 0) return;
  const Ip key = Key(client);
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.entries.find(key);
  if (it == shard.entries.end() || it->second.generation != ticket.generation) return;
  if (it->second.live > 0) --it->second.live;
}

uint64_t ClientLimits::Grant(const Ip& client, int direction, uint64_t want, int64_t now_ns) {
  if (options_.bandwidth == 0) return want;
  const Ip key = Key(client);
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  Entry& e = Find(shard, key, now_ns);
  double& tokens = e.bandwidth_tokens[direction];
  int64_t& refilled_ns = e.bandwidth_refilled_ns[direction];
  const double elapsed_s = static_cast<double>(std::max<int64_t>(0, now_ns - refilled_ns)) / 1e9;
  tokens = std::min(static_cast<double>(burst_bytes_),
                    tokens + elapsed_s * static_cast<double>(options_.bandwidth));
  refilled_ns = now_ns;
  const uint64_t granted = std::min(want, static_cast<uint64_t>(std::max(0.0, tokens)));
  tokens -= static_cast<double>(granted);
  return granted;
}

void ClientLimits::Ban(const Ip& client, absl::Duration duration, int64_t now_ns) {
  const Ip key = Key(client);
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  Find(shard, key, now_ns).banned_until_ns = now_ns + absl::ToInt64Nanoseconds(duration);
}

void ClientLimits::Unban(const Ip& client) {
  const Ip key = Key(client);
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.entries.find(key);
  if (it != shard.entries.end()) {
    it->second.banned_until_ns = 0;
    it->second.violations = 0;
  }
}

bool ClientLimits::Banned(const Ip& client, int64_t now_ns) {
  const Ip key = Key(client);
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.entries.find(key);
  return it != shard.entries.end() && it->second.banned_until_ns > now_ns;
}

size_t ClientLimits::size() const {
  size_t n = 0;
  for (int i = 0; i < kShards; ++i) {
    std::lock_guard<std::mutex> lock(shards_[i].mu);
    n += shards_[i].entries.size();
  }
  return n;
}

uint64_t ClientLimits::evictions() const {
  uint64_t n = 0;
  for (int i = 0; i < kShards; ++i) {
    std::lock_guard<std::mutex> lock(shards_[i].mu);
    n += shards_[i].evictions;
  }
  return n;
}

}  // namespace l4lb::admission
