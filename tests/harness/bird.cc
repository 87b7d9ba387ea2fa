#include "tests/harness/bird.h"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"

namespace l4lb::testing {

Bird& Bird::operator=(Bird&& other) noexcept {
  if (this != &other) {
    Release();
    process = std::move(other.process);
    control = std::exchange(other.control, "");
  }
  return *this;
}

Bird::~Bird() { Release(); }

void Bird::Release() {
  if (process != nullptr) process->Stop(SIGKILL, absl::Seconds(2));
  process.reset();
  if (!control.empty()) unlink(control.c_str());
  control.clear();
}

absl::StatusOr<Bird> StartBird(const NetNamespace& ns, const std::string& name,
                               const std::string& config) {
  const std::string path = absl::StrCat(TempDir(), "/", name, ".", getpid(), ".conf");
  std::ofstream(path, std::ios::trunc) << config;
  const CommandResult parsed = RunCommand({"/usr/sbin/bird", "-p", "-c", path}, absl::Seconds(5));
  if (parsed.exit_code != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", parsed.err));
  }
  Bird bird;
  // The control socket's path must fit a sockaddr_un; TempDir()'s may not.
  bird.control = absl::StrCat("/tmp/l4lb-bird-", getpid(), "-", name, ".ctl");
  std::vector<std::string> argv = ns.Exec({"/usr/sbin/bird", "-f", "-c", path, "-s", bird.control});
  argv[0] = "/usr/sbin/ip";  // Process::Start does not search PATH
  absl::StatusOr<std::unique_ptr<Process>> process =
      Process::Start(argv, absl::StrCat(TempDir(), "/", name, ".", getpid(), ".log"));
  if (!process.ok()) return process.status();
  bird.process = *std::move(process);
  return bird;
}

}  // namespace l4lb::testing
