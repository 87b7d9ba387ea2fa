#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace l4lb::takeover {

// The live upgrade's hand-over format (issue 16, `--takeover`): what the
// running process sends the new one over a unix socket (channel.h), one
// message at a time, file descriptors beside each message (SCM_RIGHTS). Pure
// functions over bytes: no socket, no clock.
//
//   new -> old   Hello        the new binary's wire version and build
//   old -> new   HelloReply   accepted (and how many listeners follow), or
//                             why not (then nothing else moves: the old
//                             process keeps serving)
//   old -> new   Listener*    a listening socket per worker of each listener
//                             (both processes now hold them; the old one
//                             still accepts, the new one does not yet)
//   new -> old   Ready        the new config runs on those sockets: stop
//                             accepting, hand over the connections
//   old -> new   Connection*  an established TCP connection: client and
//                             backend sockets, the pipes with the bytes still
//                             in them, its relay state and identity
//                UdpSession*  a UDP session: its backend socket and identity
//                Done         the count of what was sent, to check
//   new -> old   Ack          everything adopted: the old process closes its
//                             copies and exits; the new one starts relaying
//                             and accepting. Before the Ack neither relays a
//                             handed-over connection twice: the old one holds
//                             them unpolled, and takes them back if the channel
//                             breaks (the new process died or gave up).
//
// Each message is a 12-byte header (magic "L4TK", version u16, type u16,
// payload length u32, little-endian) and its payload: fields in a fixed
// order, integers little-endian, strings as u32 length + bytes. A new field is
// a new version; a process refuses a version it does not know (it cannot tell
// what it would drop), which is what the Hello exchange is for. Decoding never
// trusts a length: every read is bounded by what is left, every string by
// kMaxString, and the payload must be consumed exactly.
//
// Thread safety: none needed; pure functions and value types.

inline constexpr uint16_t kWireVersion = 1;
inline constexpr size_t kHeaderBytes = 12;
inline constexpr size_t kMaxString = 4096;
// One message is at most this long (channel.h sizes its buffer by it).
inline constexpr size_t kMaxMessageBytes = 64 * 1024;

enum class MessageType : uint16_t {
  kHello = 1,
  kHelloReply = 2,
  kListener = 3,
  kConnection = 4,
  kDone = 5,
  kAck = 6,
  kReady = 7,
  kUdpSession = 8,
};

struct Hello {
  uint16_t version = kWireVersion;
  std::string build;  // the new binary's version line, for the old one's log
};

struct HelloReply {
  bool accepted = false;
  std::string error;       // why not, when !accepted
  uint32_t listeners = 0;  // Listener messages that follow
  uint32_t workers = 0;    // the old process's worker threads
};

struct Ready {};

// One listener: the fds that come with it are its per-worker sockets, in
// worker order (`workers` of them).
struct Listener {
  std::string service;  // Server::ServiceName
  bool udp = false;
  std::string requested;  // as configured ("0.0.0.0:21", port 0 kept)
  std::string bound;      // as bound ("0.0.0.0:21", port 0 resolved)
  uint32_t workers = 0;
};

// One flow's relay state (relay/flow.h): bytes delivered, bytes parked in its
// pipe (which travels as two fds when it holds any), and how far its end went.
struct FlowState {
  uint64_t bytes = 0;
  uint32_t pipe_bytes = 0;
  bool source_eof = false;  // the source's FIN was read
  bool done = false;        // ... and forwarded (shutdown(SHUT_WR) on the destination)
  bool last = false;        // the other direction is done: this one's EOF ends it
};

// One established connection. Its fds, in order: client, backend, then the up
// flow's pipe (read end, write end) if up.pipe_bytes > 0, then the down flow's
// likewise.
struct Connection {
  std::string service;  // the service whose backend serves it (SNI route included)
  std::string front;    // the service its listener belongs to
  std::string listener;  // the bound listen address it came in on
  std::string backend;   // the backend's name (BackendSpec::name)
  std::string client;    // as admission, hashing and the log saw it (PROXY applied)
  std::string target;    // the backend address connected to
  int64_t age_ns = 0;    // since accept, for the access log's duration
  uint32_t worker = 0;   // the old process's worker that relayed it
  // The client's first bytes are still to be screened for a forged PROXY
  // header (Connection::proxy_screen): the up flow has not started.
  bool proxy_screen = false;
  bool half_closed = false;  // one direction has ended (client_fin_timeout applies)
  // Nothing else: between pumps a worker holds a flow's bytes only in its pipe
  // (a copy the destination refused is parked there), so the pipes carry them.
  FlowState up;
  FlowState down;

  // How many fds travel with this record.
  size_t fd_count() const { return 2 + (up.pipe_bytes > 0 ? 2 : 0) + (down.pipe_bytes > 0 ? 2 : 0); }
};

// One UDP session; its one fd is the socket connected to the backend. Both
// processes may hold it a moment (datagrams are whole: whichever reads a
// reply forwards it), so it needs no quiescing.
struct UdpSession {
  std::string service;
  std::string listener;  // the bound listen address its replies leave from
  std::string backend;   // BackendSpec::name
  std::string client;
  std::string target;
  std::string local;     // where the client sent to ("" : the listener's own address)
  int64_t age_ns = 0;
  int64_t idle_ns = 0;   // since its last datagram either way
  uint32_t responses = 0;
  uint32_t worker = 0;
};

struct Done {
  uint64_t listeners = 0;
  uint64_t connections = 0;
  uint64_t udp_sessions = 0;
};

struct Ack {
  uint64_t adopted = 0;  // connections carried on
};

// One decoded message: its type and the matching field.
struct Message {
  MessageType type = MessageType::kHello;
  Hello hello;
  HelloReply hello_reply;
  Listener listener;
  Connection connection;
  UdpSession udp_session;
  Done done;
  Ack ack;
};

std::string Encode(const Hello& m);
std::string Encode(const HelloReply& m);
std::string Encode(const Listener& m);
std::string Encode(const Connection& m);
std::string Encode(const Done& m);
std::string Encode(const Ack& m);
std::string Encode(const Ready& m);
std::string Encode(const UdpSession& m);

// The message in `bytes` (one whole message, as a SOCK_SEQPACKET read gives
// it). InvalidArgument naming what is wrong: "not a takeover message (magic)",
// "wire version 2, this binary reads 1", "connection: truncated at client",
// "3 bytes after the payload", ...
absl::StatusOr<Message> Decode(absl::Span<const uint8_t> bytes);

// How many fds must arrive with `m` (listeners: workers; connections:
// fd_count(); UDP sessions: 1; others: none).
size_t ExpectedFds(const Message& m);

}  // namespace l4lb::takeover
