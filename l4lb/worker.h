#pragma once

#include <linux/time_types.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

#include "l4lb/backend/passive_health.h"
#include "l4lb/backend/snapshot.h"
#include "l4lb/balancer/affinity.h"
#include "l4lb/balancer/policy.h"
#include "l4lb/log/access_log.h"
#include "l4lb/net/address.h"
#include "l4lb/net/keepalive.h"
#include "l4lb/net/source.h"
#include "l4lb/net/socket.h"
#include "l4lb/relay/connection.h"
#include "l4lb/relay/pipe_pool.h"
#include "l4lb/relay/throttle.h"
#include "l4lb/ring/ring.h"
#include "l4lb/ring/tag.h"
#include "l4lb/stats/connection_list.h"
#include "l4lb/stats/counters.h"
#include "l4lb/takeover/outbox.h"
#include "l4lb/tls/sni_routes.h"
#include "l4lb/udp/buffer_ring.h"
#include "l4lb/udp/refusal.h"
#include "l4lb/udp/session_table.h"

struct io_uring_cqe;
struct io_uring_recvmsg_out;

namespace l4lb {

// Worker is one thread with one io_uring ring. It accepts on its own SO_REUSEPORT
// sockets (multishot accept), picks a backend from the service's snapshot,
// connects through the ring with a linked timeout, and relays both directions with
// nonblocking splice(2) driven by multishot POLLIN (one-shot POLLOUT under
// backpressure). relay/connection.h has the state table; every CQE goes through
// Dispatch().
//
// Thread safety: Run() is the thread body and the only code touching the ring and
// the connections. RequestDrain(), RequestForceClose(), finished(), counters() and
// ListConnections() are safe from any thread.
class Worker {
 public:
  struct Service {
    std::string name;  // Server::ServiceName: what a live upgrade's records say
    backend::SnapshotPublisher* publisher = nullptr;  // not owned; outlives the worker
    backend::HashKey hash_key = backend::HashKey::kSrcIp;
    balancer::Balance balance = balancer::Balance::kMaglev;
    double balance_factor = 1.25;
    absl::Duration connect_timeout = absl::Seconds(2);
    int connect_retries = 2;                             // 0..Connection::kMaxAttempts - 1
    absl::Duration idle_timeout = absl::ZeroDuration();  // zero: never
    // Refused/timed-out connects and backend resets go here (the health checker
    // counts them toward fall); null: not reported.
    backend::PassiveHealth* passive = nullptr;
    // Close live connections to a backend the moment it goes DOWN.
    bool kill_on_down = false;
    // SO_KEEPALIVE and its timers on each backend socket; off: none.
    net::Keepalive backend_keepalive;
    // Local addresses for backend sockets, in turn among the backend's family.
    std::vector<net::SocketAddress> source;
    // Backend sockets bound to the client's own address (net/transparent.h).
    bool transparent = false;
    // TCP_FASTOPEN_CONNECT on backend sockets (net/fast_open.h), their SYN
    // retries bounded to last about connect_timeout.
    bool backend_tfo = false;
    int backend_tfo_syn_retries = 1;
    // A connection with one direction ended is cut after this long without a
    // byte (a peer that never finishes its half-close); zero: idle_timeout only.
    absl::Duration client_fin_timeout = absl::ZeroDuration();
    // Per side (HAProxy's timeout client / timeout server): the connection is
    // cut once l4lb has waited this long on that side with no byte moving from
    // or to it (worker_timeouts.cc); zero: off.
    absl::Duration client_timeout = absl::ZeroDuration();
    absl::Duration backend_timeout = absl::ZeroDuration();
    // The service's affinity group's pins (shared by the group's services and
    // every worker); null: Maglev alone picks.
    balancer::AffinityTable* affinity = nullptr;
    // UDP services (listeners with udp set): a session ends after this long
    // without a datagram either way, or after max_responses replies (0: no
    // limit); at most udp_max_sessions per worker, the least recently active goes.
    absl::Duration udp_idle_timeout = absl::Seconds(30);
    uint32_t udp_max_sessions = 100000;
    uint32_t max_responses = 0;
    // Who may connect (shared by the service's workers; not owned); null: anyone.
    admission::Admission* admission = nullptr;
    // TLS passthrough by server name (worker_sni.cc): the routes give service
    // indices, this one's own included when it has backends (the default
    // route). Null: the service's own backends, no byte read before connect.
    std::shared_ptr<const tls::SniRoutes> sni;
    absl::Duration sni_timeout = absl::Seconds(5);  // for the whole ClientHello
  };
  struct Listener {
    net::Fd fd;  // this worker's SO_REUSEPORT socket
    net::SocketAddress address;
    uint16_t service = 0;
    bool udp = false;  // a datagram socket: sessions (worker_udp.cc), not accepts
  };
  struct Options {
    int id = 0;
    std::vector<Service> services;
    std::vector<Listener> listeners;
    // One line per connection and UDP session at its end, handed to the logging
    // thread (never written here); null: no access log. Not owned.
    log::AccessLogQueue* access_log = nullptr;
    relay::PipePool::Options pipes;
    // Splice rounds one flow gets per wakeup before others get a turn.
    int pump_rounds = 16;
    // Size of the worker's copy buffer for small messages (relay/flow.h); 0:
    // always splice. At most the pipe size.
    size_t copy_bytes = 0;
    // TCP_CONGESTION for backend sockets; empty: the kernel's default.
    std::string backend_congestion;
    // After a pass that moved bulk data, poll the ring this long before sleeping
    // (worker.cc); zero: always sleep at once.
    absl::Duration busy_poll = absl::ZeroDuration();
    // The process-wide --max_connections (not owned); null: no bound.
    admission::Admission* global_admission = nullptr;
    // How often idle connections are swept and failed accepts re-armed.
    absl::Duration tick = absl::Milliseconds(100);
    // A live upgrade's new process: accept only after ReleaseAccepts() (the
    // previous process accepts on the same sockets until it hands over).
    bool hold_accepts = false;
  };

  explicit Worker(Options options);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker();

  // The thread body. Sets `ready` once the ring is up (or failed to come up) and
  // returns after a drain, when no connection is left.
  void Run(std::promise<absl::Status> ready);

  // Every worker's counters of each service (`peers[service][worker]`), for the
  // policies that weigh backends by load. Before Run(); they outlive it.
  void SetPeers(const std::vector<std::vector<const stats::ServiceCounters*>>& peers);
  // Stop accepting; live connections go on.
  void RequestDrain();
  // A reload: the next config's workers accept and receive on these same
  // sockets now (l4lb/reload/). Stop accepting and receiving, but serve what
  // was already accepted or received (no client may see a refusal), and keep
  // the UDP listeners open for the replies of live sessions.
  void RequestHandover();
  // What a reload removed (Server::HandOver): what the next config no longer
  // has. A replaced config's connections go on until they end, but those of a
  // removed service, backend or listener only until the drain timeout.
  struct Removed {
    std::vector<bool> services;               // per service index
    std::vector<std::vector<bool>> backends;  // per service, per backend index
    std::vector<std::pair<bool, net::SocketAddress>> listeners;  // (udp, bound address)
  };
  // The drain timeout after a handover: cut those (reset, like any cut).
  void RequestCut(Removed removed);
  // Close every live connection now (the drain timeout ran out).
  void RequestForceClose();
  bool finished() const { return finished_.load(std::memory_order_acquire); }

  // A live upgrade (l4lb/takeover/, worker_takeover.cc). In the running
  // process: pause accepting (the sockets stay open and keep queueing: the
  // next process accepts on them once it has everything), then hand each
  // relaying connection to `out`, between pumps with no request in flight;
  // connections still connecting go too once they relay; out->WorkerDone()
  // when none is left. The handed ones stay here, unpolled, until:
  // False (and nothing asked of `out`) if the worker has already exited.
  bool RequestExport(takeover::Outbox* out);
  // handed_over: the next process has them; close this process's copies (no
  // FIN, no reset: the sockets live on there). Else the takeover failed: take
  // them back (relay and accept again, as if nothing happened).
  void RequestExportEnd(bool handed_over);
  // In the next process: a connection the previous one handed over, placed
  // in this config (indices) with its sockets and pipes.
  struct Adoption {
    uint16_t service = 0;
    uint16_t front = 0;
    uint16_t listener = 0;  // index among this worker's TCP listeners
    int backend = 0;
    net::SocketAddress client;
    net::SocketAddress target;
    int64_t age_ns = 0;
    bool proxy_screen = false;
    bool half_closed = false;
    relay::Flow::Saved up;
    relay::Flow::Saved down;
    net::Fd client_fd;
    net::Fd backend_fd;
    net::Fd up_pipe[2];  // read, write; invalid when the flow parked no bytes
    net::Fd down_pipe[2];
  };
  // A UDP session the previous process handed over (its backend socket).
  struct UdpAdoption {
    uint16_t service = 0;
    uint16_t listener = 0;  // index among this worker's UDP listeners
    int backend = 0;
    net::SocketAddress client;
    net::SocketAddress target;
    net::SocketAddress local;  // family 0: the listener's own address
    int64_t age_ns = 0;
    int64_t idle_ns = 0;
    uint32_t responses = 0;
    net::Fd fd;
  };
  // Relays them from the next wakeup on, as if they had always been here.
  void Adopt(std::vector<Adoption> adoptions, std::vector<UdpAdoption> sessions = {});
  // Options::hold_accepts: start accepting now.
  void ReleaseAccepts();
  const stats::WorkerCounters& counters() const { return counters_; }
  // The worker's live TCP connections, listed by its own thread at the next
  // wakeup (stats/connection_list.h); nullopt if it did not answer in `timeout`.
  std::optional<std::vector<stats::LiveConnection>> ListConnections(
      const stats::ConnectionList::Request& request, absl::Duration timeout);

 private:
  struct ServiceState {
    Service options;
    uint64_t generation = 0;  // of the snapshot below, from the publisher
    std::shared_ptr<const backend::BackendSnapshot> snapshot;
    relay::IdleList idle;         // relaying, by last activity (idle_timeout)
    relay::IdleList half_closed;  // the same once half-closed (client_fin_timeout)
    int64_t fin_timeout_ns = 0;
    // client_timeout / backend_timeout: each side's list (relay::Connection::client_idle).
    relay::IdleList client_idle{&relay::Connection::client_idle};
    relay::IdleList backend_idle{&relay::Connection::backend_idle};
    int64_t client_timeout_ns = 0;
    int64_t backend_timeout_ns = 0;
    __kernel_timespec connect_timeout{};  // the link timeout reads it at submit
    int64_t idle_timeout_ns = 0;
    // The service's client_bandwidth buckets; null: its flows read freely.
    admission::ClientLimits* bandwidth = nullptr;
    // The balancing policy's state (balancer/policy.h) and what it counts as a
    // backend's load: every worker's relayed connections (their own counters,
    // peers below) plus this worker's connects in flight, per backend.
    std::optional<balancer::Picker> picker;
    std::vector<uint32_t> connecting;
    size_t next_source = 0;  // Service::source: the next one to try
    std::vector<const stats::ServiceCounters*> peers;  // every worker's, this one's too
  };
  struct ListenerState {
    Listener listener;
    bool accepting = false;   // a multishot accept is armed
    int64_t retry_at_ns = 0;  // > 0: re-arm the accept then (after EMFILE)
  };
  struct UdpListenerState {
    Listener listener;
    bool receiving = false;  // a multishot recvmsg is armed
  };

  void Dispatch(const io_uring_cqe& cqe);
  // Accepting.
  void ArmAccept(uint32_t index);
  void OnAccept(uint32_t index, const io_uring_cqe& cqe);
  void OnNewClient(int fd, uint32_t index);
  // After accept, or after the peer's PROXY header gave the real client:
  // admission, then the first backend.
  void AdmitAndConnect(relay::Connection& c);
  // PROXY protocol (worker_proxy.cc): a peer in accept_proxy_from must send a
  // header first; send_proxy writes one to the backend before any client byte.
  void StartProxyHandshake(relay::Connection& c);
  void OnProxyReadable(relay::Connection& c, const io_uring_cqe& cqe);
  void ExpireProxyHandshakes();
  // A peer outside accept_proxy_from (proxy_screen): peeks at its first bytes
  // and starts the up flow once they are not a PROXY signature, closes the
  // connection (bad_proxy) if they are, waits (bounded) while they are a prefix.
  // hup, urgent: the poll saw the client's FIN, urgent data.
  void ScreenFirstBytes(relay::Connection& c, bool hup, bool urgent);
  bool SendProxyHeader(relay::Connection& c);
  // SNI routing (worker_sni.cc): peek at an admitted client's ClientHello
  // (bounded in bytes and by sni_timeout), then connect to the backends of the
  // service its server name routes to.
  void StartSniPeek(relay::Connection& c);
  void OnSniReadable(relay::Connection& c, const io_uring_cqe& cqe);
  void RouteBySni(relay::Connection& c, const std::string& server_name);
  void RejectTls(relay::Connection& c, absl::string_view why);  // bad_tls
  void ExpireSniPeeks();
  // Asks the service's and the process's gates about `client` (admission/);
  // kNone admits and fills the passes, which Leave() gives back. `global` null:
  // not under --max_connections (UDP sessions).
  admission::Refusal Admit(uint16_t service, const net::SocketAddress& client,
                           admission::Admission::Pass* pass, admission::Admission::Pass* global);
  void Leave(uint16_t service, const net::SocketAddress& client, admission::Admission::Pass* pass,
             admission::Admission::Pass* global);
  // Connecting.
  void Connect(relay::Connection& c);
  // The backend c's client is pinned to (affinity), if it is up and untried; else kNone.
  int PinnedBackend(const relay::Connection& c);
  // The service's policy's pick for c among the backends not yet tried.
  int PickBackend(const relay::Connection& c);
  void OnConnect(relay::Connection& c, int res);
  void StartRelay(relay::Connection& c);
  // Relaying.
  void ArmPoll(relay::Connection& c, ring::Op op);
  void OnReadiness(relay::Connection& c, ring::Op op, const io_uring_cqe& cqe);
  // source_hup, source_urgent: the poll saw the source's FIN, urgent data
  // (Flow::Pump). Returns what the flow waits for, after acting on it (POLLOUT
  // armed, queued, closed).
  relay::Flow::Wait Pump(relay::Connection& c, bool up, bool source_hup = false,
                         bool source_urgent = false);
  void RunQueued();
  // Closing.
  // One side reset or failed: deliver what it sent to the other, then reset both.
  void OnPeerFailed(relay::Connection& c, bool client_failed);
  void ContinueFlush(relay::Connection& c);
  // Flushing connections waiting for the survivor's ACKs (worker loop).
  void CheckFlushing();
  void Close(relay::Connection& c, relay::CloseReason reason);
  // Cancels the request `op` of c by its exact tag.
  void Cancel(relay::Connection& c, ring::Op op);
  void OnSettled(relay::Connection& c);
  void LogClose(const relay::Connection& c);
  // UDP (worker_udp.cc).
  absl::Status StartUdp();
  void ArmUdpRecv(uint32_t index);
  void OnUdpRecv(uint32_t index, const io_uring_cqe& cqe);
  // `local`: where the client sent it (family 0 when the listener is not a wildcard).
  // True if a send on the ring now holds `buffer` (it goes back at the send's CQE).
  bool OnClientDatagram(uint32_t index, const net::SocketAddress& client,
                        const net::SocketAddress& local, const char* data, size_t len,
                        uint16_t buffer);
  // A session for `client` on a backend not in `tried`, its receive armed; null
  // (and logged) when no backend is left or no socket can be had.
  // `pass`: the client's place under the service's limits (admitted, or moved
  // from its previous session); the new session takes it, or it goes back.
  udp::Session* NewUdpSession(uint32_t index, const net::SocketAddress& client,
                              const net::SocketAddress& local, absl::Span<const uint32_t> tried,
                              admission::Admission::Pass& pass);
  // Queues the send of a datagram held in provided buffer `buffer`: up, to s's
  // backend; else a reply to s's client from the address it wrote to. The ring
  // carries it at the next submit; its CQE (OnUdpSent) recycles the buffer.
  void QueueUdpSend(udp::Session& s, bool up, uint16_t buffer, const char* data, size_t len);
  // Adds a datagram to s's send still waiting in the SQ, if the rules of
  // UDP_SEGMENT allow (worker_udp.cc); false: it needs a send of its own.
  bool JoinUdpSend(udp::Session& s, uint16_t buffer, const char* data, size_t len);
  void OnUdpSent(uint16_t buffer, const io_uring_cqe& cqe);
  // A send to s's backend failed with errno `err`: what a synchronous send did
  // then (an ICMP's error cleared and the datagram sent again, or the session
  // moved off a refusing backend), with the datagram still in its buffer.
  // err 0: not tried yet. The datagram is not counted; the session it left on
  // counts it and is returned, or null when it was dropped.
  udp::Session* RecoverUpstream(udp::Session& s, int err, const char* data, size_t len);
  struct UdpSend;  // below, with the members
  // The same for each datagram of a failed send (several when UDP_SEGMENT
  // joined them), in order; a session it moves to takes the rest.
  void RecoverUpstreamSend(udp::Session& s, int err, const UdpSend& send);
  // Counts a datagram forwarded on s (when queued); `sign` -1 takes it back.
  void CountUdpForwarded(udp::Session& s, bool up, size_t len, int sign);
  void ArmUdpSessionRecv(udp::Session& s);
  void OnUdpSessionRecv(udp::Session& s, const io_uring_cqe& cqe);
  void CloseUdpSession(udp::Session& s, const char* reason);
  void OnUdpSessionSettled(udp::Session& s);
  // Ends s now and gives back its fd and local port at once, for a new session.
  void EvictUdpSession(udp::Session& s);
  // The least recently active session of any service, or null.
  udp::Session* OldestUdpSession() const;
  // What errno `err` of a send or receive on s's socket means (udp/refusal.h):
  // only kRefused, an ICMP answering s's last datagram, counts against the backend.
  udp::SocketError SessionSocketError(udp::Session& s, int err);
  void ExpireUdpSessions();
  // A multishot recvmsg on fd into the worker's provided buffers, tagged `tag`.
  void PrepUdpRecv(int fd, uint64_t tag);
  // The datagram in the buffer a recvmsg CQE names (it has IORING_CQE_F_BUFFER),
  // or nullopt if it is malformed or was truncated.
  struct Datagram {
    io_uring_recvmsg_out* out;  // header; the source address follows it
    const char* data;
    size_t len;
  };
  std::optional<Datagram> ReadDatagram(const io_uring_cqe& cqe);
  // Hands the buffer a CQE names (if any) back to the kernel.
  void RecycleUdpBuffer(const io_uring_cqe& cqe);
  // Housekeeping.
  void ArmWake();
  void OnWake(const io_uring_cqe& cqe);
  void AnswerConnectionList();
  void OnTick();
  void StopAccepting();
  // Cancels listener `index`'s multishot accept (kAccept) or recvmsg (kUdpRecv);
  // the cancel's CQE is a kStopAccept.
  void CancelListening(ring::Op op, uint32_t index);
  void CutRemoved(const Removed& removed);
  // The idle list c belongs in (idle, or half_closed once one direction has
  // ended and client_fin_timeout is set): Touch after activity, Forget at the end.
  void TouchIdle(relay::Connection& c);
  void ForgetIdle(relay::Connection& c);
  // One direction of c has ended: from now on client_fin_timeout bounds its silence.
  void OnHalfClosed(relay::Connection& c);
  // client_timeout / backend_timeout (worker_timeouts.cc): after a pump (or at
  // the relay's start) of c, which of its sides moved a byte; Forget at the end
  // of the relay; Expire on each tick.
  void UpdateSideTimers(relay::Connection& c, bool client_moved, bool backend_moved);
  void ForgetSideTimers(relay::Connection& c);
  void ExpireSideTimers();
  void RefreshSnapshots();
  void CloseConnectionsToDownBackends(uint16_t service_index);
  // Tells the health checker (through PassiveHealth) that `backend` of
  // `service` failed `client`'s traffic (a TCP connection's or a UDP session's).
  // Only what proves the backend unwell may be reported (backend/passive_health.h).
  void ReportBackendFailure(uint16_t service, int backend, const net::SocketAddress& client);
  bool Drained() const;
  // A live upgrade (worker_takeover.cc).
  void OnTakeoverWake();
  void BeginExport();
  void BeginExportOf(relay::Connection& c);
  void OnExportSettled(relay::Connection& c);
  // Every connection that can go has gone: tell the outbox (once).
  void CheckExportDone();
  void EndExport(bool handed_over);
  void ReleaseHandedOver(relay::Connection& c);
  void ResumeRelay(relay::Connection& c);
  void AdoptOne(Adoption& a);
  void AdoptUdpSession(UdpAdoption& a);
  void ExportUdpSessions();
  void ReleaseHandedOverSession(udp::Session& s);
  void PauseAccepts();
  void ResumeAccepts();

  Options options_;
  std::vector<ServiceState> services_;
  std::vector<ListenerState> listeners_;
  std::vector<UdpListenerState> udp_listeners_;
  std::optional<udp::BufferRing> udp_buffers_;  // only with UDP listeners
  // A datagram on its way out through the ring, by the provided buffer it sits
  // in (one datagram per buffer): whose it is, and the sendmsg header of a
  // reply from a wildcard listener (the kernel reads it at submit).
  // Datagrams of one session that follow each other in a pass join the send
  // of the first (UDP_SEGMENT: one trip down the stack for all of them); their
  // buffers are listed in it and go back at its CQE.
  static constexpr int kUdpMaxSegments = 64;
  struct UdpSend {
    uint32_t session_slot = 0;
    uint32_t session_generation = 0;
    bool up = false;
    const char* data = nullptr;  // the first datagram
    uint32_t len = 0;
    uint32_t total = 0;     // bytes of all its datagrams
    uint16_t segments = 1;  // datagrams in this send
    bool short_tail = false;  // the last is shorter than the first: nothing may follow
    uint16_t buffers[kUdpMaxSegments];
    iovec iov[kUdpMaxSegments];
    msghdr msg{};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
  };
  std::vector<UdpSend> udp_sends_;  // indexed by the first datagram's buffer id
  // The last send queued, while its SQE is still unsubmitted (ring tail then).
  struct UdpOpenSend {
    io_uring_sqe* sqe = nullptr;
    unsigned sqe_tail = 0;
    uint16_t buffer = 0;
  };
  UdpOpenSend udp_open_send_;
  std::unique_ptr<udp::SessionTable> sessions_;
  msghdr udp_msghdr_{};  // the multishot recvmsg's layout: room for the source address
  std::optional<ring::Ring> ring_;
  relay::ConnectionTable connections_;
  relay::PipePool pipes_;
  std::vector<char> copy_buffer_;                      // relay/flow.h: the small-message copy path
  std::vector<std::pair<uint32_t, uint32_t>> queued_;  // (slot, generation) to pump again
  // (slot, generation) of connections waiting for a PROXY header, oldest first.
  std::vector<std::pair<uint32_t, uint32_t>> proxy_handshakes_;
  // (slot, generation) of connections waiting for their ClientHello, oldest
  // first, and the one buffer their peeks go to (allocated at the first).
  std::vector<std::pair<uint32_t, uint32_t>> sni_peeks_;
  std::vector<uint8_t> sni_buffer_;
  // (slot, generation) of kFlushing connections waiting for their survivor's ACKs.
  std::vector<std::pair<uint32_t, uint32_t>> flushing_;
  // Connections waiting for their client's bandwidth bucket (client_bandwidth).
  relay::Throttle throttle_;
  stats::WorkerCounters counters_;
  net::Fd wake_fd_;  // eventfd: other threads write, the ring polls it
  stats::ConnectionList connection_list_;
  bool draining_ = false;
  bool handover_ = false;  // the drain is a reload's: serve what comes in meanwhile
  int stop_accepts_in_flight_ = 0;
  int64_t now_ns_ = 0;
  bool bulk_pass_ = false;  // this pass moved at least kBulkBytes on one flow
  int64_t last_pipe_trim_ns_ = 0;
  std::atomic<bool> drain_requested_{false};
  std::atomic<bool> handover_requested_{false};
  std::mutex cut_mu_;
  std::optional<Removed> cut_request_ ABSL_GUARDED_BY(cut_mu_);
  std::atomic<bool> cut_requested_{false};
  std::atomic<bool> force_close_requested_{false};
  // A live upgrade: requests from the takeover thread, and this thread's state.
  std::atomic<takeover::Outbox*> export_requested_{nullptr};
  std::atomic<int> export_end_requested_{0};  // 1: handed over, 2: failed
  std::atomic<bool> release_accepts_requested_{false};
  std::mutex adopt_mu_;
  std::vector<Adoption> adoptions_ ABSL_GUARDED_BY(adopt_mu_);
  std::vector<UdpAdoption> udp_adoptions_ ABSL_GUARDED_BY(adopt_mu_);
  // Whether Run() has ended: an export asked after it would never be answered.
  std::mutex takeover_mu_;
  bool run_over_ ABSL_GUARDED_BY(takeover_mu_) = false;
  takeover::Outbox* exporting_to_ = nullptr;
  bool export_reported_ = false;  // WorkerDone() said
  bool accepts_paused_ = false;
  std::atomic<bool> finished_{false};
};

}  // namespace l4lb
