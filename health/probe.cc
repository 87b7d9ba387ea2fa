#include "health/probe.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace l4lb::health {
namespace {

// A reply longer than this without a verdict is a wrong reply, not a slow one.
constexpr size_t kMaxReply = 1024;

// What the log shows of a peer's bytes: escaped and short.
std::string Shown(absl::string_view bytes) {
  const bool cut = bytes.size() > 48;
  return absl::StrCat("\"", absl::CHexEscape(bytes.substr(0, 48)), cut ? "...\"" : "\"");
}

const char* PhaseName(Probe::Phase phase) {
  switch (phase) {
    case Probe::Phase::kConnecting:
      return "connecting";
    case Probe::Phase::kSending:
      return "sending";
    case Probe::Phase::kReading:
      return "waiting for the reply";
    case Probe::Phase::kDone:
      return "done";
  }
  return "?";
}

// A standard query (RD clear) for the root's NS records: every DNS server
// answers it one way or another, without recursion.
std::string DnsQuery(uint16_t id) {
  std::string q(12, '\0');
  q[0] = static_cast<char>(id >> 8);
  q[1] = static_cast<char>(id & 0xFF);
  q[5] = 1;                                // QDCOUNT = 1
  q.push_back('\0');                       // QNAME: the root
  q.append({'\0', '\x02', '\0', '\x01'});  // QTYPE NS, QCLASS IN
  return q;
}

}  // namespace

absl::StatusOr<ProbeSpec::Kind> ParseProbeKind(absl::string_view text) {
  using Kind = ProbeSpec::Kind;
  for (Kind kind : {Kind::kNone, Kind::kTcp, Kind::kSendExpect, Kind::kFtp, Kind::kSsh, Kind::kHttp,
                    Kind::kUdp, Kind::kDns}) {
    if (text == ProbeKindName(kind)) return kind;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("\"", text, "\": want none, tcp, send_expect, ftp, ssh, http, udp or dns"));
}

const char* ProbeKindName(ProbeSpec::Kind kind) {
  switch (kind) {
    case ProbeSpec::Kind::kNone:
      return "none";
    case ProbeSpec::Kind::kTcp:
      return "tcp";
    case ProbeSpec::Kind::kSendExpect:
      return "send_expect";
    case ProbeSpec::Kind::kFtp:
      return "ftp";
    case ProbeSpec::Kind::kSsh:
      return "ssh";
    case ProbeSpec::Kind::kHttp:
      return "http";
    case ProbeSpec::Kind::kUdp:
      return "udp";
    case ProbeSpec::Kind::kDns:
      return "dns";
  }
  return "?";
}

absl::StatusOr<std::vector<char>> ParseHttpStatuses(absl::string_view text) {
  std::vector<char> out;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (item.size() != 3 || item[0] < '1' || item[0] > '5' ||
        absl::AsciiStrToLower(item.substr(1)) != "xx") {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", item, "\": want status classes like 2xx,3xx"));
    }
    out.push_back(item[0]);
  }
  return out;
}

absl::StatusOr<std::string> Unescape(absl::string_view text) {
  std::string out;
  std::string error;
  if (!absl::CUnescape(text, &out, &error)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": ", error));
  }
  return out;
}

Probe::Probe(const ProbeSpec& spec, const net::SocketAddress& target) : spec_(spec) {
  net::SocketAddress address = target;
  if (spec.port != 0) address.set_port(spec.port);
  target_ = address.ToString();
  fd_ = socket(address.family(),
               (spec.udp() ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    Finish(false, absl::StrCat("socket: ", strerror(errno)));
    return;
  }
  if (connect(fd_, address.sockaddr_ptr(), address.sockaddr_len()) == 0) {
    Connected();
  } else if (errno != EINPROGRESS) {
    Finish(false, absl::StrCat("connect: ", strerror(errno)));
  }
}

Probe::~Probe() {
  if (fd_ >= 0) close(fd_);
}

short Probe::events() const {
  switch (phase_) {
    case Phase::kConnecting:
    case Phase::kSending:
      return POLLOUT;
    case Phase::kReading:
      return POLLIN;
    case Phase::kDone:
      return 0;
  }
  return 0;
}

void Probe::OnReady(short revents) {
  switch (phase_) {
    case Phase::kConnecting: {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return Finish(false, absl::StrCat("connect: ", strerror(err)));
      if (revents & (POLLERR | POLLHUP)) return Finish(false, "connect: connection failed");
      return Connected();
    }
    case Phase::kSending:
      return SendMore();
    case Phase::kReading:
      return ReadMore();
    case Phase::kDone:
      return;
  }
}

void Probe::TimeOut() {
  if (done()) return;
  std::string reason = absl::StrCat("timeout while ", PhaseName(phase_));
  if (!in_.empty()) absl::StrAppend(&reason, " (got ", Shown(in_), ")");
  Finish(false, std::move(reason));
}

void Probe::Connected() {
  switch (spec_.kind) {
    case ProbeSpec::Kind::kNone:
    case ProbeSpec::Kind::kTcp:
      return Finish(true, "");
    case ProbeSpec::Kind::kSendExpect:
      out_ = spec_.send;
      if (out_.empty() && spec_.expect.empty()) return Finish(true, "");
      break;
    case ProbeSpec::Kind::kFtp:
    case ProbeSpec::Kind::kSsh:
      break;  // the server speaks first
    case ProbeSpec::Kind::kHttp:
      out_ =
          absl::StrCat("GET ", spec_.http_path,
                       " HTTP/1.0\r\nHost: ", spec_.http_host.empty() ? target_ : spec_.http_host,
                       "\r\nUser-Agent: l4lb-health\r\nConnection: close\r\n\r\n");
      break;
    case ProbeSpec::Kind::kUdp:
      // A UDP server answers only what it is sent: an empty datagram at least.
      phase_ = Phase::kSending;
      out_ = spec_.send;
      return SendMore();
    case ProbeSpec::Kind::kDns:
      phase_ = Phase::kSending;
      out_ = DnsQuery(dns_id_ = static_cast<uint16_t>(reinterpret_cast<uintptr_t>(this) >> 4));
      return SendMore();
  }
  phase_ = out_.empty() ? Phase::kReading : Phase::kSending;
  if (phase_ == Phase::kSending) SendMore();
}

void Probe::SendMore() {
  if (spec_.udp()) {
    // One datagram, whole or not at all.
    if (send(fd_, out_.data(), out_.size(), 0) < 0) {
      if (errno == EAGAIN) return;
      return Finish(false, absl::StrCat("send: ", strerror(errno)));
    }
    out_.clear();
    phase_ = Phase::kReading;
    return;
  }
  while (!out_.empty()) {
    const ssize_t n = send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN) return;  // poll for POLLOUT again
      return Finish(false, absl::StrCat("send: ", strerror(errno)));
    }
    out_.erase(0, static_cast<size_t>(n));
  }
  if (spec_.kind == ProbeSpec::Kind::kSendExpect && spec_.expect.empty()) {
    return Finish(true, "");
  }
  phase_ = Phase::kReading;
}

void Probe::ReadMore() {
  char buf[512];
  if (spec_.udp()) {
    const ssize_t n = recv(fd_, buf, sizeof(buf), MSG_TRUNC);
    if (n < 0) {
      if (errno == EAGAIN) return;
      // ECONNREFUSED: the ICMP port unreachable our datagram drew.
      return Finish(false, absl::StrCat("recv: ", strerror(errno)));
    }
    in_.assign(buf, std::min<size_t>(n, sizeof(buf)));
    return JudgeDatagram();
  }
  for (;;) {
    const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EAGAIN) return;
      return Finish(false, absl::StrCat("recv: ", strerror(errno)));
    }
    if (n == 0) {
      Judge(/*eof=*/true);
      return;
    }
    in_.append(buf, static_cast<size_t>(n));
    if (Judge(/*eof=*/false)) return;
  }
}

bool Probe::Judge(bool eof) {
  const auto closed_early = [&](absl::string_view want) {
    Finish(false,
           absl::StrCat("closed before the reply was complete: got ", Shown(in_), ", want ", want));
    return true;
  };
  switch (spec_.kind) {
    case ProbeSpec::Kind::kSendExpect: {
      const absl::string_view want = spec_.expect;
      const size_t n = std::min(in_.size(), want.size());
      if (in_.compare(0, n, want.data(), n) != 0) {
        Finish(false, absl::StrCat("bad reply: got ", Shown(in_), ", want ", Shown(want)));
        return true;
      }
      if (in_.size() >= want.size()) {
        Finish(true, "");
        return true;
      }
      return eof ? closed_early(Shown(want)) : false;
    }
    case ProbeSpec::Kind::kFtp:
      if (in_.size() >= 4 || (eof && !in_.empty())) {
        if (absl::StartsWith(in_, "220")) {
          SendFarewell("QUIT\r\n");
          Finish(true, "");
        } else {
          Finish(false, absl::StrCat("bad banner: got ", Shown(in_), ", want \"220\""));
        }
        return true;
      }
      return eof ? closed_early("\"220\"") : false;
    case ProbeSpec::Kind::kSsh: {
      // RFC 4253 4.2: the server may send other lines before its version line.
      for (absl::string_view line : absl::StrSplit(in_, '\n')) {
        if (absl::StartsWith(line, "SSH-2.0-") || absl::StartsWith(line, "SSH-1.99-")) {
          // Our own identification before closing: sshd then logs a client that
          // went away, not a protocol error.
          SendFarewell("SSH-2.0-l4lb_health\r\n");
          Finish(true, "");
          return true;
        }
        // Pre-version lines are legal, but an HTTP status line means an HTTP server
        // (a wrong port), which would otherwise only be found at the timeout.
        if (absl::StartsWith(line, "SSH-") || absl::StartsWith(line, "HTTP/")) {
          Finish(false, absl::StrCat("bad banner: got ", Shown(line), ", want \"SSH-2.0-\""));
          return true;
        }
      }
      if (in_.size() > kMaxReply || (eof && !in_.empty())) {
        Finish(false, absl::StrCat("bad banner: got ", Shown(in_), ", want \"SSH-2.0-\""));
        return true;
      }
      return eof ? closed_early("\"SSH-2.0-\"") : false;
    }
    case ProbeSpec::Kind::kHttp: {
      const size_t eol = in_.find('\n');
      if (eol == std::string::npos && !eof && in_.size() <= kMaxReply) return false;
      const std::vector<absl::string_view> words =
          absl::StrSplit(absl::string_view(in_).substr(0, eol), ' ');
      int status = 0;
      if (words.size() < 2 || !absl::StartsWith(words[0], "HTTP/1.") ||
          !absl::SimpleAtoi(words[1], &status) || status < 100 || status > 599) {
        Finish(false, absl::StrCat("not an HTTP reply: got ", Shown(in_)));
        return true;
      }
      const char klass = static_cast<char>('0' + status / 100);
      for (char ok : spec_.http_statuses) {
        if (ok == klass) {
          Finish(true, "");
          return true;
        }
      }
      std::vector<std::string> want;
      for (char ok : spec_.http_statuses) want.push_back(absl::StrCat(std::string(1, ok), "xx"));
      Finish(false, absl::StrCat("HTTP status ", status, ", want ", absl::StrJoin(want, "/")));
      return true;
    }
    case ProbeSpec::Kind::kNone:
    case ProbeSpec::Kind::kTcp:
    case ProbeSpec::Kind::kUdp:  // JudgeDatagram()
    case ProbeSpec::Kind::kDns:
      break;
  }
  Finish(true, "");
  return true;
}

void Probe::JudgeDatagram() {
  if (spec_.kind == ProbeSpec::Kind::kDns) {
    // Header: id (2 bytes), flags with QR (the top bit) set in a response.
    const bool ours = in_.size() >= 12 && static_cast<uint8_t>(in_[0]) == (dns_id_ >> 8) &&
                      static_cast<uint8_t>(in_[1]) == (dns_id_ & 0xFF) &&
                      (static_cast<uint8_t>(in_[2]) & 0x80) != 0;
    if (!ours) return Finish(false, absl::StrCat("not a DNS reply to our query: got ", Shown(in_)));
    return Finish(true, "");
  }
  if (!absl::StartsWith(in_, spec_.expect)) {
    return Finish(false,
                  absl::StrCat("bad reply: got ", Shown(in_), ", want ", Shown(spec_.expect)));
  }
  Finish(true, "");
}

void Probe::SendFarewell(absl::string_view bytes) {
  // Best effort: the verdict is already in.
  (void)!send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

void Probe::Finish(bool ok, std::string reason) {
  phase_ = Phase::kDone;
  ok_ = ok;
  reason_ = std::move(reason);
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

}  // namespace l4lb::health
