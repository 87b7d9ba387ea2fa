// The two sides of a live upgrade's exchange (donor.h, taker.h) over a real
// unix socket, with real fds: what crosses, in what order, and what each side
// does when the other fails.

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

#include "l4lb/takeover/donor.h"
#include "l4lb/takeover/taker.h"

namespace l4lb::takeover {
namespace {

std::string SocketPath(const char* name) {
  // Not under TEST_TMPDIR: a unix socket's path must fit in 108 bytes.
  return absl::StrCat("/tmp/l4lb-exchange-test-", getpid(), "-", name, ".sock");
}

// A donor over stand-ins for the workers: one "listener" (a socket pair's
// end), and two "connections" whose fds carry bytes the taker reads back.
class ExchangeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int pair[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    listener_ = net::Fd(pair[0]);
    listener_peer_ = net::Fd(pair[1]);
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
      conn_[i] = net::Fd(pair[0]);
      conn_peer_[i] = net::Fd(pair[1]);
    }
  }

  Donor::Options DonorOptions(const std::string& path) {
    Donor::Options o;
    o.path = path;
    o.workers = 1;
    o.build = "l4lb test";
    o.timeout = absl::Seconds(5);
    o.hooks.listeners = [this] {
      Donor::ListenerFds l;
      l.record = {.service = "ftp", .udp = false, .requested = "127.0.0.1:0",
                  .bound = "127.0.0.1:2121", .workers = 1};
      l.fds = {listener_.get()};
      return std::vector<Donor::ListenerFds>{l};
    };
    o.hooks.begin_export = [this](Outbox* out) {
      ++exports_;
      out->Expect();
      for (int i = 0; i < 2; ++i) {
        Outbox::Item item;
        item.record.service = "ftp";
        item.record.client = absl::StrCat("127.0.0.", 10 + i, ":40000");
        item.fds = {conn_[i].get(), conn_[i].get()};  // client and backend stand-ins
        out->Push(std::move(item));
      }
      Outbox::Item session;
      session.udp = true;
      session.udp_record.service = "dns";
      session.udp_record.client = "127.0.0.20:5353";
      session.fds = {conn_[0].get()};
      out->Push(std::move(session));
      out->WorkerDone();
    };
    o.hooks.end_export = [this](bool handed) { (handed ? handed_ : taken_back_)++; };
    return o;
  }

  net::Fd listener_, listener_peer_, conn_[2], conn_peer_[2];
  std::atomic<int> exports_{0}, handed_{0}, taken_back_{0};
};

TEST_F(ExchangeTest, TheNewProcessGetsListenersThenConnectionsThenAcks) {
  const std::string path = SocketPath("whole");
  absl::StatusOr<std::unique_ptr<Donor>> donor = Donor::Start(DonorOptions(path));
  ASSERT_TRUE(donor.ok()) << donor.status();
  absl::StatusOr<std::optional<Taker>> taker = Taker::Connect(path, absl::Seconds(5), "new");
  ASSERT_TRUE(taker.ok()) << taker.status();
  ASSERT_TRUE(taker->has_value());
  Taker& t = **taker;
  EXPECT_EQ(t.workers(), 1u);
  ASSERT_EQ(t.listeners().size(), 1u);
  EXPECT_EQ(t.listeners()[0].listener.bound, "127.0.0.1:2121");
  ASSERT_EQ(t.listeners()[0].fds.size(), 1u);
  // The very same socket: what its peer writes, the received fd reads.
  ASSERT_EQ(write(listener_peer_.get(), "L", 1), 1);
  char c = 0;
  ASSERT_EQ(read(t.listeners()[0].fds[0].get(), &c, 1), 1);
  EXPECT_EQ(c, 'L');
  // Nothing is exported before the taker says Ready.
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(exports_.load(), 0);

  absl::StatusOr<std::vector<Taker::Incoming>> conns = t.TakeConnections();
  ASSERT_TRUE(conns.ok()) << conns.status();
  ASSERT_EQ(conns->size(), 3u);
  EXPECT_FALSE((*conns)[1].udp);
  EXPECT_EQ((*conns)[1].connection.client, "127.0.0.11:40000");
  EXPECT_TRUE((*conns)[2].udp);
  EXPECT_EQ((*conns)[2].udp_session.client, "127.0.0.20:5353");
  EXPECT_EQ((*conns)[2].fds.size(), 1u);
  ASSERT_EQ((*conns)[1].fds.size(), 2u);
  ASSERT_EQ(write(conn_peer_[1].get(), "C", 1), 1);
  ASSERT_EQ(read((*conns)[1].fds[0].get(), &c, 1), 1);
  EXPECT_EQ(c, 'C');
  EXPECT_FALSE((*donor)->handed_over());
  EXPECT_EQ(handed_.load(), 0);
  ASSERT_TRUE(t.Ack(3).ok());
  for (int i = 0; i < 500 && !(*donor)->handed_over(); ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_TRUE((*donor)->handed_over());
  EXPECT_EQ(handed_.load(), 1);
  EXPECT_EQ(taken_back_.load(), 0);
}

TEST_F(ExchangeTest, NobodyListeningIsAFirstStart) {
  absl::StatusOr<std::optional<Taker>> none =
      Taker::Connect(SocketPath("nobody"), absl::Seconds(1), "new");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
}

// The new process goes away after taking the connections but before its Ack
// (it crashed, or failed to place them): the running one takes them back and
// serves on, and a later attempt works.
TEST_F(ExchangeTest, ATakerThatDiesBeforeItsAckLeavesEverythingWithTheDonor) {
  const std::string path = SocketPath("dies");
  absl::StatusOr<std::unique_ptr<Donor>> donor = Donor::Start(DonorOptions(path));
  ASSERT_TRUE(donor.ok()) << donor.status();
  {
    absl::StatusOr<std::optional<Taker>> taker = Taker::Connect(path, absl::Seconds(5), "new");
    ASSERT_TRUE(taker.ok() && taker->has_value()) << taker.status();
    ASSERT_TRUE((**taker).TakeConnections().ok());
  }  // closed, no Ack
  for (int i = 0; i < 500 && taken_back_.load() == 0; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(taken_back_.load(), 1);
  EXPECT_EQ(handed_.load(), 0);
  EXPECT_FALSE((*donor)->handed_over());

  absl::StatusOr<std::optional<Taker>> again = Taker::Connect(path, absl::Seconds(5), "new");
  ASSERT_TRUE(again.ok() && again->has_value()) << again.status();
  absl::StatusOr<std::vector<Taker::Incoming>> conns = (**again).TakeConnections();
  ASSERT_TRUE(conns.ok()) << conns.status();
  ASSERT_TRUE((**again).Ack(conns->size()).ok());
  for (int i = 0; i < 500 && !(*donor)->handed_over(); ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_TRUE((*donor)->handed_over());
  EXPECT_EQ(exports_.load(), 2);
}

// A wrong Ack count is no Ack: the donor keeps its connections.
TEST_F(ExchangeTest, AnAckThatDoesNotMatchTakesNothing) {
  const std::string path = SocketPath("count");
  absl::StatusOr<std::unique_ptr<Donor>> donor = Donor::Start(DonorOptions(path));
  ASSERT_TRUE(donor.ok()) << donor.status();
  absl::StatusOr<std::optional<Taker>> taker = Taker::Connect(path, absl::Seconds(5), "new");
  ASSERT_TRUE(taker.ok() && taker->has_value()) << taker.status();
  ASSERT_TRUE((**taker).TakeConnections().ok());
  ASSERT_TRUE((**taker).Ack(1).ok());
  for (int i = 0; i < 500 && taken_back_.load() == 0; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(taken_back_.load(), 1);
  EXPECT_FALSE((*donor)->handed_over());
}

// A binary that writes another wire version is refused before anything moves.
TEST_F(ExchangeTest, AnotherWireVersionIsRefusedWithTheReason) {
  const std::string path = SocketPath("version");
  absl::StatusOr<std::unique_ptr<Donor>> donor = Donor::Start(DonorOptions(path));
  ASSERT_TRUE(donor.ok()) << donor.status();
  absl::StatusOr<Channel> raw = Channel::Connect(path);
  ASSERT_TRUE(raw.ok()) << raw.status();
  std::string hello = Encode(Hello{.version = kWireVersion, .build = "future"});
  hello[4] = static_cast<char>(kWireVersion + 1);  // the header's version
  ASSERT_TRUE(raw->Send(hello, {}).ok());
  absl::StatusOr<Channel::Received> reply = raw->Receive(absl::Seconds(5));
  ASSERT_TRUE(reply.ok()) << reply.status();
  absl::StatusOr<Message> m = Decode(absl::MakeConstSpan(
      reinterpret_cast<const uint8_t*>(reply->message.data()), reply->message.size()));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FALSE(m->hello_reply.accepted);
  EXPECT_EQ(m->hello_reply.error, "wire version 2, this binary reads 1");
  EXPECT_TRUE(reply->fds.empty());
  EXPECT_EQ(exports_.load(), 0);
}

}  // namespace
}  // namespace l4lb::takeover
