#pragma once

// Debian's dnsmasq (dnsmasq-base) as a loopback DNS backend for end-to-end tests
// of UDP services, and dig (bind9-dnsutils) as its client.
//
// StartDnsmasq() runs one dnsmasq in the foreground as a child Process, bound to
// host:port only (UDP and TCP), with no upstream servers, no /etc/hosts, no DHCP
// and no config file: it answers TXT queries for "who.test" with `txt` (no commas:
// dnsmasq would split it into several strings) and refuses everything else (a
// refusal is still an answer, which is all a DNS health check asks). It returns
// once dig gets the TXT answer from host:port, or an error naming dnsmasq and its
// log (every query is logged there, with its source address).

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

#include "tests/harness/servers.h"

namespace l4lb::testing {

// The name StartDnsmasq() answers for.
inline constexpr char kDnsmasqName[] = "who.test";

absl::StatusOr<Server> StartDnsmasq(const std::string& host, uint16_t port, const std::string& txt);

// dnsmasq as the DNS server that backend names resolve with: A records from
// `hosts_file` (hosts(5) lines, "127.0.0.2 web.l4lb.test"), TTL 1 s, nothing
// else (no upstream: other names are refused). The test rewrites the file and
// sends the process SIGHUP to make it read it again. Returns once dig gets an
// address for `probe_name` (a name the file holds).
absl::StatusOr<Server> StartDnsmasqHosts(const std::string& host, uint16_t port,
                                         const std::string& hosts_file,
                                         const std::string& probe_name);

// `dig @server -p port name A +short`: the addresses, one a line, sorted; ""
// if none or no answer.
std::string DigA(const std::string& server, uint16_t port, const std::string& name);

// `dig @server -p port who.test TXT +short`, one try of 2 s, from `source` ("IP"
// or "IP#PORT"; empty: the kernel's choice). The TXT text without its quotes
// ("backend 127.0.0.2"), or "" if no answer came.
std::string DigTxt(const std::string& server, uint16_t port, const std::string& source = "");

}  // namespace l4lb::testing
