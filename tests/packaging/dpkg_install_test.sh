#!/usr/bin/env bash
# Privileged: installs the .deb on this machine with the real dpkg, and takes it off again.
#   install  -> files, the conffile registered, the interlock group, /var/lib/interlock 0700,
#               the unit enabled through deb-systemd-helper, `interlock --version`, the
#               installed interlockd accepting the installed configuration;
#   run      -> the installed interlockd on the installed configuration (by hand: no
#               systemd here); `interlock status` as a member of the interlock group works
#               without root and without --config, as anyone else is refused;
#   enforce  -> an unprivileged process in interlock-agents.slice/demo-agent.service (the
#               cgroup systemd would make) connects to the packaged demo-echo resource
#               through interlockd (audited session), one outside the slice directly;
#   again    -> the upgrade path (prerm upgrade, postinst configure <version>) runs and an
#               administrator's edit of the conffile is kept; live: postinst hands the
#               running interlockd over to the new binary (`interlock upgrade`) while the
#               slice process holds a session (it survives) and connects (all relayed);
#   remove   -> programs gone, the conffile kept (dpkg status config-files), the pins
#               the daemon left gone (prerm runs `interlock teardown`);
#   purge    -> nothing of the package left: no /etc/interlock, no unit state;
#   from old -> the CPack-built 0.1.0 (no conffile; postinst copied the example) upgrades
#               to this one without a conffile prompt, and the copy becomes the conffile.
# Kept after purge by design (packaging/deb/postrm says why): the `interlock` group and
# /var/lib/interlock. This test removes both itself afterwards when it created them, so the
# machine is left as it was.
#
# systemd is not PID 1 here, so the maintainer scripts' service start/stop branches do not
# run (they must cope, and do); their systemd branch is checked in package_test.sh.
# Fails (never skips) when not root. Refuses to run (fails) where an interlock package or
# interlock's default pins, cgroup or /etc/interlock already exist: it must not take them
# down with the package.
set -euo pipefail
build="$1"
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "this is a privileged test: run it as root (CI does); it must not be skipped"

dpkg-query -W -f='${Status}' interlock 2>/dev/null | grep -q 'installed' &&
  fail "an interlock package is installed already; remove it first"
dpkg-query -W -f='${Status}' interlock 2>/dev/null | grep -q 'config-files' &&
  fail "an interlock package's configuration is left; purge it first"
[ ! -e /etc/interlock ] || fail "/etc/interlock exists; this test would delete it"
[ ! -e /sys/fs/bpf/interlock ] || fail "/sys/fs/bpf/interlock exists (a running interlockd?)"
cgroup2="$(findmnt -n -t cgroup2 -o TARGET | head -n1)"
[ -n "$cgroup2" ] || fail "no cgroup2 mount"
[ ! -e "$cgroup2/interlock" ] || fail "$cgroup2/interlock exists (a running interlockd?)"
[ ! -e "$cgroup2/interlock-agents.slice" ] || fail "$cgroup2/interlock-agents.slice exists; this test would delete it"
[ ! -e /run/interlock/control.sock ] || fail "/run/interlock/control.sock exists (a running interlockd?)"
had_run=0; [ -e /run/interlock ] && had_run=1  # also `interlock run`'s (trust/)
had_state=0; [ -e /var/lib/interlock ] && had_state=1
had_group=0; getent group interlock >/dev/null && had_group=1

work="$(mktemp -d /tmp/interlock-dpkg-XXXXXX)"
daemon=
echo_pid=
hold_pid=
loop_pid=
new_daemon=
agent_cg=
agent_slice=
cleanup() {
  local rc=$?
  if [ -n "$daemon" ]; then kill -TERM "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null || true; fi
  for p in $hold_pid $loop_pid $echo_pid; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
  if [ -n "$new_daemon" ]; then
    kill -TERM "$new_daemon" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$new_daemon" 2>/dev/null || break; sleep 0.1; done
  fi
  # The slice's cgroups (the connects ran to completion: they are empty).
  if [ -n "$agent_cg" ]; then rmdir "$agent_cg" "$agent_slice" 2>/dev/null || true; fi
  if dpkg-query -W -f='${Status}' interlock 2>/dev/null | grep -qv 'not-installed'; then
    dpkg --purge interlock >/dev/null 2>&1 || echo "cleanup: dpkg --purge interlock failed" >&2
  fi
  [ "$had_state" = 1 ] || rm -rf /var/lib/interlock
  # The by-hand daemon's (systemd removes its RuntimeDirectory); only when this test made it.
  [ "$had_run" = 1 ] || rm -rf /run/interlock
  [ "$had_group" = 1 ] || ! getent group interlock >/dev/null || delgroup --system --quiet interlock ||
    echo "cleanup: delgroup interlock failed" >&2
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

deb="$(bash "$src/packaging/build_packages.sh" "$build" "$work/out" deb)"
version="$(dpkg-deb -f "$deb" Version)"

# --- install ------------------------------------------------------------------------------
dpkg -i "$deb" >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "dpkg -i failed"; }
[ "$(dpkg-query -W -f='${Status} ${Version}' interlock)" = "install ok installed $version" ] ||
  fail "dpkg does not list interlock $version as installed"
for f in /usr/sbin/interlockd /usr/bin/interlock /lib/systemd/system/interlockd.service \
         /lib/systemd/system/interlock-agents.slice /usr/share/man/man8/interlockd.8.gz /usr/share/doc/interlock/copyright; do
  [ -e "$f" ] || fail "missing $f after install"
done
dpkg-query -W -f='${Conffiles}\n' interlock | grep -q '^ /etc/interlock/interlock.yaml [0-9a-f]\{32\}$' ||
  fail "/etc/interlock/interlock.yaml is not a registered conffile"
[ "$(stat -c '%a %U:%G' /etc/interlock/interlock.yaml)" = "644 root:root" ] ||
  fail "/etc/interlock/interlock.yaml is not 0644 root:root"
getent group interlock >/dev/null || fail "postinst did not create the interlock group"
[ "$(getent group interlock | cut -d: -f3)" -lt 1000 ] || fail "the interlock group is not a system group"
[ "$(stat -c '%a %U' /var/lib/interlock)" = "700 root" ] || fail "/var/lib/interlock is not 0700 root"
[ -L /etc/systemd/system/multi-user.target.wants/interlockd.service ] ||
  fail "deb-systemd-helper did not enable interlockd.service"
[ "$(interlock --version)" = "interlock ${version%-*}" ] || fail "interlock --version: $(interlock --version)"
[ "$(interlockd --version)" = "interlockd ${version%-*}" ] || fail "interlockd --version: $(interlockd --version)"
interlockd --check-config | grep -q '/etc/interlock/interlock.yaml is valid' ||
  fail "interlockd does not accept the installed configuration by default"
# The installed unit, with its installed binary and man pages (Documentation=man:...).
out="$(systemd-analyze verify /lib/systemd/system/interlockd.service \
        /lib/systemd/system/interlock-agents.slice 2>&1 || true)"
[ -z "$out" ] || { echo "$out"; fail "systemd-analyze verify on the installed unit"; }

# --- an approver in the group uses the CLI without root ------------------------------------
# The installed interlockd with the installed configuration, started by hand (no systemd
# here): the control socket appears in /run/interlock, 0660 root:interlock. `interlock
# status` with no --config finds it through /etc/interlock/interlock.yaml; as `nobody` in
# the interlock group it is answered, as `nobody` alone it is refused.
interlockd >"$work/interlockd.log" 2>&1 &
daemon=$!
for _ in $(seq 150); do [ -S /run/interlock/control.sock ] && break; sleep 0.1; done
[ -S /run/interlock/control.sock ] || { cat "$work/interlockd.log"; fail "no control socket in /run/interlock"; }
[ "$(stat -c '%a %U:%G' /run/interlock/control.sock)" = "660 root:interlock" ] ||
  fail "control socket is $(stat -c '%a %U:%G' /run/interlock/control.sock), not 660 root:interlock"
gid="$(getent group interlock | cut -d: -f3)"
as_nobody() { (cd / && setpriv --reuid=nobody --regid=nogroup "$@" --inh-caps=-all interlock status); }
as_nobody --groups="$gid" >"$work/status-admin" 2>&1 || { cat "$work/status-admin"; fail "group member refused"; }
if as_nobody --clear-groups >"$work/status-other" 2>&1; then fail "a user outside the group was answered"; fi
# The socket's mode keeps them out before the peer check would.
grep -q 'connect /run/interlock/control.sock: Permission denied' "$work/status-other" ||
  { cat "$work/status-other"; fail "unexpected refusal"; }

# --- enforcement on a process in interlock-agents.slice ------------------------------------
# The packaged configuration enrolls the slice and protects demo-echo (127.0.0.42:7000, TCP).
# The test makes the cgroup systemd would make for a unit in the slice and runs an
# unprivileged process in it: its connect reaches the echo server through interlockd (the
# server greets it from interlockd's upstream socket, not its own: peer_echo.py) and a
# session is audited under the unit's name. The same connect from outside the slice is not
# governed: it reaches the server directly, and no session is audited for it.
/usr/bin/python3 "$src/tests/packaging/peer_echo.py" server 127.0.0.42 7000 "$work/peers" \
  >"$work/echo.log" 2>&1 &
echo_pid=$!
for _ in $(seq 50); do
  /usr/bin/python3 -c 'import socket; socket.create_connection(("127.0.0.42", 7000), 1)' 2>/dev/null && break
  sleep 0.1
done
agent_slice="$cgroup2/interlock-agents.slice"
agent_cg="$agent_slice/demo-agent.service"
mkdir -p "$agent_cg"
# $1: a cgroup directory or "" (stay in the test's own). Runs one connect as nobody.
connect_as_nobody() {
  (cd / && sh -c 'if [ -n "$1" ]; then echo $$ >"$1/cgroup.procs"; fi; shift
                  exec setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all "$@"' \
     sh "$1" /usr/bin/python3 - once 127.0.0.42 7000 <"$src/tests/packaging/peer_echo.py")
}
how="$(connect_as_nobody "$agent_cg" 2>"$work/agent.err")" || { cat "$work/agent.err"; fail "the slice process's connect failed"; }
[ "$how" = proxied ] || fail "a process in $agent_cg reached 127.0.0.42:7000 $how, not through interlockd"
audit_log=/var/lib/interlock/audit/audit.jsonl
for _ in $(seq 50); do grep -q '"AUDIT_KIND_SESSION_START"' "$audit_log" 2>/dev/null && break; sleep 0.1; done
grep '"AUDIT_KIND_SESSION_START"' "$audit_log" | grep '"demo-echo"' | grep -q '"demo-agent' ||
  { grep SESSION "$audit_log"; fail "no audited session of workload demo-agent to demo-echo"; }
sessions_before="$(grep -c '"AUDIT_KIND_SESSION_START"' "$audit_log")"
how="$(connect_as_nobody "" 2>"$work/outside.err")" || { cat "$work/outside.err"; fail "the outside process's connect failed"; }
[ "$how" = direct ] || fail "a process outside the slice was relayed ($how)"
sleep 0.3
[ "$(grep -c '"AUDIT_KIND_SESSION_START"' "$audit_log")" = "$sessions_before" ] ||
  fail "a session was audited for the process outside the slice"
# (The echo server and the cgroups stay for the live upgrade below.)

kill -TERM "$daemon"
wait "$daemon" || { cat "$work/interlockd.log"; fail "interlockd did not stop cleanly"; }
daemon=
[ -e /sys/fs/bpf/interlock ] || fail "no pins after interlockd stopped (fail closed keeps them)"

# --- the same package again: the upgrade path, live ------------------------------------------
# interlockd runs (it re-adopts the pins) and the slice process holds a session, a line every
# 100 ms, while another connects over and over; then `dpkg -i` of the package (its files
# replace the running ones). postinst hands the running interlockd over to the new binary
# (`interlock upgrade`): the held session carries on, every connect made meanwhile is relayed
# (none direct, none refused), a new pid answers, the old one exits after its session, and
# the audit chain both wrote verifies.
echo '# edited by the administrator' >>/etc/interlock/interlock.yaml
interlockd >"$work/interlockd2.log" 2>&1 &
daemon=$!
for _ in $(seq 150); do interlock status >/dev/null 2>&1 && break; sleep 0.1; done
status_pid() { interlock status 2>/dev/null | sed -n 's/^interlockd .* pid \([0-9]*\) .*/\1/p'; }
[ "$(status_pid)" = "$daemon" ] || { cat "$work/interlockd2.log"; fail "interlockd did not start again"; }
chmod 0755 "$work"  # the slice processes (nobody) look for their stop files here
agent_run() {  # MODE ARGS...: peer_echo.py as nobody in the slice's unit cgroup
  local mode="$1"; shift
  (cd / && sh -c 'echo $$ >"$1/cgroup.procs"; shift
                  exec setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all "$@"' \
     sh "$agent_cg" /usr/bin/python3 - "$mode" 127.0.0.42 7000 "$@" <"$src/tests/packaging/peer_echo.py")
}
agent_run hold "$work/stop-hold" >"$work/hold.out" 2>&1 &
hold_pid=$!
agent_run loop "$work/stop-loop" >"$work/loop.out" 2>"$work/loop.err" &
loop_pid=$!
for _ in $(seq 50); do [ -s "$work/hold.out" ] && break; sleep 0.1; done
[ "$(head -n1 "$work/hold.out")" = proxied ] || { cat "$work/hold.out"; fail "the held session is not relayed"; }
sleep 1
dpkg -i "$deb" >"$work/upgrade.log" 2>&1 || { cat "$work/upgrade.log"; fail "dpkg -i (again) failed"; }
new_daemon="$(status_pid)"
[ -n "$new_daemon" ] && [ "$new_daemon" != "$daemon" ] ||
  { cat "$work/upgrade.log" "$work/interlockd2.log"; fail "postinst did not hand interlockd over (pid ${new_daemon:-none} answers)"; }
sleep 1
kill -0 "$hold_pid" 2>/dev/null || { cat "$work/hold.out"; fail "the held session ended at the upgrade"; }
kill -0 "$daemon" 2>/dev/null || fail "the old interlockd exited while its session was live"
touch "$work/stop-loop"
wait "$loop_pid" || { cat "$work/loop.err"; fail "the connect loop failed"; }
loop_pid=
read -r _ proxied _ direct _ failed <"$work/loop.out" || true
[ "${proxied:-0}" -gt 10 ] && [ "$direct" = 0 ] && [ "$failed" = 0 ] ||
  { cat "$work/loop.out"; fail "connects during the upgrade: not all relayed"; }
touch "$work/stop-hold"
wait "$hold_pid" || { cat "$work/hold.out"; fail "the held session was lost"; }
hold_pid=
wait "$daemon" || { cat "$work/interlockd2.log"; fail "the old interlockd did not exit cleanly after its session"; }
daemon=
interlock status >/dev/null
grep -q '"outcome":"upgrade_completed"' "$audit_log" || fail "the upgrade is not audited"
interlock verify --audit >"$work/verify.out" 2>&1 || { cat "$work/verify.out"; fail "interlock verify --audit after the upgrade"; }
kill -TERM "$new_daemon"
for _ in $(seq 150); do kill -0 "$new_daemon" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$new_daemon" 2>/dev/null || fail "the new interlockd did not stop"
new_daemon=
[ -e /sys/fs/bpf/interlock ] || fail "no pins after the new interlockd stopped (fail closed keeps them)"
kill "$echo_pid"; wait "$echo_pid" 2>/dev/null || true; echo_pid=
rmdir "$agent_cg" "$agent_slice"
echo "live upgrade ok: $(tail -n1 "$work/hold.out"); $(head -n1 "$work/loop.out")"
[ "$(dpkg-query -W -f='${Status}' interlock)" = "install ok installed" ] || fail "not installed after the upgrade"
tail -n1 /etc/interlock/interlock.yaml | grep -qx '# edited by the administrator' ||
  fail "the upgrade replaced the administrator's conffile"
getent group interlock >/dev/null || fail "the group went away on upgrade"

# --- remove, then purge -------------------------------------------------------------------
dpkg -r interlock >"$work/remove.log" 2>&1 || { cat "$work/remove.log"; fail "dpkg -r failed"; }
[ "$(dpkg-query -W -f='${Status}' interlock)" = "deinstall ok config-files" ] || fail "not config-files after dpkg -r"
[ ! -e /usr/sbin/interlockd ] && [ ! -e /usr/bin/interlock ] || fail "programs left after dpkg -r"
[ ! -e /lib/systemd/system/interlockd.service ] || fail "unit left after dpkg -r"
[ -f /etc/interlock/interlock.yaml ] || fail "dpkg -r removed the conffile (only purge may)"
dpkg --purge interlock >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg --purge failed"; }
dpkg-query -W -f='${Status}' interlock 2>/dev/null | grep -q 'not-installed' ||
  ! dpkg-query -W interlock >/dev/null 2>&1 || fail "dpkg still knows interlock after purge"
[ ! -e /etc/interlock ] || fail "/etc/interlock left after purge"
[ ! -e /etc/systemd/system/multi-user.target.wants/interlockd.service ] || fail "enable symlink left after purge"
[ ! -e /var/lib/systemd/deb-systemd-helper-enabled/interlockd.service.dsh-also ] ||
  fail "deb-systemd-helper state left after purge"
[ ! -e /sys/fs/bpf/interlock ] || fail "pins left after purge (prerm's interlock teardown)"
[ ! -e "$cgroup2/interlock" ] || fail "cgroup $cgroup2/interlock left after purge"
getent group interlock >/dev/null || fail "the group was removed on purge (Debian keeps system groups)"

# --- upgrade from the CPack-built package of before -----------------------------------------
# Version 0.1.0, no conffile: its postinst copied the example out of /usr/share/doc. The new
# preinst removes that unmodified copy, so dpkg installs the conffile without a prompt (stdin
# is /dev/null: a prompt would fail the install).
old="$work/old"
dpkg-deb -R "$deb" "$old"
rm -rf "$old/etc" "$old/DEBIAN/conffiles" "$old/DEBIAN/preinst"
sed -i '/etc\/interlock\/interlock.yaml/d' "$old/DEBIAN/md5sums"
sed -i 's/^Version: .*/Version: 0.1.0/' "$old/DEBIAN/control"
cat >"$old/DEBIAN/postinst" <<'OLD'
#!/bin/sh
set -e
if [ "$1" = "configure" ]; then
  mkdir -p /etc/interlock /var/lib/interlock
  chmod 0700 /var/lib/interlock
  if [ ! -e /etc/interlock/interlock.yaml ]; then
    cp /usr/share/doc/interlock/interlock.yaml.example /etc/interlock/interlock.yaml
  fi
fi
exit 0
OLD
dpkg-deb --root-owner-group -b "$old" "$work/old.deb" >/dev/null
dpkg -i "$work/old.deb" </dev/null >"$work/old.log" 2>&1 || { cat "$work/old.log"; fail "dpkg -i (old package)"; }
[ -f /etc/interlock/interlock.yaml ] || fail "the old package made no /etc/interlock/interlock.yaml"
dpkg -i "$deb" </dev/null >"$work/from-old.log" 2>&1 || { cat "$work/from-old.log"; fail "upgrade from the old package"; }
dpkg-query -W -f='${Conffiles}\n' interlock | grep -q '^ /etc/interlock/interlock.yaml [0-9a-f]\{32\}$' ||
  fail "no conffile after the upgrade from the old package"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./etc/interlock/interlock.yaml >"$work/packaged.yaml"
cmp -s /etc/interlock/interlock.yaml "$work/packaged.yaml" || fail "the old copy was not replaced by the conffile"
dpkg --purge interlock >"$work/purge2.log" 2>&1 || { cat "$work/purge2.log"; fail "dpkg --purge (2)"; }
[ ! -e /etc/interlock ] || fail "/etc/interlock left after the second purge"
echo "dpkg install ok: $(basename "$deb") installed, upgraded, removed and purged; upgraded from 0.1.0 (CPack)"
