#include "l4lb/net/transparent.h"

#include <linux/capability.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gtest/gtest.h"

#include "l4lb/net/socket.h"

namespace l4lb::net {
namespace {

SocketAddress Address(const char* text) { return *SocketAddress::Parse(text); }

TEST(TransparentTest, TheSourceIsTheClientOfTheBackendsFamilyWithPortZero) {
  EXPECT_EQ(TransparentSource(Address("10.0.0.7:5555"), AF_INET)->ToString(), "10.0.0.7:0");
  EXPECT_EQ(TransparentSource(Address("[2001:db8::7]:5555"), AF_INET6)->ToString(),
            "[2001:db8::7]:0");
  // An IPv4 client on a dual-stack [::] listener.
  EXPECT_EQ(TransparentSource(Address("[::ffff:10.0.0.7]:5555"), AF_INET)->ToString(),
            "10.0.0.7:0");
  for (const auto& [client, family, why] : std::vector<std::tuple<const char*, int, const char*>>{
           {"[2001:db8::7]:5555", AF_INET, "is IPv6, the backend IPv4"},
           {"10.0.0.7:5555", AF_INET6, "is IPv4, the backend IPv6"},
           {"[::ffff:10.0.0.7]:5555", AF_INET6, "is IPv4, the backend IPv6"},
       }) {
    const absl::StatusOr<SocketAddress> bad = TransparentSource(Address(client), family);
    ASSERT_FALSE(bad.ok()) << client;
    EXPECT_NE(bad.status().message().find(why), std::string::npos) << bad.status();
  }
}

TEST(TransparentTest, BindsAnAddressTheHostDoesNotHave) {
  ASSERT_TRUE(CheckTransparent(AF_INET).ok()) << "run as root (CAP_NET_ADMIN)";
  const SocketAddress foreign = Address("192.0.2.77:0");
  absl::StatusOr<Fd> plain = OpenTcpClientSocket(AF_INET);
  ASSERT_TRUE(plain.ok());
  EXPECT_NE(bind(plain->get(), foreign.sockaddr_ptr(), foreign.sockaddr_len()), 0)
      << "192.0.2.77 must not be this host's for the test to mean anything";
  absl::StatusOr<Fd> fd = OpenTcpClientSocket(AF_INET);
  ASSERT_TRUE(fd.ok());
  ASSERT_TRUE(BindTransparent(fd->get(), foreign).ok());
  absl::StatusOr<SocketAddress> local = LocalAddress(fd->get());
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local->ToString(), "192.0.2.77:0") << "the port waits for the connect";
}

// A process without CAP_NET_ADMIN and CAP_NET_RAW (a child that dropped them):
// the check says which capability l4lb needs.
TEST(TransparentTest, WithoutTheCapabilityTheCheckNamesIt) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    __user_cap_header_struct header{.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    __user_cap_data_struct data[2] = {};
    if (syscall(SYS_capget, &header, data) != 0) _exit(3);
    data[0].effective &= ~((1u << CAP_NET_ADMIN) | (1u << CAP_NET_RAW));
    if (syscall(SYS_capset, &header, data) != 0) _exit(3);
    const absl::Status st = CheckTransparent(AF_INET);
    _exit(absl::IsPermissionDenied(st) &&
                  st.message().find("needs CAP_NET_ADMIN") != std::string::npos
              ? 0
              : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3: capget/capset failed; 1: not the expected error";
}

}  // namespace
}  // namespace l4lb::net
