#include "l4lb/balancer/affinity.h"

#include <algorithm>

#include "absl/hash/hash.h"

namespace l4lb::balancer {

AffinityTable::AffinityTable(const Options& options)
    : ttl_ns_(absl::ToInt64Nanoseconds(options.ttl)),
      max_per_shard_(std::max<size_t>(1, (options.max_clients + kShards - 1) / kShards)),
      shards_(new Shard[kShards]) {}

AffinityTable::Shard& AffinityTable::ShardFor(const Ip& client) {
  // The low bits of absl::Hash feed the maps' own buckets; take high ones here.
  return shards_[(absl::Hash<Ip>{}(client) >> 56) % kShards];
}

bool AffinityTable::Expired(const Entry& e, int64_t now_ns) const {
  return e.live == 0 && now_ns - e.idle_since_ns > ttl_ns_;
}

std::optional<AffinityTable::Ip> AffinityTable::Lookup(const Ip& client, int64_t now_ns) {
  Shard& shard = ShardFor(client);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.entries.find(client);
  if (it == shard.entries.end()) return std::nullopt;
  if (Expired(it->second, now_ns)) {
    shard.lru.erase(it->second.lru);
    shard.entries.erase(it);
    return std::nullopt;
  }
  return it->second.backend;
}

AffinityTable::Token AffinityTable::Acquire(const Ip& client, const Ip& backend, int64_t now_ns) {
  Shard& shard = ShardFor(client);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.entries.find(client);
  if (it != shard.entries.end()) {
    Entry& e = it->second;
    // An expired entry has no connection left (live == 0): keeping its token
    // cannot let an older connection release the new one.
    e.backend = backend;
    ++e.live;
    shard.lru.splice(shard.lru.begin(), shard.lru, e.lru);
    return e.token;
  }
  // Room first: expired entries at the cold end go free, then the coldest live one.
  while (!shard.lru.empty() && shard.entries.size() >= max_per_shard_) {
    auto victim = shard.entries.find(shard.lru.back());
    if (!Expired(victim->second, now_ns)) ++shard.evictions;
    shard.entries.erase(victim);
    shard.lru.pop_back();
  }
  shard.lru.push_front(client);
  const Token token = ++shard.next_token * kShards + static_cast<Token>(&shard - shards_.get());
  shard.entries.emplace(
      client, Entry{.backend = backend, .token = token, .live = 1, .lru = shard.lru.begin()});
  return token;
}

void AffinityTable::Release(const Ip& client, Token token, int64_t now_ns) {
  Shard& shard = ShardFor(client);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.entries.find(client);
  // Gone, or replaced: the entry this connection counted in was evicted meanwhile.
  if (it == shard.entries.end() || it->second.token != token) return;
  Entry& e = it->second;
  if (e.live > 0 && --e.live == 0) e.idle_since_ns = now_ns;
  shard.lru.splice(shard.lru.begin(), shard.lru, e.lru);
}

size_t AffinityTable::size() const {
  size_t n = 0;
  for (int i = 0; i < kShards; ++i) {
    std::lock_guard<std::mutex> lock(shards_[i].mu);
    n += shards_[i].entries.size();
  }
  return n;
}

uint64_t AffinityTable::evictions() const {
  uint64_t n = 0;
  for (int i = 0; i < kShards; ++i) {
    std::lock_guard<std::mutex> lock(shards_[i].mu);
    n += shards_[i].evictions;
  }
  return n;
}

}  // namespace l4lb::balancer
