#include "l4lb/reload/merge.h"

#include "gtest/gtest.h"

namespace l4lb::reload {
namespace {

admin::View OneService(const std::string& service, const std::vector<std::string>& backends,
                       uint64_t connections) {
  admin::View v;
  v.totals.accepted = connections * backends.size();
  admin::ServiceView& s = v.services.emplace_back();
  s.name = service;
  s.counters.accepted = connections * backends.size();
  s.counters.active = 1;
  for (const std::string& b : backends) {
    admin::BackendView& bv = s.backends.emplace_back();
    bv.name = b;
    bv.counters.connections = connections;
    bv.counters.active = 1;
  }
  return v;
}

TEST(MergeTest, KeptServicesAndBackendsAddByNameRemovedOnesStayOut) {
  admin::View running = OneService("web", {"10.0.0.1:80", "10.0.0.3:80"}, 5);
  const admin::View draining = OneService("web", {"10.0.0.1:80", "10.0.0.2:80"}, 7);
  AddCounters(running, draining, /*add_missing=*/false);
  AddCounters(running, OneService("ftp", {"10.0.0.9:21"}, 3), false);
  EXPECT_EQ(running.totals.accepted, 10u + 14u + 3u) << "the process's totals take everything";
  ASSERT_EQ(running.services.size(), 1u) << "a service gone from the config is not shown";
  EXPECT_EQ(running.services[0].counters.accepted, 24u);
  EXPECT_EQ(running.services[0].counters.active, 2u);
  ASSERT_EQ(running.services[0].backends.size(), 2u);
  EXPECT_EQ(running.services[0].backends[0].counters.connections, 12u) << "kept: both add";
  EXPECT_EQ(running.services[0].backends[0].counters.active, 2u);
  EXPECT_EQ(running.services[0].backends[1].counters.connections, 5u) << "new: its own";
}

TEST(MergeTest, RetiredConfigsKeepEverythingAndComeBackWhenReAdded) {
  admin::View retired;
  admin::View gone = OneService("web", {"10.0.0.1:80", "10.0.0.2:80"}, 7);
  ZeroGauges(gone);
  AddCounters(retired, gone, /*add_missing=*/true);
  AddCounters(retired, OneService("web", {"10.0.0.2:80"}, 1), true);
  ASSERT_EQ(retired.services.size(), 1u);
  ASSERT_EQ(retired.services[0].backends.size(), 2u);
  EXPECT_EQ(retired.services[0].backends[0].counters.active, 0u);
  EXPECT_EQ(retired.services[0].backends[1].counters.connections, 8u);
  admin::View running = OneService("web", {"10.0.0.2:80"}, 2);
  AddCounters(running, retired, false);
  EXPECT_EQ(running.services[0].backends[0].counters.connections, 10u);
  EXPECT_EQ(running.services[0].backends[0].counters.active, 1u + 1u) << "only live gauges";
}

TEST(MergeTest, ConnectionsOfSeveralConfigsMapServicesByNameUpToTheLimit) {
  admin::ConnectionsView into;
  into.services = {"web", "ftp"};
  into.connections.push_back({.service = 1, .client = "a"});
  admin::ConnectionsView old;
  old.services = {"ftp", "gone"};
  old.connections.push_back({.service = 0, .client = "b"});
  old.connections.push_back({.service = 1, .client = "c"});
  old.connections.push_back({.service = 1, .client = "d"});
  AddConnections(into, old, 3);
  ASSERT_EQ(into.connections.size(), 3u);
  EXPECT_EQ(into.services, (std::vector<std::string>{"web", "ftp", "gone"}));
  EXPECT_EQ(into.connections[1].service, 1);
  EXPECT_EQ(into.connections[2].service, 2);
  EXPECT_TRUE(into.truncated);
}

}  // namespace
}  // namespace l4lb::reload
