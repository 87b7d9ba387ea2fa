#pragma once

// l4lb in front of one EchoServer, and one-connection probes through it: the
// parts the access-control and hostile-input tests share.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/harness/process.h"
#include "tests/harness/sockets.h"

namespace l4lb::testing {

// l4lb on 127.0.0.1:0, two workers, no probes, `echo` its only backend, then `flags`.
std::unique_ptr<L4lb> StartL4lbBefore(const EchoServer& echo, std::vector<std::string> flags);

// One connection from `source` to 127.0.0.1:port that sends "ping" and
// half-closes: true if "ping" came back (through the backend) before EOF.
bool Ping(uint16_t port, const std::string& source = "127.0.0.1");

// A connection from `source` held open once the echo answered a byte, or -1.
int Hold(uint16_t port, const std::string& source);

}  // namespace l4lb::testing
