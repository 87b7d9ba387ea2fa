#include "l4lb/udp/session_bound.h"

#include <sys/resource.h>

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"

#include "l4lb/net/socket.h"

namespace l4lb::udp {

SessionBound DeriveSessionBound(const SessionBoundInputs& in) {
  const uint64_t shares =
      uint64_t{std::max<uint32_t>(1, in.workers)} * std::max<uint32_t>(1, in.udp_services);
  uint64_t fds = in.open_files > in.reserved_fds ? in.open_files - in.reserved_fds : 0;
  if (in.tcp_services) fds /= 2;
  constexpr uint64_t kMax = std::numeric_limits<uint32_t>::max();
  SessionBound bound;
  bound.by_fds = static_cast<uint32_t>(std::min(kMax, fds / shares));
  bound.by_ports = in.local_ports == 0 ? static_cast<uint32_t>(kMax)
                                       : static_cast<uint32_t>(in.local_ports / shares);
  return bound;
}

absl::Status ReadHostLimits(SessionBoundInputs& in) {
  rlimit limit{};
  in.open_files = getrlimit(RLIMIT_NOFILE, &limit) == 0 ? limit.rlim_cur : 0;
  const absl::StatusOr<net::PortRange> range = net::LocalPortRange();
  in.local_ports = range.ok() ? range->size() : 0;
  return range.status();
}

uint32_t SessionBound::Apply(uint32_t configured) const {
  return std::max<uint32_t>(1, std::min({configured, by_fds, by_ports}));
}

std::string SessionBound::ToString(const SessionBoundInputs& in) const {
  return absl::StrCat(
      "open-files limit ", in.open_files, " -> ", by_fds, ", local ports ",
      in.local_ports == 0 ? std::string("unknown") : absl::StrCat(in.local_ports, " -> ", by_ports),
      " per worker and service (", in.workers, " worker(s), ", in.udp_services, " udp service(s)",
      in.tcp_services ? ", half the fds kept for TCP" : "", ")");
}

}  // namespace l4lb::udp
