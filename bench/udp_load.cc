// udp_load: the UDP load for bench/compare.py's udp_* phases, one binary with
// three modes, each bounded in time:
//
//   --mode=echo  --listen=127.0.0.2:PORT
//       the backend: one socket, recvmmsg/sendmmsg in batches of 64, sends each
//       request ('R' first byte) back to its source and only counts a flood
//       datagram ('F'; 'W', sent during the warm-up, not even that). On SIGTERM or SIGINT it prints one JSON line (echoed,
//       sunk) and exits: what a flood delivered.
//   --mode=rr    --target=HOST:PORT --clients=64 --size=64 --seconds=4
//       request/response: one socket per client, each bound to its own address
//       (127.0.1.1, 127.0.1.2, ...) and connected to the target, one request
//       outstanding per socket; a reply carries its send time, so each round
//       trip is timed. A request unanswered after --timeout_ms is lost and the
//       socket sends the next. Prints replies/s, p50/p99 RTT and loss.
//   --mode=flood --target=HOST:PORT --clients=64 --size=64 --seconds=4 [--rate=N]
//       one way: the clients take turns sending bursts of --burst datagrams
//       (sendmmsg), as fast as they can or paced to --rate datagrams/s in all.
//       Prints what was sent; the echo server's count says what arrived.
//
// The figures skip the first --warmup_ms (sessions being created). No
// allocation after start-up on any path: buffers are sized once.

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "gflags/gflags.h"

DEFINE_string(mode, "rr", "echo, rr (request/response) or flood (one way)");
DEFINE_string(listen, "127.0.0.2:0", "echo: where to listen");
DEFINE_string(target, "", "rr, flood: where to send (the balancer, or the echo server: direct)");
DEFINE_int32(clients, 64, "rr, flood: client sockets, each on its own source address");
DEFINE_string(source_base, "127.0.1.1",
              "rr, flood: the first client's source address; the others count up from it");
DEFINE_int32(size, 64, "rr, flood: datagram payload bytes (at least 24)");
DEFINE_double(seconds, 4, "rr, flood: how long to send");
DEFINE_int32(warmup_ms, 300, "rr, flood: not counted at the start");
DEFINE_int32(timeout_ms, 200, "rr: a request unanswered this long is lost");
DEFINE_int32(burst, 16, "flood: datagrams per sendmmsg");
DEFINE_int64(rate, 0, "flood: datagrams per second in all; 0: as fast as the clients can");
DEFINE_int32(rcvbuf, 8 << 20, "echo: SO_RCVBUF(FORCE) of the echo socket, bytes");

namespace {

constexpr char kRequest = 'R';
constexpr char kFlood = 'F';
constexpr char kWarmup = 'W';  // a flood datagram sent during the warm-up: dropped uncounted
constexpr size_t kHeader = 24;  // kind, pad, u64 client<<32|seq, u64 send time (ns)
constexpr int kBatch = 64;

volatile sig_atomic_t g_stop = 0;

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "udp_load: %s: %s\n", what.c_str(), strerror(errno));
  std::exit(2);
}

// "HOST:PORT", IPv4 only: the benchmark runs on loopback.
sockaddr_in ParseAddress(const std::string& text) {
  const size_t colon = text.rfind(':');
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  if (colon == std::string::npos ||
      inet_pton(AF_INET, text.substr(0, colon).c_str(), &sin.sin_addr) != 1) {
    std::fprintf(stderr, "udp_load: \"%s\": want IPV4:PORT\n", text.c_str());
    std::exit(2);
  }
  sin.sin_port = htons(static_cast<uint16_t>(std::atoi(text.c_str() + colon + 1)));
  return sin;
}

void OnSignal(int) { g_stop = 1; }

int RunEcho() {
  sockaddr_in addr = ParseAddress(FLAGS_listen);
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die("socket");
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  // Root ignores rmem_max with FORCE; otherwise the plain option, capped.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &FLAGS_rcvbuf, sizeof(FLAGS_rcvbuf)) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &FLAGS_rcvbuf, sizeof(FLAGS_rcvbuf));
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) Die("bind " + FLAGS_listen);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  // The stop flag is looked at whenever a receive times out.
  timeval tv{.tv_sec = 0, .tv_usec = 100'000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sigaction sa{};
  sa.sa_handler = OnSignal;  // no SA_RESTART: the receive returns EINTR
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::printf("{\"listening\": %u}\n", ntohs(addr.sin_port));
  std::fflush(stdout);

  constexpr size_t kMax = 65536;
  std::vector<char> buffers(size_t{kBatch} * kMax);
  std::vector<sockaddr_in> names(kBatch);
  std::vector<iovec> iov(kBatch), out_iov(kBatch);
  std::vector<mmsghdr> in(kBatch), out(kBatch);
  uint64_t echoed = 0, sunk = 0;
  while (!g_stop) {
    for (int i = 0; i < kBatch; ++i) {
      iov[i] = {.iov_base = &buffers[size_t(i) * kMax], .iov_len = kMax};
      in[i].msg_hdr = msghdr{};
      in[i].msg_hdr.msg_name = &names[i];
      in[i].msg_hdr.msg_namelen = sizeof(names[i]);
      in[i].msg_hdr.msg_iov = &iov[i];
      in[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = recvmmsg(fd, in.data(), kBatch, MSG_WAITFORONE, nullptr);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      Die("recvmmsg");
    }
    int replies = 0;
    for (int i = 0; i < n; ++i) {
      const char* data = static_cast<const char*>(iov[i].iov_base);
      if (in[i].msg_len > 0 && (data[0] == kFlood || data[0] == kWarmup)) {
        sunk += data[0] == kFlood;
        continue;
      }
      out_iov[replies] = {.iov_base = iov[i].iov_base, .iov_len = in[i].msg_len};
      out[replies].msg_hdr = msghdr{};
      out[replies].msg_hdr.msg_name = &names[i];
      out[replies].msg_hdr.msg_namelen = in[i].msg_hdr.msg_namelen;
      out[replies].msg_hdr.msg_iov = &out_iov[replies];
      out[replies].msg_hdr.msg_iovlen = 1;
      ++replies;
    }
    for (int done = 0; done < replies;) {
      const int sent = sendmmsg(fd, out.data() + done, replies - done, 0);
      if (sent <= 0) break;  // a full buffer drops the rest, as the network would
      done += sent;
      echoed += sent;
    }
  }
  std::printf("{\"echoed\": %llu, \"sunk\": %llu}\n", static_cast<unsigned long long>(echoed),
              static_cast<unsigned long long>(sunk));
  return 0;
}

// Client sockets: the i-th bound to source_base + i, connected to the target.
std::vector<int> OpenClients() {
  const sockaddr_in target = ParseAddress(FLAGS_target);
  in_addr base{};
  if (inet_pton(AF_INET, FLAGS_source_base.c_str(), &base) != 1) {
    std::fprintf(stderr, "udp_load: --source_base=%s: not an IPv4 address\n",
                 FLAGS_source_base.c_str());
    std::exit(2);
  }
  std::vector<int> fds;
  for (int i = 0; i < FLAGS_clients; ++i) {
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) Die("socket");
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(ntohl(base.s_addr) + i);
    if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) Die("bind source");
    if (connect(fd, reinterpret_cast<const sockaddr*>(&target), sizeof(target)) != 0) {
      Die("connect " + FLAGS_target);
    }
    fds.push_back(fd);
  }
  return fds;
}

void Fill(char* buf, char kind, uint64_t id, int64_t sent_ns) {
  buf[0] = kind;
  memcpy(buf + 8, &id, sizeof(id));
  memcpy(buf + 16, &sent_ns, sizeof(sent_ns));
}

int RunRequestResponse() {
  const std::vector<int> fds = OpenClients();
  const size_t n = fds.size();
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) Die("epoll_create1");
  for (size_t i = 0; i < n; ++i) {
    epoll_event ev{.events = EPOLLIN, .data = {.u64 = i}};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) != 0) Die("epoll_ctl");
  }
  struct Outstanding {
    uint32_t seq = 0;
    int64_t sent_ns = 0;
    bool waiting = false;
  };
  std::vector<Outstanding> out(n);
  std::vector<char> buf(std::max<size_t>(FLAGS_size, 65536));
  std::vector<uint32_t> rtt_ns;  // one per counted reply
  rtt_ns.reserve(static_cast<size_t>(FLAGS_seconds * 2'000'000));
  const int64_t start = NowNs();
  const int64_t count_from = start + int64_t{FLAGS_warmup_ms} * 1'000'000;
  const int64_t stop_sending = start + static_cast<int64_t>(FLAGS_seconds * 1e9);
  const int64_t timeout_ns = int64_t{FLAGS_timeout_ms} * 1'000'000;
  uint64_t sent = 0, lost = 0, late = 0, send_errors = 0;

  const auto send_next = [&](size_t i, int64_t now) {
    if (now >= stop_sending) {
      out[i].waiting = false;
      return;
    }
    ++out[i].seq;
    Fill(buf.data(), kRequest, uint64_t{i} << 32 | out[i].seq, now);
    out[i].sent_ns = now;
    out[i].waiting = true;
    if (send(fds[i], buf.data(), FLAGS_size, 0) != FLAGS_size) {
      ++send_errors;  // counted lost when it times out
    }
    if (now >= count_from) ++sent;
  };

  for (size_t i = 0; i < n; ++i) send_next(i, NowNs());
  epoll_event events[256];
  int64_t next_scan = start + 5'000'000;
  for (;;) {
    const int ready = epoll_wait(ep, events, 256, 5);
    int64_t now = NowNs();
    for (int e = 0; e < ready; ++e) {
      const size_t i = events[e].data.u64;
      // One reply is due per socket; keep reading only past stale ones.
      for (;;) {
        const ssize_t got = recv(fds[i], buf.data(), buf.size(), 0);
        if (got < 0) break;
        uint64_t id;
        memcpy(&id, buf.data() + 8, sizeof(id));
        int64_t sent_ns;
        memcpy(&sent_ns, buf.data() + 16, sizeof(sent_ns));
        if (got < static_cast<ssize_t>(kHeader) || !out[i].waiting ||
            static_cast<uint32_t>(id) != out[i].seq) {
          ++late;
          continue;
        }
        now = NowNs();
        if (sent_ns >= count_from) rtt_ns.push_back(static_cast<uint32_t>(now - sent_ns));
        send_next(i, now);
        break;
      }
    }
    if (now >= next_scan) {
      next_scan = now + 5'000'000;
      bool any = false;
      for (size_t i = 0; i < n; ++i) {
        if (!out[i].waiting) continue;
        any = true;
        if (now - out[i].sent_ns < timeout_ns) continue;
        if (out[i].sent_ns >= count_from) ++lost;
        send_next(i, now);
      }
      if (!any && now >= stop_sending) break;
    }
  }
  const double seconds = (stop_sending - count_from) / 1e9;
  std::sort(rtt_ns.begin(), rtt_ns.end());
  const auto pct = [&](double p) {
    return rtt_ns.empty() ? 0.0 : rtt_ns[static_cast<size_t>(p * (rtt_ns.size() - 1))] / 1e3;
  };
  std::printf(
      "{\"mode\": \"rr\", \"clients\": %zu, \"size\": %d, \"sent\": %llu, \"replies\": %zu, "
      "\"lost\": %llu, \"late\": %llu, \"send_errors\": %llu, \"seconds\": %.3f, "
      "\"rate\": %.1f, \"loss\": %.6f, \"p50_us\": %.1f, \"p99_us\": %.1f}\n",
      n, FLAGS_size, static_cast<unsigned long long>(sent), rtt_ns.size(),
      static_cast<unsigned long long>(lost), static_cast<unsigned long long>(late),
      static_cast<unsigned long long>(send_errors), seconds, rtt_ns.size() / seconds,
      sent ? static_cast<double>(lost) / sent : 0.0, pct(0.50), pct(0.99));
  return 0;
}

int RunFlood() {
  const std::vector<int> fds = OpenClients();
  const int burst = std::clamp(FLAGS_burst, 1, kBatch);
  std::vector<char> payload(FLAGS_size, 'x');
  std::vector<iovec> iov(burst, iovec{.iov_base = payload.data(), .iov_len = payload.size()});
  std::vector<mmsghdr> msgs(burst);
  for (int i = 0; i < burst; ++i) {
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  const int64_t start = NowNs();
  const int64_t count_from = start + int64_t{FLAGS_warmup_ms} * 1'000'000;
  const int64_t stop = start + static_cast<int64_t>(FLAGS_seconds * 1e9);
  uint64_t sent = 0, counted = 0, send_errors = 0, counted_errors = 0;
  size_t next = 0;
  for (int64_t now = start; now < stop; now = NowNs()) {
    int want = burst;
    if (FLAGS_rate > 0) {
      const int64_t due = static_cast<int64_t>((now - start) / 1e9 * FLAGS_rate) -
                          static_cast<int64_t>(sent);
      if (due <= 0) {
        const timespec nap{.tv_sec = 0, .tv_nsec = 50'000};
        nanosleep(&nap, nullptr);
        continue;
      }
      want = static_cast<int>(std::min<int64_t>(due, burst));
    }
    // The sunk count carries no id: a warm-up datagram must say so itself.
    payload[0] = now >= count_from ? kFlood : kWarmup;
    const int n = sendmmsg(fds[next], msgs.data(), want, 0);
    next = (next + 1) % fds.size();
    const int ok = n < 0 ? 0 : n;
    sent += ok;
    if (now >= count_from) counted += ok;
    if (ok < want) {
      ++send_errors;
      if (now >= count_from) counted_errors += want - ok;
    }
  }
  const double seconds = (stop - count_from) / 1e9;
  std::printf(
      "{\"mode\": \"flood\", \"clients\": %zu, \"size\": %d, \"sent\": %llu, \"counted\": %llu, "
      "\"unsent\": %llu, \"send_errors\": %llu, \"seconds\": %.3f, \"rate\": %.1f}\n",
      fds.size(), FLAGS_size, static_cast<unsigned long long>(sent),
      static_cast<unsigned long long>(counted), static_cast<unsigned long long>(counted_errors),
      static_cast<unsigned long long>(send_errors), seconds, counted / seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("UDP load and echo backend for bench/compare.py (see the file comment)");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_mode == "echo") return RunEcho();
  if (FLAGS_target.empty()) {
    std::fprintf(stderr, "udp_load: --target is required for --mode=%s\n", FLAGS_mode.c_str());
    return 2;
  }
  if (FLAGS_size < static_cast<int>(kHeader) || FLAGS_size > 65507 || FLAGS_clients < 1) {
    std::fprintf(stderr, "udp_load: --size must be 24..65507 and --clients at least 1\n");
    return 2;
  }
  if (FLAGS_mode == "rr") return RunRequestResponse();
  if (FLAGS_mode == "flood") return RunFlood();
  std::fprintf(stderr, "udp_load: --mode=%s: want echo, rr or flood\n", FLAGS_mode.c_str());
  return 2;
}
