#include "l4lb/dns_flags.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gflags/gflags.h"

#include "l4lb/command_line.h"
#include "l4lb/dns/servers.h"

DEFINE_string(dns_refresh, "30s",
              "Backends given by host name (--backends=ftp1.farm.internal:21) are resolved "
              "again this often, or when their DNS record's TTL runs out if that is sooner "
              "(at most once a second). Other addresses take effect like a reload: kept ones "
              "keep health and connections, removed ones drain. A failure keeps the last "
              "good addresses.");
DEFINE_string(dns_servers, "",
              "DNS servers that backend host names are resolved with, comma-separated "
              "IP[:PORT] (port 53 by default), e.g. 127.0.0.1:5353 for a split-horizon "
              "resolver. Empty: those of /etc/resolv.conf. /etc/hosts is read first.");

namespace l4lb {
namespace {

constexpr const char* kFlags[] = {"dns_refresh", "dns_servers"};

}  // namespace

absl::Span<const char* const> DnsServiceFlags() { return kFlags; }

absl::Status DnsFlagsInto(Server::Service* service) {
  absl::StatusOr<absl::Duration> refresh = DurationFromFlag("dns_refresh", FLAGS_dns_refresh);
  if (!refresh.ok()) return refresh.status();
  if (*refresh <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--dns_refresh: must be above 0");
  }
  service->dns_refresh = *refresh;
  absl::StatusOr<std::vector<net::SocketAddress>> servers = dns::ParseServerList(FLAGS_dns_servers);
  if (!servers.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--dns_servers: ", servers.status().message()));
  }
  service->dns_servers = *std::move(servers);
  for (backend::BackendSpec& b : service->backends) {
    if (!b.resolved()) b.origin = "--backends";
  }
  return absl::OkStatus();
}

}  // namespace l4lb
