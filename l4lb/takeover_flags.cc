#include "l4lb/takeover_flags.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

#include "l4lb/command_line.h"
#include "l4lb/net/socket.h"
#include "l4lb/version.h"

DEFINE_string(takeover, "",
              "Live upgrade: a unix socket path (e.g. /run/l4lb/takeover.sock). At start, take "
              "over everything from the l4lb listening there, if one is: its listening sockets "
              "and its established TCP connections with the bytes in flight (none is dropped, "
              "no connect is refused); then listen there for the next upgrade. The same flag "
              "on every start.");
DEFINE_string(takeover_timeout, "30s",
              "--takeover: how long either side waits for each step of the other (and the "
              "running l4lb for its connections still connecting to start relaying)");

namespace l4lb {
namespace {

absl::Status FlagError(absl::string_view message) {
  absl::ConsumePrefix(&message, "takeover: ");  // the library's own prefix: the flag says it
  return absl::InvalidArgumentError(absl::StrCat("--takeover: ", message));
}

absl::StatusOr<absl::Duration> Timeout() {
  absl::StatusOr<absl::Duration> t = DurationFromFlag("takeover_timeout", FLAGS_takeover_timeout);
  if (!t.ok()) return t.status();
  if (*t <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--takeover_timeout: must be positive");
  }
  return t;
}

// A test's hook: the new process stalls this long before its Ack, so that a
// test can kill it in the middle of a takeover (tests/takeover_e2e_test.py).
absl::Duration StallBeforeAck() {
  const char* value = getenv("L4LB_TEST_TAKEOVER_STALL_BEFORE_ACK_MS");
  int ms = 0;
  if (value == nullptr || !absl::SimpleAtoi(value, &ms) || ms <= 0) return absl::ZeroDuration();
  return absl::Milliseconds(ms);
}

}  // namespace

absl::StatusOr<TakeoverStart> TakeoverFromFlags(int threads) {
  TakeoverStart start;
  absl::StatusOr<absl::Duration> timeout = Timeout();
  if (!timeout.ok()) return timeout.status();
  if (FLAGS_takeover.empty()) {
    if (!gflags::GetCommandLineFlagInfoOrDie("takeover_timeout").is_default) {
      return absl::InvalidArgumentError("--takeover_timeout: needs --takeover");
    }
    return start;
  }
  absl::StatusOr<std::optional<takeover::Taker>> taker =
      takeover::Taker::Connect(FLAGS_takeover, *timeout, std::string(Version()));
  if (!taker.ok()) return FlagError(taker.status().message());
  if (!taker->has_value()) {
    // This process will listen there once it serves: a directory it cannot
    // write is an error now, before anything is bound.
    const size_t slash = FLAGS_takeover.rfind('/');
    const std::string dir = slash == std::string::npos ? "."
                            : slash == 0               ? "/"
                                                       : FLAGS_takeover.substr(0, slash);
    if (access(dir.c_str(), W_OK | X_OK) != 0) {
      return FlagError(absl::StrCat(FLAGS_takeover, ": cannot create the socket in ", dir, ": ",
                                    strerror(errno)));
    }
    LOG(INFO) << "takeover: no l4lb listens at " << FLAGS_takeover << "; starting afresh";
    return start;
  }
  if ((*taker)->workers() != static_cast<uint32_t>(threads)) {
    return FlagError(absl::StrCat("the running l4lb has ", (*taker)->workers(),
                                  " worker thread(s), this one ", threads,
                                  ": start it with --threads=", (*taker)->workers()));
  }
  for (takeover::Taker::Incoming& in : (*taker)->listeners()) {
    absl::StatusOr<net::SocketAddress> requested = net::SocketAddress::Parse(in.listener.requested);
    absl::StatusOr<net::SocketAddress> bound = net::SocketAddress::Parse(in.listener.bound);
    if (!requested.ok() || !bound.ok()) {
      return FlagError(absl::StrCat("the running l4lb sent listener \"", in.listener.bound,
                                    "\", which this one cannot read"));
    }
    start.inherited.push_back(Server::InheritedListener{.udp = in.listener.udp,
                                                        .requested = *requested,
                                                        .bound = *bound,
                                                        .per_worker = std::move(in.fds)});
  }
  LOG(INFO) << "takeover: the l4lb at " << FLAGS_takeover << " handed over "
            << start.inherited.size() << " listener(s)";
  start.taker = *std::move(taker);
  return start;
}

absl::Status CompleteTakeover(TakeoverStart& start, reload::Reloader& reloader) {
  if (!start.taker) return absl::OkStatus();
  const absl::Time begin = absl::Now();
  absl::StatusOr<std::vector<takeover::Taker::Incoming>> incoming = start.taker->TakeConnections();
  if (!incoming.ok()) return incoming.status();
  Server& server = reloader.running();
  std::vector<std::vector<Worker::Adoption>> per_worker(server.options().threads);
  std::vector<std::vector<Worker::UdpAdoption>> sessions_per_worker(server.options().threads);
  size_t cut = 0, with_bytes = 0, sessions = 0, udp_total = 0;
  uint64_t parked = 0;
  for (takeover::Taker::Incoming& in : *incoming) {
    if (in.udp) {
      ++udp_total;
      size_t worker = 0;
      absl::StatusOr<Worker::UdpAdoption> a = server.PlaceUdp(in.udp_session, &in.fds, &worker);
      if (a.ok()) {
        sessions_per_worker[worker].push_back(*std::move(a));
        ++sessions;
      } else {
        // Nothing to cut: its client's next datagram starts a session here.
        LOG_EVERY_T(WARNING, 1.0) << "takeover: dropping a UDP session of "
                                  << in.udp_session.client << ": " << a.status().message();
      }
      continue;
    }
    const uint64_t bytes = uint64_t{in.connection.up.pipe_bytes} + in.connection.down.pipe_bytes;
    with_bytes += bytes > 0;
    parked += bytes;
    size_t worker = 0;
    absl::StatusOr<Worker::Adoption> a = server.Place(in.connection, &in.fds, &worker);
    if (a.ok()) {
      per_worker[worker].push_back(*std::move(a));
      continue;
    }
    // This config cannot relay it: cut, as a reload does once its drain timeout
    // has passed. SO_LINGER 0 is the socket's: the last close (the running
    // l4lb's, after the Ack) resets both sides.
    ++cut;
    LOG_EVERY_T(WARNING, 1.0) << "takeover: cutting a connection of " << in.connection.client
                              << ": " << a.status().message();
    for (size_t i = 0; i < in.fds.size() && i < 2; ++i) net::SetResetOnClose(in.fds[i].get());
  }
  if (const absl::Duration stall = StallBeforeAck(); stall > absl::ZeroDuration()) {
    LOG(WARNING) << "takeover: stalling " << stall << " before the Ack (test hook)";
    absl::SleepFor(stall);
  }
  if (absl::Status st = start.taker->Ack(incoming->size()); !st.ok()) return st;
  server.Adopt(std::move(per_worker), std::move(sessions_per_worker));
  server.ReleaseAccepts();
  LOG(INFO) << "takeover: took over " << incoming->size() - udp_total - cut << " connection(s) ("
            << cut << " cut) and " << sessions << " UDP session(s), " << with_bytes << " with " << parked << " bytes in flight in their pipes, in "
            << absl::FormatDuration(absl::Now() - begin);
  start.taker.reset();
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<takeover::Donor>> DonorFromFlags(reload::Reloader& reloader,
                                                                 int threads) {
  if (FLAGS_takeover.empty()) return nullptr;
  absl::StatusOr<absl::Duration> timeout = Timeout();
  if (!timeout.ok()) return timeout.status();
  takeover::Donor::Options options;
  options.path = FLAGS_takeover;
  options.workers = static_cast<uint32_t>(threads);
  options.build = std::string(Version());
  options.timeout = *timeout;
  options.hooks.listeners = [&reloader] {
    std::vector<takeover::Donor::ListenerFds> out;
    for (const Server::TakeoverListener& l : reloader.TakeoverListeners()) {
      out.push_back({.record = {.service = l.service,
                                .udp = l.udp,
                                .requested = l.requested.ToString(),
                                .bound = l.bound.ToString(),
                                .workers = static_cast<uint32_t>(l.fds.size())},
                     .fds = l.fds});
    }
    return out;
  };
  options.hooks.begin_export = [&reloader](takeover::Outbox* out) { reloader.BeginExport(out); };
  options.hooks.end_export = [&reloader](bool handed) { reloader.EndExport(handed); };
  absl::StatusOr<std::unique_ptr<takeover::Donor>> donor = takeover::Donor::Start(std::move(options));
  if (!donor.ok()) return FlagError(donor.status().message());
  LOG(INFO) << "takeover: the next l4lb can take over at " << FLAGS_takeover;
  return donor;
}

}  // namespace l4lb
