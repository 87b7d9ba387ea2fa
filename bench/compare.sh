#!/usr/bin/env bash
# One command for the side-by-side benchmark: installs what is missing (haproxy,
# nginx stream, iperf3, wrk), builds l4lb -c opt, and prints one table of direct,
# l4lb, HAProxy and nginx figures with ratios to HAProxy.
#   bench/compare.sh                 # 1 balancer thread, balancer on CPU 0
#   bench/compare.sh --threads=2 --balancer_cpus=0,1 --client_cpus=0,1
#   bench/compare.sh --copy_threshold   # l4lb alone: picks --copy_bytes from numbers
#   bench/compare.sh --l4lb_baseline=/tmp/l4lb-old   # before/after: another l4lb build beside it
#   bench/compare.sh --admin_scrape --only=l4lb,l4lb-admin --phases=iperf1,close  # metrics cost
#   bench/compare.sh --phases=flows100,flows1000,keepalive1000   # many flows at once
#   bench/compare.sh --short_options --phases=close   # + l4lb-fast, haproxy-fast (defer accept, TFO)
# compare.py's docstring lists every phase; the UDP ones need --udp_load=bazel-bin/bench/udp_load.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for p in haproxy nginx-light libnginx-mod-stream iperf3 wrk python3 util-linux; do
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == "install ok installed" ]] || need+=("$p")
done
if ((${#need[@]})); then
  echo "compare: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
tools/setup.sh >&2
bazel build -c opt //l4lb:l4lb >&2
bin=$(bazel info -c opt bazel-bin 2>/dev/null)/l4lb/l4lb
if [[ "${1:-}" == "--copy_threshold" ]]; then
  shift
  exec python3 bench/copy_threshold.py --l4lb="$bin" "$@"
fi
exec python3 bench/compare.py --l4lb="$bin" "$@"
