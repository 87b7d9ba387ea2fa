#include "l4lb/backend/control.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace l4lb::backend {

std::shared_ptr<const BackendSnapshot> ServiceControl::SetHealth(const std::vector<bool>& healthy) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<const BackendSnapshot> next = publisher_->Current()->WithHealth(healthy);
  publisher_->Publish(next);
  return next;
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
  std::shared_ptr<const BackendSnapshot> next = current->WithAdmin(admin);
  publisher_->Publish(next);
  return next;
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
  absl::StatusOr<std::shared_ptr<const BackendSnapshot>> built =
      BackendSnapshot::Build(std::move(backends), current->health(), options_);
  if (!built.ok()) return built.status();
  std::shared_ptr<const BackendSnapshot> next = (*built)->WithAdmin(current->admin_states());
  publisher_->Publish(next);
  return next;
}

}  // namespace l4lb::backend
