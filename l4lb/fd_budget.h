#pragma once

// The open-files limit is l4lb's connection and session budget (binary-only,
// like main.cc): raised to the hard limit and logged, then split into each UDP
// service's session bound. Read once at start-up, never on a worker.

#include "l4lb/server.h"

namespace l4lb {

// Raises the soft open-files limit to the hard one and logs what it allows.
void RaiseOpenFilesLimit();

// Each udp:// service's session bound (udp/session_bound.h): what fds and local
// ports allow; the flag or config key only lowers it.
void BoundUdpSessions(Server::Options& options);

}  // namespace l4lb
