#include "l4lb/admin/actions.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

#include "l4lb/admission/cidr.h"
#include "nlohmann/json.hpp"

namespace l4lb::admin {
namespace {

using Answer = Actions::Answer;

Answer Error(int status, absl::string_view message) {
  return {status, nlohmann::json{{"error", std::string(message)}}.dump()};
}

nlohmann::json BackendJson(const std::string& service, const backend::BackendSnapshot& snapshot,
                           size_t i) {
  return {{"service", service},
          {"backend", snapshot.backends()[i].name},
          {"state", BackendStateName(snapshot, i)},
          {"admin", backend::AdminStateName(snapshot.admin(i))},
          {"healthy", snapshot.healthy(i)},
          {"weight", snapshot.backends()[i].weight}};
}

}  // namespace

const char* BackendStateName(const backend::BackendSnapshot& snapshot, size_t backend) {
  switch (snapshot.admin(backend)) {
    case backend::AdminState::kMaint:
      return "MAINT";
    case backend::AdminState::kDrain:
      return "DRAIN";
    case backend::AdminState::kReady:
      break;
  }
  return snapshot.healthy(backend) ? "UP" : "DOWN";
}

Actions::Actions(std::vector<Target> services, MonotonicNs now_ns)
    : services_(std::move(services)), now_ns_(std::move(now_ns)) {}

std::vector<const Actions::Target*> Actions::Services(absl::string_view name,
                                                      Answer* answer) const {
  std::vector<const Target*> out;
  for (const Target& t : services_) {
    if (name.empty() || t.name == name) out.push_back(&t);
  }
  if (out.empty()) *answer = Error(404, absl::StrCat("no service \"", name, "\""));
  return out;
}

void Actions::Retarget(std::vector<Target> services) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  services_ = std::move(services);
  const int64_t now = now_ns_();
  std::erase_if(bans_, [now](const BanRecord& b) { return b.until_ns <= now; });
  for (const BanRecord& b : bans_) {
    for (const Target& t : services_) {
      if (b.service.empty() || b.service == t.name) {
        t.admission->Ban(b.client, absl::Nanoseconds(b.until_ns - now), now);
      }
    }
  }
}

Answer Actions::OnBackend(absl::string_view service, absl::string_view backend,
                          absl::string_view verb, absl::string_view value) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  Answer answer;
  if (service.empty()) return Error(404, "no service \"\"");
  const std::vector<const Target*> targets = Services(service, &answer);
  if (targets.empty()) return answer;
  backend::ServiceControl& control = *targets[0]->control;
  absl::StatusOr<size_t> index = control.Find(backend);
  if (!index.ok()) {
    return Error(404, absl::StrCat(index.status().message(), " in service \"", service, "\""));
  }
  std::shared_ptr<const backend::BackendSnapshot> now;
  if (verb == "drain") {
    now = control.SetAdmin(*index, backend::AdminState::kDrain);
  } else if (verb == "maint") {
    now = control.SetAdmin(*index, backend::AdminState::kMaint);
  } else if (verb == "enable") {
    now = control.SetAdmin(*index, backend::AdminState::kReady);
  } else if (verb == "weight") {
    uint32_t weight = 0;
    if (value.empty() || !absl::SimpleAtoi(value, &weight)) {
      return Error(400, absl::StrCat("weight: value=\"", value, "\": want ?value=N, N in 1..",
                                     backend::kMaxWeight));
    }
    absl::StatusOr<std::shared_ptr<const backend::BackendSnapshot>> set =
        control.SetWeight(*index, weight);
    if (!set.ok()) return Error(400, set.status().message());
    now = *set;
  } else {
    return Error(400, absl::StrCat("\"", verb, "\": want drain, maint, enable or weight"));
  }
  return {200, BackendJson(targets[0]->name, *now, *index).dump()};
}

Answer Actions::Ban(absl::string_view address, absl::string_view time,
                    absl::string_view service) const {
  absl::StatusOr<admission::Cidr> cidr = admission::ParseCidr(address);
  if (!cidr.ok() || (cidr->length != 128)) {
    return Error(400, absl::StrCat("\"", address, "\": want one client address"));
  }
  absl::Duration duration = absl::Minutes(10);
  if (!time.empty() && (!absl::ParseDuration(time, &duration) || duration <= absl::ZeroDuration() ||
                        duration > absl::Hours(24 * 365))) {
    return Error(400, absl::StrCat("time=\"", time, "\": want a duration like 10m or 1h"));
  }
  // The writer lock: the ban is recorded as it is set (a reload in between
  // would miss it).
  std::unique_lock<std::shared_mutex> lock(mu_);
  Answer answer;
  const std::vector<const Target*> targets = Services(service, &answer);
  if (targets.empty()) return answer;
  nlohmann::json names = nlohmann::json::array();
  const int64_t now = now_ns_();
  std::erase_if(bans_, [&](const BanRecord& b) {
    return b.until_ns <= now || (b.client == cidr->address && b.service == service);
  });
  bans_.push_back({.client = cidr->address,
                   .service = std::string(service),
                   .until_ns = now + absl::ToInt64Nanoseconds(duration)});
  for (const Target* t : targets) {
    t->admission->Ban(cidr->address, duration, now);
    names.push_back(t->name);
  }
  return {200, nlohmann::json{{"address", cidr->ToString()},
                              {"banned", true},
                              {"seconds", absl::ToDoubleSeconds(duration)},
                              {"services", names}}
                   .dump()};
}

Answer Actions::Unban(absl::string_view address, absl::string_view service) const {
  absl::StatusOr<admission::Cidr> cidr = admission::ParseCidr(address);
  if (!cidr.ok() || cidr->length != 128) {
    return Error(400, absl::StrCat("\"", address, "\": want one client address"));
  }
  std::unique_lock<std::shared_mutex> lock(mu_);
  Answer answer;
  const std::vector<const Target*> targets = Services(service, &answer);
  if (targets.empty()) return answer;
  // Lifted here, lifted for good: a reload must not set it again. A ban on
  // every service lifted from one stays on the others.
  std::vector<BanRecord> kept;
  for (BanRecord& b : bans_) {
    if (b.client != cidr->address) {
      kept.push_back(std::move(b));
    } else if (!service.empty() && b.service.empty()) {
      for (const Target& t : services_) {
        if (t.name != service) kept.push_back({b.client, t.name, b.until_ns});
      }
    } else if (!service.empty() && b.service != service) {
      kept.push_back(std::move(b));
    }
  }
  bans_ = std::move(kept);
  nlohmann::json lifted = nlohmann::json::array();
  for (const Target* t : targets) {
    if (t->admission->Unban(cidr->address, now_ns_())) lifted.push_back(t->name);
  }
  return {200,
          nlohmann::json{{"address", cidr->ToString()}, {"banned", false}, {"lifted_in", lifted}}
              .dump()};
}

}  // namespace l4lb::admin
