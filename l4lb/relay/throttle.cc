#include "l4lb/relay/throttle.h"

namespace l4lb::relay {

uint64_t Throttle::Refill(admission::ClientLimits& limits, Connection& c, bool up, int64_t now_ns) {
  Flow& flow = up ? c.up : c.down;
  if (flow.read_budget() == 0) {
    flow.AddReadBudget(
        limits.Grant(c.client.IpBytes16(), up ? 0 : 1, limits.grant_bytes(), now_ns));
  }
  return flow.read_budget();
}

void Throttle::Park(Connection& c, int64_t now_ns) {
  if (c.throttled) return;
  c.throttled = true;
  if (parked_.empty()) due_ns_ = now_ns + kRetryNs;
  parked_.emplace_back(c.slot, c.generation);
}

std::vector<std::pair<uint32_t, uint32_t>> Throttle::TakeAll(ConnectionTable& connections) {
  std::vector<std::pair<uint32_t, uint32_t>> taken;
  taken.swap(parked_);
  for (const auto& [slot, generation] : taken) {
    if (Connection* c = connections.Find(slot, generation)) c->throttled = false;
  }
  return taken;
}

}  // namespace l4lb::relay
