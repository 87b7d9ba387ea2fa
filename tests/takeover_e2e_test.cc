// The live upgrade (--takeover): a new l4lb takes the running one's listening
// sockets and established connections, with their bytes in flight, while real
// transfers run through it: a 1 GiB FTP download (vsftpd, curl), a 1 GiB SFTP
// upload (sshd, sftp), idle SFTP sessions and idle echo connections (1,000
// idle connections in all), and a loop of new connections. The same binary
// stands in for the new one. Every transfer must end byte-exact (sha256), every
// idle connection must work after the upgrades, no new connection may fail, and
// each old process must be gone. Then a new process killed in the middle of a
// takeover (before its Ack) must leave everything with the old one.

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/servers.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

std::string Sha256(const std::string& path) {
  const CommandResult r = RunCommand({"sha256sum", path}, absl::Seconds(60));
  return r.exit_code == 0 ? r.out.substr(0, r.out.find(' ')) : "";
}

// The idle echo connections' client addresses: 127.1.X.Y, one per connection.
std::string IdleSource(int i) { return absl::StrCat("127.1.", i / 200, ".", i % 200 + 1); }

// One round trip on an established echo connection.
bool Echoes(int fd, const std::string& message) {
  return SendAll(fd, message) && ReadN(fd, message.size()) == message;
}

// New connections, one after another, each a round trip then a close, until
// told to stop (bounded: 200,000 at most).
class ConnectLoop {
 public:
  explicit ConnectLoop(uint16_t port) : thread_([this, port] { Run(port); }) {}
  ~ConnectLoop() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int ok() const { return ok_.load(); }
  int failed() const { return failed_.load(); }

 private:
  void Run(uint16_t port) {
    for (int i = 0; i < 200000 && !stop_; ++i) {
      const int fd = ConnectTcp("127.0.0.1", port, absl::StrCat("127.2.", i % 250, ".1"));
      bool good = fd >= 0;
      if (good) {
        SetRecvTimeout(fd, absl::Seconds(5));
        good = Echoes(fd, absl::StrCat("new ", i, "\n"));
        close(fd);
      }
      (good ? ok_ : failed_)++;
      absl::SleepFor(absl::Milliseconds(2));
    }
  }
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0}, failed_{0};
  std::thread thread_;
};

class TakeoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"/usr/sbin/vsftpd", "/usr/bin/curl", "/usr/sbin/sshd", "/usr/bin/sftp"}) {
      ASSERT_EQ(access(tool, X_OK), 0) << tool << " is missing: run tools/setup.sh";
    }
    ASSERT_NE(pasv_min_ = FreePortRange({"127.0.0.1", "127.0.0.2"}, 10), 0);
    ASSERT_NE(ftp_ = FreePortOnAll({"127.0.0.1", "127.0.0.2"}), 0);
    ASSERT_NE(ssh_ = FreePortOnAll({"127.0.0.1", "127.0.0.3"}), 0);
    ASSERT_NE(echo_port_ = FreePortOnAll({"127.0.0.1"}), 0);
    absl::StatusOr<Server> vsftpd = StartVsftpd(
        "127.0.0.2", ftp_,
        {.banner = "",
         .pasv_min_port = pasv_min_, .pasv_max_port = static_cast<uint16_t>(pasv_min_ + 9),
         .pasv_address = "127.0.0.1"});
    ASSERT_TRUE(vsftpd.ok()) << vsftpd.status();
    vsftpd_ = *std::move(vsftpd);
    absl::StatusOr<Server> sshd = StartSshd("127.0.0.3", ssh_, {});
    ASSERT_TRUE(sshd.ok()) << sshd.status();
    sshd_ = *std::move(sshd);
    echo_ = std::make_unique<EchoServer>("127.0.0.4");
    // A UDP backend that answers each datagram with the address it came from:
    // the session's own socket on l4lb, which a handed-over session keeps.
    udp_backend_port_ = 0;
    udp_backend_ = BindUdp("127.0.0.4", &udp_backend_port_);
    ASSERT_GE(udp_backend_, 0);
    ASSERT_NE(udp_port_ = FreeUdpPortOnAll({"127.0.0.1"}), 0);
    udp_thread_ = std::thread([this] {
      while (!udp_stop_) {
        std::string from;
        const std::optional<std::string> d = RecvFrom(udp_backend_, absl::Milliseconds(100), &from);
        if (!d) continue;
        const size_t colon = from.rfind(':');
        SendTo(udp_backend_, from.substr(0, colon), static_cast<uint16_t>(std::stoi(from.substr(colon + 1))),
               *d + " from " + from);
      }
    });
    config_ = TempDir() + "/takeover.toml";
    std::ofstream(config_, std::ios::trunc)
        << "[[service]]\nname = \"ftp\"\nlisten = [\"127.0.0.1:" << ftp_ << "\", \"127.0.0.1:"
        << pasv_min_ << "-" << pasv_min_ + 9 << "\"]\nbackends = [\"127.0.0.2\"]\n"
        << "affinity_group = \"ftp\"\n[service.health]\ncheck = \"ftp\"\n\n"
        << "[[service]]\nname = \"sftp\"\nlisten = [\"127.0.0.1:" << ssh_
        << "\"]\nbackends = [\"127.0.0.3:" << ssh_ << "\"]\n[service.health]\ncheck = \"ssh\"\n\n"
        << "[[service]]\nname = \"echo\"\nlisten = [\"127.0.0.1:" << echo_port_
        << "\"]\nbackends = [\"127.0.0.4:" << echo_->port() << "\"]\n\n"
        << "[[service]]\nname = \"udp\"\nprotocol = \"udp\"\nlisten = [\"127.0.0.1:" << udp_port_
        << "\"]\nbackends = [\"127.0.0.4:" << udp_backend_port_ << "\"]\nudp_idle_timeout = \"60s\"\n"
        << "[service.health]\ncheck = \"none\"\n";
    socket_ = absl::StrCat("/tmp/l4lb-takeover-test-", getpid(), ".sock");
    absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(Flags());
    ASSERT_TRUE(l4lb.ok()) << l4lb.status();
    l4lb_ = *std::move(l4lb);
  }

  void TearDown() override {
    udp_stop_ = true;
    if (udp_thread_.joinable()) udp_thread_.join();
    if (udp_backend_ >= 0) close(udp_backend_);
  }

  std::vector<std::string> Flags() const {
    return {"--config=" + config_, "--threads=2", "--takeover=" + socket_, "--drain_timeout=5s",
            "--logbuflevel=-1"};
  }

  // Starts the next process with the same flags; it must take everything
  // over and the running one must exit 0 on its own. Returns the bytes that
  // were in flight in l4lb's pipes (a slow reader's) and crossed with them.
  uint64_t Upgrade(int n) {
    absl::StatusOr<std::unique_ptr<L4lb>> next = L4lb::Start(Flags());
    EXPECT_TRUE(next.ok()) << "upgrade " << n << ": " << next.status();
    if (!next.ok()) return 0;
    const int old_exit = l4lb_->process().Wait(absl::Seconds(15));
    EXPECT_EQ(old_exit, 0) << "upgrade " << n << ": the old process\n" << l4lb_->Log();
    EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] { return (*next)->HasLine("took over", "connection(s)"); }))
        << (*next)->Log();
    const std::string log = (*next)->Log();
    const size_t at = log.find("takeover: took over ");
    uint64_t parked = 0;
    if (at != std::string::npos) {
      const std::string line = log.substr(at, log.find('\n', at) - at);
      printf("upgrade %d: %s\n", n, line.c_str());
      const size_t with = line.find(" with ");
      if (with != std::string::npos) (void)absl::SimpleAtoi(line.substr(with + 6, line.find(' ', with + 6) - with - 6), &parked);
    }
    l4lb_ = *std::move(next);
    return parked;
  }

  std::string FtpUrl(const std::string& name) const {
    return absl::StrCat("ftp://127.0.0.1:", ftp_, "/", name);
  }

  // A real SFTP session that logs in now and then waits for commands on a FIFO.
  struct IdleSftp {
    std::unique_ptr<Process> process;
    std::string fifo;
    std::string log;
  };
  IdleSftp StartIdleSftp(int i) {
    IdleSftp s;
    s.fifo = absl::StrCat(TempDir(), "/sftp-", i, ".fifo");
    s.log = absl::StrCat(TempDir(), "/sftp-", i, ".log");
    EXPECT_EQ(mkfifo(s.fifo.c_str(), 0600), 0);
    std::vector<std::string> ssh = SshClientOptions(ssh_);
    ssh.insert(ssh.begin(), {"sftp", "-v", "-o", absl::StrCat("BindAddress=127.3.0.", i + 1)});
    ssh.insert(ssh.end(), {"-b", "-", "root@127.0.0.1"});
    // cat holds the FIFO open for reading at once; sftp logs in meanwhile.
    absl::StatusOr<std::unique_ptr<Process>> p =
        Process::Start({"/bin/sh", "-c", absl::StrCat("cat ", s.fifo, " | exec ", absl::StrJoin(ssh, " "))},
                       s.log);
    EXPECT_TRUE(p.ok()) << p.status();
    if (p.ok()) s.process = *std::move(p);
    return s;
  }

  uint16_t pasv_min_ = 0, ftp_ = 0, ssh_ = 0, echo_port_ = 0, udp_port_ = 0, udp_backend_port_ = 0;
  int udp_backend_ = -1;
  std::atomic<bool> udp_stop_{false};
  std::thread udp_thread_;
  Server vsftpd_, sshd_;
  std::unique_ptr<EchoServer> echo_;
  std::string config_, socket_;
  std::unique_ptr<L4lb> l4lb_;
};

TEST_F(TakeoverTest, TenUpgradesInARowUnderLoadLoseNothing) {
  constexpr int kIdleEcho = 950;
  constexpr int kIdleSftp = 50;
  constexpr int kUpgrades = 10;
  // The transfers: 1 GiB down over FTP, 1 GiB up over SFTP, rate-limited so
  // that they last through the upgrades.
  const std::string down_src = vsftpd_.files + "/down.bin";
  const std::string up_src = TempDir() + "/up.bin";
  WriteRandomFile(down_src, 1024 * kMiB, 1);
  WriteRandomFile(up_src, 1024 * kMiB, 2);
  const std::string small = sshd_.files + "/small.bin";
  WriteRandomFile(small, 64 * 1024, 3);
  const std::string down_dst = TempDir() + "/down.got";
  std::atomic<int> curl_exit{-1}, sftp_exit{-1};
  std::string sftp_err;
  std::thread curl([&] {
    curl_exit = RunCommand({"curl", "-sS", "--limit-rate", "50M", "-o", down_dst, FtpUrl("down.bin")},
                           absl::Seconds(120))
                    .exit_code;
  });
  std::thread sftp([&] {
    const std::string batch = TempDir() + "/up.batch";
    std::ofstream(batch, std::ios::trunc) << "put " << up_src << " up.bin\n";
    std::vector<std::string> argv = SftpBatchCommand("127.0.0.1", ssh_, batch);
    argv.insert(argv.begin() + 1, {"-l", "400000"});  // Kbit/s: 50 MB/s
    const CommandResult r = RunCommand(argv, absl::Seconds(120));
    sftp_err = r.err;
    sftp_exit = r.exit_code;
  });
  // The idle connections, each proven to work once before the upgrades.
  std::vector<int> idle;
  for (int i = 0; i < kIdleEcho; ++i) {
    const int fd = ConnectTcp("127.0.0.1", echo_port_, IdleSource(i));
    ASSERT_GE(fd, 0) << i;
    SetRecvTimeout(fd, absl::Seconds(5));
    ASSERT_TRUE(Echoes(fd, absl::StrCat("before ", i, "\n"))) << i;
    idle.push_back(fd);
  }
  std::vector<IdleSftp> sessions;
  for (int i = 0; i < kIdleSftp; ++i) sessions.push_back(StartIdleSftp(i));
  for (int i = 0; i < kIdleSftp; ++i) {
    ASSERT_TRUE(WaitFor(absl::Seconds(30), [&] {
      std::ifstream in(sessions[i].log);
      std::stringstream ss;
      ss << in.rdbuf();
      return absl::StrContains(ss.str(), "Authenticated to");
    })) << "sftp session " << i << " did not log in";
  }
  ConnectLoop loop(echo_port_);
  absl::SleepFor(absl::Seconds(1));  // the transfers are under way
  uint64_t parked = 0;
  for (int n = 1; n <= kUpgrades && !HasFatalFailure(); ++n) {
    parked += Upgrade(n);
    absl::SleepFor(absl::Milliseconds(300));
  }
  // curl reads at its rate limit: l4lb's pipe towards it holds bytes, which
  // must have crossed with the connection (else this test proves less).
  EXPECT_GT(parked, 0u) << "no upgrade carried bytes in a pipe";
  // Both transfers ran through every upgrade (at 50 MB/s, 1 GiB takes 21 s).
  EXPECT_EQ(curl_exit.load(), -1) << "the download ended before the last upgrade: slow it down";
  EXPECT_EQ(sftp_exit.load(), -1) << "the upload ended before the last upgrade: slow it down";
  absl::SleepFor(absl::Milliseconds(500));
  loop.Stop();
  printf("new connections during the upgrades: %d ok, %d failed\n", loop.ok(), loop.failed());
  EXPECT_EQ(loop.failed(), 0);
  EXPECT_GT(loop.ok(), 100);
  int echoed = 0;
  for (int i = 0; i < kIdleEcho; ++i) echoed += Echoes(idle[i], absl::StrCat("after ", i, "\n"));
  EXPECT_EQ(echoed, kIdleEcho);
  for (int fd : idle) close(fd);
  int fetched = 0;
  for (int i = 0; i < kIdleSftp; ++i) {
    const std::string got = absl::StrCat(TempDir(), "/small-", i, ".got");
    const int fd = open(sessions[i].fifo.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    const std::string command = absl::StrCat("get small.bin ", got, "\n");
    ASSERT_EQ(write(fd, command.data(), command.size()), static_cast<ssize_t>(command.size()));
    close(fd);  // EOF: sftp runs it and exits
    if (sessions[i].process->Wait(absl::Seconds(20)) == 0 && Sha256(got) == Sha256(small)) ++fetched;
  }
  EXPECT_EQ(fetched, kIdleSftp);
  curl.join();
  sftp.join();
  EXPECT_EQ(curl_exit.load(), 0);
  EXPECT_EQ(sftp_exit.load(), 0) << sftp_err;
  EXPECT_EQ(Sha256(down_dst), Sha256(down_src)) << "the FTP download";
  EXPECT_EQ(Sha256(sshd_.files + "/up.bin"), Sha256(up_src)) << "the SFTP upload";
}

// A new process that dies in the middle (after the old one handed it the
// connections, before its Ack) changes nothing: the old one takes them back,
// relays and accepts again; the next attempt works.
TEST_F(TakeoverTest, ANewProcessKilledBeforeItsAckLeavesEverythingWithTheOld) {
  const std::string down_src = vsftpd_.files + "/down.bin";
  WriteRandomFile(down_src, 200 * kMiB, 4);
  const std::string down_dst = TempDir() + "/down.got";
  std::atomic<int> curl_exit{-1};
  std::thread curl([&] {
    curl_exit = RunCommand({"curl", "-sS", "--limit-rate", "40M", "-o", down_dst, FtpUrl("down.bin")},
                           absl::Seconds(60))
                    .exit_code;
  });
  std::vector<int> idle;
  for (int i = 0; i < 100; ++i) {
    const int fd = ConnectTcp("127.0.0.1", echo_port_, IdleSource(i));
    ASSERT_GE(fd, 0);
    SetRecvTimeout(fd, absl::Seconds(5));
    ASSERT_TRUE(Echoes(fd, "before\n"));
    idle.push_back(fd);
  }
  ConnectLoop loop(echo_port_);
  absl::SleepFor(absl::Milliseconds(500));
  setenv("L4LB_TEST_TAKEOVER_STALL_BEFORE_ACK_MS", "5000", 1);
  std::vector<std::string> argv = {L4lbBinary()};
  for (const std::string& f : Flags()) argv.push_back(f);
  absl::StatusOr<std::unique_ptr<Process>> doomed =
      Process::Start(argv, TempDir() + "/doomed.log");
  unsetenv("L4LB_TEST_TAKEOVER_STALL_BEFORE_ACK_MS");
  ASSERT_TRUE(doomed.ok()) << doomed.status();
  ASSERT_TRUE(WaitFor(absl::Seconds(10), [&] {
    return absl::StrContains((*doomed)->Log(), "stalling");
  })) << (*doomed)->Log();
  // Now the old process has stopped accepting and handed its connections
  // over; the new one holds them and has not acknowledged.
  EXPECT_EQ((*doomed)->Stop(SIGKILL, absl::Seconds(5)), 128 + SIGKILL);
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] { return l4lb_->HasLine("takeover failed", ""); }))
      << l4lb_->Log();
  EXPECT_TRUE(l4lb_->process().Running());
  int echoed = 0;
  for (int fd : idle) echoed += Echoes(fd, "after\n");
  EXPECT_EQ(echoed, 100);
  absl::SleepFor(absl::Milliseconds(500));
  loop.Stop();
  printf("new connections around the failed takeover: %d ok, %d failed\n", loop.ok(), loop.failed());
  EXPECT_EQ(loop.failed(), 0);
  curl.join();
  EXPECT_EQ(curl_exit.load(), 0);
  EXPECT_EQ(Sha256(down_dst), Sha256(down_src));
  // The next attempt takes everything.
  Upgrade(1);
  for (int fd : idle) EXPECT_TRUE(Echoes(fd, "again\n"));
  for (int fd : idle) close(fd);
}

// UDP sessions cross too: each client's next datagram after an upgrade leaves
// l4lb from the same socket (the backend sees the same source port), and the
// old process has nothing left to wait for.
TEST_F(TakeoverTest, UdpSessionsKeepTheirBackendSocketAcrossAnUpgrade) {
  constexpr int kClients = 50;
  std::vector<int> clients;
  std::vector<std::string> seen_as;
  for (int i = 0; i < kClients; ++i) {
    uint16_t port = 0;
    const int fd = BindUdp(absl::StrCat("127.4.0.", i + 1), &port);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendTo(fd, "127.0.0.1", udp_port_, absl::StrCat("hello ", i)));
    const std::optional<std::string> reply = RecvFrom(fd, absl::Seconds(5));
    ASSERT_TRUE(reply.has_value()) << i;
    const std::string prefix = absl::StrCat("hello ", i, " from ");
    ASSERT_TRUE(absl::StartsWith(*reply, prefix)) << *reply;
    seen_as.push_back(reply->substr(prefix.size()));
    clients.push_back(fd);
  }
  Upgrade(1);
  EXPECT_TRUE(l4lb_->HasLine("took over", absl::StrCat("and ", kClients, " UDP session(s)")))
      << l4lb_->Log();
  int same = 0;
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(SendTo(clients[i], "127.0.0.1", udp_port_, absl::StrCat("again ", i)));
    const std::optional<std::string> reply = RecvFrom(clients[i], absl::Seconds(5));
    ASSERT_TRUE(reply.has_value()) << i;
    same += *reply == absl::StrCat("again ", i, " from ", seen_as[i]);
  }
  EXPECT_EQ(same, kClients) << "sessions that came back through another backend socket";
  // A new client still gets a session.
  uint16_t port = 0;
  const int fresh = BindUdp("127.4.1.1", &port);
  ASSERT_GE(fresh, 0);
  ASSERT_TRUE(SendTo(fresh, "127.0.0.1", udp_port_, "new"));
  const std::optional<std::string> reply = RecvFrom(fresh, absl::Seconds(5));
  EXPECT_TRUE(reply.has_value() && absl::StartsWith(*reply, "new from "));
  close(fresh);
  for (int fd : clients) close(fd);
}

// The new process's config may differ: a service it no longer has loses its
// listener (connects are refused once the old process is gone) and its live
// connections (cut: reset both ways, as a reload does after its drain timeout);
// the others go on.
TEST_F(TakeoverTest, AServiceTheNewConfigDropsIsCutAndStopsListening) {
  std::vector<int> idle;
  for (int i = 0; i < 20; ++i) {
    const int fd = ConnectTcp("127.0.0.1", echo_port_, IdleSource(i));
    ASSERT_GE(fd, 0);
    SetRecvTimeout(fd, absl::Seconds(5));
    ASSERT_TRUE(Echoes(fd, "before\n"));
    idle.push_back(fd);
  }
  // The same config without the echo service.
  std::string text;
  {
    std::ifstream in(config_);
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  const size_t echo = text.find("[[service]]\nname = \"echo\"");
  const size_t next = text.find("[[service]]", echo + 1);
  ASSERT_NE(echo, std::string::npos);
  std::ofstream(config_, std::ios::trunc) << text.substr(0, echo) << text.substr(next);
  Upgrade(1);
  EXPECT_TRUE(l4lb_->HasLine("took over 0 connection(s) (20 cut)", "")) << l4lb_->Log();
  int reset = 0;
  for (int fd : idle) {
    int error = 0;
    const bool sent = SendAll(fd, "after\n");
    ReadToEof(fd, &error);
    reset += !sent || error == ECONNRESET;
    close(fd);
  }
  EXPECT_EQ(reset, 20) << "connections of the dropped service must be cut";
  EXPECT_LT(ConnectTcp("127.0.0.1", echo_port_), 0) << "the dropped listener still takes connects";
  // The services it kept work.
  uint16_t port = 0;
  const int udp = BindUdp("127.4.2.1", &port);
  ASSERT_GE(udp, 0);
  ASSERT_TRUE(SendTo(udp, "127.0.0.1", udp_port_, "kept"));
  EXPECT_TRUE(RecvFrom(udp, absl::Seconds(5)).has_value());
  close(udp);
}

// A new process that cannot run the same worker layout is refused before
// anything moves, naming the flag; the running one serves on.
TEST_F(TakeoverTest, AnotherThreadCountIsRefusedNamingTheFlag) {
  std::vector<std::string> argv = {L4lbBinary(), "--config=" + config_, "--threads=1",
                                   "--takeover=" + socket_};
  const CommandResult r = RunCommand(argv, absl::Seconds(20));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "--takeover: the running l4lb has 2 worker thread(s), "
                                       "this one 1: start it with --threads=2"))
      << r.err;
  const int fd = ConnectTcp("127.0.0.1", echo_port_);
  ASSERT_GE(fd, 0);
  SetRecvTimeout(fd, absl::Seconds(5));
  EXPECT_TRUE(Echoes(fd, "still here\n"));
  close(fd);
  EXPECT_TRUE(l4lb_->process().Running());
}

}  // namespace
}  // namespace l4lb::testing
