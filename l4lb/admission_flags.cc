#include "l4lb/admission_flags.h"

#include <sys/resource.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

#include "l4lb/admission/cidr.h"

DEFINE_string(allow, "",
              "Comma-separated CIDRs (10.0.0.0/8, 2001:db8::/32, or an address) that may "
              "connect; empty: everyone. --deny wins.");
DEFINE_string(deny, "", "Comma-separated CIDRs refused at accept (UDP: datagrams dropped).");
DEFINE_string(allow_file, "", "A file of CIDRs, one a line, # comments: added to --allow.");
DEFINE_string(deny_file, "", "A file of CIDRs, one a line, # comments: added to --deny.");
DEFINE_uint32(max_connections, 0,
              "Live TCP connections the process accepts at most; past it new clients are "
              "refused (close=limited). 0: what the open-files limit allows.");
DEFINE_uint32(client_max_connections, 0,
              "Live connections (UDP: sessions) one client may hold; 0: no bound.");
DEFINE_string(client_rate, "",
              "New connections one client may open, as a token bucket: 20/s, 600/m, 3600/h; "
              "empty: no bound.");
DEFINE_uint32(client_burst, 0, "Token bucket size for --client_rate (0: the rate per second).");
DEFINE_int32(client_prefix_v4, 32,
             "Clients are counted by this IPv4 prefix (24: a /24 is one client).");
DEFINE_int32(client_prefix_v6, 128, "Clients are counted by this IPv6 prefix (64 is common).");
DEFINE_uint32(ban_after, 0,
              "Ban a client after this many refusals by --client_rate within --ban_window; "
              "0: never.");
DEFINE_string(ban_window, "10s", "The window --ban_after counts refusals in.");
DEFINE_string(ban_time, "10m", "How long a ban lasts; banned clients are refused at accept.");
DEFINE_string(client_bandwidth, "",
              "Bytes per second each way for all of one client's connections together: "
              "10MiB/s, 500KB/s (tcp; still zero-copy: each splice reads less); empty: no bound.");
DEFINE_string(send_proxy, "off",
              "PROXY protocol header sent to backends before any client byte: v1, v2 or off "
              "(the backend must expect it: nginx proxy_protocol, HAProxy accept-proxy, "
              "ProFTPD mod_proxy_protocol).");
DEFINE_string(accept_proxy_from, "",
              "Comma-separated CIDRs of upstream balancers that must start each connection "
              "with a PROXY v1/v2 header; its client address is then the client.");
DEFINE_string(proxy_timeout, "3s",
              "How long a peer in --accept_proxy_from may take to send "
              "its whole PROXY header.");
DEFINE_uint32(client_table_size, 100000,
              "Clients whose limits are tracked at once (least recently seen go first; "
              "bans last).");

namespace l4lb {
namespace {

constexpr const char* kServiceFlags[] = {"allow",
                                         "deny",
                                         "allow_file",
                                         "deny_file",
                                         "client_max_connections",
                                         "client_rate",
                                         "client_burst",
                                         "client_prefix_v4",
                                         "client_prefix_v6",
                                         "ban_after",
                                         "ban_window",
                                         "ban_time",
                                         "client_table_size",
                                         "client_bandwidth",
                                         "send_proxy",
                                         "accept_proxy_from",
                                         "proxy_timeout"};

bool Set(const char* flag) { return !gflags::GetCommandLineFlagInfoOrDie(flag).is_default; }

absl::Status FlagError(absl::string_view flag, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", message));
}

absl::Status AddCidrs(const char* flag, const std::string& list,
                      std::vector<admission::Cidr>* out) {
  absl::StatusOr<std::vector<admission::Cidr>> cidrs = admission::ParseCidrList(list);
  if (!cidrs.ok()) return FlagError(flag, cidrs.status().message());
  out->insert(out->end(), cidrs->begin(), cidrs->end());
  return absl::OkStatus();
}

absl::Status AddCidrFile(const char* flag, const std::string& path,
                         std::vector<admission::Cidr>* out) {
  if (path.empty()) return absl::OkStatus();
  absl::StatusOr<std::vector<admission::Cidr>> cidrs = admission::LoadCidrFile(path);
  if (!cidrs.ok()) return FlagError(flag, cidrs.status().message());
  out->insert(out->end(), cidrs->begin(), cidrs->end());
  return absl::OkStatus();
}

absl::Status Duration(const char* flag, const std::string& text, absl::Duration* out) {
  if (!absl::ParseDuration(text, out) || *out <= absl::ZeroDuration() ||
      *out == absl::InfiniteDuration()) {
    return FlagError(flag, absl::StrCat("\"", text, "\": want a duration above 0 like 10s or 10m"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Span<const char* const> AdmissionServiceFlags() { return kServiceFlags; }

uint32_t MaxConnectionsFromFlag(uint64_t reserved_fds, bool udp_services) {
  rlimit limit{};
  const uint64_t open_files = getrlimit(RLIMIT_NOFILE, &limit) == 0 ? limit.rlim_cur : 1024;
  const uint32_t budget = admission::ConnectionBudget(open_files, reserved_fds, udp_services);
  const uint32_t bound = FLAGS_max_connections > 0 ? FLAGS_max_connections : budget;
  if (FLAGS_max_connections > budget) {
    LOG(WARNING) << "--max_connections=" << FLAGS_max_connections << " is above the " << budget
                 << " the open-files limit (" << open_files
                 << ") covers: accepts may meet EMFILE (then they pause and retry)";
  }
  LOG(INFO) << "at most " << bound << " live TCP connections ("
            << (FLAGS_max_connections > 0 ? "--max_connections" : "from the open-files limit")
            << "); past it new clients are refused (close=limited)";
  return bound;
}

absl::StatusOr<admission::AdmissionOptions> AdmissionFromFlags() {
  admission::AdmissionOptions out;
  if (absl::Status s = AddCidrs("allow", FLAGS_allow, &out.allow); !s.ok()) return s;
  if (absl::Status s = AddCidrs("deny", FLAGS_deny, &out.deny); !s.ok()) return s;
  if (absl::Status s = AddCidrFile("allow_file", FLAGS_allow_file, &out.allow); !s.ok()) return s;
  if (absl::Status s = AddCidrFile("deny_file", FLAGS_deny_file, &out.deny); !s.ok()) return s;
  admission::ClientLimits::Options& client = out.client;
  client.max_connections = FLAGS_client_max_connections;
  if (!FLAGS_client_rate.empty()) {
    absl::StatusOr<double> rate = admission::ParseRate(FLAGS_client_rate);
    if (!rate.ok()) return FlagError("client_rate", rate.status().message());
    client.rate = *rate;
  }
  if (Set("client_burst")) {
    if (client.rate == 0) return FlagError("client_burst", "needs --client_rate");
    if (FLAGS_client_burst == 0) return FlagError("client_burst", "must be at least 1");
    client.burst = FLAGS_client_burst;
  }
  if (FLAGS_client_prefix_v4 < 0 || FLAGS_client_prefix_v4 > 32) {
    return FlagError("client_prefix_v4", absl::StrCat(FLAGS_client_prefix_v4, ": want 0..32"));
  }
  if (FLAGS_client_prefix_v6 < 0 || FLAGS_client_prefix_v6 > 128) {
    return FlagError("client_prefix_v6", absl::StrCat(FLAGS_client_prefix_v6, ": want 0..128"));
  }
  client.prefix_v4 = FLAGS_client_prefix_v4;
  client.prefix_v6 = FLAGS_client_prefix_v6;
  client.ban_after = FLAGS_ban_after;
  if (client.ban_after > 0 && client.rate == 0) {
    return FlagError("ban_after", "needs --client_rate (bans count refusals by the rate)");
  }
  for (const char* flag : {"ban_window", "ban_time"}) {
    if (Set(flag) && client.ban_after == 0) return FlagError(flag, "needs --ban_after");
  }
  if (absl::Status s = Duration("ban_window", FLAGS_ban_window, &client.ban_window); !s.ok()) {
    return s;
  }
  if (absl::Status s = Duration("ban_time", FLAGS_ban_time, &client.ban_time); !s.ok()) return s;
  if (FLAGS_client_table_size < 16) {
    return FlagError("client_table_size",
                     absl::StrCat(FLAGS_client_table_size, ": want 16 or more"));
  }
  client.max_clients = FLAGS_client_table_size;
  if (!FLAGS_client_bandwidth.empty()) {
    absl::StatusOr<uint64_t> bandwidth = admission::ParseBandwidth(FLAGS_client_bandwidth);
    if (!bandwidth.ok()) return FlagError("client_bandwidth", bandwidth.status().message());
    client.bandwidth = *bandwidth;
  }
  if (FLAGS_send_proxy == "v1") {
    out.send_proxy = admission::AdmissionOptions::SendProxy::kV1;
  } else if (FLAGS_send_proxy == "v2") {
    out.send_proxy = admission::AdmissionOptions::SendProxy::kV2;
  } else if (FLAGS_send_proxy != "off") {
    return FlagError("send_proxy", absl::StrCat("\"", FLAGS_send_proxy, "\": want v1, v2 or off"));
  }
  if (absl::Status s =
          AddCidrs("accept_proxy_from", FLAGS_accept_proxy_from, &out.accept_proxy_from);
      !s.ok()) {
    return s;
  }
  if (Set("proxy_timeout") && out.accept_proxy_from.empty()) {
    return FlagError("proxy_timeout", "needs --accept_proxy_from");
  }
  if (absl::Status s = Duration("proxy_timeout", FLAGS_proxy_timeout, &out.proxy_timeout);
      !s.ok()) {
    return s;
  }
  return out;
}

}  // namespace l4lb
