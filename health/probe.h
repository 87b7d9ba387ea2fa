#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "l4lb/net/address.h"

namespace l4lb::health {

// What a health probe does against one backend (--health_check and friends).
struct ProbeSpec {
  enum class Kind : uint8_t {
    kNone,        // no probing: every backend is up
    kTcp,         // the connect succeeds
    kSendExpect,  // optional bytes out, then the reply starts with `expect`
    kFtp,         // a "220" greeting, then QUIT
    kSsh,         // an "SSH-2.0-" (or "SSH-1.99-") banner, then our own, then close
    kHttp,        // GET `http_path`, the status is in `http_statuses`
    // UDP (a datagram each way; ICMP port unreachable fails at once):
    kUdp,  // `send` out, the reply starts with `expect` (empty: any reply)
    kDns,  // a query for "." NS; any reply with our id counts (REFUSED too: it answers)
  };
  bool udp() const { return kind == Kind::kUdp || kind == Kind::kDns; }
  Kind kind = Kind::kTcp;
  std::string send;    // kSendExpect: written after connect (may be empty)
  std::string expect;  // kSendExpect: the reply's first bytes
  std::string http_path = "/";
  std::string http_host;                         // Host header; empty: the backend address
  std::vector<char> http_statuses = {'2', '3'};  // first digits accepted
  uint16_t port = 0;                             // probe this port; 0: the traffic port
};

// "none", "tcp", "send_expect", "ftp", "ssh", "http", "udp", "dns".
absl::StatusOr<ProbeSpec::Kind> ParseProbeKind(absl::string_view text);
const char* ProbeKindName(ProbeSpec::Kind kind);
// "2xx,3xx" -> {'2','3'}: the status classes an HTTP probe accepts.
absl::StatusOr<std::vector<char>> ParseHttpStatuses(absl::string_view text);
// C-style escapes in --health_send/--health_expect: \r \n \t \\ \xHH.
absl::StatusOr<std::string> Unescape(absl::string_view text);

// Probe is one check of one backend in flight: a nonblocking socket the health
// checker polls, stepped by OnReady() until done(). It never blocks, so one
// thread checks every backend at once.
//
// Thread safety: none; owned by the health checker thread.
class Probe {
 public:
  enum class Phase : uint8_t { kConnecting, kSending, kReading, kDone };

  // Starts connecting to `target`. A socket error is a finished, failed probe.
  Probe(const ProbeSpec& spec, const net::SocketAddress& target);
  ~Probe();
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;

  int fd() const { return fd_; }
  // poll(2) events to wait for; 0 once done.
  short events() const;
  // Steps the probe after poll reported `revents` on fd().
  void OnReady(short revents);
  // Ends a probe that ran out of time: failed, "timeout while <phase>".
  void TimeOut();

  bool done() const { return phase_ == Phase::kDone; }
  bool ok() const { return ok_; }
  // Why it failed, for the UP/DOWN log line: "connect: Connection refused",
  // "bad banner: got \"HTTP/1.1 400\", want \"SSH-2.0-\"", "timeout while reading".
  const std::string& reason() const { return reason_; }

 private:
  void Connected();
  void SendMore();
  void ReadMore();
  // Judges what was read so far: true when the probe is finished.
  bool Judge(bool eof);
  // UDP kinds: one datagram is the whole reply.
  void JudgeDatagram();
  void Finish(bool ok, std::string reason);
  void SendFarewell(absl::string_view bytes);

  const ProbeSpec spec_;  // a copy: callers pass temporaries, and it is small
  std::string target_;
  int fd_ = -1;
  Phase phase_ = Phase::kConnecting;
  std::string out_;  // bytes still to send
  std::string in_;   // reply read so far
  bool ok_ = false;
  std::string reason_;
  uint16_t dns_id_ = 0;
};

}  // namespace l4lb::health
