#include "l4lb/announce/announcer.h"

#include "gtest/gtest.h"

namespace l4lb::announce {
namespace {

admin::BackendView Backend(const char* name, admin::BackendState state, uint64_t checks) {
  admin::BackendView b;
  b.name = name;
  b.state = state;
  b.health.probed = true;
  b.health.passed = checks;
  return b;
}

admin::View TwoServices() {
  admin::View view;
  admin::ServiceView ftp;
  ftp.name = "ftp";
  ftp.backends = {Backend("10.0.0.1:21", admin::BackendState::kUp, 1),
                  Backend("10.0.0.2:21", admin::BackendState::kDown, 0)};
  ftp.backends[1].health.failed = 1;
  admin::ServiceView data = ftp;
  data.name = "ftp-data";
  view.services = {ftp, data};
  return view;
}

TEST(AnnouncerReadyTest, EveryBackendCheckedAndOneUpPerService) {
  std::string waiting;
  EXPECT_TRUE(Announcer::Ready(TwoServices(), &waiting)) << waiting;
}

TEST(AnnouncerReadyTest, NotBeforeTheFirstCheck) {
  // Backends start UP before any check: UP alone proves nothing yet.
  admin::View view = TwoServices();
  view.services[1].backends[0].health.passed = 0;
  std::string waiting;
  EXPECT_FALSE(Announcer::Ready(view, &waiting));
  EXPECT_EQ(waiting, "service ftp-data: backend 10.0.0.1:21 not checked yet");
}

TEST(AnnouncerReadyTest, NotWithAServiceWhoseBackendsAreAllDown) {
  admin::View view = TwoServices();
  view.services[0].backends[0].state = admin::BackendState::kDown;
  std::string waiting;
  EXPECT_FALSE(Announcer::Ready(view, &waiting));
  EXPECT_EQ(waiting, "service ftp: no backend UP");
}

TEST(AnnouncerReadyTest, UnprobedAndMaintenanceBackendsDoNotWait) {
  admin::View view = TwoServices();
  view.services[0].backends[1].state = admin::BackendState::kMaint;
  view.services[0].backends[1].health.failed = 0;  // its checks are paused
  view.services[1].backends[0].health = {};        // check = none: always UP
  std::string waiting;
  EXPECT_TRUE(Announcer::Ready(view, &waiting)) << waiting;
}

}  // namespace
}  // namespace l4lb::announce
