#include "l4lb/upgrade.h"

#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace l4lb {
namespace {

std::string& Executable() {
  static std::string* path = new std::string();
  return *path;
}

std::vector<std::string>& Arguments() {
  static std::vector<std::string>* args = new std::vector<std::string>();
  return *args;
}

}  // namespace

void RememberCommandLine(int argc, char** argv) {
  char path[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  Executable() = n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string(argv[0]);
  Arguments().assign(argv, argv + argc);
}

absl::StatusOr<pid_t> SpawnSuccessor() {
  if (Arguments().empty()) return absl::FailedPreconditionError("no command line remembered");
  std::vector<char*> args;
  for (std::string& a : Arguments()) args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  const int err = posix_spawn(&pid, Executable().c_str(), nullptr, &attr, args.data(), environ);
  posix_spawnattr_destroy(&attr);
  if (err != 0) return absl::ErrnoToStatus(err, absl::StrCat("starting ", Executable()));
  return pid;
}

}  // namespace l4lb
