// Operator mistakes on the command line: exit code 2 and ONE stderr line that names
// the flag and the bad value. Never a crash, a stack trace or a hang.

#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

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
                "l4lb: --backends: empty backend list (want ADDRESS:PORT[=WEIGHT],...)"},
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
                "l4lb: --health_check: \"smtp\": want none, tcp, send_expect, ftp, ssh or http"},
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
        BadFlag{{kListen, kBackends, "--ready_file=/nonexistent/dir/ready"},
                "l4lb: --ready_file: /nonexistent/dir/ready.tmp: No such file or directory"},
        BadFlag{{kListen, kBackends, "stray"},
                "l4lb: unexpected argument \"stray\" (flags look like --listen=...)"}));

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

TEST(CliTest, UnknownFlagIsRefused) {
  const CommandResult r = RunL4lb({kListen, kBackends, "--lisen=127.0.0.1:0"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("unknown command line flag 'lisen'"), std::string::npos) << r.err;
}

TEST(CliTest, HelpDocumentsEveryFlag) {
  const CommandResult r = RunL4lb({"--helpon=main"});
  const std::string text = r.out + r.err;
  for (const char* flag :
       {"-listen", "-backends", "-threads", "-connect_timeout", "-connect_retries", "-idle_timeout",
        "-drain_timeout", "-hash_key", "-maglev_table_size", "-access_log", "-ready_file",
        "-pipe_size", "-copy_bytes", "-health_check", "-health_interval", "-health_timeout",
        "-health_rise", "-health_fall", "-health_send", "-health_expect", "-health_port",
        "-health_http_path", "-health_http_status", "-health_passive", "-kill_on_down"}) {
    EXPECT_NE(text.find(flag), std::string::npos) << flag << " is undocumented:\n" << text;
  }
  EXPECT_NE(text.find("=WEIGHT"), std::string::npos) << "weights are undocumented";
}

}  // namespace
}  // namespace l4lb::testing
