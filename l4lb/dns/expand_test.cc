#include "l4lb/dns/expand.h"

#include "gtest/gtest.h"

namespace l4lb::dns {
namespace {

net::SocketAddress Ip(const char* text) {
  absl::StatusOr<net::SocketAddress> a = net::SocketAddress::Parse(text);
  EXPECT_TRUE(a.ok()) << a.status();
  return *a;
}

std::vector<std::string> Names(const std::vector<backend::BackendSpec>& specs) {
  std::vector<std::string> out;
  for (const backend::BackendSpec& b : specs) out.push_back(b.name);
  return out;
}

// A name with several addresses is several backends, in one order whatever the
// DNS server's (so instances agree on the Maglev table), each with the entry's
// port, weight and backup flag; literal backends stay where they were.
TEST(ExpandTest, OneBackendPerAddressSortedWithTheEntrysSettings) {
  absl::StatusOr<std::vector<backend::BackendSpec>> specs =
      backend::ParseBackendList("10.0.0.1:21,ftp.farm.internal:2121=3@backup,10.0.0.9:21");
  ASSERT_TRUE(specs.ok()) << specs.status();
  const Addresses rotated_a = {
      {"ftp.farm.internal", {Ip("10.0.1.3:0"), Ip("10.0.1.10:0"), Ip("10.0.1.2:0")}}};
  const Addresses rotated_b = {
      {"ftp.farm.internal", {Ip("10.0.1.10:0"), Ip("10.0.1.2:0"), Ip("10.0.1.3:0")}}};
  absl::StatusOr<std::vector<backend::BackendSpec>> a = Expand(*specs, rotated_a);
  absl::StatusOr<std::vector<backend::BackendSpec>> b = Expand(*specs, rotated_b);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  const std::vector<std::string> want = {"10.0.0.1:21", "10.0.1.2:2121", "10.0.1.3:2121",
                                         "10.0.1.10:2121", "10.0.0.9:21"};
  EXPECT_EQ(Names(*a), want);
  EXPECT_EQ(Names(*b), want) << "the answer's order must not matter";
  for (size_t i = 1; i <= 3; ++i) {
    const backend::BackendSpec& s = (*a)[i];
    EXPECT_TRUE(s.resolved());
    EXPECT_EQ(s.address.port(), 2121);
    EXPECT_EQ(s.weight, 3u);
    EXPECT_TRUE(s.backup);
    EXPECT_EQ(s.host, "ftp.farm.internal") << "which name it came from";
  }
  EXPECT_TRUE((*a)[0].host.empty());
}

// An address given twice (a literal and a name, two names) is one backend: the
// first entry's.
TEST(ExpandTest, AnAddressGivenTwiceIsOneBackend) {
  absl::StatusOr<std::vector<backend::BackendSpec>> specs =
      backend::ParseBackendList("a.test:80=2,b.test:80,10.0.0.3:80");
  ASSERT_TRUE(specs.ok()) << specs.status();
  const Addresses resolved = {
      {"a.test", {Ip("10.0.0.1:0"), Ip("10.0.0.2:0")}},
      {"b.test", {Ip("10.0.0.2:0"), Ip("10.0.0.3:0"), Ip("[2001:db8::1]:0")}}};
  absl::StatusOr<std::vector<backend::BackendSpec>> out = Expand(*specs, resolved);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Names(*out), (std::vector<std::string>{"10.0.0.1:80", "10.0.0.2:80", "[2001:db8::1]:80",
                                                   "10.0.0.3:80"}));
  EXPECT_EQ((*out)[1].weight, 2u) << "10.0.0.2 came from a.test first";
}

// Portless names (port-range listeners) keep the client's port: port 0.
TEST(ExpandTest, PortlessNamesKeepPortZeroAndAMissingNameIsAnError) {
  absl::StatusOr<std::vector<backend::BackendSpec>> specs =
      backend::ParseBackendList("ftp.test", backend::BackendPorts::kFromListener);
  ASSERT_TRUE(specs.ok()) << specs.status();
  absl::StatusOr<std::vector<backend::BackendSpec>> out =
      Expand(*specs, {{"ftp.test", {Ip("10.0.0.1:0")}}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].name, "10.0.0.1:0");
  EXPECT_EQ((*out)[0].target_port(), 0);
  const absl::StatusOr<std::vector<backend::BackendSpec>> missing = Expand(*specs, {});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(JoinAddresses({Ip("10.0.0.1:0"), Ip("[::1]:0")}), "10.0.0.1, [::1]");
}

}  // namespace
}  // namespace l4lb::dns
