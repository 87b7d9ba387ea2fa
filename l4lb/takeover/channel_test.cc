#include "l4lb/takeover/channel.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "l4lb/takeover/wire.h"

namespace l4lb::takeover {
namespace {

int OpenFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n;
}

// Under /tmp: Bazel's TEST_TMPDIR is too long for a unix socket's 108 bytes.
std::string TempPath(const std::string& name) {
  std::string dir = "/tmp/l4lb-takeover-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) return "";
  return absl::StrCat(dir, "/", name);
}

// What a takeover needs: a pipe with bytes parked in it and a socket with bytes
// queued arrive on the other side with those bytes still there.
TEST(ChannelTest, FdsArriveWithTheirQueuedBytes) {
  absl::StatusOr<std::pair<Channel, Channel>> pair = Channel::Pair();
  ASSERT_TRUE(pair.ok()) << pair.status();
  auto& [old_side, new_side] = *pair;
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  ASSERT_EQ(write(pipe_fds[1], "parked", 6), 6);
  int peers[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, peers), 0);
  ASSERT_EQ(write(peers[1], "queued", 6), 6);
  const std::string message = Encode(Done{.listeners = 0, .connections = 1});
  ASSERT_TRUE(old_side.Send(message, {peers[0], pipe_fds[0], pipe_fds[1]}).ok());
  // The sender may close its copies at once: the kernel holds the files.
  close(peers[0]);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  absl::StatusOr<Channel::Received> r = new_side.Receive(absl::Seconds(2));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->message, message);
  ASSERT_EQ(r->fds.size(), 3u);
  char buf[16] = {};
  EXPECT_EQ(read(r->fds[0].get(), buf, sizeof(buf)), 6);
  EXPECT_EQ(std::string(buf, 6), "queued");
  EXPECT_EQ(read(r->fds[1].get(), buf, sizeof(buf)), 6);
  EXPECT_EQ(std::string(buf, 6), "parked");
  EXPECT_EQ(write(r->fds[2].get(), "more", 4), 4);  // the write end works too
  EXPECT_NE(fcntl(r->fds[0].get(), F_GETFD) & FD_CLOEXEC, 0);
  // And the socket still talks to its peer, both ways.
  EXPECT_EQ(write(r->fds[0].get(), "back", 4), 4);
  EXPECT_EQ(read(peers[1], buf, sizeof(buf)), 4);
  close(peers[1]);
}

TEST(ChannelTest, MessagesKeepTheirBoundaries) {
  absl::StatusOr<std::pair<Channel, Channel>> pair = Channel::Pair();
  ASSERT_TRUE(pair.ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pair->first.Send(Encode(Ack{.adopted = static_cast<uint64_t>(i)}), {}).ok());
  }
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Channel::Received> r = pair->second.Receive(absl::Seconds(1));
    ASSERT_TRUE(r.ok()) << r.status();
    absl::StatusOr<Message> m = Decode(absl::MakeConstSpan(
        reinterpret_cast<const uint8_t*>(r->message.data()), r->message.size()));
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->ack.adopted, static_cast<uint64_t>(i));
  }
}

TEST(ChannelTest, FailuresAreNamedAndLeakNoFd) {
  absl::StatusOr<std::pair<Channel, Channel>> pair = Channel::Pair();
  ASSERT_TRUE(pair.ok());
  absl::StatusOr<Channel::Received> r = pair->second.Receive(absl::Milliseconds(50));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_FALSE(pair->first.Send(std::string(kMaxMessageBytes + 1, 'x'), {}).ok());
  std::vector<int> many(Channel::kMaxFds + 1, 0);
  EXPECT_FALSE(pair->first.Send("x", many).ok());
  // Longer than any message may be, sent around Send(): refused on arrival,
  // and the fd that came with it is closed, not leaked.
  const int before = OpenFds();
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  std::string big(kMaxMessageBytes + 100, 'b');
  iovec iov{.iov_base = big.data(), .iov_len = big.size()};
  char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &pipe_fds[0], sizeof(int));
  ASSERT_EQ(sendmsg(pair->first.fd(), &msg, 0), static_cast<ssize_t>(big.size()));
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  r = pair->second.Receive(absl::Seconds(1));
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("longer than"), std::string::npos) << r.status();
  EXPECT_EQ(OpenFds(), before);
  // The peer goes away.
  pair->first = Channel(net::Fd());
  r = pair->second.Receive(absl::Seconds(1));
  EXPECT_EQ(r.status().message(), "takeover: the peer closed the channel");
}

TEST(ChannelListenerTest, ListensPrivatelyReplacesAStaleFileAndCleansUp) {
  const std::string path = TempPath("takeover.sock");
  { std::ofstream(path) << "stale"; }  // what a killed process would leave
  {
    absl::StatusOr<ChannelListener> listener = ChannelListener::Listen(path);
    ASSERT_TRUE(listener.ok()) << listener.status();
    struct stat st{};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0700u);  // owner only: connecting needs write permission
    EXPECT_EQ(listener->Accept(absl::Milliseconds(50)).status().code(),
              absl::StatusCode::kDeadlineExceeded);
    absl::StatusOr<Channel> client = Channel::Connect(path);
    ASSERT_TRUE(client.ok()) << client.status();
    absl::StatusOr<Channel> server = listener->Accept(absl::Seconds(1));
    ASSERT_TRUE(server.ok()) << server.status();
    ASSERT_TRUE(client->Send(Encode(Hello{}), {}).ok());
    EXPECT_TRUE(server->Receive(absl::Seconds(1)).ok());
  }
  struct stat st{};
  EXPECT_NE(stat(path.c_str(), &st), 0) << "the socket file outlived its listener";
  EXPECT_FALSE(Channel::Connect(path).ok());
  EXPECT_FALSE(ChannelListener::Listen(std::string(200, 'p')).ok());
}

}  // namespace
}  // namespace l4lb::takeover
