#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace l4lb::testing {

// The l4lb binary from the test's runfiles (data = ["//l4lb:l4lb"]).
std::string L4lbBinary();
// $TEST_TMPDIR (or /tmp), for files a test writes.
std::string TempDir();
// The whole file (binary-safe); "" if it cannot be read.
std::string ReadFile(const std::string& path);

// Polls `done` until it is true or `timeout` passes: synchronisation without sleeps
// as guesses. Returns the last value of done().
template <typename Fn>
bool WaitFor(absl::Duration timeout, Fn&& done) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return done();
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// Process is a child started with posix_spawn, its stdout and stderr in a file.
// The destructor kills it (SIGKILL, by PID) if it is still running.
class Process {
 public:
  // stderr_fd >= 0: the child's stderr is that fd instead of the log (e.g. the
  // write end of a pipe the test holds), so a test controls how fast it drains.
  static absl::StatusOr<std::unique_ptr<Process>> Start(const std::vector<std::string>& argv,
                                                        const std::string& log_path,
                                                        int stderr_fd = -1);
  ~Process();

  pid_t pid() const { return pid_; }
  bool Running();
  // Sends `signal` and waits up to `timeout`; the exit code, 128 + signal if it
  // died of one, or -1 if it is still running.
  int Stop(int signal, absl::Duration timeout);
  // Waits up to `timeout` without sending anything.
  int Wait(absl::Duration timeout);
  std::string Log() const;
  int FdCount() const;

 private:
  Process(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}

  pid_t pid_;
  std::string log_path_;
  int exit_code_ = -1;
};

// Runs a command to completion (killed at `timeout`): exit code and stdout.
struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout);

// l4lb started with `flags` plus --ready_file; Start() returns once it listens.
// The destructor stops l4lb (SIGTERM, unless the test stopped it already) and
// fails the running test unless l4lb exited 0 within 10 s, or with what
// ExpectExit() said: a CHECK failure or a crash in the drain path must not pass
// in silence. It also fails the test if l4lb's log holds a sanitizer report
// (tests built with --config=asan or --config=tsan build l4lb the same way).
class L4lb {
 public:
  ~L4lb();
  static absl::StatusOr<std::unique_ptr<L4lb>> Start(const std::vector<std::string>& flags);
  // The same with l4lb's stderr on `stderr_fd` (Process::Start): Log() then holds
  // stdout only, and the test reads (and checks) what went to stderr itself.
  static absl::StatusOr<std::unique_ptr<L4lb>> Start(const std::vector<std::string>& flags,
                                                     int stderr_fd);

  // The exit code this test expects of l4lb, however it ends (128 + N: killed
  // by signal N). 0 unless told otherwise.
  void ExpectExit(int code) { expected_exit_ = code; }

  // Bound listen ports, in --listen order (hosts are what --listen said).
  const std::vector<uint16_t>& ports() const { return ports_; }
  uint16_t port() const { return ports_.at(0); }
  // The --ready_file Start() gave l4lb: a reload rewrites it (ports() keeps the first list).
  const std::string& ready_file() const { return ready_file_; }
  Process& process() { return *process_; }
  int FdCount() const { return process_->FdCount(); }
  std::string Log() const { return process_->Log(); }
  // Waits until the fd count is back to `baseline` (pipes are trimmed within ~1 s).
  bool FdsBackTo(int baseline, absl::Duration timeout = absl::Seconds(5));
  // The log lines saying a backend connect failed (and was retried elsewhere) or
  // a backend went DOWN, joined: "" in a run where every backend served every
  // client at the first try.
  std::string ConnectFailuresAndDowns() const;
  // How many lines of the log hold both strings (the checker's "backend X ...
  // is DOWN", an access-log line with a client and a close reason, ...).
  int CountLines(const std::string& a, const std::string& b) const;
  bool HasLine(const std::string& a, const std::string& b) const { return CountLines(a, b) > 0; }

 private:
  std::unique_ptr<Process> process_;
  std::vector<uint16_t> ports_;
  std::string ready_file_;
  // nullopt: not checked (a Start() that failed already said why).
  std::optional<int> expected_exit_ = 0;
};

}  // namespace l4lb::testing
