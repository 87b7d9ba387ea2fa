#include "tests/harness/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "tests/harness/process.h"

namespace l4lb::testing {
namespace {

absl::Status Run(const std::vector<std::string>& argv) {
  const CommandResult r = RunCommand(argv, absl::Seconds(10));
  if (r.exit_code == 0) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat(argv[0], " ", argv[1], " ", argv[2], ": exit ", r.exit_code, ": ", r.err));
}

}  // namespace

absl::StatusOr<std::unique_ptr<NetNamespace>> NetNamespace::Enter(const std::string& prefix) {
  const std::string name = absl::StrCat(prefix, "-", getpid());
  const int original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (original < 0) return absl::ErrnoToStatus(errno, "/proc/thread-self/ns/net");
  // From here the destructor cleans up whatever was made.
  std::unique_ptr<NetNamespace> ns(new NetNamespace(name, original));
  if (absl::Status s = Run({"ip", "netns", "add", name}); !s.ok()) {
    ns->name_.clear();  // not ours to delete: it may be someone else's
    return s;
  }
  const std::string path = absl::StrCat("/var/run/netns/", name);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, path);
  const int entered = setns(fd, CLONE_NEWNET);
  const int err = errno;
  close(fd);
  if (entered != 0) return absl::ErrnoToStatus(err, absl::StrCat("setns ", path));
  if (absl::Status s = Run({"ip", "link", "set", "lo", "up"}); !s.ok()) return s;
  return ns;
}

NetNamespace::~NetNamespace() {
  if (setns(original_, CLONE_NEWNET) != 0) {
    ADD_FAILURE() << "cannot leave network namespace " << name_ << ": " << strerror(errno);
  }
  close(original_);
  if (name_.empty()) return;
  // Processes still inside keep it alive until they exit; the name goes now.
  if (absl::Status s = Run({"ip", "netns", "del", name_}); !s.ok()) ADD_FAILURE() << s;
}

absl::Status NetNamespace::Sysctl(const std::string& key, const std::string& value) {
  return Run({"sysctl", "-w", absl::StrCat(key, "=", value)});
}

}  // namespace l4lb::testing
