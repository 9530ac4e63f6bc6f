#!/usr/bin/env bash
# The Interlock demo: enforcement on the embedded default configuration.
#
#  1. builds Interlock (installing packages on first run);
#  2. starts a throwaway TCP service "demo-echo" on the loopback alias 127.0.0.42:7000,
#     which the embedded default config protects;
#  3. starts interlockd with that embedded default (no config file);
#  4. runs an unmodified agent (bash's /dev/tcp, and interlock-probe) under
#     `interlock run --user nobody`: it runs unprivileged (no capabilities), its
#     connection is redirected through interlockd, recorded, and it still sees
#     127.0.0.42:7000 as its peer; a default-deny agent is refused elsewhere; an agent
#     that would run as root is refused;
#  5. onboards a process already running as its own uid, in no interlock cgroup, with
#     `interlock enroll --user` (and ends it with `interlock unenroll`);
#  6. shows `interlock sessions`, `interlock replay`, a passing `interlock verify` and the
#     audit log; then cleans up everything it started or created;
#  7. part 2 (tools/demo_guardrails.sh): a PostgreSQL database behind the shipped bank
#     policy — masked reads, a denied statement, a DELETE held until a human denies it,
#     the audit trail, and the sealed originals only an auditor's key opens;
#  8. part 3 (tools/demo_http.sh): an HTTPS API behind interlockd — the agent's TLS
#     intercepted, the API token injected, denied and dodging paths, a refused smuggling
#     attempt, a DELETE released by an approver, one audit event per exchange;
#  9. part 4 (tools/demo_ssh.sh): an OpenSSH server behind interlockd — the agent's ssh
#     trusting interlockd through `interlock ssh known-hosts`, `uptime` allowed, an
#     unlisted program denied, an `rm -rf` held until an approver denies it, an
#     interactive session recorded, replayed and exported as an asciicast.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (interlockd loads eBPF programs and creates cgroups)" >&2
  exit 1
fi
build="$(bash "$here/tools/build.sh")"
bin_d="$build/userspace/daemon/interlockd"
bin_cli="$build/tools/interlock/interlock"
bin_echo="$build/tools/echo/interlock-echo"
bin_probe="$build/tools/probe/interlock-probe"
state=/var/lib/interlock
work="$(mktemp -d /tmp/interlock-demo-XXXXXX)"
created_state=0
[ -e "$state" ] || created_state=1
echo_pid=""
daemon_pid=""

# The CLI must not read an installed /etc config: the demo runs the embedded default.
cli() { INTERLOCK_CONFIG= "$bin_cli" "$@"; }

if [ -e /etc/interlock/interlock.yaml ]; then
  echo "demo: /etc/interlock/interlock.yaml exists (an installed interlockd?); the demo uses" >&2
  echo "      the embedded default and would share its paths. Stop and remove it first." >&2
  exit 1
fi
if cli status >/dev/null 2>&1; then
  echo "demo: interlockd is already running; stop it first" >&2
  exit 1
fi

cleanup() {
  set +e
  [ -n "$echo_pid" ] && kill "$echo_pid" 2>/dev/null && wait "$echo_pid" 2>/dev/null
  if [ -n "$daemon_pid" ]; then
    kill -TERM "$daemon_pid" 2>/dev/null
    wait "$daemon_pid" 2>/dev/null
  fi
  cli teardown >/dev/null
  [ "$created_state" = 1 ] && rm -rf "$state"
  rm -rf "$work"
  # The parts remove their own trust copies under /run/interlock/trust; the directories go
  # too when that leaves them empty (rmdir refuses otherwise: an installed interlock's stay).
  rmdir /run/interlock/trust /run/interlock 2>/dev/null
  true
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "protected service: a throwaway TCP echo on 127.0.0.42:7000"
"$bin_echo" 127.0.0.42 7000 >"$work/echo.log" 2>&1 &
echo_pid=$!

step "interlockd with the embedded default configuration"
"$bin_d" --check-config
"$bin_d" >"$work/interlockd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 150); do
  cli status >/dev/null 2>&1 && break
  kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/interlockd.log"; exit 1; }
  sleep 0.1
done
cli status

step "agent: bash with /dev/tcp, unmodified, enrolled as 'demo-agent', running as nobody"
cli run --as demo-agent --user nobody -- bash -c '
  exec 3<>/dev/tcp/127.0.0.42/7000
  printf "SELECT balance FROM accounts WHERE id = 42\n" >&3
  read -r line <&3
  echo "agent sent a request and got back: $line"'

step "agent: interlock-probe sees the original destination as its peer (getpeername)"
cli run --as demo-agent --user nobody -- "$bin_probe" connect 127.0.0.42 7000 --message "hello from the agent"

step "the agent is unprivileged: uid nobody, no capabilities, no_new_privs, no inherited fds"
cli run --as demo-agent --user nobody -- "$bin_probe" whoami

step "an agent as root is refused (root could detach the BPF programs); exit 125"
rc=0
env -u SUDO_UID -u SUDO_GID INTERLOCK_CONFIG= "$bin_cli" run --as demo-agent -- true || rc=$?
[ "$rc" = 125 ] || { echo "demo: expected exit 125, got $rc" >&2; exit 1; }

step "default-deny agent: an unlisted destination is refused by the kernel (EPERM)"
cli run --as demo-agent --user nobody --default-deny -- "$bin_probe" connect 127.0.0.43 7001 || \
  echo "(refused, as it should be; exit code $?)"

step "onboarding what already runs: a process of uid 61999, outside every interlock cgroup"
# No `interlock run`, no agent change: a process started by cron, a unit or a shell as
# its own user. Enrolling the user enforces it in whatever cgroup it runs.
as_agent() { setpriv --reuid=61999 --regid=61999 --clear-groups --inh-caps=-all -- "$@"; }
sessions() { sleep 0.3; cli sessions --json | wc -l; }  # after the session's end is written
n="$(sessions)"
as_agent "$bin_probe" connect 127.0.0.42 7000 --message "not enrolled yet" >/dev/null
echo "before enrolling: it reached the service directly ($(($(sessions) - n)) new sessions in interlockd)"
cli enroll --user 61999
as_agent "$bin_probe" connect 127.0.0.42 7000 --message "enrolled by its uid"
echo "after 'interlock enroll --user 61999': $(($(sessions) - n)) new session, through interlockd"
cli status | grep -E '^workloads:|uid-61999'
cli unenroll uid-61999

sleep 0.3
step "interlock sessions"
cli sessions
id="$(cli sessions --json | head -n 1 | sed -n 's/.*"session_id":"\([0-9a-f]*\)".*/\1/p')"

step "interlock replay $id"
cli replay "$id"

step "interlock verify $id"
cli verify "$id"

step "audit events ($state/audit/audit.jsonl)"
grep -E '"AUDIT_KIND_(SESSION_END|CONNECT_DENIED)"' "$state/audit/audit.jsonl" | head -n 3

# Part 2: guardrails on PostgreSQL — masking, a denial, a hold decided by a human, the
# audit trail, and the sealed originals only an auditor can read.
step "part 2: guardrails on a PostgreSQL database (tools/demo_guardrails.sh)"
bash "$here/tools/demo_guardrails.sh"

# Part 3: guardrails on an HTTPS API — TLS intercepted with a minted leaf, the token
# injected, denials, a refused smuggling attempt, a DELETE released by an approver.
step "part 3: guardrails on an HTTPS API (tools/demo_http.sh)"
bash "$here/tools/demo_http.sh"

# Part 4: guardrails on SSH — interlockd's host key trusted through known_hosts lines,
# the upstream logged in with a key the agent never sees, every command judged, an
# `rm -rf` held and denied, an interactive session recorded and exported as asciicast.
step "part 4: guardrails on SSH (tools/demo_ssh.sh)"
bash "$here/tools/demo_ssh.sh"

step "cleaning up part 1 (interlockd stopped, pins and cgroups removed)"
