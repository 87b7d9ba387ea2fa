#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"

#include "l4lb/admission/admission.h"
#include "l4lb/backend/control.h"

namespace l4lb::admin {

// The admin API's actions (POST only; admin_server.cc routes them here):
//   POST /services/NAME/backends/ADDRESS/drain    no new clients; pinned ones and
//                                                 live connections go on
//   POST /services/NAME/backends/ADDRESS/maint    no clients at all; checks paused
//   POST /services/NAME/backends/ADDRESS/enable   back to taking clients
//   POST /services/NAME/backends/ADDRESS/weight?value=N
//   POST /bans/ADDRESS?time=DURATION[&service=NAME]   refused at accept until then
//   DELETE /bans/ADDRESS[?service=NAME]
// Each answers with the new state as JSON, a bad request with 400 (404 for an
// unknown service or backend) and {"error": "..."} saying why. Nothing here
// touches a worker: changes are published like health changes
// (backend::ServiceControl) or land in the services' gates (admission::Admission).
//
// After a reload, Retarget() points them at the new config's services; the
// bans set here are set again there (the gates are new), for what is left of
// their time.
//
// Thread safety: any thread (the controls and gates are thread-safe; the
// targets are read under a shared lock, which Retarget() takes exclusively).
class Actions {
 public:
  // One service as the actions see it; pointers not owned.
  struct Target {
    std::string name;  // the service's name, or its first listen address
    backend::ServiceControl* control = nullptr;
    admission::Admission* admission = nullptr;
  };
  struct Answer {
    int status = 200;
    std::string json;
  };
  using MonotonicNs = std::function<int64_t()>;

  Actions(std::vector<Target> services, MonotonicNs now_ns);

  // `verb`: drain, maint, enable or weight (`value`: the weight's text).
  Answer OnBackend(absl::string_view service, absl::string_view backend, absl::string_view verb,
                   absl::string_view value) const;
  // `time`: a duration ("10m", "1h"); empty: 10m. `service` empty: every service.
  Answer Ban(absl::string_view address, absl::string_view time, absl::string_view service) const;
  Answer Unban(absl::string_view address, absl::string_view service) const;

  // A reload: the next config's services. The old targets may be freed once
  // this returns (no action holds them then).
  void Retarget(std::vector<Target> services);

 private:
  // A ban set through the API, kept until it expires so that a reload can set
  // it again in the next config's gates.
  struct BanRecord {
    std::array<uint8_t, 16> client{};
    std::string service;  // "": every service
    int64_t until_ns = 0;
  };

  // The services `name` means (all when empty); empty and *answer set if unknown.
  std::vector<const Target*> Services(absl::string_view name, Answer* answer) const
     ;

  mutable std::shared_mutex mu_;
  std::vector<Target> services_ ABSL_GUARDED_BY(mu_);
  mutable std::vector<BanRecord> bans_ ABSL_GUARDED_BY(mu_);  // written under the writer lock
  MonotonicNs now_ns_;
};

// What operators see for a backend: "DRAIN" and "MAINT" (set by hand) win over
// the health checks' "UP" / "DOWN".
const char* BackendStateName(const backend::BackendSnapshot& snapshot, size_t backend);

}  // namespace l4lb::admin
