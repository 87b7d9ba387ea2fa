#!/usr/bin/env bash
# tools/package.sh [--binary=PATH] [--out=DIR]: the Debian package
# DIR/l4lb_VERSION_ARCH.deb (default DIR: the repository root), VERSION being what
# the binary's --version says (l4lb/version.h). Prints the .deb's path last.
#
# Without --binary it builds l4lb first: -c opt, stamped with the commit
# (tools/workspace_status.sh), leaving the bazel-* symlinks alone. --binary takes
# one already built: tests/package_test passes its Bazel data dependency, since a
# test may not run bazel.
#
# The package holds:
#   /usr/bin/l4lb                        the binary, DWARF stripped (symbols kept for
#                                        glog's crash traces)
#   /lib/systemd/system/l4lb.service     dist/systemd/l4lb.service, installed disabled
#   /etc/l4lb/l4lb.toml                  dist/l4lb.toml, a conffile
#   /usr/share/man/man1/l4lb.1.gz        help2man over --help and --version, plus
#                                        dist/l4lb.h2m
#   /usr/share/doc/l4lb/                 README.md.gz, examples/ (conf/examples/)
# Depends: what dpkg-shlibdeps finds the binary links. Maintainer: $DEBFULLNAME
# <$DEBEMAIL> as for Debian's own tools, else a local placeholder.
set -euo pipefail

binary=""
out=""
for arg in "$@"; do
  case "$arg" in
    --binary=*) binary=${arg#--binary=} ;;
    --out=*) out=${arg#--out=} ;;
    *)
      echo "package.sh: unexpected argument \"$arg\" (--binary=PATH, --out=DIR)" >&2
      exit 2
      ;;
  esac
done
# Not `cd -P`: in a test's runfiles every file is a symlink into the source tree,
# and the runfiles tree is the one that holds exactly the declared inputs.
root=$(cd "$(dirname "$0")/.." && pwd)
[[ -n "$out" ]] || out=$root
mkdir -p "$out"
out=$(cd "$out" && pwd)

for tool in dpkg-deb dpkg-shlibdeps help2man gzip strip; do
  if ! command -v "$tool" >/dev/null; then
    echo "package.sh: $tool is missing; tools/setup.sh installs it" >&2
    exit 1
  fi
done

if [[ -z "$binary" ]]; then
  build_flags=(-c opt --stamp "--workspace_status_command=$root/tools/workspace_status.sh")
  (cd "$root" && bazel build "${build_flags[@]}" --symlink_prefix=/ //l4lb:l4lb)
  binary="$(cd "$root" && bazel info "${build_flags[@]}" bazel-bin)/l4lb/l4lb"
fi
[[ -x "$binary" ]] || { echo "package.sh: $binary: not an executable" >&2; exit 1; }

version=$("$binary" --version | sed -n '1s/^l4lb //p')
if ! grep -Eqx '[0-9]+\.[0-9]+\.[0-9]+(\+git[0-9]{8}T[0-9]{6}\.[0-9a-f]{7}(\.modified)?)?' \
  <<<"$version"; then
  echo "package.sh: $binary --version: \"$version\" is not a version l4lb gives" >&2
  exit 1
fi
arch=$(dpkg --print-architecture)
deb="$out/l4lb_${version}_${arch}.deb"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Debian's layout, debian/PACKAGE, which dpkg-shlibdeps expects binaries in.
stage=$work/debian/l4lb
install -d "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/etc/l4lb" \
  "$stage/usr/share/man/man1" "$stage/usr/share/doc/l4lb/examples"
install -m 0755 "$binary" "$stage/usr/bin/l4lb"
strip --strip-debug "$stage/usr/bin/l4lb"
install -m 0644 "$root/dist/systemd/l4lb.service" "$stage/lib/systemd/system/l4lb.service"
install -m 0644 "$root/dist/l4lb.toml" "$stage/etc/l4lb/l4lb.toml"
install -m 0644 "$root"/conf/examples/* "$stage/usr/share/doc/l4lb/examples/"
gzip -9n <"$root/README.md" >"$stage/usr/share/doc/l4lb/README.md.gz"
# help2man runs the binary for --help and --version (both exit 0) and reads the
# sections --help lacks (EXAMPLES, SIGNALS, FILES, ...) from dist/l4lb.h2m.
help2man --no-info --section=1 --name="TCP/UDP layer-4 load balancer" \
  --include="$root/dist/l4lb.h2m" "$stage/usr/bin/l4lb" |
  gzip -9n >"$stage/usr/share/man/man1/l4lb.1.gz"
chmod 0644 "$stage"/usr/share/doc/l4lb/README.md.gz "$stage"/usr/share/man/man1/l4lb.1.gz

# dpkg-shlibdeps reads the source package's debian/control: a minimal one will do.
# --warnings=1: only symbols found in no library; the absl libraries l4lb links
# but does not use (tools/deps:absl lists them all) cost nothing, one package.
printf 'Source: l4lb\n\nPackage: l4lb\nArchitecture: any\n' >"$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps --warnings=1 -O -edebian/l4lb/usr/bin/l4lb |
  sed -n 's/^shlibs:Depends=//p')
[[ -n "$depends" ]] || { echo "package.sh: dpkg-shlibdeps found no libraries" >&2; exit 1; }

install -m 0755 "$root"/dist/debian/postinst "$root"/dist/debian/prerm \
  "$root"/dist/debian/postrm "$stage/DEBIAN/"
echo /etc/l4lb/l4lb.toml >"$stage/DEBIAN/conffiles"
cat >"$stage/DEBIAN/control" <<EOF
Package: l4lb
Version: $version
Architecture: $arch
Maintainer: ${DEBFULLNAME:-l4lb maintainers} <${DEBEMAIL:-root@localhost}>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: $depends
Section: net
Priority: optional
Description: TCP/UDP layer-4 load balancer on io_uring
 l4lb accepts clients on one address and relays each connection's bytes
 untouched to a backend picked by consistent hashing (Maglev) of the client
 address, spliced zero-copy by io_uring workers: FTP and SFTP farms, HTTPS
 passthrough, any TCP service, and UDP services (DNS, syslog) with a session
 per client. Health checks, access lists, per-client limits and bans, PROXY
 protocol.
 .
 l4lb.service (Type=notify, CAP_NET_BIND_SERVICE only) runs
 /usr/bin/l4lb --config=/etc/l4lb/l4lb.toml; it is installed disabled, the
 config being a template to edit first.
EOF
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
