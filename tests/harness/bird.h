#pragma once

// BIRD 2 (Debian's bird2) as a routing daemon in a test's network namespace:
// tests/ecmp_e2e_test runs one on a router and one on each l4lb instance.

#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"

#include "tests/harness/netns.h"
#include "tests/harness/process.h"

namespace l4lb::testing {

// A running BIRD. Stopped by PID (SIGKILL) with `process`; its control socket
// is removed when this goes.
struct Bird {
  std::unique_ptr<Process> process;
  std::string control;  // birdc -s CONTROL show route
  Bird() = default;
  // A moved-from Bird owns nothing: its destructor leaves the socket alone.
  Bird(Bird&& other) noexcept
      : process(std::move(other.process)), control(std::exchange(other.control, "")) {}
  Bird& operator=(Bird&& other) noexcept;
  ~Bird();

 private:
  void Release();  // stop BIRD, remove its socket
};

// `config` written to a file named after `name`, checked (bird -p: an error
// carries BIRD's own, "FILE:LINE:COL syntax error ..."), then run in the
// foreground inside `ns`, logging to its stderr (the Process log).
absl::StatusOr<Bird> StartBird(const NetNamespace& ns, const std::string& name,
                               const std::string& config);

}  // namespace l4lb::testing
