#include "l4lb/admin/connections.h"

#include <nlohmann/json.hpp>

namespace l4lb::admin {

std::string RenderConnections(const ConnectionsView& view) {
  using nlohmann::json;
  json list = json::array();
  for (const stats::LiveConnection& c : view.connections) {
    list.push_back({
        {"service", c.service < view.services.size() ? view.services[c.service] : "?"},
        {"client", c.client},
        {"backend", c.backend.empty() ? json(nullptr) : json(c.backend)},
        {"state", c.state},
        {"age_seconds", absl::ToDoubleSeconds(c.age)},
        {"bytes_up", c.bytes_up},
        {"bytes_down", c.bytes_down},
    });
  }
  const json out = {{"truncated", view.truncated},
                    {"workers_silent", view.workers_silent},
                    {"connections", std::move(list)}};
  return out.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace l4lb::admin
