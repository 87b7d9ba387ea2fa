#include "tests/harness/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

extern char** environ;

namespace l4lb::testing {
namespace {

std::vector<char*> Argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const std::string& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string UniquePath(absl::string_view stem) {
  static std::atomic<int> counter{0};
  return absl::StrCat(TempDir(), "/", stem, ".", getpid(), ".", counter++);
}

}  // namespace

std::string L4lbBinary() {
  const char* srcdir = getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir ? srcdir : ".", "/l4lb/l4lb/l4lb");
}

std::string TempDir() {
  const char* dir = getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::unique_ptr<Process>> Process::Start(const std::vector<std::string>& argv,
                                                        const std::string& log_path,
                                                        int stderr_fd) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, stderr_fd >= 0 ? stderr_fd : 1, 2);
  pid_t pid;
  std::vector<char*> args = Argv(argv);
  const int err = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return absl::ErrnoToStatus(err, absl::StrCat("posix_spawn ", argv[0]));
  return std::unique_ptr<Process>(new Process(pid, log_path));
}

Process::~Process() {
  if (Running()) {
    kill(pid_, SIGKILL);
    Wait(absl::Seconds(5));
  }
}

bool Process::Running() {
  if (exit_code_ >= 0) return false;
  int status;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = ExitCode(status);
    return false;
  }
  return r == 0;
}

int Process::Wait(absl::Duration timeout) {
  WaitFor(timeout, [&] { return !Running(); });
  return exit_code_;
}

int Process::Stop(int signal, absl::Duration timeout) {
  if (Running()) kill(pid_, signal);
  return Wait(timeout);
}

std::string Process::Log() const { return ReadFile(log_path_); }

int Process::FdCount() const {
  DIR* dir = opendir(absl::StrCat("/proc/", pid_, "/fd").c_str());
  if (dir == nullptr) return -1;
  int count = 0;
  while (dirent* e = readdir(dir)) count += e->d_name[0] != '.';
  closedir(dir);
  return count;
}

CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout) {
  const std::string out_path = UniquePath("cmd.out");
  const std::string err_path = UniquePath("cmd.err");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  std::vector<char*> args = Argv(argv);
  pid_t pid;
  CommandResult result;
  const int err = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) {
    result.err = absl::StrCat("cannot run ", argv[0], ": ", strerror(err));
    return result;
  }
  int status = 0;
  const bool done = WaitFor(timeout, [&] { return waitpid(pid, &status, WNOHANG) == pid; });
  if (!done) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    result.err = "timed out; ";
  } else {
    result.exit_code = ExitCode(status);
  }
  result.out = ReadFile(out_path);
  result.err += ReadFile(err_path);
  unlink(out_path.c_str());
  unlink(err_path.c_str());
  return result;
}

absl::StatusOr<std::unique_ptr<L4lb>> L4lb::Start(const std::vector<std::string>& flags) {
  return Start(flags, /*stderr_fd=*/-1);
}

absl::StatusOr<std::unique_ptr<L4lb>> L4lb::Start(const std::vector<std::string>& flags,
                                                  int stderr_fd) {
  const std::string ready = UniquePath("l4lb.ready");
  std::vector<std::string> argv = {L4lbBinary()};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back("--ready_file=" + ready);
  absl::StatusOr<std::unique_ptr<Process>> process = Process::Start(argv, UniquePath("l4lb.log"), stderr_fd);
  if (!process.ok()) return process.status();
  std::unique_ptr<L4lb> l4lb(new L4lb());
  l4lb->process_ = *std::move(process);
  l4lb->ready_file_ = ready;
  if (!WaitFor(absl::Seconds(10),
               [&] { return access(ready.c_str(), F_OK) == 0 || !l4lb->process_->Running(); }) ||
      access(ready.c_str(), F_OK) != 0) {
    l4lb->expected_exit_.reset();  // the status says it all
    return absl::InternalError(absl::StrCat("l4lb did not start: ", l4lb->process_->Log()));
  }
  for (absl::string_view line : absl::StrSplit(ReadFile(ready), '\n', absl::SkipEmpty())) {
    // "tcp 127.0.0.1:43117" or "udp 127.0.0.1:53011"; [::1]:PORT for IPv6.
    const bool known = absl::StartsWith(line, "tcp ") || absl::StartsWith(line, "udp ");
    uint32_t port = 0;
    if (!known || !absl::SimpleAtoi(line.substr(line.rfind(':') + 1), &port) || port > 65535) {
      l4lb->expected_exit_.reset();
      return absl::InternalError(absl::StrCat("bad ready file line: ", line));
    }
    l4lb->ports_.push_back(static_cast<uint16_t>(port));
  }
  return l4lb;
}

L4lb::~L4lb() {
  // Already exited (the test stopped it, or it died on its own): Stop() only
  // reports how.
  const int exit_code = process_->Stop(SIGTERM, absl::Seconds(10));
  const std::string log = process_->Log();
  if (expected_exit_.has_value() && exit_code != *expected_exit_) {
    const std::string how = exit_code == -1   ? "did not exit within 10 s of SIGTERM"
                            : exit_code > 128 ? absl::StrCat("died of signal ", exit_code - 128,
                                                             " (", strsignal(exit_code - 128), ")")
                                              : absl::StrCat("exited with ", exit_code);
    ADD_FAILURE() << "l4lb " << how << "; the test expects exit code " << *expected_exit_
                  << " (L4lb::ExpectExit). Its log:\n"
                  << log;
  }
  for (const char* report : {"WARNING: ThreadSanitizer", "ERROR: AddressSanitizer",
                             "ERROR: LeakSanitizer", "runtime error:"}) {
    if (log.find(report) != std::string::npos) ADD_FAILURE() << "l4lb: " << report << "\n" << log;
  }
}

bool L4lb::FdsBackTo(int baseline, absl::Duration timeout) {
  return WaitFor(timeout, [&] { return FdCount() == baseline; });
}

int L4lb::CountLines(const std::string& a, const std::string& b) const {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(Log(), '\n')) {
    n += absl::StrContains(line, a) && absl::StrContains(line, b);
  }
  return n;
}

std::string L4lb::ConnectFailuresAndDowns() const {
  std::string out;
  for (absl::string_view line : absl::StrSplit(Log(), '\n')) {
    if (absl::StrContains(line, ": connect: ") || absl::StrContains(line, " is DOWN")) {
      absl::StrAppend(&out, line, "\n");
    }
  }
  return out;
}

}  // namespace l4lb::testing
