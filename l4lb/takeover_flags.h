#pragma once

// --takeover and --takeover_timeout: a live upgrade (README "Live upgrade"),
// binary-only like main.cc. The same flag on every start:
//
//   l4lb --config=/etc/l4lb/l4lb.toml --takeover=/run/l4lb/takeover.sock
//
// takes everything over from the l4lb listening at that path, if one is (its
// listeners, then its established connections, with their bytes in flight),
// and then listens there itself for the next upgrade.

#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"

#include "l4lb/reload/reloader.h"
#include "l4lb/server.h"
#include "l4lb/takeover/donor.h"
#include "l4lb/takeover/taker.h"

namespace l4lb {

struct TakeoverStart {
  std::optional<takeover::Taker> taker;  // a running l4lb was found
  std::vector<Server::InheritedListener> inherited;
};

// Before anything is bound: with --takeover and an l4lb at that path, its
// Hello answered and its listeners in hand; else an empty start. Errors are
// "--takeover: ..." (a bad flag, or the running l4lb refused: the wire version,
// its --threads).
absl::StatusOr<TakeoverStart> TakeoverFromFlags(int threads);

// After the config started on the inherited sockets (accepts held): takes the
// running l4lb's connections, places them in this config (one it cannot place,
// a service or backend this config lacks, is cut: reset both ways, and
// logged), acknowledges, then relays them and accepts. An error before the
// acknowledgement leaves everything with the running l4lb: exit then.
absl::Status CompleteTakeover(TakeoverStart& start, reload::Reloader& reloader);

// The donor for the next upgrade (nullptr without --takeover).
absl::StatusOr<std::unique_ptr<takeover::Donor>> DonorFromFlags(reload::Reloader& reloader,
                                                                 int threads);

}  // namespace l4lb
