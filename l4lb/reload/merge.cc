#include "l4lb/reload/merge.h"

#include <algorithm>
#include <utility>

namespace l4lb::reload {
namespace {

template <typename T>
T* Named(std::vector<T>& items, const std::string& name) {
  for (T& item : items) {
    if (item.name == name) return &item;
  }
  return nullptr;
}

}  // namespace

void AddCounters(admin::View& into, const admin::View& from, bool add_missing) {
  into.totals.Add(from.totals);
  for (const admin::ServiceView& fs : from.services) {
    admin::ServiceView* is = Named(into.services, fs.name);
    if (is == nullptr) {
      if (!add_missing) continue;
      is = &into.services.emplace_back();
      is->name = fs.name;
      is->protocol = fs.protocol;
    }
    is->counters.AddServiceOnly(fs.counters);
    for (const admin::BackendView& fb : fs.backends) {
      admin::BackendView* ib = Named(is->backends, fb.name);
      if (ib == nullptr) {
        if (!add_missing) continue;
        ib = &is->backends.emplace_back();
        ib->name = fb.name;
        ib->weight = fb.weight;
      }
      ib->counters.Add(fb.counters);
    }
  }
}

void ZeroGauges(admin::View& view) {
  view.totals.active = 0;
  for (admin::ServiceView& s : view.services) {
    s.counters.active = 0;
    for (admin::BackendView& b : s.backends) {
      b.counters.active = 0;
      b.counters.udp_active = 0;
    }
  }
}

void AddConnections(admin::ConnectionsView& into, admin::ConnectionsView from, size_t limit) {
  into.workers_silent += from.workers_silent;
  into.truncated |= from.truncated;
  std::vector<uint16_t> index(from.services.size());
  for (size_t i = 0; i < from.services.size(); ++i) {
    const auto at = std::find(into.services.begin(), into.services.end(), from.services[i]);
    index[i] = static_cast<uint16_t>(at - into.services.begin());
    if (at == into.services.end()) into.services.push_back(from.services[i]);
  }
  for (stats::LiveConnection& c : from.connections) {
    if (into.connections.size() >= limit) {
      into.truncated = true;
      break;
    }
    if (c.service < index.size()) c.service = index[c.service];
    into.connections.push_back(std::move(c));
  }
}

}  // namespace l4lb::reload
