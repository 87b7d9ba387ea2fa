#pragma once

// How l4lb runs as a service (binary-only, like main.cc): the signals it takes,
// what it tells systemd, and the loop between start-up and exit.

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

#include "l4lb/announce/announcer.h"
#include "l4lb/reload/reloader.h"
#include "l4lb/server.h"
#include "l4lb/takeover/donor.h"

namespace l4lb {

// Blocks SIGTERM, SIGINT, SIGHUP and SIGUSR2 in the calling thread and every thread it
// starts afterwards (so main alone takes them, with sigwait), and ignores
// SIGPIPE (a write to a closed peer is an error code, not a reason to die).
// Call before any thread starts.
void BlockServiceSignals();

// After start-up and each reload: one log line per listener, and
// `ready_file` (if not empty) rewritten as FILE.tmp then renamed, one line per
// listener ("tcp 127.0.0.1:9000", "udp [::1]:53"): readers never see half a
// list. DataLoss: the ready file could not be written.
absl::Status AnnounceListeners(const Server& running, const std::string& ready_file);

// Tells systemd (Type=notify, dist/systemd/l4lb.service) what l4lb is doing:
// "READY=1" once every listener is bound and the workers run, "STATUS=..."
// after a reload, "STOPPING=1" when the drain starts. Not run by systemd
// ($NOTIFY_SOCKET unset), sd_notify returns at once.
void NotifyServiceManager(const std::string& state);

// Serves until SIGTERM or SIGINT: SIGHUP reloads the config in this process
// (reload/reloader.h), SIGUSR2 (systemctl reload) starts the binary on disk to
// take over (upgrade.h; needs a `donor`), and a few times a second configs replaced by a reload
// that have drained are freed. Then every config stops accepting, live
// connections get up to `drain_timeout` (a second signal cuts them at once),
// and what is left is cut. With an `announcer` (--announce; may be null) the VIP
// is added once the running config is Ready() (checked a few times a second
// until then), and the drain starts by removing it and accepting for
// withdraw_delay more. With a `donor` (--takeover; may be null), a live
// upgrade that took everything ends the loop like a signal, but the VIP stays
// (the next process announces it) and what is left here (connections that
// were closing or flushing, UDP sessions) drains.
void ServeUntilStopped(reload::Reloader& reloader, absl::Duration drain_timeout,
                       announce::Announcer* announcer, takeover::Donor* donor = nullptr);

}  // namespace l4lb
