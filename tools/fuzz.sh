#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with clang++-14 under ASan + UBSan and runs
# each for SECONDS (default 5) over a scratch copy of its seed corpus
# (fuzz/corpus/NAME/). Exits non-zero on any crash, leak, timeout, sanitizer
# report or build error, printing the fuzzer's report and the input that caused it.
#
#   tools/fuzz.sh          # 5 s each, as a quick check
#   tools/fuzz.sh 600      # 10 minutes each, by hand before a release
#   tools/fuzz.sh 60 proxy_protocol   # one target
#   FUZZ_KEEP=1 tools/fuzz.sh 1 cidr  # keep the binaries, to rerun a crash input
#
# The Bazel toolchain stays gcc: the targets and the few pure sources they need are
# compiled here directly (clang's -fsanitize=fuzzer needs clang), linked against
# Debian's Abseil with the linkopts of //tools/deps:absl. //fuzz:fuzz_test runs
# this script from Bazel. Packages: clang-14, libclang-rt-14-dev (tools/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-5}
shift || true
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: SECONDS must be a positive integer" >&2; exit 2; }
CXX=${CXX:-clang++-14}
command -v "$CXX" >/dev/null || { echo "fuzz: $CXX not found (tools/setup.sh)" >&2; exit 1; }

# The sources each target compiles: the target itself, then what it links.
declare -A SOURCES=(
  [proxy_protocol]="l4lb/admission/proxy_protocol.cc l4lb/net/address.cc"
  [cidr]="l4lb/admission/cidr.cc"
  [takeover_wire]="l4lb/takeover/wire.cc"
  [client_hello]="l4lb/tls/client_hello.cc l4lb/tls/sni_routes.cc"
  [config]="conf/config.cc conf/reader.cc conf/admission_keys.cc health/probe.cc
            l4lb/backend/backend_set.cc l4lb/backend/snapshot.cc l4lb/balancer/maglev.cc
            l4lb/balancer/flow_hash.cc l4lb/net/address.cc l4lb/admission/cidr.cc
            l4lb/admission/acl.cc l4lb/admission/limits.cc l4lb/admission/admission.cc
            l4lb/admin/auth.cc l4lb/net/keepalive.cc l4lb/balancer/policy.cc
            l4lb/net/source.cc l4lb/net/socket.cc conf/sni_keys.cc conf/source_keys.cc
            l4lb/tls/sni_routes.cc l4lb/tls/client_hello.cc conf/backend_keys.cc
            l4lb/dns/servers.cc l4lb/backend/host_key.cc"
  [flags]="health/probe.cc l4lb/backend/backend_set.cc l4lb/backend/snapshot.cc l4lb/backend/host_key.cc
           l4lb/balancer/maglev.cc l4lb/balancer/flow_hash.cc l4lb/net/address.cc"
)
targets=("$@")
((${#targets[@]} > 0)) || targets=(proxy_protocol cidr client_hello config flags takeover_wire)

# One list of Abseil libraries: the one in tools/deps/BUILD.
mapfile -t absl_libs < <(sed -n '/name = "absl"/,/^)/p' tools/deps/BUILD | grep -o '"-l[^"]*"' | tr -d '"')
((${#absl_libs[@]} > 0)) || { echo "fuzz: no -l flags found for absl in tools/deps/BUILD" >&2; exit 1; }

# toml++'s mode (no exceptions, header-only, no asserts): the defines of //tools/deps:toml.
mapfile -t toml_defines < <(sed -n '/name = "toml"/,/^)/p' tools/deps/BUILD | grep -o '"TOML_[^"]*"' |
  tr -d '"' | sed 's/^/-D/')
((${#toml_defines[@]} > 0)) || { echo "fuzz: no TOML_ defines found in tools/deps/BUILD" >&2; exit 1; }

# Scratch space. Inputs that crash are kept: under Bazel in the test's undeclared
# outputs (bazel-testlogs/fuzz/fuzz_test/test.outputs/), by hand in fuzz/artifacts/.
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/fuzz.XXXXXX")
# FUZZ_KEEP=1 keeps it (the binaries, to rerun a crash input: $work/NAME_fuzzer FILE).
if [[ -n "${FUZZ_KEEP:-}" ]]; then
  echo "fuzz: keeping $work"
  trap 'rmdir "$artifacts" 2>/dev/null || true' EXIT
else
  trap 'rm -rf "$work"; rmdir "$artifacts" 2>/dev/null || true' EXIT
fi
artifacts=${TEST_UNDECLARED_OUTPUTS_DIR:-$PWD/fuzz/artifacts}
mkdir -p "$artifacts"

# -gline-tables-only: file:line in reports at half the compile time of -g (toml++ is
# header-only, about 20 s of the build).
cxxflags=(-std=c++20 -O1 -gline-tables-only -fno-omit-frame-pointer -I.
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all "${toml_defines[@]}")

# Compile every file once (a source shared by targets is one object), two at a time
# (CI machines are small), then link each target.
declare -A objects=()
for name in "${targets[@]}"; do
  [[ -n "${SOURCES[$name]+x}" ]] || { echo "fuzz: unknown target $name" >&2; exit 2; }
  for src in "fuzz/${name}_fuzzer.cc" ${SOURCES[$name]}; do objects[$src]="$work/obj/${src//\//_}.o"; done
done
mkdir -p "$work/obj"
build_start=$SECONDS
declare -A pids=()
for src in "${!objects[@]}"; do
  while (($(jobs -rp | wc -l) >= 2)); do wait -n || true; done
  "$CXX" "${cxxflags[@]}" -c "$src" -o "${objects[$src]}" >"${objects[$src]}.log" 2>&1 &
  pids[$src]=$!
done
failed=0
for src in "${!objects[@]}"; do
  if ! wait "${pids[$src]}"; then
    echo "fuzz: $src: compile failed" >&2
    cat "${objects[$src]}.log" >&2
    failed=1
  fi
done
((failed == 0)) || exit 1
for name in "${targets[@]}"; do
  link=("${objects[fuzz/${name}_fuzzer.cc]}")
  for src in ${SOURCES[$name]}; do link+=("${objects[$src]}"); done
  "$CXX" "${cxxflags[@]}" "${link[@]}" "${absl_libs[@]}" -o "$work/${name}_fuzzer" ||
    { echo "fuzz: $name: link failed" >&2; exit 1; }
done
echo "fuzz: built ${#targets[@]} targets from ${#objects[@]} files in $((SECONDS - build_start)) s"

for name in "${targets[@]}"; do
  corpus="$work/corpus_$name"
  mkdir -p "$corpus"
  cp fuzz/corpus/"$name"/* "$corpus"/
  start=$SECONDS
  # -timeout: one input taking 5 s is a hang. -rss_limit_mb: a blow-up is a failure.
  # Leak detection is on by default with ASan.
  if "$work/${name}_fuzzer" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
      -artifact_prefix="$artifacts/${name}-" -print_final_stats=1 "$corpus" \
      >"$work/$name.log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$name.log" | grep -o '[0-9]*$' || true)
    echo "fuzz: $name: ok, ${runs:-?} inputs in $((SECONDS - start)) s, corpus $(ls "$corpus" | wc -l) files"
  else
    echo "fuzz: $name: FAILED after $((SECONDS - start)) s" >&2
    grep -v '^#[0-9]' "$work/$name.log" | tail -n 60 >&2
    ls "$artifacts"/"$name"-* 2>/dev/null | sed 's/^/fuzz: input: /' >&2 || true
    failed=1
  fi
done
exit "$failed"
