#include "tests/harness/netns.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"

namespace l4lb::testing {
namespace {

constexpr char kNetnsDir[] = "/var/run/netns";

absl::Status Run(const std::vector<std::string>& argv) {
  const CommandResult r = RunCommand(argv, absl::Seconds(10));
  if (r.exit_code == 0) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat(absl::StrJoin(argv, " "), ": exit ", r.exit_code, ": ", r.err));
}

// PREFIX-PID namespaces whose process is gone (killed at a timeout, before its
// destructors ran): deleted, so leftovers do not pile up across runs.
void DeleteStale(const std::string& prefix) {
  DIR* dir = opendir(kNetnsDir);
  if (dir == nullptr) return;
  std::vector<std::string> stale;
  while (const dirent* entry = readdir(dir)) {
    absl::string_view name = entry->d_name;
    int pid = 0;
    if (absl::ConsumePrefix(&name, prefix + "-") && absl::SimpleAtoi(name, &pid) && pid > 0 &&
        kill(pid, 0) != 0 && errno == ESRCH) {
      stale.push_back(entry->d_name);
    }
  }
  closedir(dir);
  for (const std::string& name : stale) (void)Run({"ip", "netns", "del", name});
}

int OpenNamespace(const std::string& path) { return open(path.c_str(), O_RDONLY | O_CLOEXEC); }

}  // namespace

absl::StatusOr<std::unique_ptr<NetNamespace>> NetNamespace::Enter(const std::string& prefix) {
  return Make(prefix, /*enter=*/true);
}

absl::StatusOr<std::unique_ptr<NetNamespace>> NetNamespace::Create(const std::string& prefix) {
  return Make(prefix, /*enter=*/false);
}

absl::StatusOr<std::unique_ptr<NetNamespace>> NetNamespace::Make(const std::string& prefix,
                                                                 bool enter) {
  DeleteStale(prefix);
  const std::string name = absl::StrCat(prefix, "-", getpid());
  const int original = enter ? OpenNamespace("/proc/thread-self/ns/net") : -1;
  if (enter && original < 0) return absl::ErrnoToStatus(errno, "/proc/thread-self/ns/net");
  // From here the destructor cleans up whatever was made.
  std::unique_ptr<NetNamespace> ns(new NetNamespace(name, original));
  if (absl::Status s = Run({"ip", "netns", "add", name}); !s.ok()) {
    ns->name_.clear();  // not ours to delete: it may be someone else's
    return s;
  }
  if (absl::Status s = ns->Ip({"link", "set", "lo", "up"}); !s.ok()) return s;
  if (!enter) return ns;
  const std::string path = absl::StrCat(kNetnsDir, "/", name);
  const int fd = OpenNamespace(path);
  if (fd < 0) return absl::ErrnoToStatus(errno, path);
  const int entered = setns(fd, CLONE_NEWNET);
  const int err = errno;
  close(fd);
  if (entered != 0) return absl::ErrnoToStatus(err, absl::StrCat("setns ", path));
  return ns;
}

NetNamespace::~NetNamespace() {
  if (original_ >= 0) {
    if (setns(original_, CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "cannot leave network namespace " << name_ << ": " << strerror(errno);
    }
    close(original_);
  }
  if (name_.empty()) return;
  // Processes still inside keep it alive until they exit; the name goes now.
  if (absl::Status s = Run({"ip", "netns", "del", name_}); !s.ok()) ADD_FAILURE() << s;
}

absl::Status NetNamespace::Sysctl(const std::string& key, const std::string& value) {
  return Run(Exec({"sysctl", "-w", absl::StrCat(key, "=", value)}));
}

absl::Status NetNamespace::Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ip", "-n", name_};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv);
}

std::vector<std::string> NetNamespace::Exec(const std::vector<std::string>& argv) const {
  std::vector<std::string> out = {"ip", "netns", "exec", name_};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

NetNamespace::Visit::Visit(const NetNamespace& ns) {
  original_ = OpenNamespace("/proc/thread-self/ns/net");
  const int fd = OpenNamespace(absl::StrCat(kNetnsDir, "/", ns.name()));
  if (original_ < 0 || fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
    ADD_FAILURE() << "cannot visit network namespace " << ns.name() << ": " << strerror(errno);
  }
  if (fd >= 0) close(fd);
}

NetNamespace::Visit::~Visit() {
  if (original_ < 0) return;
  if (setns(original_, CLONE_NEWNET) != 0) {
    ADD_FAILURE() << "cannot return from a visited network namespace: " << strerror(errno);
  }
  close(original_);
}

}  // namespace l4lb::testing
