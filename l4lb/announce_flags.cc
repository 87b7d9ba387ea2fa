#include "l4lb/announce_flags.h"

#include "absl/strings/str_cat.h"
#include "gflags/gflags.h"

#include "l4lb/command_line.h"

DEFINE_string(announce, "",
              "ADDRESS/PREFIX[,dev=NAME][,table=N] (e.g. 192.0.2.10/32; dev lo, table 200 by "
              "default): put the address on the interface at start-up, and a route to it in "
              "routing table N (which no rule consults) once every listener is bound and every "
              "backend has had its first health check (one UP per service); remove the route "
              "when a drain starts, --withdraw_delay before accepting stops. A routing daemon "
              "(BIRD protocol kernel with learn, FRR ip import-table) announces the service "
              "address exactly while the route exists. Both go at exit. Needs CAP_NET_ADMIN. "
              "Empty: off.");

DEFINE_string(withdraw_delay, "2s",
              "With --announce: after removing the address at the start of a drain, go on "
              "accepting this long (the routing daemon withdraws, the router converges), then "
              "stop accepting. A second signal skips the rest of it.");

namespace l4lb {

absl::StatusOr<std::unique_ptr<announce::Announcer>> AnnouncerFromFlags(bool inherit) {
  const bool delay_set = !gflags::GetCommandLineFlagInfoOrDie("withdraw_delay").is_default;
  if (FLAGS_announce.empty()) {
    if (delay_set) return absl::InvalidArgumentError("--withdraw_delay: needs --announce");
    return nullptr;
  }
  absl::StatusOr<announce::Vip> vip = announce::ParseVip(FLAGS_announce);
  if (!vip.ok())
    return absl::InvalidArgumentError(absl::StrCat("--announce: ", vip.status().message()));
  absl::StatusOr<absl::Duration> delay = DurationFromFlag("withdraw_delay", FLAGS_withdraw_delay);
  if (!delay.ok()) return delay.status();
  absl::StatusOr<std::unique_ptr<announce::Announcer>> announcer =
      announce::Announcer::Create({.vip = *vip, .withdraw_delay = *delay, .inherit = inherit});
  if (!announcer.ok()) {
    return absl::Status(announcer.status().code(),
                        absl::StrCat("--announce: ", announcer.status().message()));
  }
  return announcer;
}

}  // namespace l4lb
