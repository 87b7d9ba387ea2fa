#include "l4lb/admin_flags.h"

#include "absl/strings/str_cat.h"
#include "gflags/gflags.h"

#include "l4lb/admin/auth.h"

DEFINE_string(admin, "",
              "Serve the admin endpoint on ADDRESS:PORT (e.g. 127.0.0.1:9100): GET / (the "
              "status page, for a browser), GET /metrics (Prometheus), GET /status (JSON). Off "
              "when empty. Its own threads, never a "
              "worker's. Off loopback it needs --admin_token_file (or --admin_allow_no_token).");
DEFINE_string(admin_token_file, "",
              "A file holding the admin endpoint's token (one word, read at start-up): every "
              "request must then send \"Authorization: Bearer TOKEN\", else 401 (the status page "
              "opens as /?token=TOKEN).");
DEFINE_bool(admin_allow_no_token, false,
            "Let --admin listen on a non-loopback address without --admin_token_file: anyone "
            "who reaches it may read it. Only when the network in front of it is trusted.");

namespace l4lb {

absl::StatusOr<std::optional<admin::AdminServer::Options>> AdminFromFlags(
    std::optional<admin::AdminServer::Options> from_config) {
  const bool flags_set = !FLAGS_admin.empty() || !FLAGS_admin_token_file.empty() ||
                         FLAGS_admin_allow_no_token;
  if (from_config) {
    if (flags_set) {
      return absl::InvalidArgumentError(
          "--admin: the config file has an [admin] table; set the endpoint in one place");
    }
    return from_config;
  }
  if (FLAGS_admin.empty()) {
    if (flags_set) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", FLAGS_admin_token_file.empty() ? "admin_allow_no_token" : "admin_token_file",
          ": only with --admin=ADDRESS:PORT"));
    }
    return std::nullopt;
  }
  absl::StatusOr<net::SocketAddress> listen = net::SocketAddress::Parse(FLAGS_admin);
  if (!listen.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--admin: ", listen.status().message(), ", e.g. 127.0.0.1:9100"));
  }
  admin::AdminServer::Options options{.listen = *listen, .token = ""};
  if (!FLAGS_admin_token_file.empty()) {
    absl::StatusOr<std::string> token = admin::ReadToken(FLAGS_admin_token_file);
    if (!token.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--admin_token_file: ", token.status().message()));
    }
    options.token = *std::move(token);
  }
  if (absl::Status exposed =
          admin::CheckExposure(*listen, !options.token.empty(), FLAGS_admin_allow_no_token);
      !exposed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--admin: ", exposed.message()));
  }
  return options;
}

}  // namespace l4lb
