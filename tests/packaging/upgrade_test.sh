#!/usr/bin/env bash
# Privileged: a live upgrade (`interlock upgrade`, userspace/daemon/handover.h) keeps
# sessions and never lets a connect go direct or be refused.
#
# interlockd from the build, on a configuration of the test's own (its own pins, cgroups,
# state dir and control socket; a TCP resource in front of peer_echo.py's echo server on
# 127.0.0.77). Two unprivileged clients run in the enrolled cgroup: one holds a session,
# a line every 100 ms, checking each echo (peer_echo.py hold); the other connects over and
# over (peer_echo.py loop), and each connect reports whether the server saw interlockd's
# upstream socket (proxied) or the client's own (direct).
#
#   failed   -> the configuration is made invalid (the new process exits at once), then
#               one whose metrics address is taken (it fails after re-adopting the pins):
#               `interlock upgrade` exits 3, the old interlockd keeps serving (same pid
#               answers), upgrade_failed is audited;
#   upgrade  -> `interlock upgrade` exits 0 and names the new pid, which answers `interlock
#               status` from then on; the held session goes on through and after it;
#   systemd  -> (a fake NOTIFY_SOCKET that reads the sender's pid) the old (main) pid says
#               MAINPID=<new>, the new pid MAINPID=<itself> READY=1 and pings the watchdog;
#               the old one never says STOPPING=1;
#   SIGUSR2  -> upgrades the new process in turn (the loop goes on); it stays while the first
#               one drains (it relays that one's audit events), then exits and is reaped;
#   connects -> every connect made across the two upgrades was proxied: none direct, none
#               refused; each has its audited session — also those of a third client in a
#               network namespace of the test's (listener.network_namespaces), whose engine
#               listener there is handed over like the main one;
#   drain    -> the old pid exits once the held session ends;
#   audit    -> `interlock verify --audit` accepts the chain both processes wrote; started,
#               completed and failed upgrades are in it.
# Fails (never skips) when not root. Leaves no process, pin or cgroup behind.
set -euo pipefail
build="$1"
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "this is a privileged test: run it as root (CI does); it must not be skipped"
interlockd="$build/userspace/daemon/interlockd"
interlock="$build/tools/interlock/interlock"
peer_echo="$src/tests/packaging/peer_echo.py"

suffix="upgrade-$$"
work="$(mktemp -d /tmp/interlock-upgrade-XXXXXX)"
chmod 0755 "$work"  # nobody reads the stop files
cgroup2="$(findmnt -n -t cgroup2 -o TARGET | head -n1)"
[ -n "$cgroup2" ] || fail "no cgroup2 mount"
pids=()
netns="interlock-upg-$$"
daemon=
cleanup() {
  local rc=$? p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  # Both interlockds (the new one is not this shell's child), by pid.
  for p in $(cat "$work/daemon-pids" 2>/dev/null); do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=0
    for p in $(cat "$work/daemon-pids" 2>/dev/null); do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in $(cat "$work/daemon-pids" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
  [ -n "$daemon" ] && wait "$daemon" 2>/dev/null || true
  "$interlock" --config "$work/cfg.yaml" teardown >/dev/null 2>&1 || true
  ip netns del "$netns" 2>/dev/null || true
  [ ! -e "/sys/fs/bpf/interlock-$suffix" ] || echo "cleanup: pins left in /sys/fs/bpf/interlock-$suffix" >&2
  [ ! -e "$cgroup2/interlock-$suffix" ] || echo "cleanup: cgroup $cgroup2/interlock-$suffix left" >&2
  if [ "$rc" != 0 ]; then
    echo "--- interlockd log"; cat "$work/interlockd.log" 2>/dev/null || true
    # What the agents and the CLI saw, for a failure that does not come back on a re-run.
    for f in "$work"/*.out "$work"/*.err "$work/notify.log"; do
      [ -s "$f" ] && { echo "--- $(basename "$f") (last 40 lines)"; tail -n 40 "$f"; }
    done
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# A port below the ephemeral range that nothing listens on.
port="$(/usr/bin/python3 -c '
import random, socket
for _ in range(100):
    p = random.randint(20000, 30000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass
    finally: s.close()
')"
ip netns add "$netns" || fail "ip netns add $netns"
ip -n "$netns" link set lo up
cat >"$work/cfg.yaml" <<YAML
listener: {address_v4: 127.0.0.1, address_v6: "-", port: $port, network_namespaces: [/run/netns/$netns], netns_discovery: NETNS_DISCOVERY_OFF}
state_dir: $work/state
pin_path: /sys/fs/bpf/interlock-$suffix
cgroup_root: interlock-$suffix
control_socket: $work/control.sock
resources:
  - {name: echo, address: 127.0.0.77, port: 7777, protocol: PROTOCOL_TCP}
enrollments:
  - {name: agent, cgroup_path: interlock-$suffix/agents/svc}
timeouts: {connect_ms: 5000, idle_ms: 3600000, drain_ms: 60000}
YAML
cp "$work/cfg.yaml" "$work/cfg.good"
cli() { "$interlock" --config "$work/cfg.yaml" "$@"; }
status_pid() { cli status 2>/dev/null | sed -n 's/^interlockd .* pid \([0-9]*\) .*/\1/p'; }
audit_log="$work/state/audit/audit.jsonl"

/usr/bin/python3 "$peer_echo" server 127.0.0.77 7777 "$work/peers" >"$work/echo.log" 2>&1 &
pids+=($!)
# systemd's side of sd_notify: one line per datagram, "PID KEY=VALUE KEY=VALUE...".
/usr/bin/python3 - "$work/notify.sock" "$work/notify.log" >"$work/notify.err" 2>&1 <<'PY' &
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = 0
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", data[:12])[0]
        out.write("%d %s\n" % (pid, msg.decode().strip().replace("\n", " ")))
PY
pids+=($!)
for _ in $(seq 50); do [ -S "$work/notify.sock" ] && break; sleep 0.1; done
# As systemd starts it: WATCHDOG_PID names the service's own pid (the sh exec's into it).
NOTIFY_SOCKET="$work/notify.sock" WATCHDOG_USEC=1000000 \
  sh -c 'export WATCHDOG_PID=$$; exec "$0" "$@"' "$interlockd" --config "$work/cfg.yaml" \
  >"$work/interlockd.log" 2>&1 &
daemon=$!
echo "$daemon" >>"$work/daemon-pids"
for _ in $(seq 150); do [ -n "$(status_pid)" ] && break; kill -0 "$daemon" || break; sleep 0.1; done
[ "$(status_pid)" = "$daemon" ] || fail "interlockd did not start"
agent_cg="$cgroup2/interlock-$suffix/agents/svc"
[ -d "$agent_cg" ] || fail "interlockd did not make the enrolled cgroup $agent_cg"

# $1 = mode, the rest peer_echo.py's arguments after ADDR PORT: as nobody, in the cgroup
# (AGENT_NETNS: in that network namespace).
agent() {
  local mode="$1"; shift
  local in_ns=()
  [ -n "${AGENT_NETNS:-}" ] && in_ns=(ip netns exec "$AGENT_NETNS")
  (cd / && sh -c 'echo $$ >"$1/cgroup.procs"; shift
                  exec "$@"' \
     sh "$agent_cg" "${in_ns[@]}" setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
     /usr/bin/python3 - "$mode" 127.0.0.77 7777 "$@" <"$peer_echo")
}
agent hold "$work/stop-hold" >"$work/hold.out" 2>&1 &
hold=$!; pids+=("$hold")
agent loop "$work/stop-loop" >"$work/loop.out" 2>"$work/loop.err" &
loop=$!; pids+=("$loop")
AGENT_NETNS="$netns" agent loop "$work/stop-loop" >"$work/nsloop.out" 2>"$work/nsloop.err" &
nsloop=$!; pids+=("$nsloop")
for _ in $(seq 50); do [ -s "$work/hold.out" ] && break; sleep 0.1; done
[ "$(head -n1 "$work/hold.out")" = proxied ] || { cat "$work/hold.out"; fail "the held session is not relayed"; }
sleep 1

# --- failed: the new interlockd cannot start; the old one keeps serving ------------------
# The new process reads cfg.yaml (its command line is the old one's); the CLI the good copy.
echo 'no_such_setting: 1' >>"$work/cfg.yaml"
rc=0; "$interlock" --config "$work/cfg.good" upgrade >"$work/upgrade-bad.out" 2>&1 || rc=$?
cp "$work/cfg.good" "$work/cfg.yaml"
[ "$rc" = 3 ] || { cat "$work/upgrade-bad.out"; fail "interlock upgrade to a failing interlockd exited $rc, not 3"; }
grep -q 'keeps serving' "$work/upgrade-bad.out" || { cat "$work/upgrade-bad.out"; fail "no reason given"; }
[ "$(status_pid)" = "$daemon" ] || fail "the old interlockd does not answer after a failed upgrade"
kill -0 "$hold" || { cat "$work/hold.out"; fail "the held session ended at the failed upgrade"; }
# Later in its start: past the audit file and the re-adopted pins, the metrics endpoint's
# address is taken (the echo server's).
echo 'metrics: {address: "127.0.0.77:7777"}' >>"$work/cfg.yaml"
rc=0; "$interlock" --config "$work/cfg.good" upgrade >"$work/upgrade-bad2.out" 2>&1 || rc=$?
cp "$work/cfg.good" "$work/cfg.yaml"
[ "$rc" = 3 ] || { cat "$work/upgrade-bad2.out"; fail "interlock upgrade to an interlockd failing at metrics exited $rc, not 3"; }
[ "$(status_pid)" = "$daemon" ] || fail "the old interlockd does not answer after the second failed upgrade"
kill -0 "$hold" || { cat "$work/hold.out"; fail "the held session ended at the second failed upgrade"; }
sleep 1

# --- upgrade ------------------------------------------------------------------------------
cli upgrade >"$work/upgrade.out" 2>&1 || { cat "$work/upgrade.out"; fail "interlock upgrade failed"; }
new="$(sed -n 's/^interlockd pid \([0-9]*\) .*/\1/p' "$work/upgrade.out")"
[ -n "$new" ] && [ "$new" != "$daemon" ] || { cat "$work/upgrade.out"; fail "interlock upgrade named no new pid"; }
echo "$new" >>"$work/daemon-pids"
grep -q "pid $daemon drains [1-9][0-9]* sessions" "$work/upgrade.out" || { cat "$work/upgrade.out"; fail "the old pid does not drain the held session"; }
[ "$(status_pid)" = "$new" ] || fail "the new interlockd ($new) does not answer the control socket"
sleep 2
kill -0 "$daemon" 2>/dev/null || fail "the old interlockd exited while its session was live"
kill -0 "$hold" || { cat "$work/hold.out"; fail "the held session ended at the upgrade"; }

# --- systemd ------------------------------------------------------------------------------
grep -q "^$daemon READY=1" "$work/notify.log" || { cat "$work/notify.log"; fail "the first interlockd never said READY=1"; }
grep -q "^$daemon MAINPID=$new\$" "$work/notify.log" ||
  { cat "$work/notify.log"; fail "the old interlockd (the main pid) did not say MAINPID=$new"; }
grep -q "^$new MAINPID=$new READY=1" "$work/notify.log" ||
  { cat "$work/notify.log"; fail "the new interlockd did not say MAINPID=$new READY=1"; }
grep -q "^$new WATCHDOG=1" "$work/notify.log" || { cat "$work/notify.log"; fail "the new interlockd does not ping the watchdog"; }
! grep -q "^$daemon .*STOPPING=1" "$work/notify.log" || { cat "$work/notify.log"; fail "the old interlockd said STOPPING=1"; }

# --- SIGUSR2 ------------------------------------------------------------------------------
kill -USR2 "$new"
for _ in $(seq 100); do now="$(status_pid)"; [ -n "$now" ] && [ "$now" != "$new" ] && break; sleep 0.1; done
newer="$(status_pid)"
[ -n "$newer" ] && [ "$newer" != "$new" ] || fail "SIGUSR2 did not upgrade pid $new"
echo "$newer" >>"$work/daemon-pids"
sleep 1
kill -0 "$hold" || { cat "$work/hold.out"; fail "the held session ended at the second upgrade"; }
middle="$new"
new="$newer"

# --- connects -----------------------------------------------------------------------------
touch "$work/stop-loop"
wait "$loop" || { cat "$work/loop.err"; fail "the connect loop failed"; }
read -r _ proxied _ direct _ failed <"$work/loop.out" || true
cat "$work/loop.out"
[ "${proxied:-0}" -gt 10 ] || fail "too few connects across the upgrades (${proxied:-0})"
[ "$direct" = 0 ] || fail "$direct connects went directly to the server during the upgrades"
[ "$failed" = 0 ] || fail "$failed connects failed (refused or dropped) during the upgrades"
wait "$nsloop" || { cat "$work/nsloop.err"; fail "the connect loop in network namespace $netns failed"; }
read -r _ ns_proxied _ ns_direct _ ns_failed <"$work/nsloop.out" || true
echo "in $netns: $(head -n1 "$work/nsloop.out")"
[ "${ns_proxied:-0}" -gt 10 ] || fail "too few connects in $netns across the upgrades (${ns_proxied:-0})"
[ "$ns_direct" = 0 ] || fail "$ns_direct connects in $netns went directly to the server during the upgrades"
[ "$ns_failed" = 0 ] || { cat "$work/nsloop.out"; fail "$ns_failed connects in $netns failed (refused or dropped) during the upgrades"; }
cli status >/dev/null  # written before it answers: the sessions' audit lines are in the file
starts="$(grep '"AUDIT_KIND_SESSION_START"' "$audit_log" | grep -c '"agent"' || true)"
[ "$starts" -ge "$((proxied + ns_proxied + 1))" ] || fail "$starts sessions audited for $((proxied + ns_proxied)) connects and the held session"

# --- drain --------------------------------------------------------------------------------
touch "$work/stop-hold"
wait "$hold" || { cat "$work/hold.out"; fail "the held session was lost"; }
tail -n1 "$work/hold.out"
for _ in $(seq 100); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$daemon" 2>/dev/null || fail "the old interlockd did not exit after its last session ended"
wait "$daemon" || fail "the old interlockd exited with status $?"
daemon=
# The middle one relayed the first one's events to the newest until the first was done.
# (Gone, or a zombie its new parent has yet to reap: the first process reaped it, if ever.)
gone() { [ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
for _ in $(seq 50); do gone "$middle" && break; sleep 0.1; done
gone "$middle" || fail "pid $middle (upgraded by SIGUSR2) did not exit, or was not reaped, after the first"

# --- audit --------------------------------------------------------------------------------
cli status >/dev/null
for outcome in upgrade_started upgrade_failed upgrade_completed; do
  grep -q "\"outcome\":\"$outcome\"" "$audit_log" || fail "no $outcome in the audit log"
done
# The old process's last events (its session's end, "stopped") went through the new one.
grep '"outcome":"stopped"' "$audit_log" | grep -q . || fail "the old interlockd's stop is not audited"
# Every session has its end, also those the first process ended after both upgrades.
starts="$(grep -c '"AUDIT_KIND_SESSION_START"' "$audit_log")"
ends="$(grep -c '"AUDIT_KIND_SESSION_END"' "$audit_log")"
[ "$starts" = "$ends" ] || fail "$starts sessions started but $ends ended in the audit log (events of a draining process lost)"
cli verify --audit >"$work/verify.out" 2>&1 || { cat "$work/verify.out"; fail "interlock verify --audit"; }
echo "upgrade ok: $proxied connects proxied (and $ns_proxied in $netns), none direct or refused; $(tail -n1 "$work/hold.out"); audit chain valid"
