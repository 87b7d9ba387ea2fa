#include "l4lb/service_loop.h"

#include <signal.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "glog/logging.h"

namespace l4lb {
namespace {

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

sigset_t ServiceSignals() {
  sigset_t set = StopSignals();
  sigaddset(&set, SIGHUP);
  return set;
}

}  // namespace

void BlockServiceSignals() {
  const sigset_t signals = ServiceSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

void NotifyServiceManager(const std::string& state) {
  if (const int r = sd_notify(/*unset_environment=*/0, state.c_str()); r < 0) {
    LOG(WARNING) << "sd_notify " << absl::StrReplaceAll(state, {{"\n", " "}}) << ": "
                 << strerror(-r);
  }
}

void ServeUntilStopped(reload::Reloader& reloader, absl::Duration drain_timeout) {
  const sigset_t signals = ServiceSignals();
  // Retire() runs between signals: a replaced config's fds and threads go as
  // soon as its last connection does.
  const timespec retire_interval = absl::ToTimespec(absl::Milliseconds(100));
  int signal_number = 0;
  for (;;) {
    signal_number = sigtimedwait(&signals, nullptr, &retire_interval);
    reloader.Retire();
    if (signal_number == SIGHUP) {
      const reload::Reloader::Result result = reloader.Reload();
      if (result.status.ok()) {
        NotifyServiceManager(absl::StrCat("STATUS=serving ", result.services, " service(s) on ",
                                          result.listeners, " listener(s), generation ",
                                          result.generation));
      }
    } else if (signal_number > 0) {
      break;  // SIGTERM or SIGINT
    }
  }
  LOG(INFO) << strsignal(signal_number) << ": draining, up to " << drain_timeout;
  NotifyServiceManager(
      absl::StrCat("STOPPING=1\nSTATUS=draining, up to ", absl::FormatDuration(drain_timeout)));
  reloader.StopAccepting();
  const absl::Time deadline = absl::Now() + drain_timeout;
  const sigset_t stop_signals = StopSignals();
  const timespec poll_interval = absl::ToTimespec(absl::Milliseconds(50));
  while (!reloader.Drained() && absl::Now() < deadline) {
    if (sigtimedwait(&stop_signals, nullptr, &poll_interval) > 0) {
      LOG(INFO) << "second signal: cutting live connections now";
      break;
    }
  }
  reloader.ForceCloseAndJoin();
}

}  // namespace l4lb
