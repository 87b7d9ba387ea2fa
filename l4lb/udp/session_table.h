#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"

#include "l4lb/admission/admission.h"
#include "l4lb/net/address.h"
#include "l4lb/udp/refusal.h"

namespace l4lb::udp {

// Session is one UDP client of a service on one worker: the client's address,
// the backend it was given, and the connected socket l4lb talks to that backend
// through (so the kernel delivers the backend's replies to this session alone).
struct Session {
  enum class State : uint8_t { kFree, kLive, kClosing };

  uint32_t slot = 0;
  uint32_t generation = 0;  // bumped on free (ring/tag.h)
  State state = State::kFree;
  uint16_t service = 0;
  uint16_t listener = 0;   // index among the worker's UDP listeners: replies leave from it
  int backend = -1;        // index into the service's snapshot
  int fd = -1;             // connected to target
  uint16_t in_flight = 0;  // multishot recv + its cancel
  bool receiving = false;  // multishot recv armed on fd
  uint32_t responses = 0;  // datagrams from the backend
  // A send of several datagrams as one (UDP_SEGMENT) failed: the path MTU is
  // below them or the route cannot segment (IPsec); one datagram per send.
  bool no_gso = false;
  uint64_t datagrams_up = 0, bytes_up = 0, datagrams_down = 0, bytes_down = 0;
  int64_t start_ns = 0;
  int64_t last_active_ns = 0;
  const char* reason = "";  // why it ended, for the log
  net::SocketAddress client;
  net::SocketAddress target;
  // The address the client sent to, when the listener is a wildcard (from
  // IP_PKTINFO): replies must leave from it. Family 0: the listener's own.
  net::SocketAddress local;
  // What an ICMP port unreachable must quote to count against the backend.
  LastSent last_sent;
  admission::Admission::Pass pass;  // its client's place under the service's limits
  Session* prev = nullptr;  // the service's LRU list, oldest first
  Session* next = nullptr;
};

// SessionTable owns a worker's UDP sessions: found by (service, client address)
// for each datagram, ordered per service by last activity so idle expiry and
// eviction start at the oldest, slots reused with a new generation so a late
// CQE of a freed session is recognised.
//
// Thread safety: none; one per worker thread.
class SessionTable {
 public:
  explicit SessionTable(size_t services) : lru_(services) {}

  Session* Find(uint16_t service, const net::SocketAddress& client) const;
  // A live session at the young end of the service's list; Find() finds it.
  Session* Create(uint16_t service, const net::SocketAddress& client, int64_t now_ns);
  // Activity: to the young end.
  void Touch(Session& s, int64_t now_ns);
  // The service's least recently active live session, or null.
  Session* Oldest(uint16_t service) const { return lru_[service].head; }
  // Live -> closing: no longer found or listed; the slot stays until Free().
  void Unlink(Session& s);
  void Free(Session& s);
  // The session in `slot` if it still has `generation` and is not free.
  Session* FindSlot(uint32_t slot, uint32_t generation) const;

  size_t live(uint16_t service) const { return lru_[service].count; }
  // Sessions not yet freed (live or closing), all services.
  size_t allocated() const { return slots_.size() - free_.size(); }
  template <typename Fn>
  void ForEachLive(Fn&& fn) {
    for (const auto& s : slots_) {
      if (s->state == Session::State::kLive) fn(*s);
    }
  }

 private:
  struct Key {
    std::array<uint8_t, 16> ip;
    uint16_t port;
    uint16_t service;
    friend bool operator==(const Key& a, const Key& b) {
      return a.ip == b.ip && a.port == b.port && a.service == b.service;
    }
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.ip, k.port, k.service);
    }
  };
  struct List {
    Session* head = nullptr;
    Session* tail = nullptr;
    size_t count = 0;
  };
  static Key KeyOf(uint16_t service, const net::SocketAddress& client);
  void Append(Session& s);
  void Remove(Session& s);

  std::vector<std::unique_ptr<Session>> slots_;
  std::vector<uint32_t> free_;
  absl::flat_hash_map<Key, uint32_t> by_client_;  // live sessions -> slot
  std::vector<List> lru_;                         // per service
};

}  // namespace l4lb::udp
