#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "l4lb/admission/admission.h"
#include "l4lb/backend/snapshot.h"
#include "l4lb/net/address.h"
#include "l4lb/relay/flow.h"

namespace l4lb::relay {

// Why a connection ended; printed in the access log as close=<name>.
enum class CloseReason : uint8_t {
  kNone,
  kDone,           // both sides sent EOF and every byte was delivered
  kClientReset,    // the client reset or failed
  kBackendReset,   // the backend reset or failed
  kIdleTimeout,    // no byte either way for idle_timeout
  kFinTimeout,     // half-closed, and no byte either way for client_fin_timeout
  // One side held the connection up for its timeout (client_timeout,
  // backend_timeout): nothing moved from or to it while l4lb waited on it.
  kClientTimeout,
  kBackendTimeout,
  kConnectFailed,  // every backend tried refused or timed out
  kNoBackend,      // no healthy backend to try
  kDrain,          // still open when the drain timeout ran out
  kBackendDown,    // its backend went DOWN and --kill_on_down is set
  kError,          // a local failure (out of fds, ...)
  // Refused at accept (admission/admission.h), before any backend was tried.
  kDenied,   // the service's deny list, or not on its allow list
  kLimited,  // a connection bound or the client's rate
  kBanned,   // the client is banned
  // A peer in accept_proxy_from sent a malformed PROXY header, or none in time;
  // or a peer outside it sent one (or the start of one, not finished in time).
  kBadProxy,
  // SNI routing (sni_routes): the ClientHello was malformed, too large or not
  // complete by sni_timeout; or no route took its name and there is no default.
  kBadTls,
  kNoRoute,
};
const char* CloseReasonName(CloseReason reason);

struct Connection;

// A connection's place in one IdleList: its neighbours, and when it was last
// touched there.
struct IdleLinks {
  Connection* prev = nullptr;
  Connection* next = nullptr;
  int64_t last_ns = 0;
};

// Connection is one relayed client connection and its backend connection. The
// worker drives it through these states (worker_tcp.cc names the verbs):
//
//  state        event                          action                           next
//  kConnecting  peer in accept_proxy_from       multishot POLLIN on the client,  kConnecting
//  (proxy)                                     peek and parse each arrival:
//               header complete                strip it, admit its source, pick
//               malformed, EOF, proxy_timeout  -                                kClosing
//  kConnecting  admitted on a service with     multishot POLLIN on the client,  kConnecting
//  (sni)        sni_routes                     peek and parse each arrival:
//               ClientHello complete, or not   route: `service` becomes the
//               TLS                            route's, pick its backend
//               malformed, too large, EOF,     SO_LINGER 0 (bad_tls)            kClosing
//               sni_timeout
//               no route and no default        SO_LINGER 0 (no_route)           kClosing
//  kConnecting  connect ok                     multishot POLLIN on both fds     kRelaying
//  kConnecting  connect error / link timeout   close backend fd, next pick      kConnecting
//  kConnecting  no untried backend left        close client                     kClosing
//  kRelaying    peer outside a non-empty       the up flow waits; the down flow kRelaying
//  (screen)     accept_proxy_from: at start,   relays as usual (banners). Peek
//               then POLLIN on the client      the client's first bytes:
//               no bytes yet                   -                                kRelaying
//               no PROXY signature, EOF, or a  start the up flow (Pump)         kRelaying
//               prefix the client's FIN ended
//               a signature's strict prefix    wait, by proxy_timeout at most   kRelaying
//               a signature, or the prefix     SO_LINGER 0 on both sides        kClosing
//               still there at proxy_timeout   (bad_proxy)
//               the client resets              SO_LINGER 0, no flush of its     kClosing
//                                              unscreened bytes
//  kRelaying    POLLIN on one side             Pump() the flow it feeds         kRelaying
//  kRelaying    POLLOUT on one side            Pump() the flow that feeds it    kRelaying
//  kRelaying    a flow: client_bandwidth spent  stop reading it; park the        kRelaying
//                                              connection (relay/throttle.h),
//                                              pump again 5 ms later
//  kRelaying    a flow: source EOF, pipe empty shutdown(dest, SHUT_WR)          kRelaying
//  kRelaying    both flows done                -                                kClosing
//  kRelaying    one side resets / errors       stop reading; the failed side's  kFlushing
//                                              bytes go on to the other side
//  kFlushing    POLLOUT on the other side      Pump() the failed side's flow    kFlushing
//  kFlushing    all delivered and ACKed        SO_LINGER 0 on both sides        kClosing
//               (SIOCOUTQ 0), or kFlushTimeout
//  kRelaying    idle_timeout passed            SO_LINGER 0 on both sides        kClosing
//  kRelaying    client_/backend_timeout passed SO_LINGER 0 on both sides        kClosing
//               waiting on that side
//  any          drain timeout, local error     SO_LINGER 0 on both sides        kClosing
//  any          backend DOWN, --kill_on_down   SO_LINGER 0 on both sides        kClosing
//  kClosing     (entry)                        cancel each request in flight    kClosing
//  kClosing     in_flight == 0                 close fds, pipes back, free slot kFree
//  kRelaying    a live upgrade (--takeover)    cancel its polls                 kExporting
//  kExporting   in_flight == 0                 its record and fds to the next   kExported
//                                              process (takeover/outbox.h)
//  kExported    the next process acknowledged  close this process's copies      kFree
//                                              (no FIN, no reset: the sockets
//                                              live on there), free slot
//  kExported    the takeover failed            re-arm both polls, pump          kRelaying
//
// Only a close after both sides' FINs is clean. Every other end resets both
// sides, so a transfer that l4lb cuts never looks complete to either (FTP stream
// mode takes EOF for end of file); a side that resets first still gets every
// byte the other had sent, as over a direct connection (kFlushing).
//
// Owned by a ConnectionTable of one worker; only that worker's thread touches it.
struct Connection {
  // kExporting, kExported: a live upgrade (worker_takeover.cc) hands the
  // connection to the next process: its polls are being cancelled, then it
  // waits, unpolled, for the next process's word (gone, or taken back).
  enum class State : uint8_t {
    kFree,
    kConnecting,
    kRelaying,
    kFlushing,
    kClosing,
    kExporting,
    kExported
  };
  static constexpr int kMaxAttempts = 9;  // 1 + the largest --connect_retries

  uint32_t slot = 0;
  uint32_t generation = 0;  // 24 bits used; bumped on free (ring/tag.h)
  State state = State::kFree;
  CloseReason reason = CloseReason::kNone;
  int client_fd = -1;
  int backend_fd = -1;
  uint16_t listener = 0;
  // The service whose backends serve the connection. `front` is the one its
  // listener belongs to (admission, accepted/active counts, PROXY rules):
  // the same, unless an SNI route sent it to another service's backends.
  uint16_t service = 0;
  uint16_t front = 0;
  uint16_t in_flight = 0;        // submitted requests whose final CQE has not come back
  uint8_t attempts = 0;          // backends tried so far
  bool connect_pending = false;  // the backend connect has not completed
  bool client_reading = false;   // multishot POLLIN armed on client_fd
  bool backend_reading = false;  // multishot POLLIN armed on backend_fd
  bool client_writing = false;   // one-shot POLLOUT armed on client_fd
  bool backend_writing = false;  // one-shot POLLOUT armed on backend_fd
  bool queued = false;           // in the worker's list of flows to pump again
  bool flush_up = false;         // kFlushing: the flow being delivered is `up` (else `down`)
  bool proxy_pending = false;    // kConnecting: waiting for the peer's PROXY header
  bool sni_pending = false;      // kConnecting: waiting for the client's ClientHello
  bool throttled = false;        // parked in the worker's Throttle (client_bandwidth)
  // A peer outside a non-empty accept_proxy_from: the up flow has not started,
  // its first bytes are not yet known not to be a PROXY header.
  bool proxy_screen = false;
  // A poll before the relay saw the client's FIN (POLLRDHUP): the relay's first
  // pump must know, no later poll reports it again (Flow::Pump's source_hup).
  bool client_hup = false;
  // StartRelay ran: the backend's active count holds this connection until free.
  bool relayed = false;
  int connect_error = 0;         // errno of the last failed connect, for the log
  int backend = backend::BackendSnapshot::kNone;  // index into snapshot->backends()
  uint32_t tried[kMaxAttempts] = {};
  uint64_t key = 0;  // flow key, fixed at accept
  // AffinityTable::Acquire's token while the connection counts in the service's
  // affinity table (released at close); 0: it does not.
  uint64_t affinity_token = 0;
  int64_t start_ns = 0;
  int64_t connect_started_ns = 0;  // the current attempt's, for the connect-time histogram
  // One direction has ended (its FIN was forwarded), the other goes on: the
  // connection is in its service's half_closed list when client_fin_timeout is set.
  bool half_closed = false;
  int64_t flush_deadline_ns = 0;  // kFlushing: reset the other side by then regardless
  // proxy_pending: the whole header by then. proxy_screen: 0 until the first
  // bytes are a signature's prefix; then more bytes must decide by then.
  int64_t proxy_deadline_ns = 0;
  int64_t sni_deadline_ns = 0;  // sni_pending: the ClientHello must be in by then
  // sni_pending: peek again only once the socket holds this many bytes (the
  // end of the record in progress), and the bytes all peeks copied so far.
  uint32_t sni_wanted = 0;
  uint32_t sni_peeked = 0;
  // The service's idle or half_closed list (last byte either way).
  IdleLinks idle;
  // client_timeout / backend_timeout: each side's own list, by the last byte
  // from or to that side; out of it while l4lb is not waiting on that side
  // (its bytes wait for room on the other side, nothing waits for it).
  IdleLinks client_idle;
  IdleLinks backend_idle;
  // The last pump of each flow ended waiting for room at its destination.
  bool up_blocked = false;
  bool down_blocked = false;
  net::SocketAddress client;
  // Places held under the service's and the process's bounds (admission).
  admission::Admission::Pass pass;
  admission::Admission::Pass global_pass;
  net::SocketAddress target;  // the backend address connected to (port filled in)
  std::shared_ptr<const backend::BackendSnapshot> snapshot;  // the one `backend` indexes
  Flow up;                                                   // client -> backend
  Flow down;                                                 // backend -> client
};

// ConnectionTable owns a worker's connections: slots are reused (with a new
// generation) so a steady load allocates nothing.
class ConnectionTable {
 public:
  // A connection in kConnecting with fresh fields.
  Connection* Alloc();
  // Back to kFree; the generation moves so late CQEs for the old life are ignored.
  void Free(Connection* c);
  // nullptr for a slot that is free or was reused since `generation`.
  Connection* Find(uint32_t slot, uint32_t generation) const;

  size_t live() const { return slots_.size() - free_.size(); }
  template <typename Fn>
  void ForEachLive(Fn&& fn) {
    for (const auto& c : slots_) {
      if (c->state != Connection::State::kFree) fn(*c);
    }
  }

 private:
  std::vector<std::unique_ptr<Connection>> slots_;
  std::vector<uint32_t> free_;
};

// IdleList orders a worker's relaying connections by last activity, oldest first:
// Touch() is O(1), and the idle sweep stops at the first young connection. Each
// list uses one IdleLinks member of Connection (`links`), so a connection can be
// in several lists at once (idle, and each side's).
class IdleList {
 public:
  explicit IdleList(IdleLinks Connection::*links = &Connection::idle) : links_(links) {}
  void Touch(Connection& c, int64_t now_ns);
  void Remove(Connection& c);
  Connection* Oldest() const { return head_; }
  bool Contains(const Connection& c) const { return (c.*links_).prev || head_ == &c; }
  // When c was last touched in this list.
  int64_t LastNs(const Connection& c) const { return (c.*links_).last_ns; }

 private:
  IdleLinks Connection::*links_;
  Connection* head_ = nullptr;
  Connection* tail_ = nullptr;
};

}  // namespace l4lb::relay
