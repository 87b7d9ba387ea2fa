#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, then every Bazel test
# target. Ends with one line "N passed, M failed" counting test targets.
set -uo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh || exit 1

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# --keep_going: one broken target must not hide the others' results.
bazel test --keep_going //... "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The health checker publishes snapshots that workers swap in while connections
# flow: run those tests again under ThreadSanitizer (their targets count twice).
# The access log hands lines from workers to its own thread through lock-free queues.
# The DNS refresher's thread publishes beside reloads (refresher_test).
# The admin endpoint asks each worker for its live connections (connection_list_test;
# tests/admin_e2e_test passes under TSan too, by hand: bazel test --config=tsan
# //tests:admin_e2e_test, left out here for CI's time).
bazel test --config=tsan --keep_going //health:checker_test //l4lb/balancer:affinity_test \
  //tests:health_e2e_test //l4lb/log:access_log_test //tests:access_log_e2e_test \
  //l4lb/stats:connection_list_test //l4lb/dns:refresher_test "$@" 2>&1 |
  tee -a "$log"
((PIPESTATUS[0] == 0)) || status=1
# Memory and undefined-behaviour errors where input from clients, backends and
# operators is handled: ASan + UBSan over the data plane's and the parsers' unit
# tests (the TLS ClientHello parser and the takeover wire format among them) and the
# relay, UDP, cut, access and SNI end-to-end tests (those fail on any
# sanitizer report of the l4lb child). Not the admin endpoint's renderers, the
# counters or the Maglev/ring tests (no outside input): CI must stay under 25
# minutes on a fresh machine, and each sanitized target is a compile of its own
# (a cold run of all 125 targets took 28 min).
bazel test --config=asan --keep_going //l4lb/admission/... //l4lb/relay/... //l4lb/udp/... \
  //l4lb/net/... //l4lb/backend/... //l4lb/log/... //l4lb/dns/... //l4lb/tls/... \
  //l4lb/takeover/... //health:probe_test //conf/... \
  //tests:relay_test //tests:udp_e2e_test //tests:udp_icmp_e2e_test //tests:cut_e2e_test \
  //tests:access_e2e_test //tests:sni_e2e_test "$@" 2>&1 | tee -a "$log"
((PIPESTATUS[0] == 0)) || status=1

# Bazel's per-target summary lines: "//pkg:target   PASSED in 1.2s", "FAILED in",
# "TIMEOUT in", "NO STATUS", "FAILED TO BUILD", "(cached) PASSED".
passed=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log")
failed=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|FLAKY|INCOMPLETE)' "$log")
if ((status != 0 && failed == 0)); then
  # The build broke before any test ran: that is a failure, not a pass.
  failed=1
fi
echo "$passed passed, $failed failed"
((status == 0 && failed == 0))
