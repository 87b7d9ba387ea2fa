#pragma once

// The admin endpoint's flags (README "Operating l4lb"), binary-only like main.cc.

#include <optional>

#include "absl/status/statusor.h"

#include "l4lb/admin/admin_server.h"

namespace l4lb {

// --admin=ADDRESS:PORT, --admin_token_file, --admin_allow_no_token, or the
// config file's [admin] table (`from_config`, already checked by conf/); both at
// once is a mistake. nullopt: the endpoint is off. The token file is read here.
// An error's message is "--FLAG: what is wrong".
absl::StatusOr<std::optional<admin::AdminServer::Options>> AdminFromFlags(
    std::optional<admin::AdminServer::Options> from_config);

}  // namespace l4lb
