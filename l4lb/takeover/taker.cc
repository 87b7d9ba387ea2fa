#include "l4lb/takeover/taker.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace l4lb::takeover {
namespace {

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

absl::Status Unexpected(const char* wanted, MessageType got) {
  return absl::InvalidArgumentError(absl::StrCat("takeover: expected ", wanted,
                                                 ", got message type ", static_cast<int>(got)));
}

}  // namespace

absl::StatusOr<Taker::Raw> Taker::Next() {
  absl::StatusOr<Channel::Received> r = channel_.Receive(timeout_);
  if (!r.ok()) return r.status();
  absl::StatusOr<Message> m = Decode(Bytes(r->message));
  if (!m.ok()) return absl::Status(m.status().code(), absl::StrCat("takeover: ", m.status().message()));
  if (r->fds.size() != ExpectedFds(*m)) {
    return absl::InvalidArgumentError(absl::StrCat("takeover: a message of type ",
                                                   static_cast<int>(m->type), " came with ",
                                                   r->fds.size(), " fds, ", ExpectedFds(*m),
                                                   " expected"));
  }
  if (m->type == MessageType::kHelloReply && !m->hello_reply.accepted) {
    return absl::FailedPreconditionError(
        absl::StrCat("takeover refused by the running l4lb: ", m->hello_reply.error));
  }
  return Raw{.message = *std::move(m), .fds = std::move(r->fds)};
}

absl::StatusOr<std::optional<Taker>> Taker::Connect(const std::string& path,
                                                    absl::Duration timeout,
                                                    const std::string& build) {
  absl::StatusOr<Channel> channel = Channel::Connect(path);
  if (!channel.ok()) {
    // No socket file, or one nobody listens on (a process that died): a first start.
    if (absl::IsNotFound(channel.status()) || absl::IsUnavailable(channel.status())) {
      return std::nullopt;
    }
    return channel.status();
  }
  Taker taker(*std::move(channel), timeout);
  if (absl::Status st = taker.channel_.Send(Encode(Hello{.version = kWireVersion, .build = build}), {});
      !st.ok()) {
    return st;
  }
  absl::StatusOr<Raw> reply = taker.Next();
  if (!reply.ok()) return reply.status();
  if (reply->message.type != MessageType::kHelloReply) {
    return Unexpected("a hello reply", reply->message.type);
  }
  taker.workers_ = reply->message.hello_reply.workers;
  for (uint32_t i = 0; i < reply->message.hello_reply.listeners; ++i) {
    absl::StatusOr<Raw> l = taker.Next();
    if (!l.ok()) return l.status();
    if (l->message.type != MessageType::kListener) return Unexpected("a listener", l->message.type);
    taker.listeners_.push_back(
        {.listener = std::move(l->message.listener), .fds = std::move(l->fds)});
  }
  return std::optional<Taker>(std::move(taker));
}

absl::StatusOr<std::vector<Taker::Incoming>> Taker::TakeConnections() {
  if (absl::Status st = channel_.Send(Encode(Ready{}), {}); !st.ok()) return st;
  std::vector<Incoming> out;
  uint64_t connections = 0, sessions = 0;
  for (;;) {
    absl::StatusOr<Raw> in = Next();
    if (!in.ok()) return in.status();
    if (in->message.type == MessageType::kConnection) {
      out.push_back({.connection = std::move(in->message.connection), .fds = std::move(in->fds)});
      ++connections;
      continue;
    }
    if (in->message.type == MessageType::kUdpSession) {
      out.push_back(
          {.udp = true, .udp_session = std::move(in->message.udp_session), .fds = std::move(in->fds)});
      ++sessions;
      continue;
    }
    if (in->message.type != MessageType::kDone) {
      return Unexpected("a connection or done", in->message.type);
    }
    const Done& done = in->message.done;
    if (done.connections != connections || done.udp_sessions != sessions ||
        done.listeners != listeners_.size()) {
      return absl::DataLossError(absl::StrCat(
          "takeover: done says ", done.listeners, " listener(s), ", done.connections,
          " connection(s) and ", done.udp_sessions, " UDP session(s); ", listeners_.size(), ", ",
          connections, " and ", sessions, " came"));
    }
    return out;
  }
}

absl::Status Taker::Ack(uint64_t adopted) {
  return channel_.Send(Encode(takeover::Ack{.adopted = adopted}), {});
}

}  // namespace l4lb::takeover
