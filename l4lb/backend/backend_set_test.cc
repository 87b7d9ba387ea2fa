#include "l4lb/backend/backend_set.h"

#include "gtest/gtest.h"

namespace l4lb::backend {
namespace {

TEST(ParseBackendListTest, AddressesWeightsAndIpv6) {
  const absl::StatusOr<std::vector<BackendSpec>> list =
      ParseBackendList("10.0.0.1:80, 10.0.0.2:80=3,[2001:db8::1]:8080=2");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].name, "10.0.0.1:80");
  EXPECT_EQ((*list)[0].weight, 1u);
  EXPECT_EQ((*list)[1].weight, 3u);
  EXPECT_EQ((*list)[2].name, "[2001:db8::1]:8080");
  EXPECT_EQ((*list)[2].weight, 2u);
  EXPECT_EQ((*list)[2].address.port(), 8080);
}

TEST(ParseBackendListTest, BackupAfterTheAddressOrTheWeight) {
  const absl::StatusOr<std::vector<BackendSpec>> list =
      ParseBackendList("10.0.0.1:22,10.0.0.9:22@backup,[2001:db8::9]:22=3@backup");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_FALSE((*list)[0].backup);
  EXPECT_TRUE((*list)[1].backup);
  EXPECT_EQ((*list)[1].name, "10.0.0.9:22") << "the flag is not part of the name";
  EXPECT_TRUE((*list)[2].backup);
  EXPECT_EQ((*list)[2].weight, 3u);
  const absl::StatusOr<std::vector<BackendSpec>> portless =
      ParseBackendList("10.0.0.1,10.0.0.9@backup", BackendPorts::kFromListener);
  ASSERT_TRUE(portless.ok()) << portless.status();
  EXPECT_TRUE((*portless)[1].backup);
}

TEST(ParseBackendListTest, ErrorsNameTheEntry) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& c : {
           Case{"", "empty backend list"},
           Case{"  ", "empty backend list"},
           Case{"10.0.0.1:80,,10.0.0.2:80", "empty entry"},
           Case{"10.0.0.1:99999", "\"10.0.0.1:99999\": port out of range"},
           Case{"10.0.0.1:80=0", "\"10.0.0.1:80=0\": weight must be 1..10000"},
           Case{"10.0.0.1:80=10001", "weight must be 1..10000"},
           Case{"10.0.0.1:80=x", "weight must be 1..10000"},
           Case{"10.0.0.1:80=", "weight must be 1..10000"},
           Case{"10.0.0.1:0", "\"10.0.0.1:0\": backend port 0"},
           Case{"10.0.0.1:80,10.0.0.1:80=2", "\"10.0.0.1:80=2\": listed twice"},
           Case{"10.0.0.300:80", "\"10.0.0.300:80\": neither an IPv4 address nor a host name"},
           Case{"bad_host!:80", "neither an IPv4 address nor a host name"},
           Case{"-farm.internal:80", "neither an IPv4 address nor a host name"},
           Case{"farm..internal:80", "neither an IPv4 address nor a host name"},
           Case{"ftp1.farm.internal:0", "\"ftp1.farm.internal:0\": backend port 0"},
           Case{"ftp1.farm.internal:99999", "port out of range"},
           Case{"ftp1.farm.internal:21,FTP1.farm.internal:21=2", "listed twice"},
           Case{"10.0.0.9:22@spare",
                "\"10.0.0.9:22@spare\": want @backup after the address or weight"},
           Case{"10.0.0.9:22@", "want @backup"},
           Case{"10.0.0.9:22@backup=2", "want @backup after the address or weight"},
           Case{"10.0.0.9:22@backup@backup", "port is not a number"},
       }) {
    const absl::StatusOr<std::vector<BackendSpec>> list = ParseBackendList(c.text);
    ASSERT_FALSE(list.ok()) << c.text;
    EXPECT_NE(list.status().message().find(c.message), std::string::npos)
        << "got: " << list.status().message() << "\nwant: " << c.message;
  }
}

// A host name instead of an address: a named spec, resolved later (l4lb/dns/),
// with its weight and backup flag, beside literal addresses.
TEST(ParseBackendListTest, HostNamesAreNamedUnresolvedSpecs) {
  const absl::StatusOr<std::vector<BackendSpec>> list =
      ParseBackendList("10.0.0.1:21,FTP1.Farm.internal:21=2@backup,web_1.test.:8080");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_TRUE((*list)[0].resolved());
  EXPECT_TRUE((*list)[0].host.empty());
  const BackendSpec& ftp = (*list)[1];
  EXPECT_FALSE(ftp.resolved());
  EXPECT_EQ(ftp.host, "ftp1.farm.internal") << "DNS names are case-insensitive";
  EXPECT_EQ(ftp.port, 21);
  EXPECT_EQ(ftp.name, "ftp1.farm.internal:21");
  EXPECT_EQ(ftp.weight, 2u);
  EXPECT_TRUE(ftp.backup);
  EXPECT_EQ((*list)[2].host, "web_1.test.");
  EXPECT_EQ((*list)[2].port, 8080);

  const absl::StatusOr<std::vector<BackendSpec>> portless =
      ParseBackendList("10.0.0.1,ftp1.farm.internal=3", BackendPorts::kFromListener);
  ASSERT_TRUE(portless.ok()) << portless.status();
  EXPECT_EQ((*portless)[1].host, "ftp1.farm.internal");
  EXPECT_EQ((*portless)[1].port, 0) << "the client's port";
  EXPECT_EQ((*portless)[1].weight, 3u);
  // Without a port the strict parse refuses it (the callers then try kFromListener).
  EXPECT_FALSE(ParseBackendList("ftp1.farm.internal").ok());
}

}  // namespace
}  // namespace l4lb::backend
