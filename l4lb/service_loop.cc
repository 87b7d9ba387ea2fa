#include "l4lb/service_loop.h"

#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include <cerrno>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "glog/logging.h"

#include "l4lb/upgrade.h"

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
  sigaddset(&set, SIGUSR2);
  return set;
}

// SIGUSR2: the binary on disk takes over (upgrade.h). Its pid, while it runs
// and this process serves; 0 once it exited (a failed takeover: it said why
// in the log, and this process serves on).
pid_t StartSuccessor(takeover::Donor* donor, pid_t running) {
  if (running > 0) {
    LOG(WARNING) << "SIGUSR2: the next process (pid " << running << ") is still starting; ignored";
    return running;
  }
  if (donor == nullptr) {
    LOG(ERROR) << "SIGUSR2: a live upgrade needs --takeover=PATH; ignored";
    return 0;
  }
  absl::StatusOr<pid_t> pid = SpawnSuccessor();
  if (!pid.ok()) {
    LOG(ERROR) << "SIGUSR2: " << pid.status().message() << "; this process serves on";
    return 0;
  }
  LOG(INFO) << "SIGUSR2: started the next process (pid " << *pid << ") to take over";
  return *pid;
}

// The successor's exit, if it exited (without a takeover it was refused).
pid_t ReapSuccessor(pid_t pid) {
  if (pid <= 0) return 0;
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) != pid) return pid;
  LOG(ERROR) << "SIGUSR2: the next process (pid " << pid << ") "
             << (WIFEXITED(status) ? absl::StrCat("exited with ", WEXITSTATUS(status))
                                   : absl::StrCat("died of signal ", WTERMSIG(status)))
             << " before taking over; this process serves on";
  return 0;
}

}  // namespace

absl::Status AnnounceListeners(const Server& running, const std::string& ready_file) {
  std::string lines;
  for (const Server::BoundListener& l : running.listening()) {
    const char* protocol = l.udp ? "udp" : "tcp";
    LOG(INFO) << "listening on " << protocol << " " << l.address.ToString() << " for "
              << running.service_names()[l.service] << " with " << running.options().threads
              << " worker(s), " << running.options().services[l.service].backends.size()
              << " backend(s)";
    absl::StrAppend(&lines, protocol, " ", l.address.ToString(), "\n");
  }
  if (ready_file.empty()) return absl::OkStatus();
  const std::string tmp = ready_file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << lines;
    if (!out.good()) return absl::DataLossError(absl::ErrnoToStatus(errno, tmp).message());
  }
  if (rename(tmp.c_str(), ready_file.c_str()) != 0) {
    return absl::DataLossError(absl::ErrnoToStatus(errno, ready_file).message());
  }
  return absl::OkStatus();
}

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

// --announce: the VIP goes on once the running config can serve (each backend
// checked once); what it waits for is logged every 10 s meanwhile.
void AnnounceWhenReady(reload::Reloader& reloader, announce::Announcer& announcer,
                       absl::Time* next_log) {
  std::string waiting_for;
  if (!announce::Announcer::Ready(reloader.AdminView(), &waiting_for)) {
    if (absl::Now() >= *next_log) {
      LOG(INFO) << "announce: waiting before adding " << announce::VipText(announcer.options().vip)
                << ": " << waiting_for;
      *next_log = absl::Now() + absl::Seconds(10);
    }
    return;
  }
  if (absl::Status st = announcer.Announce(); !st.ok()) {
    LOG_EVERY_T(ERROR, 10.0) << "announce: " << st.message() << "; the routing daemon "
                             << "does not announce this instance";
  }
}

void ServeUntilStopped(reload::Reloader& reloader, absl::Duration drain_timeout,
                       announce::Announcer* announcer, takeover::Donor* donor) {
  const sigset_t signals = ServiceSignals();
  // Retire() runs between signals: a replaced config's fds and threads go as
  // soon as its last connection does.
  const timespec retire_interval = absl::ToTimespec(absl::Milliseconds(100));
  int signal_number = 0;
  pid_t successor = 0;
  absl::Time next_log = absl::Now() + absl::Seconds(10);
  for (;;) {
    if (announcer != nullptr && !announcer->announced()) {
      AnnounceWhenReady(reloader, *announcer, &next_log);
    }
    signal_number = sigtimedwait(&signals, nullptr, &retire_interval);
    reloader.Retire();
    if (donor != nullptr && donor->handed_over()) break;
    successor = ReapSuccessor(successor);
    if (signal_number == SIGUSR2) {
      successor = StartSuccessor(donor, successor);
    } else if (signal_number == SIGHUP) {
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
  const bool handed_over = donor != nullptr && donor->handed_over();
  if (handed_over) {
    LOG(INFO) << "takeover: the next process serves; draining what is left, up to "
              << drain_timeout;
    if (announcer != nullptr) announcer->HandOver();
  } else {
    LOG(INFO) << strsignal(signal_number) << ": draining, up to " << drain_timeout;
    NotifyServiceManager(
        absl::StrCat("STOPPING=1\nSTATUS=draining, up to ", absl::FormatDuration(drain_timeout)));
  }
  const sigset_t stop_signals = StopSignals();
  const timespec poll_interval = absl::ToTimespec(absl::Milliseconds(50));
  // The route goes first: while the router still sends new clients here, they
  // are accepted; only once it has moved them does this instance refuse any.
  if (announcer != nullptr && !handed_over) {
    announcer->Withdraw([&] { return sigtimedwait(&stop_signals, nullptr, &poll_interval) > 0; });
  }
  reloader.StopAccepting(handed_over);
  LOG(INFO) << "drain: stopped accepting; live connections go on";
  const absl::Time deadline = absl::Now() + drain_timeout;
  while (!reloader.Drained() && absl::Now() < deadline) {
    if (sigtimedwait(&stop_signals, nullptr, &poll_interval) > 0) {
      LOG(INFO) << "second signal: cutting live connections now";
      break;
    }
  }
  reloader.ForceCloseAndJoin();
}

}  // namespace l4lb
