// Micro-benchmarks of the per-connection and per-message hot paths:
//  - BM_ConnectionSetup: the user-space work between accept and connect (client
//    address -> flow key -> Maglev pick with the retry bookkeeping, connection
//    slot, idle list) and its teardown, with N connections already live;
//  - BM_IdleTouch: the idle-list update every relayed burst pays;
//  - BM_CqeLookup: tag decode + slot lookup every CQE pays;
//  - BM_Pump: one message of N bytes relayed by Flow::Pump between real loopback
//    TCP sockets, copy path vs splice path: the figures behind --copy_bytes.
//
//   bazel run -c opt //bench:relay_benchmark

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "glog/logging.h"

#include "l4lb/backend/backend_set.h"
#include "l4lb/backend/snapshot.h"
#include "l4lb/net/address.h"
#include "l4lb/relay/connection.h"
#include "l4lb/relay/flow.h"
#include "l4lb/relay/pipe_pool.h"
#include "l4lb/ring/tag.h"

namespace l4lb::relay {
namespace {

std::shared_ptr<const backend::BackendSnapshot> TenBackends() {
  absl::StatusOr<std::vector<backend::BackendSpec>> specs = backend::ParseBackendList(
      "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80,10.0.0.4:80,10.0.0.5:80,10.0.0.6:80,10.0.0.7:80,"
      "10.0.0.8:80,10.0.0.9:80,10.0.0.10:80");
  CHECK(specs.ok()) << specs.status();
  auto snapshot = backend::BackendSnapshot::Build(*std::move(specs), {}, {});
  CHECK(snapshot.ok()) << snapshot.status();
  return *snapshot;
}

sockaddr_in ClientAddress(uint32_t i) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(0x0A000000u | (i & 0xFFFFFF));
  sa.sin_port = htons(static_cast<uint16_t>(1024 + i % 60000));
  return sa;
}

void BM_ConnectionSetup(benchmark::State& state) {
  const auto snapshot = TenBackends();
  ConnectionTable table;
  IdleList idle;
  std::vector<Connection*> live;
  for (int64_t i = 0; i < state.range(0); ++i) {
    Connection* c = table.Alloc();
    idle.Touch(*c, i);
    live.push_back(c);
  }
  uint32_t i = 0;
  int64_t now = state.range(0);
  for (auto _ : state) {
    const sockaddr_in sa = ClientAddress(++i);
    Connection& c = *table.Alloc();
    c.snapshot = snapshot;
    c.client = net::SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
    c.key = backend::FlowKey(c.client, backend::HashKey::kSrcIp);
    c.backend = c.snapshot->Pick(c.key, absl::MakeConstSpan(c.tried, c.attempts));
    c.tried[c.attempts++] = static_cast<uint32_t>(c.backend);
    idle.Touch(c, ++now);
    benchmark::DoNotOptimize(c.backend);
    idle.Remove(c);
    table.Free(&c);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ConnectionSetup)->Arg(0)->Arg(7000);

void BM_IdleTouch(benchmark::State& state) {
  ConnectionTable table;
  IdleList idle;
  std::vector<Connection*> live;
  for (int64_t i = 0; i < state.range(0); ++i) {
    live.push_back(table.Alloc());
    idle.Touch(*live.back(), i);
  }
  int64_t now = state.range(0);
  size_t i = 0;
  for (auto _ : state) {
    idle.Touch(*live[i], ++now);
    i = (i + 7919) % live.size();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IdleTouch)->Arg(7000);

void BM_CqeLookup(benchmark::State& state) {
  ConnectionTable table;
  std::vector<uint64_t> tags;
  for (int64_t i = 0; i < state.range(0); ++i) {
    Connection* c = table.Alloc();
    tags.push_back(ring::Tag::Encode(ring::Op::kClientReadable, c->generation, c->slot));
  }
  size_t i = 0;
  for (auto _ : state) {
    const ring::Tag tag = ring::Tag::Decode(tags[i]);
    benchmark::DoNotOptimize(table.Find(tag.slot, tag.generation));
    i = (i + 7919) % tags.size();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CqeLookup)->Arg(7000);

// Two connected nonblocking loopback TCP sockets.
struct TcpPair {
  int a = -1, b = -1;
  TcpPair() {
    const int listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    CHECK_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), len), 0);
    CHECK_EQ(listen(listener, 1), 0);
    CHECK_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    a = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_EQ(connect(a, reinterpret_cast<sockaddr*>(&addr), len), 0);
    b = accept(listener, nullptr, nullptr);
    close(listener);
    fcntl(b, F_SETFL, O_NONBLOCK);
  }
  ~TcpPair() {
    close(a);
    close(b);
  }
};

// Args: message bytes, copy buffer bytes (0: splice only). Per iteration: the
// sender writes one message, Flow::Pump relays it, the receiver reads it, so
// every row pays the same write and read; the difference is the relay.
void BM_Pump(benchmark::State& state) {
  const size_t message = static_cast<size_t>(state.range(0));
  TcpPair source, destination;
  PipePool pool({.pipe_size = 262144});
  std::vector<char> copy_buffer(static_cast<size_t>(state.range(1)));
  Flow flow(source.b, destination.a);
  const std::string payload(message, 'x');
  std::vector<char> sink(message);
  for (auto _ : state) {
    CHECK_EQ(write(source.a, payload.data(), message), static_cast<ssize_t>(message));
    size_t got = 0;
    while (got < message) {
      flow.Pump(pool, 16, absl::MakeSpan(copy_buffer));
      const ssize_t n = read(destination.b, sink.data(), message - got);
      if (n > 0) got += static_cast<size_t>(n);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * message));
}
BENCHMARK(BM_Pump)
    ->ArgNames({"bytes", "copy_bytes"})
    ->ArgsProduct({{64, 1024, 4096, 16384, 65536}, {0, 16384, 65536}});

}  // namespace
}  // namespace l4lb::relay
