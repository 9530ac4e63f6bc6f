#!/usr/bin/env bash
# The Interlock demo, part 4: guardrails on SSH (run by tools/demo.sh, or alone as root).
# Everything is throwaway and loopback-only:
#
#  1. OpenSSH's sshd on 127.0.0.81 with a host key and a login key the demo makes; the
#     login key is readable by interlockd only;
#  2. interlockd protecting it (PROTOCOL_SSH): it terminates the agent's SSH with its own
#     host key (`interlock ca init`), pins the upstream's, logs in upstream with the
#     resource's key, and judges every exec, shell and subsystem with an SSH policy;
#  3. an unmodified OpenSSH ssh as the agent (uid nobody, no key) under `interlock run`,
#     trusting interlockd through the known_hosts lines `interlock run` hands it (read by
#     the packages' ssh_config include): `uptime` allowed, a customer file shown with its
#     card numbers and SSNs masked, an unlisted program denied, an `rm -rf` held until an
#     approver denies it (exit 126 and the reason), and an interactive `ssh -tt` session
#     recorded;
#  4. `interlock replay` of that session and its asciicast export, and the audit trail;
#     then everything is removed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root" >&2; exit 1; }
build="${INTERLOCK_BUILD_DIR:-$(bash "$here/tools/build.sh")}"
interlockd="$build/userspace/daemon/interlockd"
interlock="$build/tools/interlock/interlock"
# The agents get their trust settings from `interlock run`, not from this shell.
unset SSL_CERT_FILE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE NODE_EXTRA_CA_CERTS SSH_AUTH_SOCK
work="$(mktemp -d /tmp/interlock-demo-ssh-XXXXXX)"
chmod 0755 "$work"
suffix="demo-ssh-$$"
box=127.0.0.81
sshd_pid=""; daemon_pid=""; agent_pid=""

. "$here/tools/lib/interlockd.sh"    # start_interlockd, wait_for_approval
. "$here/tools/lib/throwaway_pg.sh"  # free_port, stop_pid
. "$here/tools/lib/throwaway_sshd.sh" # start_throwaway_sshd
cleanup() {
  set +e
  [ -n "$agent_pid" ] && stop_pid "$agent_pid" TERM
  if [ -n "$daemon_pid" ]; then stop_pid "$daemon_pid" TERM; wait "$daemon_pid" 2>/dev/null; fi
  [ -f "$work/cfg.yaml" ] && "$interlock" --config "$work/cfg.yaml" teardown >/dev/null 2>&1
  [ -n "$sshd_pid" ] && { stop_pid "$sshd_pid" TERM; wait "$sshd_pid" 2>/dev/null; }
  # `interlock run` copied the interception CA's public half for the agents (`ca init`
  # makes one with the SSH host key); this CA dies with the demo.
  if [ -f "$work/state/interception-ca.crt" ]; then
    fp="$(openssl x509 -in "$work/state/interception-ca.crt" -outform DER | sha256sum | cut -c1-16)"
    rm -rf "/run/interlock/trust/$fp"
  fi
  [ -n "${KEEP_DEMO_LOG:-}" ] && cp "$work/interlockd.log" /tmp/demo-ssh-interlockd.log
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cli() { "$interlock" --config "$work/cfg.yaml" "$@"; }

step "OpenSSH sshd on $box: a throwaway host key, and a login key only interlockd reads"
port="$(free_port)"
start_throwaway_sshd "$work" "$box" "$port" || exit 1
host_fp="$(ssh-keygen -l -f "$work/host_key.pub" | awk '{print $2}')"
echo "sshd (pid $sshd_pid) on $box:$port, host key $host_fp; it lets in root with the login key only"
# What the agent will try to delete: a directory in the demo's own temp dir.
mkdir -p "$work/srv/data"
printf 'invoice 1\n' >"$work/srv/data/2026-11.csv"; printf 'invoice 2\n' >"$work/srv/data/2026-12.csv"

step "interlockd: an SSH resource (login key, upstream host key pinned) and an SSH policy"
cat >"$work/policy.yaml" <<'YAML'
resources:
  - {resource: box, default_action: ACTION_DENY}
rules:
  - id: read-only-tools
    match: {resources: [box], ssh: {requests: [exec], programs: [uptime, uname, df, free, ls, "true"]}}
    action: ACTION_ALLOW
  - id: customer-files
    match: {resources: [box], ssh: {requests: [exec], programs: [cat, head, grep]}}
    action: ACTION_MASK
    mask_profile: pii
    reason: customer files are shown with card numbers, SSNs and e-mail addresses masked
  - id: review-rm
    match: {resources: [box], ssh: {requests: [exec], programs: [rm]}}
    action: ACTION_REVIEW
    reason: deleting files on the box needs a human
  - id: interactive
    match: {resources: [box], ssh: {requests: [shell], pty: true}}
    action: ACTION_ALLOW
    reason: interactive sessions are recorded keystroke by keystroke
mask_profiles:
  - name: pii
    detectors: [{detector: DETECTOR_SSN}, {detector: DETECTOR_CARD}, {detector: DETECTOR_EMAIL}]
YAML
cat >"$work/cfg.yaml" <<YAML
listener: {address_v4: 127.0.0.1, address_v6: "::1", port: $(free_port)}
state_dir: $work/state
pin_path: /sys/fs/bpf/interlock-$suffix
cgroup_root: interlock-$suffix
policy_file: $work/policy.yaml
resources:
  - name: box
    address: $box
    port: $port
    protocol: PROTOCOL_SSH
    ssh:
      login: {user: root, private_key_ref: "file:$work/login_key"}
      upstream_host_key_sha256: ["$host_fp"]
      mask_output: true   # output under a MASK rule is masked (else such commands are denied)
YAML
sed 's/^/  /' "$work/policy.yaml"
cli ca init >"$work/ca-init.out"   # interlockd's SSH host key (and the HTTPS interception CA)
head -n 1 "$work/ca-init.out"
start_interlockd "$work/cfg.yaml" "$work/interlockd.log" || exit 1
echo "interlockd is up; policy: $(grep -c '^  - id:' "$work/policy.yaml") rules, default deny"

step "the agent's trust in interlockd: the known_hosts lines interlock run hands it"
# `interlock run` writes `interlock ssh known-hosts`' lines where the agent can read them
# and names them in INTERLOCK_SSH_KNOWN_HOSTS; the packages' ssh_config include
# (/etc/ssh/ssh_config.d/interlock.conf) adds that file to ssh's known_hosts files for an
# ssh that has the variable. The demo leaves /etc/ssh alone and gives the agent's ssh the
# same include with -F. (Or system-wide: interlock ssh known-hosts >> /etc/ssh/ssh_known_hosts.)
cli run --as ops-agent --user nobody -- sh -c 'echo "INTERLOCK_SSH_KNOWN_HOSTS=$INTERLOCK_SSH_KNOWN_HOSTS"; cat "$INTERLOCK_SSH_KNOWN_HOSTS"' \
  2>&1 | { grep -v '^interlock: run: note' || true; }
include="$here/packaging/etc/ssh/interlock.conf"
grep -v '^#' "$include"

agent() {  # OpenSSH ssh, unmodified, as the agent: uid nobody, no key, no agent socket
  cli run --as ops-agent --user nobody -- ssh -F "$include" -o BatchMode=yes \
    -p "$port" "$@" 2>&1 | { grep -v '^interlock: run: note' || true; }
}

step "agent: ssh -p $port $box uptime  (allowed: read-only-tools)"
agent "$box" uptime
agent "$box" df -h /

step "agent: ssh $box cat $work/srv/customers.txt  (MASK: customer-files)"
printf 'name Ann Lee\nssn 078-05-1120\ncard 4111 1111 1111 1111  mail ann.lee@example.com\n' >"$work/srv/customers.txt"
echo "the file on the box:"; sed 's/^/  /' "$work/srv/customers.txt"
echo "what the agent reads:"
agent "$box" cat "$work/srv/customers.txt" | tee "$work/masked.out" | sed 's/^/  /'
if grep -q -e '078-05-1120' -e '4111 1111' -e 'ann.lee@example.com' "$work/masked.out"; then
  echo "demo: a value reached the agent unmasked" >&2; exit 1
fi

step "agent: ssh $box touch $work/srv/new-file  (on no list: denied by the default, at once)"
rc=0
agent "$box" touch "$work/srv/new-file" || rc=$?
echo "agent's exit status: $rc"
[ "$rc" = 126 ] && [ ! -e "$work/srv/new-file" ] || { echo "demo: expected a refusal (126), got $rc" >&2; exit 1; }

step "agent: ssh $box 'rm -rf $work/srv/data': held for a human"
cli run --as ops-agent --user nobody -- ssh -F "$include" -o BatchMode=yes \
  -p "$port" "$box" "rm -rf $work/srv/data" >"$work/agent.out" 2>&1 &
agent_pid=$!
wait_for_approval "$work/cfg.yaml"
id="$approval_id"
[ -n "$id" ] || { echo "demo: nothing was held" >&2; tail -20 "$work/interlockd.log" >&2; exit 1; }

step "an approver (not the agent, another process) denies it"
cli deny "$id" --reason "no deletes on the box from agents; open a ticket"
rc=0
wait "$agent_pid" || rc=$?
agent_pid=""
echo "agent's ssh exited with $rc and printed:"
grep -v '^interlock: run: note' "$work/agent.out" | sed 's/^/  /'
[ "$rc" = 126 ] && [ -d "$work/srv/data" ] || { echo "demo: expected a refusal (126), got $rc" >&2; exit 1; }
echo "the directory is still there: $(ls "$work/srv/data" | tr '\n' ' ')"

step "agent: an interactive session (ssh -tt, typed commands fed through a pipe)"
{ sleep 1; echo uptime; sleep 0.5; echo "ls -l $work/srv/data"; sleep 0.5; echo exit; } |
  agent -tt "$box" | tr -d '\r' | sed 's/\x1b\[?2004[hl]//g'

cli status >/dev/null  # interlockd writes buffered audit lines before it answers
shell_id="$(/usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("kind") == "AUDIT_KIND_SSH_REQUEST" and e["ssh"].get("request") == "shell":
        print(e["session_id"])' "$work/state/audit/audit.jsonl" | tail -n 1)"
[ -n "$shell_id" ] || { echo "demo: no shell session in the audit trail" >&2; exit 1; }
step "interlock replay $shell_id: the shell, what was typed and what came back"
cli replay "$shell_id"

step "interlock replay $shell_id --asciicast > session.cast (asciinema play session.cast)"
cli replay "$shell_id" --asciicast >"$work/session.cast"
echo "$(wc -l <"$work/session.cast") lines; the first ones:"
head -n 5 "$work/session.cast"
cli verify "$shell_id"

step "the audit trail: one event per SSH request"
/usr/bin/python3 - "$work/state/audit/audit.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("kind") != "AUDIT_KIND_SSH_REQUEST":
        continue
    s, d = e["ssh"], e.get("decision", {})
    print(f"  {s.get('request',''):6} {s.get('command','')[:60]:60} {e.get('outcome',''):8} "
          f"rule={d.get('rule_id','') or '-':16} exit={s.get('exit_status', 0)} "
          f"as {s.get('agent_user','')}->{s.get('upstream_user','')}"
          + (f" approval={d['approval_id']}" if d.get('approval_id') else ""))
PY

step "cleaning up part 4 (interlockd, sshd, pins, cgroups, files)"
