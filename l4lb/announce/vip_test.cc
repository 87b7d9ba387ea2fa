#include "l4lb/announce/vip.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <string.h>

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace l4lb::announce {
namespace {

TEST(ParseVipTest, AddressPrefixAndDevice) {
  absl::StatusOr<Vip> vip = ParseVip("192.0.2.10/32");
  ASSERT_TRUE(vip.ok()) << vip.status();
  EXPECT_EQ(VipText(*vip), "192.0.2.10/32 dev lo");
  EXPECT_GT(vip->ifindex, 0);
  vip = ParseVip("2001:db8::10/128,dev=lo");
  ASSERT_TRUE(vip.ok()) << vip.status();
  EXPECT_EQ(VipText(*vip), "2001:db8::10/128 dev lo");
}

TEST(ParseVipTest, MistakesNameWhatIsWrong) {
  EXPECT_EQ(ParseVip("192.0.2.10").status().message(),
            "\"192.0.2.10\": want ADDRESS/PREFIX, e.g. 192.0.2.10/32");
  EXPECT_EQ(ParseVip("192.0.2.10/40").status().message(),
            "\"192.0.2.10/40\": prefix length must be 0..32");
  EXPECT_EQ(ParseVip("192.0.2.300/32").status().message(),
            "\"192.0.2.300/32\": \"192.0.2.300\" is not an IP address");
  EXPECT_EQ(ParseVip("192.0.2.10/32,dev=nosuch0").status().message(),
            "\"192.0.2.10/32,dev=nosuch0\": dev=nosuch0: no such interface");
  EXPECT_EQ(ParseVip("192.0.2.10/32,device=lo").status().message(),
            "\"192.0.2.10/32,device=lo\": want dev=INTERFACE or table=N after the prefix, got "
            "\"device=lo\"");
  EXPECT_EQ(ParseVip("192.0.2.10/32,table=254").status().message(),
            "\"192.0.2.10/32,table=254\": table=254: want a table number other than 0 and the "
            "kernel's 253-255");
  EXPECT_EQ(ParseVip("192.0.2.10/32,table=1000")->table, 1000u);
}

bool OnLo(const char* ip) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return false;
  bool found = false;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || strcmp(a->ifa_name, "lo") != 0) continue;
    char text[INET6_ADDRSTRLEN] = {};
    if (a->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, text,
                sizeof(text));
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ifa_addr)->sin6_addr, text,
                sizeof(text));
    }
    found = found || strcmp(text, ip) == 0;
  }
  freeifaddrs(list);
  return found;
}

// In a network namespace of the test's own (needs root, as the namespace
// tests do), so the host's lo is never touched.
TEST(VipTest, AddAndRemoveOnLoTwiceEach) {
  if (unshare(CLONE_NEWNET) != 0) GTEST_SKIP() << "unshare(CLONE_NEWNET): " << strerror(errno);
  for (const char* text : {"192.0.2.10/32", "2001:db8::10/128"}) {
    absl::StatusOr<Vip> vip = ParseVip(text);
    ASSERT_TRUE(vip.ok()) << vip.status();
    const std::string ip = std::string(text).substr(0, std::string(text).find('/'));
    EXPECT_FALSE(OnLo(ip.c_str()));
    ASSERT_TRUE(AddVip(*vip).ok()) << AddVip(*vip);
    EXPECT_TRUE(OnLo(ip.c_str())) << text;
    EXPECT_TRUE(AddVip(*vip).ok()) << "already there is fine";
    ASSERT_TRUE(RemoveVip(*vip).ok()) << RemoveVip(*vip);
    EXPECT_FALSE(OnLo(ip.c_str())) << text;
    EXPECT_TRUE(RemoveVip(*vip).ok()) << "already gone is fine";
  }
}

// What `ip route show table N` says about `ip` ("" when it has no route to it).
std::string RouteIn(uint32_t table, const std::string& ip) {
  const std::string command = absl::StrCat("ip -4 route show table ", table,
                                           " 2>&1; ip -6 route show table ", table, " 2>&1");
  FILE* out = popen(command.c_str(), "r");
  if (out == nullptr) return "popen failed";
  std::string text;
  char buf[512];
  while (fgets(buf, sizeof(buf), out) != nullptr) {
    if (absl::StartsWith(buf, ip + " ") || absl::StartsWith(buf, ip + "/")) text += buf;
  }
  pclose(out);
  return text;
}

// The route in its table, as BIRD's `protocol kernel { kernel table 200;
// learn; }` learns it: dev lo, proto static.
TEST(VipTest, AddAndRemoveTheRouteTwiceEach) {
  if (unshare(CLONE_NEWNET) != 0) GTEST_SKIP() << "unshare(CLONE_NEWNET): " << strerror(errno);
  ASSERT_EQ(std::system("ip link set lo up"), 0);  // a route needs its device up
  for (const char* text : {"192.0.2.10/32", "2001:db8::10/128,table=1000"}) {
    absl::StatusOr<Vip> vip = ParseVip(text);
    ASSERT_TRUE(vip.ok()) << vip.status();
    const std::string ip = std::string(text).substr(0, std::string(text).find('/'));
    EXPECT_EQ(RouteIn(vip->table, ip), "");
    ASSERT_TRUE(AddRoute(*vip).ok()) << AddRoute(*vip);
    EXPECT_TRUE(absl::StrContains(RouteIn(vip->table, ip), "dev lo proto static"))
        << RouteIn(vip->table, ip);
    EXPECT_TRUE(AddRoute(*vip).ok()) << "already there is fine";
    ASSERT_TRUE(RemoveRoute(*vip).ok()) << RemoveRoute(*vip);
    EXPECT_EQ(RouteIn(vip->table, ip), "");
    EXPECT_TRUE(RemoveRoute(*vip).ok()) << "already gone is fine";
  }
}

}  // namespace
}  // namespace l4lb::announce
