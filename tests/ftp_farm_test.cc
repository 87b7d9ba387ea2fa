// l4lb in front of an FTP farm: three real vsftpd servers (127.0.0.2-4) with one
// control port and one passive port range, the same on the balancer (127.0.0.1)
// and on every backend; l4lb listens on both, with port-less backends (a client
// reaches the port it connected to) and --health_check=ftp. Real curl and lftp
// clients, each from its own source address (127.0.1.X), upload and download in
// passive mode. The passive data connections are new TCP connections to other
// ports: they reach the vsftpd that is waiting for them only because the source
// address, not the port, picks the backend. Nothing here inspects FTP: FTPS
// would be relayed the same way (no test for it: vsftpd would need certificates).

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"
#include "tests/harness/servers.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

const std::vector<std::string> kBackendHosts = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};
constexpr char kBalancer[] = "127.0.0.1";
constexpr int kPassivePorts = 20;
constexpr uint64_t kKiB = 1024, kMiB = 1024 * 1024;

// Byte-compares two files; a failure names the first differing offset, not the bytes.
::testing::AssertionResult SameBytes(const std::string& a, const std::string& b) {
  std::error_code error;
  const uint64_t size_a = std::filesystem::file_size(a, error);
  if (error) return ::testing::AssertionFailure() << a << ": " << error.message();
  const uint64_t size_b = std::filesystem::file_size(b, error);
  if (error) return ::testing::AssertionFailure() << b << ": " << error.message();
  if (size_a != size_b) {
    return ::testing::AssertionFailure()
           << a << ": " << size_a << " bytes, " << b << ": " << size_b << " bytes";
  }
  std::ifstream in_a(a, std::ios::binary), in_b(b, std::ios::binary);
  std::vector<char> chunk_a(kMiB), chunk_b(kMiB);
  for (uint64_t offset = 0; offset < size_a; offset += chunk_a.size()) {
    in_a.read(chunk_a.data(), chunk_a.size());
    in_b.read(chunk_b.data(), chunk_b.size());
    const auto [at, unused] =
        std::mismatch(chunk_a.begin(), chunk_a.begin() + in_a.gcount(), chunk_b.begin());
    if (at != chunk_a.begin() + in_a.gcount() || in_a.gcount() != in_b.gcount()) {
      return ::testing::AssertionFailure()
             << a << " and " << b << " differ at byte " << offset + (at - chunk_a.begin());
    }
  }
  return ::testing::AssertionSuccess();
}

// The backend whose 220 greeting ("220 backend 127.0.0.N") is in a client's
// protocol trace, or "".
std::string BackendInTrace(const std::string& trace) {
  const std::string greeting = "220 backend ";
  const size_t at = trace.find(greeting);
  if (at == std::string::npos) return "";
  const size_t start = at + greeting.size();
  return trace.substr(start, trace.find_first_of("\r\n", start) - start);
}

// One connection from l4lb's access log:
// "conn client=127.0.1.10:41234 listener=127.0.0.1:21000 backend=127.0.0.3:21000 up=N down=N ...".
struct Conn {
  uint16_t listener_port = 0;
  std::string backend;  // host only
  uint64_t up = 0;
  uint64_t down = 0;
};

// The connections l4lb has logged as closed for clients from `source`.
std::vector<Conn> ConnsFrom(const std::string& log, const std::string& source) {
  std::vector<Conn> conns;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (line.find(absl::StrCat(" conn client=", source, ":")) == absl::string_view::npos) continue;
    Conn conn;
    for (absl::string_view field : absl::StrSplit(line, ' ')) {
      const std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(field, '=');
      const absl::string_view port = kv.second.substr(kv.second.rfind(':') + 1);
      const absl::string_view host = kv.second.substr(0, kv.second.rfind(':'));
      uint32_t listener_port = 0;
      if (kv.first == "listener" && absl::SimpleAtoi(port, &listener_port)) {
        conn.listener_port = listener_port;
      }
      if (kv.first == "backend") conn.backend = std::string(host);
      if (kv.first == "up") (void)absl::SimpleAtoi(kv.second, &conn.up);
      if (kv.first == "down") (void)absl::SimpleAtoi(kv.second, &conn.down);
    }
    conns.push_back(conn);
  }
  return conns;
}

class FtpFarmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"/usr/sbin/vsftpd", "/usr/bin/curl", "/usr/bin/lftp"}) {
      ASSERT_EQ(access(tool, X_OK), 0) << tool << " is missing: run tools/setup.sh";
    }
    std::vector<std::string> all_hosts = kBackendHosts;
    all_hosts.push_back(kBalancer);
    // The range is below the ephemeral ports, the control port (bound to 0)
    // among them: they never overlap.
    ASSERT_NE(pasv_min_ = FreePortRange(all_hosts, kPassivePorts), 0);
    ASSERT_NE(control_port_ = FreePortOnAll(all_hosts), 0);
    for (const std::string& host : kBackendHosts) {
      // The farm's settings: the same passive range everywhere, PASV naming the balancer.
      absl::StatusOr<Server> vsftpd = StartVsftpd(host, control_port_,
                                                  {.banner = "backend " + host,
                                                   .pasv_min_port = pasv_min_,
                                                   .pasv_max_port = pasv_max(),
                                                   .pasv_address = kBalancer});
      ASSERT_TRUE(vsftpd.ok()) << vsftpd.status();
      vsftpd_.push_back(*std::move(vsftpd));
    }
    // The control listener first: health probes go to the first listener's port.
    absl::StatusOr<std::unique_ptr<L4lb>> l4lb = L4lb::Start(
        {absl::StrCat("--listen=", kBalancer, ":", control_port_, ",", kBalancer, ":", pasv_min_,
                      "-", pasv_max()),
         "--backends=127.0.0.2,127.0.0.3,127.0.0.4", "--health_check=ftp", "--threads=2"});
    ASSERT_TRUE(l4lb.ok()) << l4lb.status();
    l4lb_ = *std::move(l4lb);
  }

  // With the source address picking the backend, every connection, passive ones
  // included, reaches the vsftpd expecting it at the first connect: no retry
  // (l4lb retries a refused connect on the next backend, which would hide a
  // passive connection sent to the wrong backend), and no backend failed its checks.
  void TearDown() override {
    if (l4lb_ != nullptr) {
      EXPECT_EQ(l4lb_->ConnectFailuresAndDowns(), "");
    }
  }

  uint16_t pasv_max() const { return pasv_min_ + kPassivePorts - 1; }
  std::string Url(const std::string& name) const {
    return absl::StrCat("ftp://", kBalancer, ":", control_port_, "/", kFtpUploadDir, "/", name);
  }
  std::string UploadPath(size_t backend, const std::string& name) const {
    return absl::StrCat(vsftpd_[backend].files, "/", kFtpUploadDir, "/", name);
  }

  // curl from `source` uploads `local` as upload/`name`, then downloads it into
  // `back`, over two control connections. PASV (--disable-epsv) with the address
  // the reply names (--no-ftp-skip-pasv-ip): were it a backend's, the data
  // connection would bypass l4lb and vsftpd would refuse it (its control
  // connection comes from l4lb, the data from the client).
  static ClientSession CurlUpDown(const std::string& source, const std::string& local,
                                  const std::string& url, const std::string& back) {
    const std::vector<std::string> common = {
        "curl",       "-sSv", "--disable-epsv", "--no-ftp-skip-pasv-ip",
        "--max-time", "60",   "--interface",    source};
    std::vector<std::string> up = common, down = common;
    up.insert(up.end(), {"-T", local, url});
    down.insert(down.end(), {"-o", back, url});
    ClientSession session;
    for (const std::vector<std::string>& argv : {up, down}) {
      const CommandResult r = RunCommand(argv, absl::Seconds(70));
      absl::StrAppend(&session.trace, "$ ", absl::StrJoin(argv, " "), "\n", r.out, r.err);
      if (r.exit_code != 0) return session;
      // Both greetings must name the same backend: the source address picks it.
      const std::string backend = BackendInTrace(r.err);
      if (!session.backend.empty() && backend != session.backend) return session;
      session.backend = backend;
    }
    session.ok = !session.backend.empty();
    return session;
  }

  // lftp from `source`: put, then get, over one control connection, in EPSV
  // (the reply names only a port; the client reuses the control address).
  ClientSession LftpUpDown(const std::string& source, const std::string& local,
                           const std::string& name, const std::string& back) const {
    // fail-exit: a failed put or get ends lftp with a non-zero exit, not at "bye".
    const std::string script = absl::StrCat(
        "set cmd:fail-exit yes; set ftp:passive-mode on; set ftp:prefer-epsv yes; ",
        "set net:socket-bind-ipv4 ", source, "; set net:max-retries 1; set net:timeout 20; ",
        "set xfer:clobber on; put ", local, " -o ", kFtpUploadDir, "/", name, "; get ",
        kFtpUploadDir, "/", name, " -o ", back, "; bye");
    // -d: the protocol trace on stderr, greeting included ("<--- 220 backend ...").
    const std::vector<std::string> argv = {"lftp", "-d", "-e", script,
                                           absl::StrCat("ftp://", kBalancer, ":", control_port_)};
    const CommandResult r = RunCommand(argv, absl::Seconds(120));
    ClientSession session;
    session.trace = absl::StrCat("$ lftp -e '", script, "'\n", r.out, r.err);
    session.backend = BackendInTrace(r.err);
    session.ok = r.exit_code == 0 && !session.backend.empty();
    return session;
  }

  // The backends whose upload dir holds `name`.
  std::vector<size_t> Holders(const std::string& name) const {
    std::vector<size_t> holders;
    for (size_t i = 0; i < vsftpd_.size(); ++i) {
      if (access(UploadPath(i, name).c_str(), F_OK) == 0) holders.push_back(i);
    }
    return holders;
  }

  // After a client from `source` put `size` bytes up as `name` and got them back
  // into `back`: the file is intact on exactly the backend whose greeting it saw
  // and in `back`, and l4lb relayed every one of its connections (control and
  // data) to that backend, the data ones on the passive range, `size` bytes each way.
  void ExpectLandedOnItsBackend(const std::string& source, const ClientSession& session,
                                const std::string& local, const std::string& name,
                                const std::string& back, uint64_t size) {
    ASSERT_TRUE(session.ok) << session.TraceEnd();
    const std::vector<size_t> holders = Holders(name);
    ASSERT_EQ(holders.size(), 1u) << name << " is on " << holders.size() << " backends";
    const Server& backend = vsftpd_[holders[0]];
    EXPECT_EQ(backend.host, session.backend) << "the greeting named another backend";
    EXPECT_TRUE(SameBytes(local, UploadPath(holders[0], name)));
    EXPECT_TRUE(SameBytes(local, back));

    // Access-log lines are written at close, just after the client exits.
    uint64_t data_up = 0, data_down = 0;
    std::vector<Conn> conns;
    EXPECT_TRUE(WaitFor(absl::Seconds(5),
                        [&] {
                          conns = ConnsFrom(l4lb_->Log(), source);
                          data_up = data_down = 0;
                          for (const Conn& conn : conns) {
                            if (conn.listener_port < pasv_min_ || conn.listener_port > pasv_max())
                              continue;
                            data_up += conn.up;
                            data_down += conn.down;
                          }
                          return data_up == size && data_down == size;
                        }))
        << source << ": passive connections carried " << data_up << " bytes up, " << data_down
        << " down, want " << size;
    for (const Conn& conn : conns) {
      EXPECT_EQ(conn.backend, backend.host) << source << " port " << conn.listener_port;
    }
  }

  // Three sizes, each from its own source address (so several backends take part).
  template <typename UpDown>
  void UpAndDownThreeSizes(const std::string& client, int first_source, UpDown up_down) {
    const uint64_t sizes[] = {kKiB, 10 * kMiB, 200 * kMiB};
    for (int i = 0; i < 3; ++i) {
      const std::string source = absl::StrCat("127.0.1.", first_source + i);
      const std::string name = absl::StrCat(client, "-", sizes[i], ".bin");
      const std::string local = absl::StrCat(TempDir(), "/", name);
      const std::string back = local + ".back";
      WriteRandomFile(local, sizes[i], first_source + i);
      const absl::Time start = absl::Now();
      const ClientSession session = up_down(source, local, name, back);
      printf("%s from %s: %llu bytes up and down via %s in %s\n", client.c_str(), source.c_str(),
             static_cast<unsigned long long>(sizes[i]), session.backend.c_str(),
             absl::FormatDuration(absl::Now() - start).c_str());
      ExpectLandedOnItsBackend(source, session, local, name, back, sizes[i]);
      // 200 MiB three times over: free the disk before the next size.
      for (size_t b : Holders(name)) unlink(UploadPath(b, name).c_str());
      unlink(local.c_str());
      unlink(back.c_str());
    }
  }

  uint16_t pasv_min_ = 0;
  uint16_t control_port_ = 0;
  std::vector<Server> vsftpd_;
  std::unique_ptr<L4lb> l4lb_;
};

TEST_F(FtpFarmTest, CurlUploadsAndDownloads1KiB10MiB200MiBInPassiveMode) {
  UpAndDownThreeSizes(
      "curl", 10,
      [&](const std::string& source, const std::string& local, const std::string& name,
          const std::string& back) { return CurlUpDown(source, local, Url(name), back); });
}

TEST_F(FtpFarmTest, LftpPutsAndGets1KiB10MiB200MiBInPassiveMode) {
  UpAndDownThreeSizes(
      "lftp", 20,
      [&](const std::string& source, const std::string& local, const std::string& name,
          const std::string& back) { return LftpUpDown(source, local, name, back); });
}

// 20 clients at once, each from its own address: every transfer is intact, on
// the backend that greeted it, and every backend took some of them.
TEST_F(FtpFarmTest, TwentyConcurrentClientsAllSucceedOnAllBackends) {
  constexpr int kClients = 20;
  std::vector<ClientSession> sessions(kClients);
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    const std::string local = absl::StrCat(TempDir(), "/many-", c, ".bin");
    WriteRandomFile(local, kMiB, 100 + c);
    threads.emplace_back([&, c, local] {
      sessions[c] = CurlUpDown(absl::StrCat("127.0.1.", 100 + c), local,
                               Url(absl::StrCat("many-", c, ".bin")), local + ".back");
    });
  }
  for (std::thread& thread : threads) thread.join();

  std::map<std::string, int> clients_per_backend;
  for (int c = 0; c < kClients; ++c) {
    const std::string name = absl::StrCat("many-", c, ".bin");
    const std::string local = absl::StrCat(TempDir(), "/", name);
    ExpectLandedOnItsBackend(absl::StrCat("127.0.1.", 100 + c), sessions[c], local, name,
                             local + ".back", kMiB);
    ++clients_per_backend[sessions[c].backend];
  }
  for (size_t b = 0; b < vsftpd_.size(); ++b) {
    const auto files =
        std::distance(std::filesystem::directory_iterator(vsftpd_[b].files + "/" + kFtpUploadDir),
                      std::filesystem::directory_iterator());
    printf("%s: %d of %d clients, %ld files uploaded\n", kBackendHosts[b].c_str(),
           clients_per_backend[kBackendHosts[b]], kClients, static_cast<long>(files));
    EXPECT_EQ(files, clients_per_backend[kBackendHosts[b]]) << kBackendHosts[b];
    EXPECT_GT(files, 0) << kBackendHosts[b] << " got no client";
  }
}

}  // namespace
}  // namespace l4lb::testing
