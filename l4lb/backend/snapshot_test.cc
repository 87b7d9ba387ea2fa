#include "l4lb/backend/snapshot.h"

#include <set>
#include <thread>

#include "gtest/gtest.h"

namespace l4lb::backend {
namespace {

std::vector<BackendSpec> Backends(int n) {
  std::string text;
  for (int i = 1; i <= n; ++i) text += (i > 1 ? "," : "") + ("10.0.0." + std::to_string(i) + ":80");
  return *ParseBackendList(text);
}

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
  for (uint64_t key = 0; key < 10000; ++key) picked.insert((*snapshot)->Pick(key * 7919, 0, {}));
  EXPECT_EQ(picked, (std::set<int>{0, 2}));
  EXPECT_EQ((*snapshot)->healthy_count(), 2u);
}

TEST(BackendSnapshotTest, RetriesNeverRepeatABackendAndEndWithNone) {
  const auto snapshot = BackendSnapshot::Build(Backends(3), {}, {.maglev_table_size = 1009});
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  for (uint64_t key = 1; key < 1000; ++key) {
    std::vector<uint32_t> tried;
    for (uint32_t attempt = 0; attempt < 3; ++attempt) {
      const int b = (*snapshot)->Pick(key, attempt, tried);
      ASSERT_NE(b, BackendSnapshot::kNone);
      tried.push_back(b);
    }
    EXPECT_EQ(std::set<uint32_t>(tried.begin(), tried.end()).size(), 3u);
    EXPECT_EQ((*snapshot)->Pick(key, 3, tried), BackendSnapshot::kNone);
  }
}

TEST(BackendSnapshotTest, RetriesOfOneDeadBackendSpreadOverTheOthers) {
  const auto snapshot = BackendSnapshot::Build(Backends(5), {}, {.maglev_table_size = 1009});
  ASSERT_TRUE(snapshot.ok());
  std::vector<int> second_choice(5);
  int dead_first = 0;
  for (uint64_t key = 1; key < 20000; ++key) {
    const int first = (*snapshot)->Pick(key * 0x9E3779B97F4A7C15ull, 0, {});
    if (first != 0) continue;
    ++dead_first;
    const uint32_t tried[] = {0};
    ++second_choice[(*snapshot)->Pick(key * 0x9E3779B97F4A7C15ull, 1, tried)];
  }
  ASSERT_GT(dead_first, 1000);
  for (int b = 1; b < 5; ++b) EXPECT_GT(second_choice[b], dead_first / 8) << "backend " << b;
}

TEST(BackendSnapshotTest, NoHealthyBackendPicksNone) {
  const auto snapshot = BackendSnapshot::Build(Backends(2), {false, false}, {});
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ((*snapshot)->Pick(42, 0, {}), BackendSnapshot::kNone);
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
