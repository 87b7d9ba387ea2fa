#include "tests/harness/dnsmasq.h"

#include <errno.h>
#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#include "tests/harness/process.h"

namespace l4lb::testing {
namespace {

constexpr char kDnsmasq[] = "/usr/sbin/dnsmasq";
constexpr absl::Duration kStartTimeout = absl::Seconds(10);

// The end of a log, for error messages.
std::string Tail(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string log = ss.str();
  return log.size() > 2000 ? "..." + log.substr(log.size() - 2000) : log;
}

// One dnsmasq in the foreground on host:port with `records` (its record flags),
// returned once `answered()` (or an error naming its log).
absl::StatusOr<Server> Start(const std::string& host, uint16_t port,
                             const std::vector<std::string>& records, const std::string& what,
                             const std::function<bool()>& answered) {
  // A new directory per start: a restarted server never reads a stale pid file or log.
  std::string dir = absl::StrCat(TempDir(), "/dnsmasq-", host, "-", port, "-XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) {
    return absl::ErrnoToStatus(errno, absl::StrCat("dnsmasq: mkdtemp ", dir));
  }
  Server server;
  server.host = host;
  server.port = port;
  server.dir = dir;
  server.log = dir + "/dnsmasq.log";
  std::vector<std::string> argv = {
      kDnsmasq,
      // One foreground process (killing its PID stops the server), logging to stderr.
      "--keep-in-foreground", "--log-facility=-", "--log-queries",
      // Nothing from the host: no /etc/dnsmasq.conf, resolv.conf or /etc/hosts.
      "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
      // This address and port only, not every interface's port 53.
      "--bind-interfaces", absl::StrCat("--listen-address=", host), absl::StrCat("--port=", port),
      absl::StrCat("--pid-file=", dir, "/dnsmasq.pid"), "--user=root", "--group=root"};
  argv.insert(argv.end(), records.begin(), records.end());
  absl::StatusOr<std::unique_ptr<Process>> process = Process::Start(argv, server.log);
  if (!process.ok()) {
    return absl::InternalError(absl::StrCat("dnsmasq: ", process.status().ToString()));
  }
  server.process = *std::move(process);
  // A bound socket is not enough: dnsmasq answers only once its records are loaded.
  const bool ok = WaitFor(kStartTimeout, [&] { return !server.process->Running() || answered(); });
  if (ok && server.process->Running()) return server;
  return absl::UnavailableError(absl::StrCat(
      "dnsmasq on ", host, ":", port,
      server.process->Running()
          ? absl::StrCat(" did not answer ", what, " within ", absl::FormatDuration(kStartTimeout))
          : " exited",
      "; its log ", server.log, ":\n", Tail(server.log)));
}

}  // namespace

absl::StatusOr<Server> StartDnsmasq(const std::string& host, uint16_t port,
                                    const std::string& txt) {
  // As is: quotes on the command line would be part of the text.
  return Start(host, port, {absl::StrCat("--txt-record=", kDnsmasqName, ",", txt)},
               absl::StrCat(kDnsmasqName, " TXT"), [&] { return DigTxt(host, port) == txt; });
}

absl::StatusOr<Server> StartDnsmasqHosts(const std::string& host, uint16_t port,
                                         const std::string& hosts_file,
                                         const std::string& probe_name) {
  return Start(host, port, {absl::StrCat("--addn-hosts=", hosts_file), "--local-ttl=1"},
               absl::StrCat(probe_name, " A"),
               [&] { return !DigA(host, port, probe_name).empty(); });
}

std::string DigA(const std::string& server, uint16_t port, const std::string& name) {
  const CommandResult r = RunCommand(
      {"dig", "@" + server, "-p", absl::StrCat(port), "+short", "+time=2", "+tries=1", name, "A"},
      absl::Seconds(5));
  if (r.exit_code != 0 || absl::StartsWith(r.out, ";")) return "";
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipWhitespace());
  std::sort(lines.begin(), lines.end());
  return absl::StrJoin(lines, "\n");
}

std::string DigTxt(const std::string& server, uint16_t port, const std::string& source) {
  std::vector<std::string> argv = {"dig",    "@" + server, "-p",       absl::StrCat(port),
                                   "+short", "+time=2",    "+tries=1", kDnsmasqName,
                                   "TXT"};
  if (!source.empty()) argv.insert(argv.begin() + 1, {"-b", source});
  const CommandResult r = RunCommand(argv, absl::Seconds(5));
  if (r.exit_code != 0) return "";
  // One answer: "\"backend 127.0.0.2\"\n". Anything else (";; connection timed
  // out...", several records) is returned as is, so a test prints what it got.
  absl::string_view out = absl::StripAsciiWhitespace(r.out);
  if (out.size() >= 2 && out.front() == '"' && out.back() == '"') {
    out = out.substr(1, out.size() - 2);
  }
  return std::string(out);
}

}  // namespace l4lb::testing
