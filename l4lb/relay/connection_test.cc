#include "l4lb/relay/connection.h"

#include "gtest/gtest.h"

namespace l4lb::relay {
namespace {

TEST(ConnectionTableTest, ReusesSlotsWithANewGeneration) {
  ConnectionTable table;
  Connection* a = table.Alloc();
  Connection* b = table.Alloc();
  EXPECT_NE(a->slot, b->slot);
  EXPECT_EQ(table.live(), 2u);
  const uint32_t slot = a->slot;
  const uint32_t old_generation = a->generation;
  a->client_fd = 7;
  table.Free(a);
  EXPECT_EQ(table.Find(slot, old_generation), nullptr);  // a late CQE finds nothing
  Connection* c = table.Alloc();
  EXPECT_EQ(c->slot, slot);
  EXPECT_NE(c->generation, old_generation);
  EXPECT_EQ(c->client_fd, -1);  // fields start fresh
  EXPECT_EQ(table.Find(slot, c->generation), c);
  EXPECT_EQ(table.live(), 2u);
}

TEST(IdleListTest, OldestFirstAndTouchMovesToTheBack) {
  ConnectionTable table;
  IdleList idle;
  Connection* a = table.Alloc();
  Connection* b = table.Alloc();
  Connection* c = table.Alloc();
  idle.Touch(*a, 1);
  idle.Touch(*b, 2);
  idle.Touch(*c, 3);
  EXPECT_EQ(idle.Oldest(), a);
  idle.Touch(*a, 4);
  EXPECT_EQ(idle.Oldest(), b);
  idle.Remove(*b);
  EXPECT_EQ(idle.Oldest(), c);
  idle.Remove(*c);
  EXPECT_EQ(idle.Oldest(), a);
  EXPECT_EQ(idle.LastNs(*a), 4);
  idle.Remove(*a);
  EXPECT_EQ(idle.Oldest(), nullptr);
  idle.Remove(*a);  // removing twice is harmless
  EXPECT_FALSE(idle.Contains(*a));
}

// A connection in two lists at once: each keeps its own order and time.
TEST(IdleListTest, ListsOnOtherLinksAreIndependent) {
  ConnectionTable table;
  IdleList idle;
  IdleList client(&Connection::client_idle);
  Connection* a = table.Alloc();
  Connection* b = table.Alloc();
  idle.Touch(*a, 1);
  idle.Touch(*b, 2);
  client.Touch(*b, 3);
  client.Touch(*a, 4);
  EXPECT_EQ(idle.Oldest(), a);
  EXPECT_EQ(client.Oldest(), b);
  client.Remove(*b);
  EXPECT_EQ(client.Oldest(), a);
  EXPECT_EQ(idle.Oldest(), a);
  EXPECT_TRUE(idle.Contains(*b));
  EXPECT_FALSE(client.Contains(*b));
  EXPECT_EQ(idle.LastNs(*a), 1);
  EXPECT_EQ(client.LastNs(*a), 4);
}

TEST(CloseReasonTest, NamesAreTheAccessLogWords) {
  EXPECT_STREQ(CloseReasonName(CloseReason::kDone), "done");
  EXPECT_STREQ(CloseReasonName(CloseReason::kIdleTimeout), "idle_timeout");
  EXPECT_STREQ(CloseReasonName(CloseReason::kNoBackend), "no_backend");
}

}  // namespace
}  // namespace l4lb::relay
