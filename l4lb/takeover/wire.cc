#include "l4lb/takeover/wire.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace l4lb::takeover {
namespace {

constexpr char kMagic[4] = {'L', '4', 'T', 'K'};

// Appends fields little-endian; Finish() puts the header in front.
class Writer {
 public:
  explicit Writer(MessageType type) : type_(type) {}
  Writer& U8(uint8_t v) { return Int(v, 1); }
  Writer& U16(uint16_t v) { return Int(v, 2); }
  Writer& U32(uint32_t v) { return Int(v, 4); }
  Writer& U64(uint64_t v) { return Int(v, 8); }
  Writer& I64(int64_t v) { return Int(static_cast<uint64_t>(v), 8); }
  Writer& Bool(bool v) { return U8(v ? 1 : 0); }
  // Longer strings are cut at kMaxString (the reader would refuse them); no
  // field l4lb sends comes near it.
  Writer& Str(const std::string& s) {
    const size_t n = std::min(s.size(), kMaxString);
    U32(static_cast<uint32_t>(n));
    payload_.append(s, 0, n);
    return *this;
  }
  Writer& Flow(const FlowState& f) { return U64(f.bytes).U32(f.pipe_bytes).Bool(f.source_eof).Bool(f.done).Bool(f.last); }
  std::string Finish() const {
    std::string out(kMagic, sizeof(kMagic));
    Writer header(type_);
    header.U16(kWireVersion).U16(static_cast<uint16_t>(type_)).U32(static_cast<uint32_t>(payload_.size()));
    return out + header.payload_ + payload_;
  }

 private:
  Writer& Int(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) payload_.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
    return *this;
  }
  MessageType type_;
  std::string payload_;
};

// Reads fields in order; the first short or bad read sets the error, naming
// the message and the field, and every later read is a no-op.
class Reader {
 public:
  Reader(absl::Span<const uint8_t> bytes, const char* message) : left_(bytes), message_(message) {}
  Reader& U8(const char* field, uint8_t* v) { return Int(field, 1, v); }
  Reader& U16(const char* field, uint16_t* v) { return Int(field, 2, v); }
  Reader& U32(const char* field, uint32_t* v) { return Int(field, 4, v); }
  Reader& U64(const char* field, uint64_t* v) { return Int(field, 8, v); }
  Reader& I64(const char* field, int64_t* v) {
    uint64_t u = 0;
    Int(field, 8, &u);
    *v = static_cast<int64_t>(u);
    return *this;
  }
  Reader& Bool(const char* field, bool* v) {
    uint8_t b = 0;
    Int(field, 1, &b);
    if (ok() && b > 1) Fail(field, absl::StrCat("a bool of ", b));
    *v = b == 1;
    return *this;
  }
  Reader& Str(const char* field, std::string* s) {
    uint32_t n = 0;
    Int(field, 4, &n);
    if (!ok()) return *this;
    if (n > kMaxString) return Fail(field, absl::StrCat("a string of ", n, " bytes (at most ", kMaxString, ")"));
    if (n > left_.size()) return Fail(field, "truncated");
    s->assign(reinterpret_cast<const char*>(left_.data()), n);
    left_.remove_prefix(n);
    return *this;
  }
  Reader& Flow(const char* field, FlowState* f) {
    return U64(field, &f->bytes)
        .U32(field, &f->pipe_bytes)
        .Bool(field, &f->source_eof)
        .Bool(field, &f->done)
        .Bool(field, &f->last);
  }
  // The payload must end exactly here.
  absl::Status End() {
    if (ok() && !left_.empty()) {
      error_ = absl::InvalidArgumentError(
          absl::StrCat(message_, ": ", left_.size(), " bytes after the payload"));
    }
    return error_;
  }
  bool ok() const { return error_.ok(); }

 private:
  template <typename T>
  Reader& Int(const char* field, size_t bytes, T* v) {
    *v = 0;
    if (!ok()) return *this;
    if (left_.size() < bytes) return Fail(field, "truncated");
    uint64_t out = 0;
    for (size_t i = 0; i < bytes; ++i) out |= uint64_t{left_[i]} << (8 * i);
    *v = static_cast<T>(out);
    left_.remove_prefix(bytes);
    return *this;
  }
  Reader& Fail(const char* field, absl::string_view what) {
    error_ = absl::InvalidArgumentError(absl::StrCat(message_, ": ", what, " at ", field));
    return *this;
  }

  absl::Span<const uint8_t> left_;
  const char* message_;
  absl::Status error_;
};

}  // namespace

std::string Encode(const Hello& m) {
  return Writer(MessageType::kHello).U16(m.version).Str(m.build).Finish();
}
std::string Encode(const HelloReply& m) {
  return Writer(MessageType::kHelloReply)
      .Bool(m.accepted)
      .Str(m.error)
      .U32(m.listeners)
      .U32(m.workers)
      .Finish();
}
std::string Encode(const Listener& m) {
  return Writer(MessageType::kListener)
      .Str(m.service)
      .Bool(m.udp)
      .Str(m.requested)
      .Str(m.bound)
      .U32(m.workers)
      .Finish();
}
std::string Encode(const Connection& m) {
  return Writer(MessageType::kConnection)
      .Str(m.service)
      .Str(m.front)
      .Str(m.listener)
      .Str(m.backend)
      .Str(m.client)
      .Str(m.target)
      .I64(m.age_ns)
      .U32(m.worker)
      .Bool(m.proxy_screen)
      .Bool(m.half_closed)
      .Flow(m.up)
      .Flow(m.down)
      .Finish();
}
std::string Encode(const UdpSession& m) {
  return Writer(MessageType::kUdpSession)
      .Str(m.service)
      .Str(m.listener)
      .Str(m.backend)
      .Str(m.client)
      .Str(m.target)
      .Str(m.local)
      .I64(m.age_ns)
      .I64(m.idle_ns)
      .U32(m.responses)
      .U32(m.worker)
      .Finish();
}
std::string Encode(const Done& m) {
  return Writer(MessageType::kDone).U64(m.listeners).U64(m.connections).U64(m.udp_sessions).Finish();
}
std::string Encode(const Ack& m) { return Writer(MessageType::kAck).U64(m.adopted).Finish(); }
std::string Encode(const Ready&) { return Writer(MessageType::kReady).Finish(); }

absl::StatusOr<Message> Decode(absl::Span<const uint8_t> bytes) {
  if (bytes.size() < kHeaderBytes || memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::InvalidArgumentError("not a takeover message (no L4TK header)");
  }
  Reader header(bytes.subspan(4, kHeaderBytes - 4), "header");
  uint16_t version = 0, type = 0;
  uint32_t length = 0;
  header.U16("version", &version).U16("type", &type).U32("length", &length);
  if (version != kWireVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("wire version ", version, ", this binary reads ", kWireVersion));
  }
  const absl::Span<const uint8_t> payload = bytes.subspan(kHeaderBytes);
  if (length != payload.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("header says ", length, " payload bytes, the message has ", payload.size()));
  }
  Message m;
  m.type = static_cast<MessageType>(type);
  absl::Status status;
  switch (m.type) {
    case MessageType::kHello: {
      Reader r(payload, "hello");
      status = r.U16("version", &m.hello.version).Str("build", &m.hello.build).End();
      break;
    }
    case MessageType::kHelloReply: {
      Reader r(payload, "hello reply");
      status = r.Bool("accepted", &m.hello_reply.accepted)
                   .Str("error", &m.hello_reply.error)
                   .U32("listeners", &m.hello_reply.listeners)
                   .U32("workers", &m.hello_reply.workers)
                   .End();
      break;
    }
    case MessageType::kListener: {
      Reader r(payload, "listener");
      Listener& l = m.listener;
      status = r.Str("service", &l.service)
                   .Bool("udp", &l.udp)
                   .Str("requested", &l.requested)
                   .Str("bound", &l.bound)
                   .U32("workers", &l.workers)
                   .End();
      break;
    }
    case MessageType::kConnection: {
      Reader r(payload, "connection");
      Connection& c = m.connection;
      status = r.Str("service", &c.service)
                   .Str("front", &c.front)
                   .Str("listener", &c.listener)
                   .Str("backend", &c.backend)
                   .Str("client", &c.client)
                   .Str("target", &c.target)
                   .I64("age", &c.age_ns)
                   .U32("worker", &c.worker)
                   .Bool("proxy_screen", &c.proxy_screen)
                   .Bool("half_closed", &c.half_closed)
                   .Flow("up", &c.up)
                   .Flow("down", &c.down)
                   .End();
      break;
    }
    case MessageType::kDone: {
      Reader r(payload, "done");
      status = r.U64("listeners", &m.done.listeners)
                   .U64("connections", &m.done.connections)
                   .U64("udp_sessions", &m.done.udp_sessions)
                   .End();
      break;
    }
    case MessageType::kUdpSession: {
      Reader r(payload, "udp session");
      UdpSession& u = m.udp_session;
      status = r.Str("service", &u.service)
                   .Str("listener", &u.listener)
                   .Str("backend", &u.backend)
                   .Str("client", &u.client)
                   .Str("target", &u.target)
                   .Str("local", &u.local)
                   .I64("age", &u.age_ns)
                   .I64("idle", &u.idle_ns)
                   .U32("responses", &u.responses)
                   .U32("worker", &u.worker)
                   .End();
      break;
    }
    case MessageType::kReady:
      status = Reader(payload, "ready").End();
      break;
    case MessageType::kAck: {
      Reader r(payload, "ack");
      status = r.U64("adopted", &m.ack.adopted).End();
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown message type ", type));
  }
  if (!status.ok()) return status;
  return m;
}

size_t ExpectedFds(const Message& m) {
  switch (m.type) {
    case MessageType::kListener:
      return m.listener.workers;
    case MessageType::kConnection:
      return m.connection.fd_count();
    case MessageType::kUdpSession:
      return 1;
    default:
      return 0;
  }
}

}  // namespace l4lb::takeover
