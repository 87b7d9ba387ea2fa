// Access-list lookup cost against list size: a deny list of 100,000 random
// prefixes must cost about what a list of 10 does (log n, not n). A linear scan
// of the same list sits beside it as the figure's foil.
//
//   bazel run -c opt //bench:acl_benchmark

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"

#include "l4lb/admission/acl.h"
#include "l4lb/admission/cidr.h"

namespace l4lb::admission {
namespace {

std::vector<Cidr> RandomPrefixes(int n) {
  std::mt19937_64 rng(2016);
  std::vector<Cidr> out;
  while (static_cast<int>(out.size()) < n) {
    const uint32_t a = static_cast<uint32_t>(rng());
    const int len = 16 + static_cast<int>(rng() % 17);  // /16 .. /32, like real deny lists
    const uint32_t masked = a & ~static_cast<uint32_t>((uint64_t{1} << (32 - len)) - 1);
    out.push_back(*ParseCidr(absl::StrCat(masked >> 24, ".", (masked >> 16) & 255, ".",
                                          (masked >> 8) & 255, ".", masked & 255, "/", len)));
  }
  return out;
}

std::vector<std::array<uint8_t, 16>> RandomClients() {
  std::mt19937_64 rng(7);
  std::vector<std::array<uint8_t, 16>> out(4096);
  for (auto& ip : out) {
    ip[10] = ip[11] = 0xff;
    const uint32_t a = static_cast<uint32_t>(rng());
    for (int i = 0; i < 4; ++i) ip[12 + i] = static_cast<uint8_t>(a >> (24 - 8 * i));
  }
  return out;
}

void BM_AclDecide(benchmark::State& state) {
  const Acl acl({}, RandomPrefixes(static_cast<int>(state.range(0))));
  const auto clients = RandomClients();
  size_t i = 0, denied = 0;
  for (auto _ : state) {
    denied += acl.Decide(clients[i++ & 4095]) == Acl::Decision::kDeny;
  }
  benchmark::DoNotOptimize(denied);
  state.counters["prefixes"] = static_cast<double>(state.range(0));
  state.counters["denied_share"] = static_cast<double>(denied) / static_cast<double>(i);
}
BENCHMARK(BM_AclDecide)->Arg(10)->Arg(1000)->Arg(100'000);

// The design not taken: test every prefix in turn.
void BM_LinearScan(benchmark::State& state) {
  const std::vector<Cidr> prefixes = RandomPrefixes(static_cast<int>(state.range(0)));
  const auto clients = RandomClients();
  size_t i = 0, denied = 0;
  for (auto _ : state) {
    const auto& ip = clients[i++ & 4095];
    for (const Cidr& c : prefixes) {
      bool match = true;
      for (int bit = 96; bit < c.length && match; ++bit) {
        const uint8_t m = 0x80 >> (bit % 8);
        match = (ip[bit / 8] & m) == (c.address[bit / 8] & m);
      }
      if (match) {
        ++denied;
        break;
      }
    }
  }
  benchmark::DoNotOptimize(denied);
  state.counters["prefixes"] = static_cast<double>(state.range(0));
}
BENCHMARK(BM_LinearScan)->Arg(10)->Arg(1000)->Arg(100'000);

}  // namespace
}  // namespace l4lb::admission

BENCHMARK_MAIN();
