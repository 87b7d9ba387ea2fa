// Operator mistakes on the command line: exit code 2 and ONE stderr line that names
// the flag and the bad value. Never a crash, a stack trace or a hang.

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

#include "l4lb/net/congestion.h"
#include "tests/harness/process.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

CommandResult RunL4lb(const std::vector<std::string>& flags) {
  std::vector<std::string> argv = {L4lbBinary()};
  argv.insert(argv.end(), flags.begin(), flags.end());
  return RunCommand(argv, absl::Seconds(10));
}

struct BadFlag {
  std::vector<std::string> flags;
  std::string want;  // the whole stderr line
};

class BadFlagTest : public ::testing::TestWithParam<BadFlag> {};

TEST_P(BadFlagTest, ExitsTwoWithOneLineNamingTheFlag) {
  const CommandResult r = RunL4lb(GetParam().flags);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  // glog's start-up WARNING about the open-files limit may precede the error.
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(r.err, '\n', absl::SkipEmpty())) {
    if (line.find("open-files limit") == absl::string_view::npos) lines.emplace_back(line);
  }
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_EQ(lines[0], GetParam().want);
}

const char kListen[] = "--listen=127.0.0.1:0";
const char kBackends[] = "--backends=127.0.0.2:80";

INSTANTIATE_TEST_SUITE_P(
    Flags, BadFlagTest,
    ::testing::Values(
        BadFlag{{kListen, "--backends=127.0.0.2:99999"},
                "l4lb: --backends: \"127.0.0.2:99999\": port out of range"},
        BadFlag{{"--listen=300.1.1.1:80", kBackends},
                "l4lb: --listen: \"300.1.1.1:80\": not an IPv4 address (hostnames are not "
                "resolved)"},
        BadFlag{{"--listen=127.0.0.1", kBackends},
                "l4lb: --listen: \"127.0.0.1\": expected ADDRESS:PORT"},
        BadFlag{{kListen, "--backends="},
                "l4lb: --backends: empty backend list (want ADDRESS:PORT[=WEIGHT][@backup],...)"},
        BadFlag{{kListen, "--backends=127.0.0.2:80,127.0.0.9:80@spare"},
                "l4lb: --backends: \"127.0.0.9:80@spare\": want @backup after the address or "
                "weight"},
        BadFlag{{kListen, kBackends, "--slow_start=fast"},
                "l4lb: --slow_start: \"fast\": want a duration like 500ms, 2s or 5m"},
        BadFlag{{kBackends}, "l4lb: --listen: required, e.g. --listen=0.0.0.0:9000"},
        BadFlag{{kListen, "--backends=127.0.0.2:80=0"},
                "l4lb: --backends: \"127.0.0.2:80=0\": weight must be 1..10000"},
        BadFlag{{kListen, "--backends=127.0.0.2:80,127.0.0.2:80"},
                "l4lb: --backends: \"127.0.0.2:80\": listed twice"},
        BadFlag{{kListen, "--backends=::1:80"},
                "l4lb: --backends: \"::1:80\": IPv6 addresses need brackets, e.g. [::1]:80"},
        BadFlag{{kListen, kBackends, "--hash_key=dst_ip"},
                "l4lb: --hash_key: \"dst_ip\": want src_ip or src_ip_port"},
        BadFlag{{kListen, kBackends, "--maglev_table_size=65536"},
                "l4lb: --maglev_table_size: maglev table size 65536 is not prime"},
        BadFlag{{kListen, kBackends, "--connect_timeout=soon"},
                "l4lb: --connect_timeout: \"soon\": want a duration like 500ms, 2s or 5m"},
        BadFlag{{kListen, kBackends, "--idle_timeout=-5s"},
                "l4lb: --idle_timeout: \"-5s\": want a duration like 500ms, 2s or 5m"},
        BadFlag{{kListen, kBackends, "--connect_retries=99"},
                "l4lb: --connect_retries: 99: want 0..8"},
        BadFlag{{kListen, kBackends, "--threads=-2"}, "l4lb: --threads: -2: want 0..1024"},
        BadFlag{{kListen, kBackends, "--health_check=smtp"},
                "l4lb: --health_check: \"smtp\": want none, tcp, send_expect, ftp, ssh, http, udp "
                "or dns"},
        BadFlag{{kListen, kBackends, "--health_check=send_expect"},
                "l4lb: --health_expect: --health_check=send_expect needs what the reply starts "
                "with"},
        BadFlag{{kListen, kBackends, "--health_interval=0"},
                "l4lb: --health_interval: must be above 0"},
        BadFlag{{kListen, kBackends, "--health_fall=0"}, "l4lb: --health_fall: 0: want 1..100"},
        BadFlag{{kListen, kBackends, "--health_http_status=200"},
                "l4lb: --health_http_status: \"200\": want status classes like 2xx,3xx"},
        BadFlag{{kListen, kBackends, "--health_send=oops\\"},
                "l4lb: --health_send: \"oops\\\": String cannot end with \\"},
        BadFlag{{kListen, kBackends, "--pipe_size=100"},
                "l4lb: --pipe_size: 100: a pipe holds at least one page (4096)"},
        BadFlag{{kListen, kBackends, "--pipe_size=8192", "--copy_bytes=16384"},
                "l4lb: --copy_bytes: 16384: want 0..8192 (the pipe size: bytes a full "
                "destination refuses wait in the pipe)"},
        BadFlag{{kListen, kBackends, "--busy_poll=1s"}, "l4lb: --busy_poll: 1s: want 0..10ms"},
        BadFlag{{kListen, kBackends, "--busy_poll=fast"},
                "l4lb: --busy_poll: \"fast\": want a duration like 500ms, 2s or 5m"},
        BadFlag{{kListen, kBackends, "--backend_congestion=nosuch"},
                "l4lb: --backend_congestion: no TCP congestion control \"nosuch\" here "
                "(available: " +
                    net::AvailableCongestion().value_or("?") + ")"},
        BadFlag{{kListen, kBackends, "--client_congestion=nosuch"},
                "l4lb: --client_congestion: no TCP congestion control \"nosuch\" here "
                "(available: " +
                    net::AvailableCongestion().value_or("?") + ")"},
        BadFlag{{kListen, kBackends, "--ready_file=/nonexistent/dir/ready"},
                "l4lb: --ready_file: /nonexistent/dir/ready.tmp: No such file or directory"},
        // Mistakes gflags itself finds (it would exit 1 with "ERROR: ...").
        BadFlag{{kListen, kBackends, "--lisen=127.0.0.1:0"},
                "l4lb: --lisen: unknown flag (l4lb --help lists them)"},
        BadFlag{{kBackends, "--listen"}, "l4lb: --listen: missing its value (--listen=VALUE)"},
        BadFlag{{kListen, kBackends, "--access_log=maybe"},
                "l4lb: --access_log: \"maybe\": want true or false"},
        BadFlag{{kListen, kBackends, "--threads=two"}, "l4lb: --threads: \"two\": want an integer"},
        BadFlag{{"--flagfile=/nonexistent/l4lb.flags"},
                "l4lb: --flagfile: \"/nonexistent/l4lb.flags\": No such file or directory"},
        BadFlag{{kListen, kBackends, "stray"},
                "l4lb: unexpected argument \"stray\" (flags look like --listen=...)"},
        BadFlag{{"--listen=udp://127.0.0.1:0,127.0.0.1:0", kBackends},
                "l4lb: --listen: \"127.0.0.1:0\" is tcp but \"udp://127.0.0.1:0\" is udp: one "
                "protocol per --listen (for both, use --config)"},
        BadFlag{{"--listen=udp://127.0.0.1", kBackends},
                "l4lb: --listen: \"127.0.0.1\": expected ADDRESS:PORT"},
        BadFlag{{kListen, kBackends, "--affinity_ttl=soon"},
                "l4lb: --affinity_ttl: \"soon\": want a duration like 500ms, 2s or 5m"},
        BadFlag{{kListen, kBackends, "--max_responses=1"},
                "l4lb: --max_responses: only for udp:// listeners"},
        BadFlag{{"--listen=udp://127.0.0.1:0", kBackends, "--udp_max_sessions=0"},
                "l4lb: --udp_max_sessions: 0: want 1..10000000"},
        BadFlag{{"--listen=udp://127.0.0.1:0", kBackends, "--udp_idle_timeout=0"},
                "l4lb: --udp_idle_timeout: must be above 0"},
        BadFlag{{"--config=/nonexistent/l4lb.toml"},
                "l4lb: /nonexistent/l4lb.toml: No such file or directory"},
        // The per-service flags are refused with --config, even at their default value.
        BadFlag{{"--config=/nonexistent/l4lb.toml", kListen},
                "l4lb: --listen: cannot be combined with --config (set it per service in the "
                "file)"},
        BadFlag{{"--config=/nonexistent/l4lb.toml", "--hash_key=src_ip"},
                "l4lb: --hash_key: cannot be combined with --config (set it per service in the "
                "file)"},
        BadFlag{{"--config=/nonexistent/l4lb.toml", "--health_passive=false"},
                "l4lb: --health_passive: cannot be combined with --config (set it per service "
                "in the file)"},
        // Access control (README "Access control").
        BadFlag{{kListen, kBackends, "--deny=10.0.0.1/8"},
                "l4lb: --deny: \"10.0.0.1/8\": host bits set past /8 (did you mean /32?)"},
        BadFlag{{kListen, kBackends, "--allow=10.0.0.0/8,example.com"},
                "l4lb: --allow: \"example.com\": not an IPv4 or IPv6 address"},
        BadFlag{{kListen, kBackends, "--deny_file=/nonexistent/deny.txt"},
                "l4lb: --deny_file: /nonexistent/deny.txt: No such file or directory"},
        BadFlag{{kListen, kBackends, "--client_rate=5/d"},
                "l4lb: --client_rate: \"5/d\": the unit after / must be s, m or h"},
        BadFlag{{kListen, kBackends, "--ban_after=3"},
                "l4lb: --ban_after: needs --client_rate (bans count refusals by the rate)"},
        BadFlag{{kListen, kBackends, "--client_burst=4"},
                "l4lb: --client_burst: needs --client_rate"},
        BadFlag{{kListen, kBackends, "--client_rate=5/s", "--ban_time=1h"},
                "l4lb: --ban_time: needs --ban_after"},
        BadFlag{{kListen, kBackends, "--client_prefix_v4=33"},
                "l4lb: --client_prefix_v4: 33: want 0..32"},
        BadFlag{{kListen, kBackends, "--send_proxy=v3"},
                "l4lb: --send_proxy: \"v3\": want v1, v2 or off"},
        BadFlag{{"--listen=udp://127.0.0.1:0", kBackends, "--send_proxy=v1"},
                "l4lb: --send_proxy: only for tcp listeners (a PROXY header is a stream's "
                "start)"},
        BadFlag{{kListen, kBackends, "--proxy_timeout=1s"},
                "l4lb: --proxy_timeout: needs --accept_proxy_from"},
        BadFlag{{kListen, kBackends, "--accept_proxy_from=10.0.0.0/33"},
                "l4lb: --accept_proxy_from: \"10.0.0.0/33\": prefix length must be 0..32"},
        // Announcing the VIP for a routing daemon (README "Several instances behind ECMP").
        BadFlag{{kListen, kBackends, "--announce=192.0.2.10"},
                "l4lb: --announce: \"192.0.2.10\": want ADDRESS/PREFIX, e.g. 192.0.2.10/32"},
        BadFlag{{kListen, kBackends, "--announce=192.0.2.10/32,dev=nosuch0"},
                "l4lb: --announce: \"192.0.2.10/32,dev=nosuch0\": dev=nosuch0: no such "
                "interface"},
        BadFlag{{kListen, kBackends, "--withdraw_delay=5s"},
                "l4lb: --withdraw_delay: needs --announce"},
        // The live upgrade (README "Live upgrade").
        BadFlag{{kListen, kBackends, "--takeover_timeout=5s"},
                "l4lb: --takeover_timeout: needs --takeover"},
        BadFlag{{kListen, kBackends, "--takeover=/tmp/t.sock", "--takeover_timeout=0s"},
                "l4lb: --takeover_timeout: must be positive"},
        BadFlag{{kListen, kBackends, "--takeover=/nonexistent/l4lb/takeover.sock"},
                "l4lb: --takeover: /nonexistent/l4lb/takeover.sock: cannot create the socket in "
                "/nonexistent/l4lb: No such file or directory"},
        BadFlag{{kListen, kBackends, "--takeover=/tmp/" + std::string(120, 'x')},
                "l4lb: --takeover: socket path \"/tmp/" + std::string(120, 'x') +
                    "\": want 1..107 bytes"},
        BadFlag{{"--config=/nonexistent/l4lb.toml", "--deny=10.0.0.0/8"},
                "l4lb: --deny: cannot be combined with --config (set it per service in the "
                "file)"}));

TEST(CliTest, ListenAddressInUseIsNamed) {
  uint16_t port = 0;
  const int taken = ListenTcp("127.0.0.1", &port);  // no SO_REUSEPORT: nobody may share it
  ASSERT_GE(taken, 0);
  const CommandResult r = RunL4lb({absl::StrCat("--listen=127.0.0.1:", port), kBackends});
  close(taken);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(
      r.err.find(absl::StrCat("l4lb: --listen: bind 127.0.0.1:", port, ": Address already in use")),
      std::string::npos)
      << r.err;
}

TEST(CliTest, ASecondL4lbOnARunningOnesPortIsRefusedNotSplit) {
  // Both would set SO_REUSEPORT: without the check the kernel lets the second
  // bind and splits clients between the two processes.
  for (const char* scheme : {"", "udp://"}) {
    absl::StatusOr<std::unique_ptr<L4lb>> first = L4lb::Start(
        {absl::StrCat("--listen=", scheme, "127.0.0.1:0"), "--threads=2", kBackends,
         "--health_check=none"});
    ASSERT_TRUE(first.ok()) << first.status();
    const CommandResult r =
        RunL4lb({absl::StrCat("--listen=", scheme, "127.0.0.1:", (*first)->port()), kBackends});
    EXPECT_EQ(r.exit_code, 2) << scheme << "\n" << r.err;
    EXPECT_NE(r.err.find(absl::StrCat("l4lb: --listen: bind 127.0.0.1:", (*first)->port(),
                                      ": Address already in use (another process")),
              std::string::npos)
        << r.err;
  }
}

// --help is what help2man makes the man page of (tools/package.sh): every flag,
// on stdout, exit 0. gflags' own --help would exit 1, and help2man refuses that.
TEST(CliTest, HelpDocumentsEveryFlagAndExitsZero) {
  const CommandResult r = RunL4lb({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const std::string& text = r.out;
  EXPECT_TRUE(absl::StartsWith(text, "Usage: l4lb --listen=")) << text;
  for (const char* flag : {"-listen",
                           "-backends",
                           "-threads",
                           "-connect_timeout",
                           "-connect_retries",
                           "-idle_timeout",
                           "-drain_timeout",
                           "-hash_key",
                           "-maglev_table_size",
                           "-access_log",
                           "-ready_file",
                           "-pipe_size",
                           "-copy_bytes",
                           "-busy_poll",
                           "-client_congestion",
                           "-backend_congestion",
                           "-health_check",
                           "-health_interval",
                           "-health_timeout",
                           "-health_rise",
                           "-health_fall",
                           "-health_send",
                           "-health_expect",
                           "-health_port",
                           "-health_http_path",
                           "-health_http_status",
                           "-health_passive",
                           "-kill_on_down",
                           "-config",
                           "-affinity_ttl",
                           "-udp_idle_timeout",
                           "-udp_max_sessions",
                           "-max_responses",
                           "-announce",
                           "-withdraw_delay",
                           "-allow",
                           "-deny_file",
                           "-client_rate",
                           "-ban_after",
                           "-send_proxy",
                           "-accept_proxy_from"}) {
    // "  --threads=N" or "  --kill_on_down, --nokill_on_down": an option line.
    const bool listed = absl::StrContains(text, absl::StrCat("\n  -", flag, "=")) ||
                        absl::StrContains(text, absl::StrCat("\n  -", flag, ","));
    EXPECT_TRUE(listed) << flag << " is undocumented:\n" << text;
  }
  EXPECT_NE(text.find("=WEIGHT"), std::string::npos) << "weights are undocumented";
  EXPECT_NE(text.find("Default: 30s."), std::string::npos) << "defaults are undocumented";
}

// --version: the version on the first line (help2man reads it; tools/package.sh
// names the .deb after it), then the commit, or "unknown" in an unstamped build
// like this test's.
TEST(CliTest, VersionNamesTheReleaseAndTheCommitAndExitsZero) {
  const CommandResult r = RunL4lb({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << r.out;
  const std::vector<std::string> release = absl::StrSplit(lines[0], absl::ByAnyChar(" ."));
  ASSERT_EQ(release.size(), 4u) << lines[0];  // "l4lb", MAJOR, MINOR, PATCH
  EXPECT_EQ(release[0], "l4lb");
  for (int i = 1; i < 4; ++i) {
    int number = -1;
    EXPECT_TRUE(absl::SimpleAtoi(release[i], &number)) << lines[0];
  }
  EXPECT_TRUE(absl::StartsWith(lines[1], "commit unknown")) << lines[1];
  EXPECT_TRUE(absl::StartsWith(lines[2], "built with ")) << lines[2];
}

// Writes `text` to a fresh file under $TEST_TMPDIR; returns its path.
std::string WriteConfig(const std::string& name, const std::string& text) {
  const std::string path = absl::StrCat(TempDir(), "/", name);
  std::ofstream(path, std::ios::trunc) << text;
  return path;
}

TEST(ConfigFileTest, MistakeIsOneLineWithFileLineAndColumn) {
  const std::string path = WriteConfig("bad.toml", R"([[service]]
listen = ["127.0.0.1:0"]
backends = ["127.0.0.2:80"]
connect_timeout = "soon"
)");
  const CommandResult r = RunL4lb({"--config=" + path});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(absl::StrCat("l4lb: ", path,
                                    ":4:19: connect_timeout: \"soon\": want a duration like "
                                    "500ms, 2s or 5m\n")),
            std::string::npos)
      << r.err;
}

TEST(ConfigFileTest, TomlSyntaxErrorHasFileLineAndColumn) {
  const std::string path = WriteConfig("syntax.toml", "[[service]]\nlisten = [\"127.0.0.1:0\"\n");
  const CommandResult r = RunL4lb({"--config=" + path});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(absl::StrCat("l4lb: ", path, ":2:25: Error while parsing array")),
            std::string::npos)
      << r.err;
}

TEST(ConfigFileTest, BindErrorNamesTheFile) {
  uint16_t port = 0;
  const int taken = ListenTcp("127.0.0.1", &port);
  ASSERT_GE(taken, 0);
  const std::string path =
      WriteConfig("taken.toml", absl::StrCat("[[service]]\nlisten = [\"127.0.0.1:", port,
                                             "\"]\nbackends = [\"127.0.0.2:80\"]\n"));
  const CommandResult r = RunL4lb({"--config=" + path});
  close(taken);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(absl::StrCat("l4lb: ", path, ": bind 127.0.0.1:", port,
                                    ": Address already in use")),
            std::string::npos)
      << r.err;
}

// Two services from one file, each with its own listener and backends: each
// listener's clients reach its own service's backends, and only those.
TEST(ConfigFileTest, TwoServicesRelayToTheirOwnBackends) {
  EchoServer web("127.0.0.2");
  EchoServer mail1("127.0.0.3");
  EchoServer mail2("127.0.0.3");
  const std::string path = WriteConfig(
      "two.toml",
      absl::StrCat("[defaults.health]\n",
                   "check = \"none\"  # the echo servers count connections: no probes\n",
                   "[[service]]\nname = \"web\"\nlisten = [\"127.0.0.1:0\"]\n",
                   "backends = [\"127.0.0.2:", web.port(), "\"]\n",
                   "[[service]]\nname = \"mail\"\nlisten = [\"127.0.0.1:0\"]\n",
                   "backends = [\"127.0.0.3:", mail1.port(),
                   "\", {address = \"127.0.0.3:", mail2.port(), "\", weight = 2}]\n"));
  absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start({"--config=" + path, "--threads=2"});
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();
  ASSERT_EQ((*l4lb)->ports().size(), 2u);  // ready file: one line per listener, in file order
  // Two clients on web's listener, one on mail's: the counts tell who went where.
  const std::vector<uint16_t> ports = (*l4lb)->ports();
  for (const uint16_t port : {ports[0], ports[0], ports[1]}) {
    const int fd = ConnectTcp("127.0.0.1", port);
    ASSERT_GE(fd, 0);
    SetRecvTimeout(fd, absl::Seconds(5));
    const std::string ping = absl::StrCat("ping ", port);
    ASSERT_TRUE(SendAll(fd, ping));
    shutdown(fd, SHUT_WR);
    EXPECT_EQ(ReadToEof(fd), ping);
    close(fd);
  }
  EXPECT_EQ(web.accepted(), 2);
  EXPECT_EQ(mail1.accepted() + mail2.accepted(), 1);
  const std::string log = (*l4lb)->Log();
  EXPECT_NE(log.find("for web with 2 worker(s), 1 backend(s)"), std::string::npos) << log;
  EXPECT_NE(log.find("for mail with 2 worker(s), 2 backend(s)"), std::string::npos) << log;
}

// A TCP and a UDP service from one file: the ready file tells each listener's
// protocol ("tcp ADDR:PORT", "udp ADDR:PORT", in file order) and a datagram sent to
// the UDP one reaches the UDP backend and its answer comes back.
TEST(ConfigFileTest, ReadyFileNamesEachListenersProtocol) {
  EchoServer web("127.0.0.2");
  uint16_t dns_port = 0;
  const int dns = BindUdp("127.0.0.3", &dns_port);
  ASSERT_GE(dns, 0);
  const std::string path = WriteConfig(
      "mixed.toml",
      absl::StrCat("[defaults.health]\ncheck = \"none\"\n",
                   "[[service]]\nname = \"web\"\nlisten = [\"127.0.0.1:0\"]\n",
                   "backends = [\"127.0.0.2:", web.port(), "\"]\n",
                   "[[service]]\nname = \"dns\"\nprotocol = \"udp\"\nlisten = [\"127.0.0.1:0\"]\n",
                   "backends = [\"127.0.0.3:", dns_port, "\"]\nmax_responses = 1\n"));
  const std::string ready = absl::StrCat(TempDir(), "/mixed.ready");
  absl::StatusOr<std::unique_ptr<Process>> l4lb =
      Process::Start({L4lbBinary(), "--config=" + path, "--threads=1", "--ready_file=" + ready},
                     absl::StrCat(TempDir(), "/mixed.log"));
  ASSERT_TRUE(l4lb.ok()) << l4lb.status();
  ASSERT_TRUE(WaitFor(absl::Seconds(10), [&] { return access(ready.c_str(), F_OK) == 0; }))
      << (*l4lb)->Log();
  std::stringstream text;
  text << std::ifstream(ready).rdbuf();
  const std::vector<std::string> lines = absl::StrSplit(text.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << text.str();
  EXPECT_TRUE(absl::StartsWith(lines[0], "tcp 127.0.0.1:")) << lines[0];
  ASSERT_TRUE(absl::StartsWith(lines[1], "udp 127.0.0.1:")) << lines[1];
  uint32_t udp_port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(lines[1].substr(lines[1].rfind(':') + 1), &udp_port));

  uint16_t client_port = 0;
  const int client = BindUdp("127.0.0.1", &client_port);
  ASSERT_GE(client, 0);
  ASSERT_TRUE(SendTo(client, "127.0.0.1", static_cast<uint16_t>(udp_port), "query"));
  std::string from;
  EXPECT_EQ(RecvFrom(dns, absl::Seconds(5), &from), "query");
  const size_t colon = from.rfind(':');
  uint32_t from_port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(from.substr(colon + 1), &from_port)) << from;
  ASSERT_TRUE(SendTo(dns, from.substr(0, colon), static_cast<uint16_t>(from_port), "answer"));
  EXPECT_EQ(RecvFrom(client, absl::Seconds(5)), "answer");
  close(client);
  close(dns);
  EXPECT_EQ((*l4lb)->Stop(SIGTERM, absl::Seconds(10)), 0) << (*l4lb)->Log();
}

}  // namespace
}  // namespace l4lb::testing
