// l4lb as systemd runs it (dist/systemd/l4lb.service: Type=notify, ExecReload
// sends SIGHUP), with the test as the service manager: like systemd, it listens
// on a unix datagram socket named by $NOTIFY_SOCKET and reads what l4lb tells it.
// READY=1 must come once the listeners accept and are relayed (systemd then
// starts what is ordered after l4lb), STOPPING=1 when the drain starts, and a
// SIGHUP must not kill l4lb; SIGUSR2 (systemctl reload) hands over to a new
// process, which becomes the main one.

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

// An abstract unix datagram socket ("@l4lb-notify-PID-N", sd_notify(3) accepts
// both kinds) with SO_PASSCRED: each message comes with its sender's pid, which
// systemd checks too (NotifyAccess=main: only the main process may notify).
class NotifySocket {
 public:
  struct Message {
    std::vector<std::string> lines;  // "READY=1", "STATUS=..."
    pid_t pid = 0;
  };

  NotifySocket() {
    static int counter = 0;
    name_ = absl::StrCat("@l4lb-notify-", getpid(), "-", counter++);
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const int on = 1;
    setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    name_.copy(address.sun_path, name_.size());
    address.sun_path[0] = '\0';  // abstract: no file to clean up
    const socklen_t length = offsetof(sockaddr_un, sun_path) + name_.size();
    bound_ = bind(fd_, reinterpret_cast<sockaddr*>(&address), length) == 0;
  }
  ~NotifySocket() { close(fd_); }

  bool bound() const { return bound_; }
  const std::string& name() const { return name_; }  // the value of $NOTIFY_SOCKET

  // The next message within `timeout` (zero: one already there), or nullopt.
  std::optional<Message> Receive(absl::Duration timeout) {
    pollfd readable{.fd = fd_, .events = POLLIN, .revents = 0};
    if (poll(&readable, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) != 1) {
      return std::nullopt;
    }
    char text[4096];
    iovec iov{.iov_base = text, .iov_len = sizeof(text)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    msghdr header{};
    header.msg_iov = &iov;
    header.msg_iovlen = 1;
    header.msg_control = control;
    header.msg_controllen = sizeof(control);
    const ssize_t n = recvmsg(fd_, &header, MSG_DONTWAIT);
    if (n < 0) return std::nullopt;
    Message message;
    message.lines =
        absl::StrSplit(absl::string_view(text, static_cast<size_t>(n)), '\n', absl::SkipEmpty());
    for (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr; c = CMSG_NXTHDR(&header, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred credentials;
        memcpy(&credentials, CMSG_DATA(c), sizeof(credentials));
        message.pid = credentials.pid;
      }
    }
    return message;
  }

 private:
  std::string name_;
  int fd_ = -1;
  bool bound_ = false;
};

bool Has(const NotifySocket::Message& message, absl::string_view line) {
  for (const std::string& l : message.lines) {
    if (l == line) return true;
  }
  return false;
}

std::string Join(const NotifySocket::Message& message) {
  return absl::StrJoin(message.lines, " | ");
}

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A connection through l4lb on `port` that the echo backend answered: a worker
// accepted it and relays.
int RelayedConnection(uint16_t port) {
  const int fd = ConnectTcp("127.0.0.1", port);
  if (fd < 0) return -1;
  SetRecvTimeout(fd, absl::Seconds(5));
  if (!SendAll(fd, "ping") || ReadN(fd, 4) != "ping") {
    close(fd);
    return -1;
  }
  return fd;
}

// l4lb with $NOTIFY_SOCKET set to `notify` (the test's environment is its
// environment, so it is set for the spawn only).
absl::StatusOr<std::unique_ptr<Process>> StartNotifying(const NotifySocket& notify,
                                                        const std::vector<std::string>& flags,
                                                        const std::string& log) {
  std::vector<std::string> argv = {L4lbBinary()};
  argv.insert(argv.end(), flags.begin(), flags.end());
  setenv("NOTIFY_SOCKET", notify.name().c_str(), 1);
  absl::StatusOr<std::unique_ptr<Process>> process = Process::Start(argv, log);
  unsetenv("NOTIFY_SOCKET");
  return process;
}

TEST(SystemdNotifyTest, ReadyOnceEveryListenerRelaysThenStoppingWhenTheDrainStarts) {
  EchoServer backend("127.0.0.2");
  NotifySocket notify;
  ASSERT_TRUE(notify.bound()) << strerror(errno);
  // Fixed ports, not :0: the test must be able to try them before l4lb says it
  // is ready, without learning them from l4lb.
  const uint16_t first = FreePortOnAll({"127.0.0.1"});
  uint16_t second = FreePortOnAll({"127.0.0.1"});
  for (int i = 0; i < 100 && second == first; ++i) second = FreePortOnAll({"127.0.0.1"});
  ASSERT_NE(first, second);
  absl::StatusOr<std::unique_ptr<Process>> l4lb = StartNotifying(
      notify,
      {absl::StrCat("--listen=127.0.0.1:", first, ",127.0.0.1:", second),
       absl::StrCat("--backends=127.0.0.2:", backend.port()), "--health_check=none", "--threads=2"},
      absl::StrCat(TempDir(), "/notify.log"));
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();

  const std::optional<NotifySocket::Message> ready = notify.Receive(absl::Seconds(10));
  ASSERT_TRUE(ready.has_value()) << "no READY=1 within 10 s\n" << (*l4lb)->Log();
  // At the moment READY=1 arrives, both listeners accept and relay: nothing
  // waited for here would have passed before it.
  const int held = RelayedConnection(first);
  const int other = RelayedConnection(second);
  EXPECT_GE(held, 0) << "READY=1 came before port " << first << " relayed";
  EXPECT_GE(other, 0) << "READY=1 came before port " << second << " relayed";
  close(other);
  EXPECT_TRUE(Has(*ready, "READY=1")) << Join(*ready);
  EXPECT_TRUE(Has(*ready, "STATUS=serving 1 service(s) on 2 listener(s)")) << Join(*ready);
  EXPECT_EQ(ready->pid, (*l4lb)->pid()) << "systemd takes notifications from the main pid only";

  // SIGTERM: STOPPING=1 at the start of the drain, while `held` keeps l4lb
  // draining (--drain_timeout is 30 s), not at exit.
  kill((*l4lb)->pid(), SIGTERM);
  const std::optional<NotifySocket::Message> stopping = notify.Receive(absl::Seconds(5));
  ASSERT_TRUE(stopping.has_value()) << "no STOPPING=1 within 5 s of SIGTERM\n" << (*l4lb)->Log();
  EXPECT_TRUE(Has(*stopping, "STOPPING=1")) << Join(*stopping);
  EXPECT_TRUE(Has(*stopping, "STATUS=draining, up to 30s")) << Join(*stopping);
  EXPECT_TRUE((*l4lb)->Running()) << "STOPPING=1 came at exit, not at the drain's start";

  ASSERT_GE(held, 0);
  shutdown(held, SHUT_WR);
  EXPECT_EQ(ReadToEof(held), "");  // the echo closes after our EOF; the drain ends
  close(held);
  EXPECT_EQ((*l4lb)->Wait(absl::Seconds(10)), 0) << (*l4lb)->Log();
  EXPECT_FALSE(notify.Receive(absl::ZeroDuration()).has_value());
}

// systemctl reload sends SIGHUP (ExecReload). Without --config there is nothing
// to read again: l4lb says so once per signal and goes on serving; systemd is
// told nothing.
TEST(SystemdNotifyTest, SighupWithoutAConfigFileIsLoggedAndL4lbKeepsServing) {
  EchoServer backend("127.0.0.2");
  NotifySocket notify;
  ASSERT_TRUE(notify.bound()) << strerror(errno);
  const uint16_t port = FreePortOnAll({"127.0.0.1"});
  absl::StatusOr<std::unique_ptr<Process>> l4lb = StartNotifying(
      notify,
      {absl::StrCat("--listen=127.0.0.1:", port),
       absl::StrCat("--backends=127.0.0.2:", backend.port()), "--health_check=none", "--threads=1"},
      absl::StrCat(TempDir(), "/sighup.log"));
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();
  ASSERT_TRUE(notify.Receive(absl::Seconds(10)).has_value()) << (*l4lb)->Log();

  const int before = RelayedConnection(port);  // live across the signal
  ASSERT_GE(before, 0);
  // Twice, the second after the first was handled (two pending SIGHUPs are one):
  // main goes back to waiting after each.
  for (int sent = 1; sent <= 2; ++sent) {
    kill((*l4lb)->pid(), SIGHUP);
    ASSERT_TRUE(WaitFor(absl::Seconds(5), [&] {
      return Count((*l4lb)->Log(), "reload failed: no --config file; nothing to reload") == sent;
    })) << (*l4lb)->Log();
  }
  EXPECT_TRUE((*l4lb)->Running());
  EXPECT_FALSE(notify.Receive(absl::Milliseconds(100)).has_value());
  const int after = RelayedConnection(port);
  EXPECT_GE(after, 0) << "no relay after SIGHUP\n" << (*l4lb)->Log();
  close(after);
  EXPECT_TRUE(SendAll(before, "pong"));
  EXPECT_EQ(ReadN(before, 4), "pong") << "a live connection was cut by SIGHUP";
  close(before);

  EXPECT_EQ((*l4lb)->Stop(SIGTERM, absl::Seconds(10)), 0) << (*l4lb)->Log();
}

// With --config, SIGHUP reloads it (tests/reload_e2e_test has the semantics):
// systemd's status line then names the new generation, and a live connection
// goes on.
TEST(SystemdNotifyTest, SighupReloadsTheConfigAndUpdatesTheStatus) {
  EchoServer backend("127.0.0.2");
  NotifySocket notify;
  ASSERT_TRUE(notify.bound()) << strerror(errno);
  const uint16_t port = FreePortOnAll({"127.0.0.1"});
  const std::string config = absl::StrCat(TempDir(), "/reload.toml");
  const auto write = [&](int backends) {
    std::ofstream out(config, std::ios::trunc);
    out << "[[service]]\nname = \"echo\"\nlisten = [\"127.0.0.1:" << port
        << "\"]\nbackends = [\"127.0.0.2:" << backend.port() << "\""
        << (backends == 2 ? ", \"127.0.0.3:1\"" : "") << "]\n[service.health]\ncheck = \"none\"\n";
  };
  write(1);
  absl::StatusOr<std::unique_ptr<Process>> l4lb =
      StartNotifying(notify, {absl::StrCat("--config=", config), "--threads=1"},
                     absl::StrCat(TempDir(), "/reload.log"));
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();
  ASSERT_TRUE(notify.Receive(absl::Seconds(10)).has_value()) << (*l4lb)->Log();
  const int before = RelayedConnection(port);
  ASSERT_GE(before, 0);
  write(2);
  kill((*l4lb)->pid(), SIGHUP);
  const std::optional<NotifySocket::Message> status = notify.Receive(absl::Seconds(5));
  ASSERT_TRUE(status.has_value()) << "no STATUS after SIGHUP\n" << (*l4lb)->Log();
  EXPECT_TRUE(Has(*status, "STATUS=serving 1 service(s) on 1 listener(s), generation 2"))
      << Join(*status);
  EXPECT_FALSE(Has(*status, "READY=1")) << Join(*status);
  EXPECT_TRUE(SendAll(before, "pong"));
  EXPECT_EQ(ReadN(before, 4), "pong") << "a live connection was cut by the reload";
  close(before);
  EXPECT_EQ((*l4lb)->Stop(SIGTERM, absl::Seconds(10)), 0) << (*l4lb)->Log();
}

// systemctl reload sends SIGUSR2 (ExecReload): l4lb starts the binary it was
// started from with the same arguments, which takes everything over
// (--takeover), tells systemd it is the main process now (MAINPID, READY=1;
// the unit has NotifyAccess=all), and the old one exits 0. A live connection
// goes on through the new one.
TEST(SystemdNotifyTest, SigusrTwoStartsTheNextProcessWhichTakesOverAsTheMainPid) {
  // The successor is the old process's child: once that exits it is ours
  // (as it would be systemd's), so the test can reap it.
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  EchoServer backend("127.0.0.2");
  NotifySocket notify;
  ASSERT_TRUE(notify.bound()) << strerror(errno);
  const uint16_t port = FreePortOnAll({"127.0.0.1"});
  const std::string socket = absl::StrCat("/tmp/l4lb-notify-test-", getpid(), ".sock");
  absl::StatusOr<std::unique_ptr<Process>> l4lb = StartNotifying(
      notify,
      {absl::StrCat("--listen=127.0.0.1:", port),
       absl::StrCat("--backends=127.0.0.2:", backend.port()), "--health_check=none", "--threads=1",
       "--takeover=" + socket},
      absl::StrCat(TempDir(), "/usr2.log"));
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();
  ASSERT_TRUE(notify.Receive(absl::Seconds(10)).has_value()) << (*l4lb)->Log();
  const int live = RelayedConnection(port);
  ASSERT_GE(live, 0);
  kill((*l4lb)->pid(), SIGUSR2);
  const std::optional<NotifySocket::Message> ready = notify.Receive(absl::Seconds(10));
  ASSERT_TRUE(ready.has_value()) << "no READY=1 from a successor\n" << (*l4lb)->Log();
  EXPECT_TRUE(Has(*ready, "READY=1")) << Join(*ready);
  EXPECT_NE(ready->pid, (*l4lb)->pid());
  EXPECT_TRUE(Has(*ready, absl::StrCat("MAINPID=", ready->pid))) << Join(*ready);
  EXPECT_TRUE(Has(*ready, "STATUS=serving 1 service(s) on 1 listener(s) (took over)")) << Join(*ready);
  EXPECT_EQ((*l4lb)->Wait(absl::Seconds(10)), 0) << (*l4lb)->Log();
  EXPECT_TRUE(SendAll(live, "pong"));
  EXPECT_EQ(ReadN(live, 4), "pong") << "the live connection did not survive the upgrade";
  close(live);
  const int after = RelayedConnection(port);
  EXPECT_GE(after, 0) << "the successor does not relay";
  close(after);
  // End the successor (by its pid, which the test now reaps).
  const pid_t next = ready->pid;
  ASSERT_GT(next, 0);
  kill(next, SIGTERM);
  int status = 0;
  bool reaped = false;
  for (int i = 0; i < 200 && !reaped; ++i) {
    reaped = waitpid(next, &status, WNOHANG) == next;
    if (!reaped) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(reaped) << "the successor did not exit on SIGTERM";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// Without --takeover there is nobody to hand over to: logged, and l4lb serves on.
TEST(SystemdNotifyTest, SigusrTwoWithoutTakeoverIsLoggedAndIgnored) {
  EchoServer backend("127.0.0.2");
  NotifySocket notify;
  ASSERT_TRUE(notify.bound()) << strerror(errno);
  const uint16_t port = FreePortOnAll({"127.0.0.1"});
  absl::StatusOr<std::unique_ptr<Process>> l4lb = StartNotifying(
      notify,
      {absl::StrCat("--listen=127.0.0.1:", port),
       absl::StrCat("--backends=127.0.0.2:", backend.port()), "--health_check=none", "--threads=1",
       "--logbuflevel=-1"},
      absl::StrCat(TempDir(), "/usr2-none.log"));
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();
  ASSERT_TRUE(notify.Receive(absl::Seconds(10)).has_value()) << (*l4lb)->Log();
  kill((*l4lb)->pid(), SIGUSR2);
  EXPECT_TRUE(WaitFor(absl::Seconds(5), [&] {
    return absl::StrContains((*l4lb)->Log(), "SIGUSR2: a live upgrade needs --takeover=PATH; ignored");
  })) << (*l4lb)->Log();
  const int after = RelayedConnection(port);
  EXPECT_GE(after, 0);
  close(after);
  EXPECT_EQ((*l4lb)->Stop(SIGTERM, absl::Seconds(10)), 0) << (*l4lb)->Log();
}

}  // namespace
}  // namespace l4lb::testing
