#!/usr/bin/env bash
# Builds the binary packages from a CMake build directory:
#
#   packaging/build_packages.sh BUILD_DIR OUT_DIR [deb|rpm|all]
#     -> OUT_DIR/interlock_<version>-<rev>_amd64.deb, OUT_DIR/interlock-<version>-<rel>.x86_64.rpm
#
# Both packages come from one staged tree: `cmake --install --strip` into a DESTDIR, plus
# the conffile /etc/interlock/interlock.yaml (the embedded default configuration with
# packaging/etc/packaged.yaml appended: admin group, control socket under /run/interlock).
#
# The .deb is assembled by hand and built with `dpkg-deb --root-owner-group -b` rather than
# by CPack: every file lintian checks is ours to get right (conffiles, changelog.Debian.gz,
# copyright, md5sums, gzipped man pages, 0755/0644 modes, root:root ownership, Depends from
# dpkg-shlibdeps) and the maintainer scripts are exactly the debhelper snippets, where
# CPack's DEB generator needs workarounds for most of these and hides the rest. The .rpm
# is `rpmbuild -bb packaging/rpm/interlock.spec` over the same staged tree (the spec's
# %install copies it), so the two packages cannot drift apart.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$(cd "$1" && pwd)"
mkdir -p "$2"
out="$(cd "$2" && pwd)"
which="${3:-all}"

work="$(mktemp -d /tmp/interlock-packages-XXXXXX)"
trap 'rm -rf "$work"' EXIT
stage="$work/stage"

# --- the staged tree (shared) -------------------------------------------------------------
DESTDIR="$stage" cmake --install "$build" --prefix /usr --strip >/dev/null
# As dh_strip does: the compiler's .comment and .note sections serve no one at run time.
for bin in "$stage/usr/sbin/interlockd" "$stage/usr/bin/interlock"; do
  objcopy --remove-section=.comment --remove-section=.note "$bin"
done
version="$("$stage/usr/sbin/interlockd" --version | awk '{print $2}')"
deb_version="$(dpkg-parsechangelog -l "$here/deb/changelog" -S Version)"
if [ "${deb_version%-*}" != "$version" ]; then
  echo "build_packages: packaging/deb/changelog is at $deb_version, interlockd at $version:" \
       "add a changelog entry" >&2
  exit 1
fi
install -d -m 0755 "$stage/etc/interlock"
{
  sed '1,3c\
# interlockd configuration (schemas/interlock/v1/config.proto and interlock.yaml(5)\
# document every field). A dpkg/rpm conffile: your changes are kept on upgrade. Reload\
# the policy and enrollments with `systemctl reload interlockd`; other settings need a\
# restart.' \
    "$here/../userspace/config/default_config.yaml"
  cat "$here/etc/packaged.yaml"
} >"$stage/etc/interlock/interlock.yaml"
chmod 0644 "$stage/etc/interlock/interlock.yaml"
"$stage/usr/sbin/interlockd" --check-config --syntax-only --config "$stage/etc/interlock/interlock.yaml" >/dev/null
# The ssh_config include that lets an agent's ssh under `interlock run` trust interlockd's
# host key (packaging/etc/ssh/interlock.conf); a conffile too.
install -d -m 0755 "$stage/etc/ssh/ssh_config.d"
install -m 0644 "$here/etc/ssh/interlock.conf" "$stage/etc/ssh/ssh_config.d/interlock.conf"
# Man pages are compressed in both distributions' packages (Debian policy 12.1).
find "$stage/usr/share/man" -type f -name '*.[0-9]' -exec gzip -9n {} +

# --- .deb ---------------------------------------------------------------------------------
build_deb() {
  local root="$work/deb" arch
  arch="$(dpkg --print-architecture)"
  cp -a "$stage" "$root"
  # Debian 12 units live in /lib/systemd/system (what dh_installsystemd uses in bookworm).
  install -d -m 0755 "$root/lib/systemd/system"
  mv "$root/usr/lib/systemd/system/interlockd.service" \
     "$root/usr/lib/systemd/system/interlock-agents.slice" "$root/lib/systemd/system/"
  rmdir -p --ignore-fail-on-non-empty "$root/usr/lib/systemd/system"
  local doc="$root/usr/share/doc/interlock"
  install -m 0644 "$here/deb/copyright" "$doc/copyright"
  gzip -9nc "$here/deb/changelog" >"$doc/changelog.Debian.gz"
  install -d -m 0755 "$root/DEBIAN"
  for s in preinst postinst prerm postrm; do install -m 0755 "$here/deb/$s" "$root/DEBIAN/$s"; done
  printf '%s\n' /etc/interlock/interlock.yaml /etc/ssh/ssh_config.d/interlock.conf >"$root/DEBIAN/conffiles"
  chmod 0644 "$root/DEBIAN/conffiles"
  # Depends from the ELF files' NEEDED entries, as dh_shlibdeps does (it wants a
  # debian/control to exist; its contents do not matter here).
  local shlibs
  mkdir -p "$work/shlibs/debian"
  : >"$work/shlibs/debian/control"
  shlibs="$(cd "$work/shlibs" && dpkg-shlibdeps -O -e"$root/usr/sbin/interlockd" \
              -e"$root/usr/bin/interlock" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')"
  [ -n "$shlibs" ] || { echo "build_packages: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
  local size
  size="$(du -k -s --exclude=DEBIAN "$root" | cut -f1)"
  sed -e "s/@VERSION@/$deb_version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$size/" \
      -e "s/@SHLIBS@/$shlibs/" "$here/deb/control.in" >"$root/DEBIAN/control"
  chmod 0644 "$root/DEBIAN/control"
  (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
     xargs -0 md5sum) >"$root/DEBIAN/md5sums"
  chmod 0644 "$root/DEBIAN/md5sums"
  # Directories 0755, files 0644 but the programs' 0755, whatever the umask was.
  find "$root" -type d -exec chmod 0755 {} +
  find "$root" -path "$root/DEBIAN" -prune -o -type f -exec chmod 0644 {} +
  chmod 0755 "$root/usr/sbin/interlockd" "$root/usr/bin/interlock"
  dpkg-deb --root-owner-group -Zxz -b "$root" "$out/interlock_${deb_version}_${arch}.deb" >/dev/null
  echo "$out/interlock_${deb_version}_${arch}.deb"
}

# --- .rpm ---------------------------------------------------------------------------------
build_rpm() {
  local top="$work/rpmbuild"
  mkdir -p "$top"/{BUILD,BUILDROOT,RPMS,SOURCES,SPECS,SRPMS}
  # The changelog entry's release ("-1") is the rpm's Release too.
  rpmbuild -bb --quiet \
    --define "_topdir $top" \
    --define "interlock_stage $stage" \
    --define "interlock_version $version" \
    --define "interlock_release ${deb_version##*-}" \
    --define "interlock_copyright $here/deb/copyright" \
    "$here/rpm/interlock.spec" >"$work/rpmbuild.log" 2>&1 || { cat "$work/rpmbuild.log" >&2; exit 1; }
  local rpm
  rpm="$(find "$top/RPMS" -name '*.rpm' | head -n1)"
  cp "$rpm" "$out/"
  echo "$out/$(basename "$rpm")"
}

case "$which" in
  deb) build_deb ;;
  rpm) build_rpm ;;
  all) build_deb; build_rpm ;;
  *) echo "build_packages: deb, rpm or all, not $which" >&2; exit 2 ;;
esac
