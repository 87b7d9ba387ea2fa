#include "l4lb/backend/host_key.h"

#include <random>

#include "gtest/gtest.h"

#include "l4lb/backend/snapshot.h"

namespace l4lb::backend {
namespace {

std::vector<BackendSpec> List(const char* text, BackendPorts ports) {
  absl::StatusOr<std::vector<BackendSpec>> list = ParseBackendList(text, ports);
  EXPECT_TRUE(list.ok()) << list.status();
  return list.value_or(std::vector<BackendSpec>{});
}

TEST(HostKeysTest, TheHostWithoutItsPort) {
  const std::vector<BackendSpec> list =
      List("10.0.0.1:21,[2001:db8::1]:21,[::ffff:10.0.0.2]:21", BackendPorts::kRequired);
  EXPECT_EQ(HostKeys(list), (std::vector<std::string>{"10.0.0.1", "2001:db8::1", "10.0.0.2"}));
}

TEST(HostKeysTest, AHostListedTwiceKeepsItsNamesAsWritten) {
  const std::vector<BackendSpec> list =
      List("10.0.0.1:80,10.0.0.2:80,10.0.0.1:81", BackendPorts::kRequired);
  EXPECT_EQ(HostKeys(list), (std::vector<std::string>{"10.0.0.1:80", "10.0.0.2", "10.0.0.1:81"}));
}

// The FTP farm of README "Several instances behind ECMP": the control service
// lists IP:21, the passive range port-less IPs, in another order, one of them
// weighted. Each is a different process's snapshot (another l4lb instance, or
// the other service of the group): with nothing shared, every client must
// still reach one host through both. Seeded by the names as written (the
// address with its port) the two disagreed on 72,034 of these keys (66,568 with
// the host down).
TEST(HostKeysTest, ControlAndPassiveServicesPickTheSameHostFor100kClients) {
  const auto control = BackendSnapshot::Build(
      List("10.0.0.1:21,10.0.0.2:21=2,10.0.0.3:21,10.0.0.4:21", BackendPorts::kRequired), {}, {});
  const auto passive = BackendSnapshot::Build(
      List("10.0.0.3,10.0.0.1,10.0.0.4,10.0.0.2=2", BackendPorts::kFromListener), {}, {});
  ASSERT_TRUE(control.ok()) << control.status();
  ASSERT_TRUE(passive.ok()) << passive.status();
  const auto host = [](const BackendSnapshot& s, int picked) {
    return s.backends()[picked].address.IpBytes16();
  };
  std::mt19937_64 rng(16);
  int differ = 0;
  for (int i = 0; i < 100'000; ++i) {
    const uint64_t key = rng();
    differ +=
        host(**control, (*control)->Pick(key, {})) != host(**passive, (*passive)->Pick(key, {}));
  }
  std::printf("clients whose control and data hosts differ: %d of 100000\n", differ);
  EXPECT_EQ(differ, 0);

  // With a host DOWN on both, its clients are re-picked alike too.
  const auto control_down = (*control)->WithHealth({true, false, true, true});
  const auto passive_down = (*passive)->WithHealth({true, true, true, false});
  differ = 0;
  for (int i = 0; i < 100'000; ++i) {
    const uint64_t key = rng();
    differ += host(*control_down, control_down->Pick(key, {})) !=
              host(*passive_down, passive_down->Pick(key, {}));
  }
  std::printf("... with 10.0.0.2 down on both: %d of 100000\n", differ);
  EXPECT_EQ(differ, 0);
}

}  // namespace
}  // namespace l4lb::backend
