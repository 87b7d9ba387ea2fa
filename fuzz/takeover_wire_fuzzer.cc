// libFuzzer target: the live upgrade's message decoder (l4lb/takeover/wire.h),
// which reads what the other l4lb process sends over the takeover socket. A
// decoded message must encode to bytes that decode to the same fields, and
// never ask for more fds than a message can carry. fuzz/README.md says how to
// run it.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "l4lb/takeover/wire.h"

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  fprintf(stderr, "takeover_wire_fuzzer: broken contract: %s\n", what);
  abort();
}

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::string Reencode(const l4lb::takeover::Message& m) {
  using l4lb::takeover::MessageType;
  switch (m.type) {
    case MessageType::kHello: return Encode(m.hello);
    case MessageType::kHelloReply: return Encode(m.hello_reply);
    case MessageType::kListener: return Encode(m.listener);
    case MessageType::kConnection: return Encode(m.connection);
    case MessageType::kUdpSession: return Encode(m.udp_session);
    case MessageType::kDone: return Encode(m.done);
    case MessageType::kAck: return Encode(m.ack);
    case MessageType::kReady: return Encode(l4lb::takeover::Ready{});
  }
  return "";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::StatusOr<l4lb::takeover::Message> m =
      l4lb::takeover::Decode(absl::MakeConstSpan(data, size));
  if (!m.ok()) {
    Check(!m.status().message().empty(), "an error says what is wrong");
    return 0;
  }
  const std::string again = Reencode(*m);
  // Encoding is canonical: the same fields give the same bytes.
  Check(again == std::string(reinterpret_cast<const char*>(data), size), "re-encodes to the input");
  const absl::StatusOr<l4lb::takeover::Message> twice = l4lb::takeover::Decode(Bytes(again));
  Check(twice.ok() && twice->type == m->type, "re-encoded message decodes");
  Check(l4lb::takeover::ExpectedFds(*m) == l4lb::takeover::ExpectedFds(*twice), "same fd count");
  return 0;
}
