#pragma once

// Real Debian servers (nginx, vsftpd, sshd) as loopback backends for end-to-end
// tests. Each Start*() writes a config under a new directory in TempDir(), runs the
// server in the foreground as a child Process, and returns once the server answers
// on host:port the way it should (an HTTP 200, an FTP 220 with the banner, an SSH
// identification line), or an error naming the server and its log.
//
// Stopping: the Server's Process is killed by PID (SIGKILL) when the Server goes, or
// earlier with server.process->Stop(). vsftpd and sshd fork one child per client;
// those outlive a killed listener until their client disconnects.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "tests/harness/process.h"

namespace l4lb::testing {

// What one client run against a farm did: whether it succeeded, and the backend
// whose banner it saw.
struct ClientSession {
  bool ok = false;
  std::string backend;
  std::string trace;  // the client's output, for failures
  // The end of the trace: where the client says what went wrong.
  std::string TraceEnd() const {
    return trace.size() > 4000 ? "..." + trace.substr(trace.size() - 4000) : trace;
  }
};

// A server started below. Movable, not copyable.
struct Server {
  std::unique_ptr<Process> process;
  std::string host;
  uint16_t port = 0;
  std::string dir;    // config, pid file, logs: a new directory per start
  std::string files;  // what clients see: nginx's root, FTP's anonymous root, SFTP's start dir
  std::string log;    // the server's stdout and stderr
};

// nginx serving `body` at / (files/index.html); other files put under `files` are
// served too, from disk at each request.
absl::StatusOr<Server> StartNginx(const std::string& host, uint16_t port, const std::string& body);

// A self-signed certificate for `name` (its CN and subjectAltName; EC P-256,
// valid a day), made by openssl in a new directory under TempDir().
struct TlsCert {
  std::string name;
  std::string cert;  // PEM files
  std::string key;
};
absl::StatusOr<TlsCert> MakeTlsCert(const std::string& name);

// The same nginx over TLS with `cert`, whatever name the client asks for: a
// TLS backend a test tells apart by its certificate and its body.
absl::StatusOr<Server> StartNginxTls(const std::string& host, uint16_t port,
                                     const std::string& body, const TlsCert& cert);

struct VsftpdOptions {
  // The 220 greeting's text, to tell backends apart; empty: "vsftpd HOST:PORT".
  std::string banner;
  // Passive data ports; 0, 0: any. In a farm every backend gets the same range and
  // the balancer listens on it (see FreePortRange()).
  uint16_t pasv_min_port = 0;
  uint16_t pasv_max_port = 0;
  // The address PASV replies name: the balancer's in a farm; empty: `host`.
  std::string pasv_address;
  // pasv_promiscuous=YES: accept a data connection from another address than
  // its control connection's (behind several l4lb instances the two may come
  // through different ones). vsftpd's default, NO, refuses it.
  bool pasv_promiscuous = false;
};

// Anonymous FTP may write only here, under Server::files: vsftpd refuses to run
// an anonymous session whose root (its chroot) is writable.
inline constexpr char kFtpUploadDir[] = "upload";

// vsftpd with anonymous login (any password): downloads from `files`, uploads
// (new files, overwrites) into files/upload. Its protocol log is dir/vsftpd.log.
absl::StatusOr<Server> StartVsftpd(const std::string& host, uint16_t port,
                                   const VsftpdOptions& options);

struct SshdOptions {
  // Appended to the identification line ("SSH-2.0-OpenSSH_9.2p1 Debian-... BANNER"),
  // to tell backends apart; empty: "sshd-HOST:PORT".
  std::string banner;
};

// sshd accepting root with the test's client key (no passwords), its sftp
// subsystem starting in `files`. Every sshd of a test process presents the same
// host key, as a farm behind one address must.
absl::StatusOr<Server> StartSshd(const std::string& host, uint16_t port,
                                 const SshdOptions& options);

// ssh options that log in as root with the test's key and trust only the shared
// host key, for either client:
//   {"sftp", options..., "-b", batch_file, "root@127.0.0.3"}
//   {"ssh", options..., "root@127.0.0.3", "cat /etc/hostname"}
// Valid once a StartSshd() has succeeded (it creates the keys).
std::vector<std::string> SshClientOptions(uint16_t port);

// sftp running `batch_file` (one command a line; any failure stops it with a
// non-zero exit) as root on host:port. Run it with RunCommand().
std::vector<std::string> SftpBatchCommand(const std::string& host, uint16_t port,
                                          const std::string& batch_file);

// The first of `count` consecutive ports free on every one of `hosts`, or 0. It
// is below the kernel's ephemeral range (32768-60999), so outgoing connections
// do not take these ports meanwhile; for vsftpd's passive range, which in a farm
// must be free on the balancer's address and on every backend's.
uint16_t FreePortRange(const std::vector<std::string>& hosts, int count);

}  // namespace l4lb::testing
