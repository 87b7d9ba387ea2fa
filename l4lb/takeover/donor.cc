#include "l4lb/takeover/donor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace l4lb::takeover {
namespace {

// How often the thread looks up from waiting for a new process (to stop).
constexpr absl::Duration kAcceptPoll = absl::Milliseconds(200);

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// The next message from the new process, which must be of `type`.
absl::StatusOr<Message> Expect(Channel& channel, MessageType type, absl::Duration timeout,
                               const char* what) {
  absl::StatusOr<Channel::Received> r = channel.Receive(timeout);
  if (!r.ok()) {
    return absl::Status(r.status().code(),
                        absl::StrCat("waiting for the new process's ", what, ": ",
                                     r.status().message()));
  }
  absl::StatusOr<Message> m = Decode(Bytes(r->message));
  if (!m.ok()) return m.status();
  if (m->type != type) {
    return absl::InvalidArgumentError(absl::StrCat("expected the new process's ", what,
                                                   ", got message type ",
                                                   static_cast<int>(m->type)));
  }
  return m;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Donor>> Donor::Start(Options options) {
  absl::StatusOr<ChannelListener> listener = ChannelListener::Listen(options.path);
  if (!listener.ok()) return listener.status();
  std::unique_ptr<Donor> donor(new Donor(std::move(options), *std::move(listener)));
  donor->thread_ = std::thread([d = donor.get()] { d->Loop(); });
  return donor;
}

Donor::~Donor() {
  stop_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
}

void Donor::Loop() {
  while (!stop_.load(std::memory_order_acquire) && !handed_over()) {
    absl::StatusOr<Channel> channel = listener_.Accept(kAcceptPoll);
    if (!channel.ok()) {
      if (!absl::IsDeadlineExceeded(channel.status())) {
        LOG_EVERY_T(WARNING, 10.0) << channel.status().message();
      }
      continue;
    }
    LOG(INFO) << "takeover: a new process connected at " << options_.path;
    if (absl::Status st = Serve(*channel); !st.ok()) {
      LOG(ERROR) << "takeover failed: " << st.message() << "; this process serves on";
    }
  }
}

absl::Status Donor::Serve(Channel& channel) {
  absl::StatusOr<Channel::Received> hello = channel.Receive(options_.timeout);
  if (!hello.ok()) return hello.status();
  absl::StatusOr<Message> m = Decode(Bytes(hello->message));
  if (!m.ok() || m->type != MessageType::kHello || m->hello.version != kWireVersion) {
    // Most likely a newer binary whose format this one cannot write: say so in
    // this one's format, which the new one can at least try to read.
    const std::string why =
        !m.ok() ? std::string(m.status().message())
                : m->type != MessageType::kHello
                      ? absl::StrCat("expected a hello, got message type ", static_cast<int>(m->type))
                      : absl::StrCat("wire version ", m->hello.version, ", this l4lb writes ",
                                     kWireVersion);
    (void)channel.Send(Encode(HelloReply{.accepted = false, .error = why}), {});
    return absl::FailedPreconditionError(absl::StrCat("refused: ", why));
  }
  LOG(INFO) << "takeover: the new process is " << m->hello.build;
  std::vector<ListenerFds> listeners = options_.hooks.listeners();
  if (absl::Status st = channel.Send(
          Encode(HelloReply{.accepted = true,
                            .error = "",
                            .listeners = static_cast<uint32_t>(listeners.size()),
                            .workers = options_.workers}),
          {});
      !st.ok()) {
    return st;
  }
  for (const ListenerFds& l : listeners) {
    if (absl::Status st = channel.Send(Encode(l.record), l.fds); !st.ok()) return st;
  }
  // Until Ready nothing has changed here: a new process that goes away now
  // (its config does not load, a port it alone wants is taken) costs nothing.
  if (absl::StatusOr<Message> ready = Expect(channel, MessageType::kReady, options_.timeout, "Ready");
      !ready.ok()) {
    return ready.status();
  }
  return Export(channel, listeners.size());
}

absl::Status Donor::Export(Channel& channel, uint64_t listeners) {
  const absl::Time start = absl::Now();
  outboxes_.push_back(std::make_unique<Outbox>(0));
  Outbox& out = *outboxes_.back();
  options_.hooks.begin_export(&out);
  uint64_t sent = 0, sessions = 0;
  absl::Status status;
  for (;;) {
    absl::StatusOr<std::optional<Outbox::Item>> item = out.Next(options_.timeout);
    if (!item.ok()) {
      status = item.status();
      break;
    }
    if (!item->has_value()) break;
    const Outbox::Item& it = **item;
    if (absl::Status st = channel.Send(it.udp ? Encode(it.udp_record) : Encode(it.record), it.fds);
        !st.ok()) {
      status = st;
      break;
    }
    ++(it.udp ? sessions : sent);
  }
  if (status.ok()) {
    status = channel.Send(
        Encode(Done{.listeners = listeners, .connections = sent, .udp_sessions = sessions}), {});
  }
  if (status.ok()) {
    absl::StatusOr<Message> ack = Expect(channel, MessageType::kAck, options_.timeout, "Ack");
    if (!ack.ok()) {
      status = ack.status();
    } else if (ack->ack.adopted != sent + sessions) {
      status = absl::DataLossError(absl::StrCat("the new process adopted ", ack->ack.adopted,
                                                " of ", sent + sessions,
                                                " connections and UDP sessions"));
    }
  }
  options_.hooks.end_export(status.ok());
  if (!status.ok()) return status;
  LOG(INFO) << "takeover: handed over " << listeners << " listener(s), " << sent
            << " connection(s) and " << sessions << " UDP session(s) in " << absl::FormatDuration(absl::Now() - start)
            << "; draining what is left, then exiting";
  handed_over_.store(true, std::memory_order_release);
  return absl::OkStatus();
}

}  // namespace l4lb::takeover
