#include "tests/harness/servers.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "tests/harness/sockets.h"

namespace l4lb::testing {
namespace {

constexpr absl::Duration kStartTimeout = absl::Seconds(10);

absl::Status WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
  out.close();
  return out ? absl::OkStatus() : absl::InternalError(absl::StrCat("cannot write ", path));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// mkdir applies the umask; the chmod makes `mode` exact (vsftpd's upload dir needs 0777).
absl::Status MakeDir(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return absl::ErrnoToStatus(errno, absl::StrCat("mkdir ", path));
  }
  if (chmod(path.c_str(), mode) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("chmod ", path));
  }
  return absl::OkStatus();
}

// A new directory for one server, with its `files` subdirectory: a restarted
// server never reads a stale config, pid file or log.
absl::StatusOr<Server> NewServer(const std::string& name, const std::string& host, uint16_t port) {
  std::string dir = absl::StrCat(TempDir(), "/", name, "-", host, "-", port, "-XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) {
    return absl::ErrnoToStatus(errno, absl::StrCat(name, ": mkdtemp ", dir));
  }
  Server server;
  server.host = host;
  server.port = port;
  server.dir = dir;
  server.files = dir + "/files";
  server.log = absl::StrCat(dir, "/", name, ".log");
  if (absl::Status s = MakeDir(server.files, 0755); !s.ok()) return s;
  return server;
}

// The end of a log, for error messages.
std::string Tail(const std::string& path) {
  const std::string log = ReadFile(path);
  return log.size() > 2000 ? "..." + log.substr(log.size() - 2000) : log;
}

// True if host:port answers `request` with bytes starting with `expect`.
bool Answers(const std::string& host, uint16_t port, const std::string& request,
             const std::string& expect) {
  const int fd = ConnectTcp(host, port);
  if (fd < 0) return false;
  SetRecvTimeout(fd, absl::Milliseconds(500));
  const bool ok = (request.empty() || SendAll(fd, request)) && ReadN(fd, expect.size()) == expect;
  close(fd);
  return ok;
}

// Runs `argv` for `server` and waits until it answers like itself: a bare
// connect would also succeed against a listener that never speaks.
absl::StatusOr<Server> Launch(const std::string& name, const std::vector<std::string>& argv,
                              Server server, const std::string& request,
                              const std::string& expect) {
  absl::StatusOr<std::unique_ptr<Process>> process = Process::Start(argv, server.log);
  if (!process.ok()) {
    return absl::InternalError(absl::StrCat(name, ": ", process.status().ToString()));
  }
  server.process = *std::move(process);
  const bool answered = WaitFor(kStartTimeout, [&] {
    return !server.process->Running() || Answers(server.host, server.port, request, expect);
  });
  if (answered && server.process->Running()) return server;
  return absl::UnavailableError(absl::StrCat(
      name, " on ", server.host, ":", server.port,
      server.process->Running()
          ? absl::StrCat(" did not answer within ", absl::FormatDuration(kStartTimeout))
          : " exited",
      "; its log ", server.log, ":\n", Tail(server.log)));
}

// Host and client key pairs, made once per test process: every sshd presents the
// same host key, which known_hosts trusts for any address and port.
struct SshKeys {
  std::string dir = absl::StrCat(TempDir(), "/ssh-keys.", getpid());
  std::string host_key = dir + "/host_ed25519";
  std::string client_key = dir + "/client_ed25519";
  std::string known_hosts = dir + "/known_hosts";
  std::string authorized_keys = dir + "/authorized_keys";
};

const SshKeys& Keys() {
  static const SshKeys* keys = new SshKeys();
  return *keys;
}

absl::Status KeyGen(const std::string& path) {
  const CommandResult r =
      RunCommand({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "l4lb-test", "-f", path},
                 absl::Seconds(10));
  if (r.exit_code == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("sshd: ssh-keygen -f ", path, ": ", r.err));
}

absl::Status MakeKeys() {
  const SshKeys& keys = Keys();
  if (absl::Status s = MakeDir(keys.dir, 0700); !s.ok()) return s;
  for (const std::string& key : {keys.host_key, keys.client_key}) {
    if (absl::Status s = KeyGen(key); !s.ok()) return s;
  }
  if (absl::Status s = WriteFile(keys.known_hosts, "* " + ReadFile(keys.host_key + ".pub"));
      !s.ok()) {
    return s;
  }
  return WriteFile(keys.authorized_keys, ReadFile(keys.client_key + ".pub"));
}

absl::Status MakeKeysOnce() {
  static const absl::Status* status = new absl::Status(MakeKeys());
  return *status;
}

// `tls`: the server block's listen parameters and certificate lines, or "".
std::string NginxConfig(const Server& s, const std::string& tls = "") {
  const std::string& d = s.dir;
  // master_process off: one process, so killing the PID stops the server.
  return absl::StrCat("daemon off;\nmaster_process off;\nworker_processes 1;\nuser root;\n",  //
                      "pid ", d, "/nginx.pid;\nerror_log stderr;\n",                          //
                      "events { worker_connections 4096; }\n",                                //
                      "http {\n  access_log ", d, "/access.log;\n",                           //
                      "  client_body_temp_path ", d, ";\n  proxy_temp_path ", d, ";\n",       //
                      "  fastcgi_temp_path ", d, ";\n  uwsgi_temp_path ", d, ";\n",           //
                      "  scgi_temp_path ", d, ";\n",                                          //
                      "  server { listen ", s.host, ":", s.port, tls, "; root ", s.files, "; }\n}\n");
}

std::string VsftpdConfig(const Server& s, const VsftpdOptions& o, const std::string& banner) {
  const std::vector<std::string> lines = {
      "listen=YES", "listen_ipv6=NO", "background=NO",  // one foreground process per server
      absl::StrCat("listen_address=", s.host), absl::StrCat("listen_port=", s.port),
      absl::StrCat("ftpd_banner=", banner),
      // Anonymous only, logged in on USER (no PASS asked), chrooted into `files`.
      "anonymous_enable=YES", "local_enable=NO", "no_anon_password=YES",
      absl::StrCat("anon_root=", s.files),
      // Uploads, and overwrites so a test may put the same name twice; umask 022
      // keeps uploads world-readable, which anonymous downloads require.
      "write_enable=YES", "anon_upload_enable=YES", "anon_mkdir_write_enable=YES",
      "anon_other_write_enable=YES", "anon_umask=022",
      // The PASV reply names this address as given, never a resolved name.
      "pasv_enable=YES",
      absl::StrCat("pasv_address=", o.pasv_address.empty() ? s.host : o.pasv_address),
      "pasv_addr_resolve=NO", absl::StrCat("pasv_min_port=", o.pasv_min_port),
      o.pasv_promiscuous ? "pasv_promiscuous=YES" : "pasv_promiscuous=NO",
      absl::StrCat("pasv_max_port=", o.pasv_max_port),
      // The pre-login process chroots here; vsftpd refuses to start without it.
      absl::StrCat("secure_chroot_dir=", s.dir, "/empty"),
      // Commands, replies and transfers in dir/vsftpd.log, for failing tests.
      "xferlog_enable=YES", "xferlog_std_format=NO", "log_ftp_protocol=YES",
      absl::StrCat("vsftpd_log_file=", s.dir, "/vsftpd.log")};
  return absl::StrJoin(lines, "\n") + "\n";
}

std::string SshdConfig(const Server& s, const std::string& banner) {
  const SshKeys& keys = Keys();
  return absl::StrCat("ListenAddress ", s.host, ":", s.port, "\nHostKey ", keys.host_key,  //
                      "\nPidFile ", s.dir, "/sshd.pid\nAuthorizedKeysFile ", keys.authorized_keys,
                      "\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n",
                      "KbdInteractiveAuthentication no\n",
                      // TempDir's modes are bazel's; PAM would need the system's login setup.
                      "StrictModes no\nUsePAM no\nVersionAddendum ", banner,
                      // Tests open dozens of sessions at once (the default 10 would
                      // drop some before they authenticate).
                      "\nMaxStartups 500",
                      "\nSubsystem sftp internal-sftp -d ", s.files, "\n");
}

// nginx serving `body` at / on host:port (`tls`: NginxConfig's), up once a
// plain GET gets `expect`.
absl::StatusOr<Server> LaunchNginx(const std::string& name, const std::string& host,
                                   uint16_t port, const std::string& body, const std::string& tls,
                                   const std::string& expect) {
  absl::StatusOr<Server> server = NewServer(name, host, port);
  if (!server.ok()) return server.status();
  const std::string config = server->dir + "/nginx.conf";
  for (const auto& [path, content] :
       {std::pair{server->files + "/index.html", body}, {config, NginxConfig(*server, tls)}}) {
    if (absl::Status s = WriteFile(path, content); !s.ok()) return s;
  }
  // -e: nginx opens its default error log before it reads the config.
  return Launch(name, {"/usr/sbin/nginx", "-c", config, "-e", "stderr"}, *std::move(server),
                "GET / HTTP/1.0\r\n\r\n", expect);
}

}  // namespace

absl::StatusOr<Server> StartNginx(const std::string& host, uint16_t port, const std::string& body) {
  return LaunchNginx("nginx", host, port, body, "", "HTTP/1.1 200 ");
}

absl::StatusOr<TlsCert> MakeTlsCert(const std::string& name) {
  std::string dir = absl::StrCat(TempDir(), "/cert-", name, "-XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) return absl::ErrnoToStatus(errno, "mkdtemp " + dir);
  TlsCert out{.name = name, .cert = dir + "/cert.pem", .key = dir + "/key.pem"};
  const CommandResult made = RunCommand(
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-days", "1", "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name,
       "-keyout", out.key, "-out", out.cert},
      absl::Seconds(20));
  if (made.exit_code != 0) {
    return absl::InternalError(absl::StrCat("openssl req for ", name, ": ", made.err));
  }
  return out;
}

absl::StatusOr<Server> StartNginxTls(const std::string& host, uint16_t port,
                                     const std::string& body, const TlsCert& cert) {
  const std::string tls =
      absl::StrCat(" ssl; ssl_certificate ", cert.cert, "; ssl_certificate_key ", cert.key);
  // Plain HTTP on its TLS port: nginx answers 400 in the clear, which tells it
  // is up without a TLS client here.
  return LaunchNginx("nginx-tls", host, port, body, tls, "HTTP/1.1 400 ");
}

absl::StatusOr<Server> StartVsftpd(const std::string& host, uint16_t port,
                                   const VsftpdOptions& options) {
  absl::StatusOr<Server> server = NewServer("vsftpd", host, port);
  if (!server.ok()) return server.status();
  // The upload dir belongs to nobody in particular: 0777 lets the ftp user write.
  if (absl::Status s = MakeDir(absl::StrCat(server->files, "/", kFtpUploadDir), 0777); !s.ok()) {
    return s;
  }
  if (absl::Status s = MakeDir(server->dir + "/empty", 0755); !s.ok()) return s;
  const std::string banner =
      options.banner.empty() ? absl::StrCat("vsftpd ", host, ":", port) : options.banner;
  const std::string config = server->dir + "/vsftpd.conf";
  if (absl::Status s = WriteFile(config, VsftpdConfig(*server, options, banner)); !s.ok()) {
    return s;
  }
  return Launch("vsftpd", {"/usr/sbin/vsftpd", config}, *std::move(server), "",
                absl::StrCat("220 ", banner, "\r\n"));
}

absl::StatusOr<Server> StartSshd(const std::string& host, uint16_t port,
                                 const SshdOptions& options) {
  if (absl::Status s = MakeKeysOnce(); !s.ok()) return s;
  // sshd's privilege separation directory; Debian's init script makes it at boot.
  if (absl::Status s = MakeDir("/run/sshd", 0755); !s.ok()) return s;
  absl::StatusOr<Server> server = NewServer("sshd", host, port);
  if (!server.ok()) return server.status();
  const std::string banner =
      options.banner.empty() ? absl::StrCat("sshd-", host, ":", port) : options.banner;
  const std::string config = server->dir + "/sshd_config";
  if (absl::Status s = WriteFile(config, SshdConfig(*server, banner)); !s.ok()) return s;
  // -D: foreground; -e: log to stderr. sshd re-executes itself: an absolute path.
  return Launch("sshd", {"/usr/sbin/sshd", "-D", "-e", "-f", config}, *std::move(server), "",
                "SSH-2.0-");
}

std::vector<std::string> SshClientOptions(uint16_t port) {
  const SshKeys& keys = Keys();
  // -F /dev/null, IdentitiesOnly: nothing from ~/.ssh or an agent takes part.
  const std::vector<std::string> options = {"IdentitiesOnly=yes",
                                            "UserKnownHostsFile=" + keys.known_hosts,
                                            "GlobalKnownHostsFile=/dev/null",
                                            "StrictHostKeyChecking=yes",
                                            "BatchMode=yes",
                                            "ConnectTimeout=5",
                                            absl::StrCat("Port=", port)};
  std::vector<std::string> argv = {"-F", "/dev/null", "-i", keys.client_key};
  for (const std::string& option : options) {
    argv.push_back("-o");
    argv.push_back(option);
  }
  return argv;
}

std::vector<std::string> SftpBatchCommand(const std::string& host, uint16_t port,
                                          const std::string& batch_file) {
  std::vector<std::string> argv = SshClientOptions(port);
  argv.insert(argv.begin(), "sftp");
  argv.insert(argv.end(), {"-b", batch_file, "root@" + host});
  return argv;
}

uint16_t FreePortRange(const std::vector<std::string>& hosts, int count) {
  std::mt19937 rng(std::random_device{}());  // parallel tests start at different ports
  std::uniform_int_distribution<int> first_port(20000, 32767 - count);
  for (int tries = 0; tries < 50; ++tries) {
    const int first = first_port(rng);
    std::vector<int> held;
    bool free = true;
    for (int port = first; free && port < first + count; ++port) {
      for (const std::string& host : hosts) {
        uint16_t p = port;
        held.push_back(ListenTcp(host, &p));
        free = free && held.back() >= 0;
      }
    }
    for (const int fd : held) {
      if (fd >= 0) close(fd);
    }
    if (free) return first;
  }
  return 0;
}

}  // namespace l4lb::testing
