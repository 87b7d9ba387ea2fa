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
           Case{"backend.example:80", "not an IPv4 address"},
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

}  // namespace
}  // namespace l4lb::backend
