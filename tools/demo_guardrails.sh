#!/usr/bin/env bash
# The Interlock demo, part 2: guardrails on a PostgreSQL database (run by tools/demo.sh,
# or alone as root). Everything is throwaway and loopback-only:
#
#  1. a PostgreSQL 15 server on 127.0.0.50 with a `customers` table holding SSNs, card
#     numbers and IBANs, and a role whose password only interlockd knows;
#  2. interlockd protecting it with the shipped bank policy plus a mask profile;
#  3. an unmodified psql agent (uid nobody, no password) under `interlock run`:
#     a masked read, a denied pg_read_file (42501, connection still usable), and a DELETE
#     without WHERE held for a human, who denies it from outside the agent's workload;
#  4. the audit trail of those decisions; then everything is removed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root" >&2; exit 1; }
pgbin=/usr/lib/postgresql/15/bin
build="$(bash "$here/tools/build.sh")"
interlockd="$build/userspace/daemon/interlockd"
interlock="$build/tools/interlock/interlock"
unset PGPASSWORD PGPASSFILE PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS
work="$(mktemp -d /tmp/interlock-demo-pg-XXXXXX)"
chmod 0755 "$work"
suffix="demo-pg-$$"
db=127.0.0.50
pg_pid=""; daemon_pid=""; agent_pid=""

. "$here/tools/lib/interlockd.sh"    # start_interlockd, wait_for_approval
. "$here/tools/lib/throwaway_pg.sh"
cleanup() {
  set +e
  [ -n "$agent_pid" ] && stop_pid "$agent_pid" TERM
  if [ -n "$daemon_pid" ]; then stop_pid "$daemon_pid" TERM; wait "$daemon_pid" 2>/dev/null; fi
  [ -f "$work/cfg.yaml" ] && "$interlock" --config "$work/cfg.yaml" teardown >/dev/null 2>&1
  [ -n "$pg_pid" ] && stop_pid "$pg_pid" INT
  [ -n "${KEEP_DEMO_LOG:-}" ] && cp "$work/interlockd.log" /tmp/demo-pg-interlockd.log
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cli() { "$interlock" --config "$work/cfg.yaml" "$@"; }

step "PostgreSQL 15 on $db with a customers table (SSNs, cards, IBANs)"
port="$(free_port)"
start_throwaway_pg "$work" "$db" "$port"
pw="$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
"$pgbin/psql" -X -q -h "$work/sock" -p "$port" -U postgres -v ON_ERROR_STOP=1 <<SQL
CREATE ROLE bank_rw LOGIN PASSWORD '$pw';
CREATE DATABASE bank OWNER bank_rw;
\c bank
CREATE TABLE customers(id int primary key, name text, ssn text, card_number text, iban text);
INSERT INTO customers VALUES
  (1, 'Ada Lovelace', '078-05-1120', '4111 1111 1111 1111', 'GB82WEST12345698765432'),
  (2, 'Alan Turing', '219-09-9999', '5500-0000-0000-0004', 'DE89370400440532013000');
ALTER TABLE customers OWNER TO bank_rw;
SQL
umask 077; printf '%s\n' "$pw" >"$work/bank.pw"; umask 022
echo "role bank_rw's password is in $work/bank.pw (0600, read by interlockd only)"

step "interlockd: the shipped bank policy, plus masking of customer reads"
cp "$here/packaging/examples/bank-policy.yaml" "$work/policy.yaml"   # its pii mask profile included
"$interlock" auditor-keygen --out "$work/auditor" >/dev/null   # the auditor's X25519 key pair
cat >"$work/cfg.yaml" <<YAML
listener: {address_v4: 127.0.0.1, address_v6: "::1", port: $(free_port)}
auditor_public_key_file: $work/auditor.pub
state_dir: $work/state
pin_path: /sys/fs/bpf/interlock-$suffix
cgroup_root: interlock-$suffix
policy_file: $work/policy.yaml
resources:
  - name: bank-db
    address: $db
    port: $port
    protocol: PROTOCOL_POSTGRES
    postgres:
      login: {user: bank_rw, database: bank, password_ref: "file:$work/bank.pw"}
      sslmode: disable
      # a throwaway server on loopback: the password may go over plain TCP
      allow_unverified_upstream: true
YAML
start_interlockd "$work/cfg.yaml" "$work/interlockd.log" || exit 1
echo "interlockd is up; policy: $(grep -c '^  - id:' "$work/policy.yaml") rules"

agent() {  # psql as the agent: uid nobody (interlock run drops to it), no password, its
           # own idea of user and database
  cli run --as billing-agent --user nobody -- \
    "$pgbin/psql" -X -h "$db" -p "$port" -U agent -d bank -v VERBOSITY=default "$@"
}

step "agent reads customers: the values it may not see are masked in flight"
agent -c "SELECT id, name, ssn, card_number, iban FROM customers WHERE id <= 2"

step "agent tries to read a server file: denied (42501), and its connection carries on"
agent -v ON_ERROR_STOP=0 -c "SELECT pg_read_file('/etc/passwd')" \
  -c "SELECT count(*) AS still_there FROM customers WHERE id > 0" 2>&1 || true

step "agent runs DELETE without WHERE: held for a human"
agent -c "DELETE FROM customers" >"$work/agent.out" 2>&1 &
agent_pid=$!
wait_for_approval "$work/cfg.yaml"
id="$approval_id"

step "an approver (not the agent) denies it"
cli deny "$id" --reason "no bulk deletes of customers" | head -3
wait "$agent_pid" || true
agent_pid=""
echo "agent saw:"; sed 's/^/  /' "$work/agent.out"
echo "customers still has $("$pgbin/psql" -X -h "$work/sock" -p "$port" -U postgres -d bank -Atc 'SELECT count(*) FROM customers') rows"

step "the audit trail of those decisions"
cli status >/dev/null  # interlockd writes buffered audit lines before it answers
/usr/bin/python3 - "$work/state/audit/audit.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    k = e.get("kind", "")
    if k == "AUDIT_KIND_POLICY_DECISION":
        d = e["decision"]
        print(f"  {k:28} {e['outcome']:9} rule={d.get('rule_id','')!s:22} {'; '.join(d.get('statements', []))}")
    elif k == "AUDIT_KIND_APPROVAL":
        a = e["approval"]
        who = (f"requested by workload {a['requester'].get('workload','')}" if e["outcome"] == "requested"
               else f"decided by uid {a.get('approver',{}).get('uid',0)}: {a.get('decision_reason','')}")
        print(f"  {k:28} {e['outcome']:9} {a['id']} {who}")
    elif k == "AUDIT_KIND_MASKING":
        m = e["masking"]
        print(f"  {k:28} {e['outcome']:9} profile={m['profile']} rows={m.get('rows',0)} values={m.get('values_masked',0)} columns={m.get('columns',[])}")
PY

first="$(cli sessions --json | head -n 1 | sed -n 's/.*"session_id":"\([0-9a-f]*\)".*/\1/p')"
step "interlock replay $first: what the agent saw (masked)"
cli replay "$first" | sed -n '/Query: SELECT id, name/,/^$/p' | head -12
step "interlock replay $first --unseal auditor.key: the originals, for the auditor only"
cli replay "$first" --unseal "$work/auditor.key" | sed -n '/original rows/,/^$/p' | head -8
cli verify "$first"

step "cleaning up part 2 (interlockd, PostgreSQL, pins, cgroups, files)"
