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

// Backends 0-2 primaries, 3-4 backups.
std::vector<BackendSpec> WithBackups() {
  std::vector<BackendSpec> backends = Backends(5);
  backends[3].backup = backends[4].backup = true;
  return backends;
}

std::vector<int> Spread(const BackendSnapshot& snapshot, int keys = 20000) {
  std::vector<int> hits(snapshot.backends().size());
  for (uint64_t i = 1; i <= static_cast<uint64_t>(keys); ++i) {
    const int b = snapshot.Pick(i * 0x9E3779B97F4A7C15ull, {});
    if (b != BackendSnapshot::kNone) ++hits[b];
  }
  return hits;
}

TEST(BackendSnapshotTest, BackupsTakeClientsOnlyWhileNoPrimaryDoes) {
  const auto all_up = BackendSnapshot::Build(WithBackups(), {}, {});
  ASSERT_TRUE(all_up.ok()) << all_up.status();
  EXPECT_FALSE((*all_up)->serving_backups());
  std::vector<int> hits = Spread(**all_up);
  EXPECT_EQ(hits[3] + hits[4], 0) << "a backup got a client while primaries are up";
  EXPECT_EQ((*all_up)->healthy_count(), 3u);
  // One primary left, drained, in maintenance or DOWN: still no backup.
  const auto one_left = (*all_up)->WithHealth({false, true, false, true, true});
  hits = Spread(*one_left);
  EXPECT_EQ(hits[1], 20000) << "the last primary takes everyone";
  // No primary takes new clients (one DOWN, one DRAIN, one MAINT): the backups
  // share them by Maglev.
  const auto none = (*all_up)
                        ->WithHealth({false, true, true, true, true})
                        ->WithAdmin({AdminState::kReady, AdminState::kDrain, AdminState::kMaint,
                                     AdminState::kReady, AdminState::kReady});
  EXPECT_TRUE(none->serving_backups());
  EXPECT_EQ(none->healthy_count(), 2u);
  hits = Spread(*none);
  EXPECT_EQ(hits[0] + hits[1] + hits[2], 0);
  EXPECT_NEAR(hits[3], 10000, 600);
  EXPECT_NEAR(hits[4], 10000, 600);
  // The drained primary still takes its pinned clients; a backup too.
  EXPECT_TRUE(none->takes_pinned(1));
  EXPECT_TRUE(none->takes_pinned(3));
  // A primary back: every new client leaves the backups for it.
  const auto back = none->WithAdmin(std::vector<AdminState>(5, AdminState::kReady))
                        ->WithHealth({false, false, true, true, true});
  EXPECT_FALSE(back->serving_backups());
  EXPECT_EQ(Spread(*back)[2], 20000);
  // Every backend DOWN: nobody.
  const auto dead = (*all_up)->WithHealth(std::vector<bool>(5, false));
  EXPECT_EQ(dead->Pick(42, {}), BackendSnapshot::kNone);
  EXPECT_EQ(dead->healthy_count(), 0u);
}

TEST(BackendSnapshotTest, AmongBackupsOnlyTheClientsOfADownOneMove) {
  std::vector<BackendSpec> backends = Backends(6);
  for (int b = 1; b < 6; ++b) backends[b].backup = true;
  const auto backups = BackendSnapshot::Build(backends, {false, true, true, true, true, true}, {});
  ASSERT_TRUE(backups.ok()) << backups.status();
  const auto one_down = (*backups)->WithHealth({false, true, true, false, true, true});
  int moved_others = 0, of_dead = 0;
  for (uint64_t i = 1; i <= 50000; ++i) {
    const uint64_t key = i * 0x9E3779B97F4A7C15ull;
    const int before = (*backups)->Pick(key, {});
    const int after = one_down->Pick(key, {});
    ASSERT_NE(after, 3);
    ASSERT_NE(after, 0);
    if (before == 3) {
      ++of_dead;
    } else {
      moved_others += after != before;
    }
  }
  EXPECT_GT(of_dead, 50000 / 5 - 1000);
  EXPECT_EQ(moved_others, 0);
}

TEST(BackendSnapshotTest, PrimariesPickAsIfTheBackupsWereNotThere) {
  // Adding backups to a list changes no primary's clients: they have their own table.
  std::vector<BackendSpec> primaries = Backends(3);
  const auto without = BackendSnapshot::Build(primaries, {}, {});
  const auto with = BackendSnapshot::Build(WithBackups(), {}, {});
  ASSERT_TRUE(without.ok() && with.ok());
  for (uint64_t i = 1; i <= 20000; ++i) {
    const uint64_t key = i * 0x9E3779B97F4A7C15ull;
    ASSERT_EQ((*without)->Pick(key, {}), (*with)->Pick(key, {}));
  }
}

TEST(BackendSnapshotTest, AllBackupsIsAllowedAndServes) {
  std::vector<BackendSpec> backends = Backends(2);
  backends[0].backup = backends[1].backup = true;
  const auto snapshot = BackendSnapshot::Build(backends, {}, {});
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_TRUE((*snapshot)->serving_backups());
  EXPECT_NE((*snapshot)->Pick(7, {}), BackendSnapshot::kNone);
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
