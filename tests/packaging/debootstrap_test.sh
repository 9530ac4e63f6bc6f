#!/usr/bin/env bash
# By hand, not in CI (it downloads a Debian 12 base system and the package's dependencies
# from deb.debian.org): installs the .deb into a clean Debian 12 root made by debootstrap
# and checks it there, as a fresh host would see it.
#
#   tests/packaging/debootstrap_test.sh BUILD_DIR [MIRROR]   (root)
#
# In the chroot: `apt-get install ./interlock_*.deb` (dependencies from the mirror), the
# files, the registered conffile, the interlock group, /var/lib/interlock 0700,
# `interlock --version`, the installed configuration valid; then the same package again
# (upgrade path), `apt-get purge` and nothing left under /etc/interlock. The chroot is
# removed at the end, also on failure. Prints how long each step took.
set -euo pipefail
build="$1"
mirror="${2:-http://deb.debian.org/debian}"
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "run as root (debootstrap, chroot)"
command -v debootstrap >/dev/null || fail "debootstrap missing (tools/setup.sh installs it)"

work="$(mktemp -d /tmp/interlock-debootstrap-XXXXXX)"
root="$work/root"
cleanup() {
  local rc=$?
  for m in proc dev/pts dev sys; do
    mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"
  done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
t0=$SECONDS
step() { echo "[$((SECONDS - t0))s] $*"; }

deb="$(bash "$src/packaging/build_packages.sh" "$build" "$work/out" deb)"
step "built $(basename "$deb")"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 30 "$work/debootstrap.log"; fail "debootstrap failed"; }
step "debootstrap bookworm (minbase) done"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
cp "$deb" "$root/tmp/"
# No service may start inside the chroot (there is no systemd in it anyway).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
pkg="/tmp/$(basename "$deb")"
in_root apt-get -qq update >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; fail "apt-get update"; }
in_root apt-get -y -qq install --no-install-recommends "$pkg" >>"$work/apt.log" 2>&1 ||
  { tail -n 30 "$work/apt.log"; fail "apt-get install ./$(basename "$deb")"; }
step "installed with its dependencies"

version="$(dpkg-deb -f "$deb" Version)"
[ "$(in_root dpkg-query -W -f='${Status} ${Version}' interlock)" = "install ok installed $version" ] ||
  fail "not installed in the chroot"
in_root dpkg-query -W -f='${Conffiles}\n' interlock | grep -q '^ /etc/interlock/interlock.yaml ' ||
  fail "conffile not registered"
in_root getent group interlock >/dev/null || fail "no interlock group"
[ "$(stat -c '%a' "$root/var/lib/interlock")" = 700 ] || fail "/var/lib/interlock not 0700"
[ "$(in_root interlock --version)" = "interlock ${version%-*}" ] || fail "interlock --version"
in_root interlockd --check-config | grep -q 'is valid' || fail "installed configuration invalid"
in_root dpkg -i "$pkg" >>"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log"; fail "dpkg -i again"; }
step "reinstalled (upgrade path)"
in_root apt-get -y -qq purge interlock >>"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log"; fail "purge"; }
[ ! -e "$root/etc/interlock" ] || fail "/etc/interlock left after purge"
[ ! -e "$root/usr/sbin/interlockd" ] || fail "interlockd left after purge"
step "purged; debootstrap install ok"
