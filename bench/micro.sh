#!/usr/bin/env bash
# One command for every micro-benchmark of the hot functions: Maglev build and
# lookup, the per-connection setup and bookkeeping path, per-CQE lookup, and the
# per-message relay (copy vs splice). Extra arguments go to Google Benchmark,
# e.g. bench/micro.sh --benchmark_filter=BM_Pump --benchmark_repetitions=3
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh >&2
bazel build -c opt //bench:maglev_benchmark //bench:relay_benchmark >&2
bin=$(bazel info -c opt bazel-bin 2>/dev/null)/bench
"$bin/maglev_benchmark" "$@"
"$bin/relay_benchmark" "$@"
