// Maglev micro-benchmarks: table build for 10/100/1000 backends, Pick() cost, and
// the disruption of removing one backend next to its ideal (Envoy's
// maglev_lb_benchmark puts percent_different beside the optimum the same way).
//
//   bazel run -c opt //bench:maglev_benchmark

#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"

#include "l4lb/backend/backend_set.h"
#include "l4lb/backend/snapshot.h"
#include "l4lb/balancer/flow_hash.h"
#include "l4lb/balancer/maglev.h"

namespace l4lb::balancer {
namespace {

std::vector<MaglevTable::Backend> MakeBackends(int n) {
  std::vector<MaglevTable::Backend> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(
        {.name = "10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".1:80"});
  }
  return out;
}

void BM_Build(benchmark::State& state) {
  const auto backends = MakeBackends(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    absl::StatusOr<MaglevTable> table = MaglevTable::Build(backends, {});
    benchmark::DoNotOptimize(table);
  }
  state.counters["backends"] = static_cast<double>(backends.size());
}
BENCHMARK(BM_Build)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

void BM_Pick(benchmark::State& state) {
  const absl::StatusOr<MaglevTable> table =
      MaglevTable::Build(MakeBackends(static_cast<int>(state.range(0))), {});
  uint64_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(table->Pick(Mix64(++i)));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Pick)->Arg(10)->Arg(1000);

// The whole per-connection key path: hash a 16-byte client address, then pick.
void BM_FlowKeyAndPick(benchmark::State& state) {
  const absl::StatusOr<MaglevTable> table = MaglevTable::Build(MakeBackends(10), {});
  uint8_t ip[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 0};
  uint32_t i = 0;
  for (auto _ : state) {
    ++i;
    ip[13] = static_cast<uint8_t>(i >> 16);
    ip[14] = static_cast<uint8_t>(i >> 8);
    ip[15] = static_cast<uint8_t>(i);
    benchmark::DoNotOptimize(table->Pick(StableHash64(absl::MakeConstSpan(ip))));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FlowKeyAndPick);

// Fraction of keys that change backend when 1 of N goes away, over the ideal 1/N.
void BM_RemoveOne(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const auto all = MakeBackends(n);
  auto fewer = all;
  fewer.erase(fewer.begin() + n / 2);
  double moved_fraction = 0;
  for (auto _ : state) {
    const absl::StatusOr<MaglevTable> before = MaglevTable::Build(all, {});
    const absl::StatusOr<MaglevTable> after = MaglevTable::Build(fewer, {});
    std::mt19937_64 rng(20161);
    int moved = 0;
    constexpr int kKeys = 1'000'000;
    for (int k = 0; k < kKeys; ++k) {
      const uint64_t key = rng();
      moved += all[before->Pick(key)].name != fewer[after->Pick(key)].name;
    }
    moved_fraction = static_cast<double>(moved) / kKeys;
  }
  state.counters["moved_fraction"] = moved_fraction;
  state.counters["ideal_fraction"] = 1.0 / n;
  state.counters["moved_over_ideal"] = moved_fraction * n;
}
BENCHMARK(BM_RemoveOne)->Arg(10)->Arg(100)->Unit(benchmark::kMillisecond)->Iterations(1);

// A large farm (issue 17): what the health checker does when one of N backends
// changes state: a snapshot with the new health (no table rebuild: health is
// applied at pick time) published to the workers, and the full build a reload
// or a weight change costs (both Maglev tables, 65537 slots).
std::vector<backend::BackendSpec> Specs(int n) {
  std::string list;
  for (int i = 0; i < n; ++i) {
    if (i > 0) list += ",";
    list += "10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".1:80";
  }
  return *backend::ParseBackendList(list);
}

void BM_PublishHealthChange(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  auto first = backend::BackendSnapshot::Build(Specs(n), {}, {});
  backend::SnapshotPublisher publisher(*first);
  std::vector<bool> healthy(n, true);
  int i = 0;
  for (auto _ : state) {
    healthy[i % n] = !healthy[i % n];  // one backend goes DOWN, or back UP
    ++i;
    publisher.Publish(publisher.Current()->WithHealth(healthy));
  }
  state.counters["backends"] = n;
}
BENCHMARK(BM_PublishHealthChange)->Arg(10)->Arg(1000)->Unit(benchmark::kMicrosecond);

void BM_SnapshotBuild(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const std::vector<backend::BackendSpec> specs = Specs(n);
  for (auto _ : state) {
    auto snapshot = backend::BackendSnapshot::Build(specs, {}, {});
    benchmark::DoNotOptimize(snapshot);
  }
  state.counters["backends"] = n;
}
BENCHMARK(BM_SnapshotBuild)->Arg(10)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace l4lb::balancer
