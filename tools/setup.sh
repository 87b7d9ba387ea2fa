#!/usr/bin/env bash
# Installs every Debian package l4lb needs to build, test and demo, and nothing
# that is already there. Idempotent; needs root (apt-get).
set -euo pipefail

PACKAGES=(
  # build
  bazel-bootstrap g++ liburing-dev libabsl-dev libgflags-dev libgoogle-glog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # config files (conf/): toml++, header-only
  libtomlplusplus-dev
  # backends by DNS name (l4lb/dns/): c-ares reports each record's TTL
  libc-ares-dev
  # tests and demo: real servers and real clients
  nginx-light curl procps
  # ss: what congestion control l4lb's sockets run (tests/relay_test)
  iproute2
  # FTP and SFTP backends (tests/harness/servers.h) and their clients
  vsftpd openssh-server openssh-client lftp
  # DNS over UDP: dnsmasq-base is the binary without a system service on port 53;
  # bind9-dnsutils has dig
  dnsmasq-base bind9-dnsutils
  # fuzz/ (tools/fuzz.sh): clang++-14; libclang-rt-14-dev has libFuzzer and the
  # ASan/UBSan runtimes that -fsanitize=fuzzer,address,undefined links
  clang-14 libclang-rt-14-dev
  # PROXY protocol peers (tests/proxy_e2e_test): HAProxy sends it and parses it
  # strictly; a Debian install starts its service, which the script stops below
  haproxy
  # operations (issue 14): the admin endpoint's HTTP server and JSON, sd_notify for
  # the systemd unit; promtool and a real Prometheus server scrape /metrics in the
  # tests, headless Chromium renders the status page (their services are stopped below)
  libcpp-httplib-dev nlohmann-json3-dev libsystemd-dev prometheus chromium
  # the Debian package (tools/package.sh, tests/package_test): help2man makes the
  # man page from --help, dpkg-dev has dpkg-shlibdeps, systemd has systemd-analyze
  # to verify the unit (it does not start systemd)
  help2man dpkg-dev systemd
  # hot reload under load (tests/reload_e2e_test): wrk opens new connections throughout
  wrk
  # several instances behind ECMP (tests/ecmp_e2e_test, conf/examples/bird-*.conf):
  # BIRD 2 announces the VIP and, on the router, installs the multipath route; its
  # Debian service is stopped below (the tests run their own, in namespaces)
  bird2
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "setup: missing ${missing[*]}; run as root (sudo $0)" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts nginx on :80 when it is installed; the tests run their own.
for service in nginx haproxy prometheus prometheus-node-exporter bird; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
    systemctl stop "$service" || true
    systemctl disable "$service" >/dev/null 2>&1 || true
  fi
done
echo "setup: done"
