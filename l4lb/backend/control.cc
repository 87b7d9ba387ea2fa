#include "l4lb/backend/control.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

#include "l4lb/clock/monotonic.h"

namespace l4lb::backend {
namespace {

// Ramps are timed on CLOCK_MONOTONIC: a wall-clock step must not end or stall one.
absl::Time MonotonicNow() { return absl::UnixEpoch() + absl::Nanoseconds(MonotonicNanos()); }

}  // namespace

ServiceControl::ServiceControl(SnapshotPublisher* publisher, BackendSnapshot::Options options,
                               Ramp ramp)
    : publisher_(publisher),
      options_(options),
      slow_start_(ramp.duration),
      service_(std::move(ramp.service)),
      clock_(ramp.clock ? std::move(ramp.clock) : MonotonicNow) {}

std::shared_ptr<const BackendSnapshot> ServiceControl::SetHealth(const std::vector<bool>& healthy) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::shared_ptr<const BackendSnapshot> current = publisher_->Current();
  const absl::Time now = clock_();
  UpdateRamps(*current, healthy, current->admin_states(), now);
  return PublishLocked(*current, current->backends(), healthy, current->admin_states(), now);
}

absl::StatusOr<size_t> ServiceControl::Find(absl::string_view name) const {
  const std::shared_ptr<const BackendSnapshot> current = publisher_->Current();
  const std::vector<BackendSpec>& backends = current->backends();
  for (size_t i = 0; i < backends.size(); ++i) {
    if (backends[i].name == name) return i;
  }
  return absl::NotFoundError(absl::StrCat("no backend \"", name, "\""));
}

std::shared_ptr<const BackendSnapshot> ServiceControl::SetAdmin(size_t backend, AdminState state) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::shared_ptr<const BackendSnapshot> current = publisher_->Current();
  std::vector<AdminState> admin = current->admin_states();
  if (backend >= admin.size() || admin[backend] == state) return current;
  admin[backend] = state;
  const absl::Time now = clock_();
  UpdateRamps(*current, current->health(), admin, now);
  return PublishLocked(*current, current->backends(), current->health(), admin, now);
}

absl::StatusOr<std::shared_ptr<const BackendSnapshot>> ServiceControl::SetWeight(size_t backend,
                                                                                 uint32_t weight) {
  if (weight < 1 || weight > kMaxWeight) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight ", weight, ": want 1..", kMaxWeight, " (to stop new clients: drain)"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  const std::shared_ptr<const BackendSnapshot> current = publisher_->Current();
  std::vector<BackendSpec> backends = current->backends();
  if (backend >= backends.size()) return absl::NotFoundError("no such backend");
  if (backends[backend].weight == weight) return current;
  backends[backend].weight = weight;
  return PublishLocked(*current, std::move(backends), current->health(), current->admin_states(),
                       clock_());
}

absl::Duration ServiceControl::Tick() {
  if (!slow_start_.enabled()) return absl::InfiniteDuration();
  std::lock_guard<std::mutex> lock(mu_);
  if (std::none_of(ramp_since_.begin(), ramp_since_.end(),
                   [](const std::optional<absl::Time>& t) { return t.has_value(); })) {
    return absl::InfiniteDuration();
  }
  const std::shared_ptr<const BackendSnapshot> current = publisher_->Current();
  const absl::Time now = clock_();
  PublishLocked(*current, current->backends(), current->health(), current->admin_states(), now);
  absl::Duration next = absl::InfiniteDuration();
  for (const std::optional<absl::Time>& since : ramp_since_) {
    if (since) next = std::min(next, *since + slow_start_.NextStepAt(now - *since) - now);
  }
  return std::max(next, absl::ZeroDuration());
}

std::vector<std::optional<absl::Time>> ServiceControl::RampsSince() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::optional<absl::Time>> out = ramp_since_;
  out.resize(publisher_->Current()->backends().size());
  return out;
}

void ServiceControl::StartRamps(const std::vector<std::optional<absl::Time>>& since) {
  if (!slow_start_.enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  const std::shared_ptr<const BackendSnapshot> current = publisher_->Current();
  ramp_since_.assign(current->backends().size(), std::nullopt);
  const absl::Time now = clock_();
  for (size_t i = 0; i < since.size() && i < ramp_since_.size(); ++i) {
    // Only a backend that takes clients ramps; the others start when they do.
    if (!since[i] || !current->healthy(i) || current->admin(i) == AdminState::kMaint) continue;
    ramp_since_[i] = since[i];
    LOG(INFO) << "backend " << current->backends()[i].name << " (" << service_
              << "): slow start, all of its weight in "
              << absl::FormatDuration(
                     std::max(absl::ZeroDuration(), *since[i] + slow_start_.duration() - now));
  }
  PublishLocked(*current, current->backends(), current->health(), current->admin_states(), now);
}

void ServiceControl::UpdateRamps(const BackendSnapshot& before, const std::vector<bool>& healthy,
                                 const std::vector<AdminState>& admin, absl::Time now) {
  if (!slow_start_.enabled()) return;
  ramp_since_.resize(before.backends().size());
  for (size_t i = 0; i < ramp_since_.size() && i < healthy.size() && i < admin.size(); ++i) {
    const bool takes = healthy[i] && admin[i] != AdminState::kMaint;
    if (!takes) {
      ramp_since_[i].reset();  // DOWN or MAINT: the next return ramps afresh
      continue;
    }
    const bool took = before.healthy(i) && before.admin(i) != AdminState::kMaint;
    if (took) continue;
    ramp_since_[i] = now;
    LOG(INFO) << "backend " << before.backends()[i].name << " (" << service_
              << "): slow start, 10% of its weight, all of it in "
              << absl::FormatDuration(slow_start_.duration());
  }
}

std::vector<int> ServiceControl::Steps(absl::Time now) {
  std::vector<int> steps(publisher_->Current()->backends().size(), SlowStart::kSteps);
  for (size_t i = 0; i < ramp_since_.size() && i < steps.size(); ++i) {
    if (!ramp_since_[i]) continue;
    steps[i] = slow_start_.Step(now - *ramp_since_[i]);
    if (steps[i] == SlowStart::kSteps) {
      ramp_since_[i].reset();
      LOG(INFO) << "backend " << publisher_->Current()->backends()[i].name << " (" << service_
                << "): slow start over, all of its weight";
    }
  }
  return steps;
}

std::shared_ptr<const BackendSnapshot> ServiceControl::PublishLocked(
    const BackendSnapshot& current, std::vector<BackendSpec> backends,
    const std::vector<bool>& healthy, const std::vector<AdminState>& admin, absl::Time now) {
  std::vector<uint32_t> weights = SlowStart::TableWeights(backends, Steps(now));
  bool rebuild = weights != current.table_weights();
  for (size_t i = 0; !rebuild && i < backends.size(); ++i) {
    rebuild = backends[i].weight != current.backends()[i].weight;
  }
  std::shared_ptr<const BackendSnapshot> next;
  if (rebuild) {
    // Build() fails only on what Server::Create checked (table size, weights).
    absl::StatusOr<std::shared_ptr<const BackendSnapshot>> built =
        BackendSnapshot::Build(std::move(backends), healthy, options_, std::move(weights));
    CHECK(built.ok()) << built.status();
    next = (*built)->WithAdmin(admin);
  } else if (healthy != current.health() || admin != current.admin_states()) {
    next = current.WithHealth(healthy)->WithAdmin(admin);
  } else {
    return publisher_->Current();  // nothing changed: nothing published
  }
  publisher_->Publish(next);
  return next;
}

}  // namespace l4lb::backend
