#include "l4lb/admission/admission.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace l4lb::admission {

absl::StatusOr<double> ParseRate(absl::string_view text) {
  const size_t slash = text.find('/');
  double count = 0;
  if (slash == absl::string_view::npos || !absl::SimpleAtod(text.substr(0, slash), &count) ||
      !(count > 0) || count > 1e9) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\": want a rate like 20/s, 600/m or 3600/h"));
  }
  const absl::string_view unit = text.substr(slash + 1);
  if (unit == "s") return count;
  if (unit == "m") return count / 60;
  if (unit == "h") return count / 3600;
  return absl::InvalidArgumentError(
      absl::StrCat("\"", text, "\": the unit after / must be s, m or h"));
}

uint32_t ConnectionBudget(uint64_t open_files, uint64_t reserved_fds, bool udp_services) {
  uint64_t fds = open_files > reserved_fds ? open_files - reserved_fds : 0;
  if (udp_services) fds /= 2;
  return static_cast<uint32_t>(std::min<uint64_t>(std::max<uint64_t>(fds / 3, 1), UINT32_MAX));
}

const char* RefusalName(Refusal refusal) {
  switch (refusal) {
    case Refusal::kNone:
      return "none";
    case Refusal::kDenied:
      return "denied";
    case Refusal::kLimited:
      return "limited";
    case Refusal::kBanned:
      return "banned";
  }
  return "unknown";
}

Admission::Admission(const AdmissionOptions& options)
    : acl_(options.allow, options.deny),
      proxy_from_(options.accept_proxy_from),
      proxy_timeout_(options.proxy_timeout),
      send_proxy_(options.send_proxy),
      max_connections_(options.max_connections),
      limits_(options.client),
      open_(acl_.allows_all() && options.max_connections == 0 && !limits_.active()) {}

Refusal Admission::Decide(const std::array<uint8_t, 16>& client, int64_t now_ns, Pass* pass) {
  *pass = Pass{};
  if (open_) return Refusal::kNone;
  if (acl_.Decide(client) == Acl::Decision::kDeny) return Refusal::kDenied;
  if (limits_.active()) {
    switch (limits_.Admit(client, now_ns, &pass->ticket)) {
      case ClientLimits::Verdict::kAdmit:
        break;
      case ClientLimits::Verdict::kLimited:
        return Refusal::kLimited;
      case ClientLimits::Verdict::kBanned:
        return Refusal::kBanned;
    }
  }
  if (max_connections_ > 0) {
    if (live_.fetch_add(1, std::memory_order_relaxed) >= max_connections_) {
      live_.fetch_sub(1, std::memory_order_relaxed);
      limits_.Release(client, pass->ticket);
      pass->ticket = {};
      return Refusal::kLimited;
    }
    pass->counted = true;
  }
  return Refusal::kNone;
}

void Admission::Leave(const std::array<uint8_t, 16>& client, Pass& pass) {
  limits_.Release(client, pass.ticket);
  if (pass.counted) live_.fetch_sub(1, std::memory_order_relaxed);
  pass = Pass{};
}

}  // namespace l4lb::admission
