#!/usr/bin/env bash
# tests/package_test: tools/package.sh makes the .deb from the l4lb Bazel built for
# this test (a data dependency: a test may not run bazel), dpkg -i installs it on
# this machine (tests run as root; CI machines are fresh), and the test checks
# what an operator gets: the files where the unit expects them, the binary, the
# man page, the unit itself (systemd-analyze verify), and the unit's command run
# as the unit runs it (no root, CAP_NET_BIND_SERVICE alone), since systemd is not
# PID 1 here. dpkg --purge removes it all again, also when a check fails.
set -euo pipefail

runfiles=$TEST_SRCDIR/l4lb
binary=$runfiles/l4lb/l4lb
unit=/lib/systemd/system/l4lb.service

fail() {
  echo "package_test: FAIL: $*" >&2
  exit 1
}

[[ $(id -u) == 0 ]] || fail "dpkg -i needs root"
# Several checkouts may share this machine, and there is one l4lb package: one
# package_test at a time.
exec 9>/run/lock/l4lb-package-test.lock
flock --wait 300 9 || fail "another package_test held /run/lock/l4lb-package-test.lock for 5 min"
state=$(dpkg-query -W -f='${db:Status-Status}' l4lb 2>/dev/null || true)
if [[ -n "$state" && "$state" != not-installed ]]; then
  fail "an l4lb package is on this machine already ($state); this test installs its own" \
    "and purges it: dpkg --purge l4lb first"
fi

# dpkg waits for no lock: retry while another dpkg or apt on the machine holds it.
dpkg_retry() {
  local deadline=$((SECONDS + 120)) out
  until out=$(dpkg "$@" 2>&1); do
    if grep -q "lock" <<<"$out" && ((SECONDS < deadline)); then
      sleep 1
      continue
    fi
    echo "$out" >&2
    return 1
  done
}

scratch=$(mktemp -d /tmp/l4lb-package-test.XXXXXX)  # the unprivileged run below needs a path it can reach
installed=no
cleanup() {
  [[ $installed == no ]] || dpkg_retry --purge l4lb || true
  rm -rf "$scratch"
}
trap cleanup EXIT

# --- tools/package.sh: the .deb is named after the binary's version ----------
version=$("$binary" --version | sed -n '1s/^l4lb //p')
deb=$("$runfiles/tools/package.sh" --binary="$binary" --out="$TEST_TMPDIR/out" | tail -n 1)
[[ "$deb" == "$TEST_TMPDIR/out/l4lb_${version}_$(dpkg --print-architecture).deb" ]] ||
  fail "package.sh made \"$deb\", want l4lb_${version}_ARCH.deb"
depends=$(dpkg-deb --field "$deb" Depends)
for library in liburing2 libsystemd0 libgoogle-glog0v6; do
  grep -q "$library" <<<"$depends" || fail "Depends lacks $library: $depends"
done

# --- dpkg -i -----------------------------------------------------------------
installed=yes
dpkg_retry -i "$deb"
for path in /usr/bin/l4lb "$unit" /etc/l4lb/l4lb.toml /usr/share/man/man1/l4lb.1.gz \
  /usr/share/doc/l4lb/README.md.gz; do
  [[ -f "$path" ]] || fail "$path is not installed"
  [[ "$(dpkg -S "$path")" == "l4lb: $path" ]] || fail "$path does not belong to l4lb"
done
for example in "$runfiles"/conf/examples/*; do
  cmp "$example" "/usr/share/doc/l4lb/examples/$(basename "$example")" ||
    fail "examples/$(basename "$example") is missing or differs from conf/examples/"
done
cmp "$runfiles/dist/l4lb.toml" /etc/l4lb/l4lb.toml || fail "/etc/l4lb/l4lb.toml differs"
grep -q "^ /etc/l4lb/l4lb.toml " <<<"$(dpkg-query -W -f='${Conffiles}\n' l4lb)" ||
  fail "/etc/l4lb/l4lb.toml is not a conffile: an upgrade would overwrite the operator's edits"

# --- the installed binary and its man page ------------------------------------
[[ "$(/usr/bin/l4lb --version | head -n 1)" == "l4lb $version" ]] ||
  fail "/usr/bin/l4lb --version: $(/usr/bin/l4lb --version 2>&1)"
help=$(/usr/bin/l4lb --help) || fail "/usr/bin/l4lb --help exited $?"
man=$(zcat /usr/share/man/man1/l4lb.1.gz)
grep -q '^\.TH L4LB "1" ".*" "l4lb '"$version"'"' <<<"$man" || fail "man page header: $(head -n 3 <<<"$man")"
# help2man made an option entry of every flag --help lists, and added dist/l4lb.h2m.
flags=$(grep -Eo '^  --[a-z_0-9]+' <<<"$help" | sed 's/^  --//')
(($(wc -l <<<"$flags") > 50)) || fail "--help lists $(wc -l <<<"$flags") flags"
for flag in $flags; do
  grep -q "^\\\\fB\\\\-\\\\-$flag\\\\fR" <<<"$man" || fail "the man page lacks --$flag"
done
for section in SYNOPSIS SIGNALS FILES ENVIRONMENT '"EXIT STATUS"'; do
  grep -q "^\.SH $section\$" <<<"$man" || fail "the man page lacks $section"
done

# --- the unit ------------------------------------------------------------------
value() { sed -n "s/^$1=//p" "$unit"; }
[[ $(value Type) == notify ]] || fail "Type=$(value Type)"
[[ $(value ExecReload) == '/bin/kill -USR2 $MAINPID' ]] || fail "ExecReload=$(value ExecReload)"
[[ $(value NotifyAccess) == all ]] || fail "NotifyAccess=$(value NotifyAccess) (the successor sends MAINPID)"
[[ $(value ExecStart) == *--takeover=/run/l4lb/takeover.sock* ]] || fail "ExecStart=$(value ExecStart)"
[[ $(value RuntimeDirectory) == l4lb ]] || fail "RuntimeDirectory=$(value RuntimeDirectory)"
[[ $(value LimitNOFILE) == 1048576 ]] || fail "LimitNOFILE=$(value LimitNOFILE)"
for key in AmbientCapabilities CapabilityBoundingSet; do
  [[ $(value $key) == CAP_NET_BIND_SERVICE ]] || fail "$key=$(value $key)"
done
for key in NoNewPrivileges ProtectHome PrivateTmp DynamicUser; do
  [[ $(value $key) == yes ]] || fail "$key=$(value $key)"
done
[[ $(value ProtectSystem) == strict ]] || fail "ProtectSystem=$(value ProtectSystem)"
[[ $(value Restart) == on-failure ]] || fail "Restart=$(value Restart)"
# Past it systemd kills l4lb mid-drain: it must exceed the drain's default.
drain=$(sed -n '/^  --drain_timeout=/,/^  --[a-z]/p' <<<"$help" | grep -Eo '^ +Default: [0-9]+s\.$' |
  grep -Eo '[0-9]+')
stop=$(value TimeoutStopSec)
[[ -n "$drain" && "$stop" =~ ^[0-9]+s$ ]] || fail "TimeoutStopSec=$stop, drain default \"$drain\""
((${stop%s} > drain)) || fail "TimeoutStopSec=$stop does not cover --drain_timeout=${drain}s"
read -r exe args <<<"$(value ExecStart)"
[[ -x "$exe" ]] || fail "ExecStart's $exe is not installed"
config=$(grep -Eo -- '--config=[^ ]+' <<<"$args" | sed 's/^--config=//')
[[ -f "$config" ]] || fail "ExecStart's config \"$config\" is not installed"
verify=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $verify"
[[ -z "$verify" ]] || fail "systemd-analyze verify warns: $verify"

# --- the unit's command, run as the unit runs it --------------------------------
# DynamicUser: a uid of its own, no groups (65000 is in systemd's dynamic range
# and in no passwd); the capabilities the unit gives; LimitNOFILE; no new
# privileges. In a network namespace of its own, so the default config's port 80
# is free whatever runs here. systemd is not PID 1 in this sandbox: this stands in
# for systemctl start (tests/systemd_notify_test plays its notify socket).
uid=65000
chown "$uid:$uid" "$scratch"
# RuntimeDirectory=l4lb: systemd makes /run/l4lb, owned by the unit's user, for
# the takeover socket; a directory of the test's stands in for it.
runtime=$scratch/run-l4lb
mkdir -p "$runtime" && chown "$uid:$uid" "$runtime"
args=${args//--takeover=\/run\/l4lb\//--takeover=$runtime\/}
nofile=$(value LimitNOFILE)
if (($(ulimit -Hn) < nofile)); then
  # systemd (PID 1) may raise it; a root without CAP_SYS_RESOURCE, as in some
  # sandboxes, may not.
  echo "package_test: the open-files limit stops at $(ulimit -Hn) here, not LimitNOFILE=$nofile"
  nofile=$(ulimit -Hn)
fi
run_as_unit() {  # CAPS (e.g. +net_bind_service, or "" for none), then the command
  # Always called in a subshell (&, $(...)): the limit and the exec stay in it, and
  # with nothing forked in between, $! is l4lb's pid.
  local caps=-all${1:+,$1}
  shift
  ulimit -n "$nofile"
  exec unshare --net -- setpriv --reuid="$uid" --regid="$uid" --clear-groups \
    --inh-caps="$caps" --ambient-caps="$caps" --bounding-set="$caps" --no-new-privs -- "$@"
}
log=$TEST_TMPDIR/unit.log
# shellcheck disable=SC2086  # $args is the unit's argument list, split as systemd splits it
run_as_unit +net_bind_service "$exe" $args --ready_file="$scratch/ready" >"$log" 2>&1 &
pid=$!
for _ in $(seq 200); do  # up to 10 s
  [[ ! -f "$scratch/ready" ]] && kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
[[ -f "$scratch/ready" ]] || fail "the unit's command did not start:$(echo; cat "$log")"
[[ "$(cat "$scratch/ready")" == "tcp 0.0.0.0:80" ]] || fail "it listens on $(cat "$scratch/ready")"
[[ $(awk '/^Uid:/ {print $2}' "/proc/$pid/status") == "$uid" ]] || fail "it runs as root"
# CapEff: CAP_NET_BIND_SERVICE (bit 10) and nothing else.
[[ $(awk '/^CapEff:/ {print $2}' "/proc/$pid/status") == 0000000000000400 ]] ||
  fail "capabilities: $(grep ^Cap "/proc/$pid/status")"
[[ $(awk '/^Max open files/ {print $4}' "/proc/$pid/limits") == "$nofile" ]] ||
  fail "open files: $(grep 'open files' "/proc/$pid/limits")"
grep -q "l4lb $version ready" "$log" || fail "no \"ready\" line:$(echo; cat "$log")"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
((status == 0)) || fail "SIGTERM: exit $status:$(echo; cat "$log")"
# The capability is what lets it bind port 80: without it, one line and exit 2.
rm -f "$scratch/ready"
status=0
# shellcheck disable=SC2086
out=$(run_as_unit "" "$exe" $args 2>&1) || status=$?
((status == 2)) && grep -q "bind 0.0.0.0:80: Permission denied" <<<"$out" ||
  fail "without CAP_NET_BIND_SERVICE: exit $status, $out"

# --- dpkg --purge ------------------------------------------------------------------
dpkg_retry --purge l4lb
installed=no
for path in /usr/bin/l4lb "$unit" /etc/l4lb /usr/share/man/man1/l4lb.1.gz /usr/share/doc/l4lb; do
  [[ ! -e "$path" ]] || fail "$path is still there after dpkg --purge"
done
echo "package_test: $(basename "$deb") installed, checked and purged"
