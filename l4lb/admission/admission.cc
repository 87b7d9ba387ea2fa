#include "l4lb/admission/admission.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

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

absl::StatusOr<uint64_t> ParseBandwidth(absl::string_view text) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": ", why));
  };
  absl::string_view number = text;
  if (absl::ConsumeSuffix(&number, "/s")) {
  } else if (number.find('/') != absl::string_view::npos) {
    return bad("bytes per second: the unit after / must be s");
  }
  // Longest suffixes first: "MiB" before "B".
  static constexpr std::pair<absl::string_view, double> kUnits[] = {
      {"KiB", 1024.0}, {"MiB", 1024.0 * 1024}, {"GiB", 1024.0 * 1024 * 1024},
      {"KB", 1e3},     {"MB", 1e6},            {"GB", 1e9},
      {"K", 1e3},      {"M", 1e6},             {"G", 1e9},
      {"B", 1.0}};
  double scale = 1;
  for (const auto& [unit, factor] : kUnits) {
    if (absl::ConsumeSuffix(&number, unit)) {
      scale = factor;
      break;
    }
  }
  double count = 0;
  // SimpleAtod skips blanks; "10 MiB" would be a flag the shell split.
  if (number.find(' ') != absl::string_view::npos || !absl::SimpleAtod(number, &count) ||
      !(count > 0)) {
    return bad("want bytes per second like 10MiB/s, 500KB/s or 1000000");
  }
  const double bytes = count * scale;
  // Below a page a second a flow would stall for seconds on every segment; above
  // 100 GiB/s it is no bound at all (a typo).
  if (bytes < 4096 || bytes > 100.0 * 1024 * 1024 * 1024) {
    return bad("want 4KiB/s to 100GiB/s");
  }
  return static_cast<uint64_t>(bytes);
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
  if (open()) return Refusal::kNone;
  if (acl_.Decide(client) == Acl::Decision::kDeny) return Refusal::kDenied;
  if (!limits_.active()) {
    if (admin_bans_.load(std::memory_order_relaxed) && limits_.Banned(client, now_ns)) {
      return Refusal::kBanned;
    }
  } else {
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

void Admission::Ban(const std::array<uint8_t, 16>& client, absl::Duration duration,
                    int64_t now_ns) {
  limits_.Ban(client, duration, now_ns);
  admin_bans_.store(true, std::memory_order_relaxed);
}

bool Admission::Unban(const std::array<uint8_t, 16>& client, int64_t now_ns) {
  const bool banned = limits_.Banned(client, now_ns);
  limits_.Unban(client);
  return banned;
}

void Admission::Leave(const std::array<uint8_t, 16>& client, Pass& pass) {
  limits_.Release(client, pass.ticket);
  if (pass.counted) live_.fetch_sub(1, std::memory_order_relaxed);
  pass = Pass{};
}

}  // namespace l4lb::admission
