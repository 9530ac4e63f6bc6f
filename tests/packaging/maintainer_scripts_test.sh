#!/usr/bin/env bash
# Privileged: runs the .deb's maintainer scripts as dpkg would, on a host where systemd is
# PID 1, and checks what they do. The host is faked in a private mount namespace: a tmpfs
# over /run/systemd with system/ in it (so the scripts take their systemd branch) and one
# over /var/lib (postinst's state dir lands there); deb-systemd-helper, deb-systemd-invoke,
# systemctl, addgroup, getent and interlock are stubs first in PATH that log their
# arguments. Nothing outside the namespace changes.
#
#   postinst configure          -> group created, state dir 0700, enable, start
#   postinst configure <old>    -> `interlock upgrade` (live handover); where it was not
#                                  possible (exit 1) try-restart (never stop, never start an
#                                  inactive unit); where the new binary failed (exit 3) nothing
#                                  (the old daemon keeps serving)
#   prerm upgrade <new>         -> nothing: the old daemon keeps enforcing during the upgrade
#   prerm remove                -> stop, then `interlock teardown`
#   postrm remove / purge       -> mask / purge + unmask through deb-systemd-helper
# Fails (never skips) when not root.
set -euo pipefail
build="$1"
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "this is a privileged test: run it as root (CI does); it must not be skipped"
[ ! -e /etc/interlock ] || fail "/etc/interlock exists; postrm purge would delete it"

work="$(mktemp -d /tmp/interlock-mscripts-XXXXXX)"
trap 'rm -rf "$work"' EXIT
deb="$(bash "$src/packaging/build_packages.sh" "$build" "$work/out" deb)"
mkdir "$work/scripts" "$work/stubs"
for s in postinst prerm postrm; do dpkg-deb -I "$deb" "$s" >"$work/scripts/$s"; done
for c in deb-systemd-helper deb-systemd-invoke systemctl addgroup; do
  printf '#!/bin/sh\necho "%s $*" >>"$STUB_LOG"\nexit 0\n' "$c" >"$work/stubs/$c"
done
# `interlock upgrade`'s answer: INTERLOCK_STUB_RC (0: handed over).
printf '#!/bin/sh\necho "interlock $*" >>"$STUB_LOG"\nexit ${INTERLOCK_STUB_RC:-0}\n' >"$work/stubs/interlock"
# The group does not exist yet: getent finds nothing (exit 2), as on a fresh host.
printf '#!/bin/sh\necho "getent $*" >>"$STUB_LOG"\nexit 2\n' >"$work/stubs/getent"
chmod 0755 "$work/stubs"/*

cat >"$work/inside.sh" <<'INSIDE'
set -euo pipefail
work="$1"
fail() { echo "FAIL: $*" >&2; exit 1; }
mount -t tmpfs tmpfs /run/systemd
mkdir /run/systemd/system
mount -t tmpfs tmpfs /var/lib
export PATH="$work/stubs:/usr/sbin:/usr/bin:/sbin:/bin" STUB_LOG="$work/log"
run() {  # run SCRIPT ARGS...: the script's stub calls, one per line
  : >"$STUB_LOG"
  sh "$work/scripts/$1" "${@:2}" || fail "$* exited $?"
  grep -v '^getent ' "$STUB_LOG" || true
}
expect() { grep -qxF -- "$2" <<<"$1" || { echo "$1"; fail "expected: $2"; }; }
refuse() { ! grep -q -- "$2" <<<"$1" || { echo "$1"; fail "unexpected: $2"; }; }

out="$(run postinst configure)"
expect "$out" "addgroup --system --quiet interlock"
expect "$out" "deb-systemd-helper enable interlockd.service"
expect "$out" "deb-systemd-invoke start interlockd.service"
refuse "$out" "stop"
[ "$(stat -c %a /var/lib/interlock)" = 700 ] || fail "postinst: /var/lib/interlock not 0700"

out="$(run postinst configure 0.0.9-1)"
expect "$out" "interlock upgrade"
refuse "$out" "deb-systemd-invoke try-restart"
refuse "$out" "deb-systemd-invoke start"
refuse "$out" "stop"
# The unit is reloaded first: the new one's NotifyAccess=all lets the new daemon say MAINPID=.
grep -e 'daemon-reload' -e 'interlock upgrade' <<<"$out" | head -n1 | grep -q daemon-reload ||
  { echo "$out"; fail "postinst: interlock upgrade before systemctl daemon-reload"; }

out="$(INTERLOCK_STUB_RC=1 run postinst configure 0.0.9-1)"
expect "$out" "interlock upgrade"
expect "$out" "deb-systemd-invoke try-restart interlockd.service"
refuse "$out" "deb-systemd-invoke start"
refuse "$out" "stop"

out="$(INTERLOCK_STUB_RC=3 run postinst configure 0.0.9-1 2>/dev/null)"
expect "$out" "interlock upgrade"
refuse "$out" "deb-systemd-invoke"

out="$(run prerm upgrade 0.2.0-1)"
[ -z "$out" ] || { echo "$out"; fail "prerm upgrade touched the service"; }

out="$(run prerm remove)"
expect "$out" "deb-systemd-invoke stop interlockd.service"
expect "$out" "interlock teardown"
[ "$(sed -n 1p <<<"$out")" = "deb-systemd-invoke stop interlockd.service" ] ||
  fail "prerm remove: teardown before the service stopped"

out="$(run postrm remove)"
expect "$out" "deb-systemd-helper mask interlockd.service"
out="$(run postrm purge)"
expect "$out" "deb-systemd-helper purge interlockd.service"
expect "$out" "deb-systemd-helper unmask interlockd.service"
echo "maintainer scripts ok"
INSIDE
unshare --mount --propagation private bash "$work/inside.sh" "$work"
