#include "l4lb/relay/connection.h"

#include "l4lb/ring/tag.h"

namespace l4lb::relay {

const char* CloseReasonName(CloseReason reason) {
  switch (reason) {
    case CloseReason::kNone:
      return "none";
    case CloseReason::kDone:
      return "done";
    case CloseReason::kClientReset:
      return "client_reset";
    case CloseReason::kBackendReset:
      return "backend_reset";
    case CloseReason::kIdleTimeout:
      return "idle_timeout";
    case CloseReason::kFinTimeout:
      return "fin_timeout";
    case CloseReason::kClientTimeout:
      return "client_timeout";
    case CloseReason::kBackendTimeout:
      return "backend_timeout";
    case CloseReason::kConnectFailed:
      return "connect_failed";
    case CloseReason::kNoBackend:
      return "no_backend";
    case CloseReason::kDrain:
      return "drain";
    case CloseReason::kError:
      return "error";
    case CloseReason::kBackendDown:
      return "backend_down";
    case CloseReason::kDenied:
      return "denied";
    case CloseReason::kLimited:
      return "limited";
    case CloseReason::kBanned:
      return "banned";
    case CloseReason::kBadProxy:
      return "bad_proxy";
    case CloseReason::kBadTls:
      return "bad_tls";
    case CloseReason::kNoRoute:
      return "no_route";
  }
  return "unknown";
}

Connection* ConnectionTable::Alloc() {
  Connection* c;
  if (!free_.empty()) {
    c = slots_[free_.back()].get();
    free_.pop_back();
  } else {
    slots_.push_back(std::make_unique<Connection>());
    c = slots_.back().get();
    c->slot = static_cast<uint32_t>(slots_.size() - 1);
  }
  c->state = Connection::State::kConnecting;
  return c;
}

void ConnectionTable::Free(Connection* c) {
  const uint32_t slot = c->slot;
  const uint32_t generation = ring::NextGeneration(c->generation);
  *c = Connection{};
  c->slot = slot;
  c->generation = generation;
  free_.push_back(slot);
}

Connection* ConnectionTable::Find(uint32_t slot, uint32_t generation) const {
  if (slot >= slots_.size()) return nullptr;
  Connection* c = slots_[slot].get();
  if (c->state == Connection::State::kFree || c->generation != generation) return nullptr;
  return c;
}

void IdleList::Touch(Connection& c, int64_t now_ns) {
  (c.*links_).last_ns = now_ns;
  if (tail_ == &c) return;
  Remove(c);
  (c.*links_).prev = tail_;
  if (tail_ != nullptr) (tail_->*links_).next = &c;
  tail_ = &c;
  if (head_ == nullptr) head_ = &c;
}

void IdleList::Remove(Connection& c) {
  if (!Contains(c)) return;
  IdleLinks& l = c.*links_;
  if (l.prev != nullptr) (l.prev->*links_).next = l.next;
  if (l.next != nullptr) (l.next->*links_).prev = l.prev;
  if (head_ == &c) head_ = l.next;
  if (tail_ == &c) tail_ = l.prev;
  l.prev = l.next = nullptr;
}

}  // namespace l4lb::relay
