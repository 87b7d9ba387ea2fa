#include "l4lb/backend/snapshot.h"

#include <set>
#include <thread>

#include "gtest/gtest.h"

#include "l4lb/backend/test_backends.h"

namespace l4lb::backend {
namespace {

net::SocketAddress Client(const char* text) { return *net::SocketAddress::Parse(text); }

TEST(FlowKeyTest, SrcIpIgnoresThePortSrcIpPortDoesNot) {
  EXPECT_EQ(FlowKey(Client("192.0.2.1:1000"), HashKey::kSrcIp),
            FlowKey(Client("192.0.2.1:2000"), HashKey::kSrcIp));
  EXPECT_NE(FlowKey(Client("192.0.2.1:1000"), HashKey::kSrcIpPort),
            FlowKey(Client("192.0.2.1:2000"), HashKey::kSrcIpPort));
  EXPECT_NE(FlowKey(Client("192.0.2.1:1000"), HashKey::kSrcIp),
            FlowKey(Client("192.0.2.2:1000"), HashKey::kSrcIp));
  // A v4 client seen through a dual-stack listener hashes like a v4 one.
  EXPECT_EQ(FlowKey(Client("192.0.2.1:1000"), HashKey::kSrcIp),
            FlowKey(Client("[::ffff:192.0.2.1]:5"), HashKey::kSrcIp));
}

TEST(ParseHashKeyTest, KnownAndUnknown) {
  EXPECT_EQ(*ParseHashKey("src_ip"), HashKey::kSrcIp);
  EXPECT_EQ(*ParseHashKey("src_ip_port"), HashKey::kSrcIpPort);
  EXPECT_EQ(ParseHashKey("dst_ip").status().message(), "\"dst_ip\": want src_ip or src_ip_port");
}

TEST(BackendSnapshotTest, PicksOnlyHealthyBackends) {
  const auto snapshot =
      BackendSnapshot::Build(Backends(4), {true, false, true, false}, {.maglev_table_size = 1009});
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  std::set<int> picked;
  for (uint64_t key = 0; key < 10000; ++key) picked.insert((*snapshot)->Pick(key * 7919, {}));
  EXPECT_EQ(picked, (std::set<int>{0, 2}));
  EXPECT_EQ((*snapshot)->healthy_count(), 2u);
}

TEST(BackendSnapshotTest, RetriesNeverRepeatABackendAndEndWithNone) {
  const auto snapshot = BackendSnapshot::Build(Backends(3), {}, {.maglev_table_size = 1009});
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  for (uint64_t key = 1; key < 1000; ++key) {
    std::vector<uint32_t> tried;
    for (uint32_t attempt = 0; attempt < 3; ++attempt) {
      const int b = (*snapshot)->Pick(key, tried);
      ASSERT_NE(b, BackendSnapshot::kNone);
      tried.push_back(b);
    }
    EXPECT_EQ(std::set<uint32_t>(tried.begin(), tried.end()).size(), 3u);
    EXPECT_EQ((*snapshot)->Pick(key, tried), BackendSnapshot::kNone);
  }
}

TEST(BackendSnapshotTest, RetriesOfOneDeadBackendSpreadOverTheOthers) {
  const auto snapshot = BackendSnapshot::Build(Backends(5), {}, {.maglev_table_size = 1009});
  ASSERT_TRUE(snapshot.ok());
  std::vector<int> second_choice(5);
  int dead_first = 0;
  for (uint64_t key = 1; key < 20000; ++key) {
    const int first = (*snapshot)->Pick(key * 0x9E3779B97F4A7C15ull, {});
    if (first != 0) continue;
    ++dead_first;
    const uint32_t tried[] = {0};
    ++second_choice[(*snapshot)->Pick(key * 0x9E3779B97F4A7C15ull, tried)];
  }
  ASSERT_GT(dead_first, 1000);
  for (int b = 1; b < 5; ++b) EXPECT_GT(second_choice[b], dead_first / 8) << "backend " << b;
}

TEST(BackendSnapshotTest, NoHealthyBackendPicksNone) {
  const auto snapshot = BackendSnapshot::Build(Backends(2), {false, false}, {});
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ((*snapshot)->Pick(42, {}), BackendSnapshot::kNone);
}

TEST(BackendSnapshotTest, OnlyTheClientsOfAChangedBackendMove) {
  const auto all_up = BackendSnapshot::Build(Backends(10), {}, {});
  ASSERT_TRUE(all_up.ok()) << all_up.status();
  std::vector<bool> health(10, true);
  health[3] = false;
  const auto one_down = (*all_up)->WithHealth(health);
  constexpr int kKeys = 200000;
  int moved_others = 0, moved_dead = 0, dead_keys = 0;
  std::vector<int> landed(10);
  for (uint64_t i = 1; i <= kKeys; ++i) {
    const uint64_t key = i * 0x9E3779B97F4A7C15ull;
    const int before = (*all_up)->Pick(key, {});
    const int after = one_down->Pick(key, {});
    ASSERT_NE(after, 3);
    if (before == 3) {
      ++dead_keys;
      moved_dead += after != 3;
      ++landed[after];
    } else {
      moved_others += after != before;
    }
  }
  EXPECT_EQ(moved_others, 0) << "clients of healthy backends must keep their backend";
  EXPECT_EQ(moved_dead, dead_keys);
  // The dead backend's clients spread over all nine others (about 1/9 each).
  for (int b = 0; b < 10; ++b) {
    if (b == 3) continue;
    EXPECT_NEAR(landed[b], dead_keys / 9.0, dead_keys / 9.0 * 0.2) << "backend " << b;
  }
  // Back up: exactly the same picks as before.
  health[3] = true;
  const auto back = one_down->WithHealth(health);
  for (uint64_t i = 1; i <= 10000; ++i) {
    const uint64_t key = i * 0x9E3779B97F4A7C15ull;
    ASSERT_EQ(back->Pick(key, {}), (*all_up)->Pick(key, {}));
  }
}

TEST(BackendSnapshotTest, DrainAndMaintTakeNoNewClientsAndOnlyTheirsMove) {
  const auto ready = BackendSnapshot::Build(Backends(5), {}, {});
  ASSERT_TRUE(ready.ok()) << ready.status();
  std::vector<AdminState> admin(5, AdminState::kReady);
  admin[1] = AdminState::kDrain;
  admin[4] = AdminState::kMaint;
  const auto changed = (*ready)->WithAdmin(admin);
  EXPECT_EQ(changed->healthy_count(), 3u);
  EXPECT_TRUE(changed->healthy(1)) << "drain is not a health state";
  EXPECT_TRUE(changed->takes_pinned(1)) << "a drained backend keeps its pinned clients";
  EXPECT_FALSE(changed->takes_pinned(4)) << "maintenance takes nobody";
  EXPECT_EQ(changed->admin(1), AdminState::kDrain);
  int moved_others = 0;
  for (uint64_t i = 1; i <= 50000; ++i) {
    const uint64_t key = i * 0x9E3779B97F4A7C15ull;
    const int before = (*ready)->Pick(key, {});
    const int after = changed->Pick(key, {});
    ASSERT_NE(after, 1);
    ASSERT_NE(after, 4);
    if (before != 1 && before != 4) moved_others += after != before;
  }
  EXPECT_EQ(moved_others, 0);
  // Health changes keep the admin states, and admin changes keep the health.
  const auto down = changed->WithHealth({true, true, false, true, true});
  EXPECT_EQ(down->admin(4), AdminState::kMaint);
  EXPECT_EQ(down->healthy_count(), 2u);
  const auto enabled = down->WithAdmin(std::vector<AdminState>(5, AdminState::kReady));
  EXPECT_FALSE(enabled->healthy(2));
  EXPECT_EQ(enabled->healthy_count(), 4u);
  EXPECT_STREQ(AdminStateName(AdminState::kMaint), "maint");
}

TEST(BackendSnapshotTest, OneHealthyBackendOfManyTakesEveryone) {
  std::vector<bool> health(50, false);
  health[37] = true;
  const auto snapshot = BackendSnapshot::Build(Backends(50), health, {});
  ASSERT_TRUE(snapshot.ok());
  for (uint64_t key = 1; key < 5000; ++key) ASSERT_EQ((*snapshot)->Pick(key * 7919, {}), 37);
}

TEST(BackendSnapshotTest, BadTableSizeIsAnError) {
  EXPECT_FALSE(BackendSnapshot::Build(Backends(2), {}, {.maglev_table_size = 65536}).ok());
}

TEST(SnapshotPublisherTest, GenerationMovesOnPublishAndReadersSeeTheNewSnapshot) {
  SnapshotPublisher publisher(*BackendSnapshot::Build(Backends(2), {}, {}));
  const uint64_t before = publisher.generation();
  auto next = *BackendSnapshot::Build(Backends(3), {}, {});
  std::thread writer([&] { publisher.Publish(next); });
  writer.join();
  EXPECT_GT(publisher.generation(), before);
  EXPECT_EQ(publisher.Current()->backends().size(), 3u);
}

}  // namespace
}  // namespace l4lb::backend
