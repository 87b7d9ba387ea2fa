#include "l4lb/announce/announcer.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace l4lb::announce {

absl::StatusOr<std::unique_ptr<Announcer>> Announcer::Create(const Options& options) {
  if (!options.inherit) {
    if (absl::Status st = RemoveRoute(options.vip); !st.ok()) return st;
  }
  if (absl::Status st = AddVip(options.vip); !st.ok()) return st;
  return std::unique_ptr<Announcer>(new Announcer(options));
}

Announcer::~Announcer() {
  if (handed_over_) {
    LOG(INFO) << "announce: " << VipText(options_.vip) << " stays: the next process announces it";
    return;
  }
  if (announced_) {
    if (absl::Status st = RemoveRoute(options_.vip); !st.ok()) {
      LOG(ERROR) << "announce: " << st.message() << "; remove it by hand";
    } else {
      LOG(INFO) << "announce: withdrew " << VipText(options_.vip) << " at exit";
    }
  }
  if (absl::Status st = RemoveVip(options_.vip); !st.ok()) {
    LOG(WARNING) << "announce: " << st.message();
  }
}

bool Announcer::Ready(const admin::View& view, std::string* waiting_for) {
  for (const admin::ServiceView& s : view.services) {
    if (s.backends.empty()) continue;  // an SNI front without default backends
    bool up = false;
    for (const admin::BackendView& b : s.backends) {
      if (b.state == admin::BackendState::kMaint) continue;
      if (b.health.probed && b.health.passed + b.health.failed == 0) {
        *waiting_for = absl::StrCat("service ", s.name, ": backend ", b.name, " not checked yet");
        return false;
      }
      up = up || b.state == admin::BackendState::kUp;
    }
    if (!up) {
      *waiting_for = absl::StrCat("service ", s.name, ": no backend UP");
      return false;
    }
  }
  return true;
}

absl::Status Announcer::Announce() {
  if (announced_) return absl::OkStatus();
  if (absl::Status st = AddRoute(options_.vip); !st.ok()) return st;
  announced_ = true;
  LOG(INFO) << "announce: route to " << VipText(options_.vip) << " added in table "
            << options_.vip.table
            << ": listeners bound, backends checked; the routing daemon announces it";
  return absl::OkStatus();
}

void Announcer::Withdraw(const std::function<bool()>& interrupted) {
  if (!announced_) return;
  if (absl::Status st = RemoveRoute(options_.vip); !st.ok()) {
    // Still announced: the drain goes on, but the router keeps sending clients
    // that will be refused. Someone must act.
    LOG(ERROR) << "announce: " << st.message();
    return;
  }
  announced_ = false;
  LOG(INFO) << "announce: route to " << VipText(options_.vip) << " removed; accepting for "
            << options_.withdraw_delay << " more while the router converges";
  const absl::Time until = absl::Now() + options_.withdraw_delay;
  while (absl::Now() < until) {
    if (interrupted()) {
      LOG(INFO) << "second signal: not waiting for the withdrawal";
      return;
    }
  }
}

}  // namespace l4lb::announce
