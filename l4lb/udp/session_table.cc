#include "l4lb/udp/session_table.h"

#include "l4lb/ring/tag.h"

namespace l4lb::udp {

SessionTable::Key SessionTable::KeyOf(uint16_t service, const net::SocketAddress& client) {
  return Key{.ip = client.IpBytes16(), .port = client.port(), .service = service};
}

Session* SessionTable::Find(uint16_t service, const net::SocketAddress& client) const {
  auto it = by_client_.find(KeyOf(service, client));
  return it == by_client_.end() ? nullptr : slots_[it->second].get();
}

Session* SessionTable::Create(uint16_t service, const net::SocketAddress& client, int64_t now_ns) {
  Session* s;
  if (!free_.empty()) {
    s = slots_[free_.back()].get();
    free_.pop_back();
  } else {
    slots_.push_back(std::make_unique<Session>());
    s = slots_.back().get();
    s->slot = static_cast<uint32_t>(slots_.size() - 1);
  }
  s->state = Session::State::kLive;
  s->service = service;
  s->client = client;
  s->start_ns = s->last_active_ns = now_ns;
  by_client_[KeyOf(service, client)] = s->slot;
  Append(*s);
  return s;
}

void SessionTable::Touch(Session& s, int64_t now_ns) {
  s.last_active_ns = now_ns;
  if (lru_[s.service].tail == &s) return;
  Remove(s);
  Append(s);
}

void SessionTable::Unlink(Session& s) {
  if (s.state != Session::State::kLive) return;
  by_client_.erase(KeyOf(s.service, s.client));
  Remove(s);
  s.state = Session::State::kClosing;
}

void SessionTable::Free(Session& s) {
  Unlink(s);
  const uint32_t slot = s.slot;
  const uint32_t generation = ring::NextGeneration(s.generation);
  s = Session{};
  s.slot = slot;
  s.generation = generation;
  free_.push_back(slot);
}

Session* SessionTable::FindSlot(uint32_t slot, uint32_t generation) const {
  if (slot >= slots_.size()) return nullptr;
  Session* s = slots_[slot].get();
  if (s->state == Session::State::kFree || s->generation != generation) return nullptr;
  return s;
}

void SessionTable::Append(Session& s) {
  List& l = lru_[s.service];
  s.prev = l.tail;
  s.next = nullptr;
  (l.tail ? l.tail->next : l.head) = &s;
  l.tail = &s;
  ++l.count;
}

void SessionTable::Remove(Session& s) {
  List& l = lru_[s.service];
  (s.prev ? s.prev->next : l.head) = s.next;
  (s.next ? s.next->prev : l.tail) = s.prev;
  s.prev = s.next = nullptr;
  --l.count;
}

}  // namespace l4lb::udp
