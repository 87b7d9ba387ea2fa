#include "l4lb/udp/session_table.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace l4lb::udp {
namespace {

net::SocketAddress Client(int port) {
  return *net::SocketAddress::Parse(absl::StrCat("10.0.0.1:", port));
}

TEST(SessionTableTest, FindsByServiceAndClientAddress) {
  SessionTable table(2);
  Session* a = table.Create(0, Client(1000), 1);
  EXPECT_EQ(table.Find(0, Client(1000)), a);
  EXPECT_EQ(table.Find(0, Client(1001)), nullptr) << "another port is another client";
  EXPECT_EQ(table.Find(1, Client(1000)), nullptr) << "another service";
  Session* b = table.Create(1, Client(1000), 1);
  EXPECT_NE(a, b);
  EXPECT_EQ(table.live(0), 1u);
  EXPECT_EQ(table.live(1), 1u);
}

TEST(SessionTableTest, OldestIsTheLeastRecentlyActive) {
  SessionTable table(1);
  Session* a = table.Create(0, Client(1), 1);
  Session* b = table.Create(0, Client(2), 2);
  Session* c = table.Create(0, Client(3), 3);
  EXPECT_EQ(table.Oldest(0), a);
  table.Touch(*a, 4);
  EXPECT_EQ(table.Oldest(0), b);
  table.Unlink(*b);
  EXPECT_EQ(table.Oldest(0), c);
  EXPECT_EQ(table.Find(0, Client(2)), nullptr);
  EXPECT_EQ(table.live(0), 2u);
  EXPECT_EQ(table.allocated(), 3u) << "a closing session keeps its slot";
  table.Free(*b);
  EXPECT_EQ(table.allocated(), 2u);
}

TEST(SessionTableTest, FreedSlotIsReusedWithANewGeneration) {
  SessionTable table(1);
  Session* a = table.Create(0, Client(1), 1);
  const uint32_t slot = a->slot, generation = a->generation;
  EXPECT_EQ(table.FindSlot(slot, generation), a);
  table.Free(*a);
  EXPECT_EQ(table.FindSlot(slot, generation), nullptr);
  Session* b = table.Create(0, Client(2), 2);
  EXPECT_EQ(b->slot, slot);
  EXPECT_EQ(table.FindSlot(slot, generation), nullptr) << "a late CQE of the old session";
  EXPECT_EQ(table.FindSlot(slot, b->generation), b);
  EXPECT_EQ(b->datagrams_up, 0u) << "fresh fields";
}

TEST(SessionTableTest, ManySessionsStayConsistent) {
  SessionTable table(1);
  std::vector<Session*> sessions;
  for (int i = 0; i < 5000; ++i) sessions.push_back(table.Create(0, Client(i), i));
  for (int i = 0; i < 5000; i += 2) table.Free(*sessions[i]);
  EXPECT_EQ(table.live(0), 2500u);
  int walked = 0;
  for (Session* s = table.Oldest(0); s; s = s->next) ++walked;
  EXPECT_EQ(walked, 2500);
  EXPECT_EQ(table.Oldest(0), sessions[1]);
}

}  // namespace
}  // namespace l4lb::udp
