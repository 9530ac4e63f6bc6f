#!/usr/bin/env bash
# Builds the .deb with CPack and checks it: the files a user gets (binaries, unit, man
# pages, bash completion), the package's own interlockd accepting the example configuration
# it ships, and the systemd unit passing `systemd-analyze verify` (with its Exec paths
# pointed at the extracted package, since the package is not installed on the test machine).
set -euo pipefail
build="$1"
work="$(mktemp -d /tmp/interlock-pkg-XXXXXX)"
trap 'rm -rf "$work"' EXIT
(cd "$build" && cpack -G DEB -B "$work/out" >/dev/null)
deb="$(ls "$work"/out/interlock_*_amd64.deb)"
dpkg-deb -x "$deb" "$work/root"
for f in usr/sbin/interlockd usr/bin/interlock lib/systemd/system/interlockd.service \
         usr/share/doc/interlock/interlock.yaml.example usr/share/man/man1/interlock.1 \
         usr/share/man/man8/interlockd.8 usr/share/man/man5/interlock.yaml.5 \
         usr/share/bash-completion/completions/interlock; do
  [ -e "$work/root/$f" ] || [ -e "$work/root/usr/$f" ] || { echo "missing $f in $deb"; exit 1; }
done
dpkg-deb -f "$deb" Depends | grep -q libbpf1 || { echo "Depends lacks libbpf1"; exit 1; }
for s in postinst prerm postrm; do
  dpkg-deb -I "$deb" "$s" >/dev/null || { echo "missing maintainer script $s"; exit 1; }
done
"$work/root/usr/sbin/interlockd" --check-config --config "$work/root/usr/share/doc/interlock/interlock.yaml.example"
unit="$(find "$work/root" -name interlockd.service | head -n1)"
sed "s#/usr/sbin/interlockd#$work/root/usr/sbin/interlockd#g" "$unit" > "$work/interlockd.service"
out="$(systemd-analyze verify "$work/interlockd.service" 2>&1 || true)"
if [ -n "$out" ]; then
  echo "systemd-analyze verify reported:"; echo "$out"; exit 1
fi
echo "package ok: $(basename "$deb")"
