#!/usr/bin/env bash
# The Interlock demo, part 3: guardrails on an HTTPS API (run by tools/demo.sh, or alone as
# root). Everything is throwaway and loopback-only:
#
#  1. nginx on 127.0.0.51 serving a customers API over HTTPS (a demo CA's certificate for
#     crm.demo), which wants a bearer token only interlockd holds;
#  2. interlockd protecting it (PROTOCOL_HTTPS) with an HTTP policy, its own interception
#     CA (`interlock ca init`) terminating the agent's TLS;
#  3. unmodified agents (curl, Python requests; uid nobody, no token, no CA option) under
#     `interlock run`, which only points them at the interception CA: a read of customer
#     records with the token injected and the answer masked (SSNs by name, card numbers and
#     emails by detectors, also inside nginx's gzip), a denied admin path and a path spelled
#     to dodge the rule, a smuggling attempt refused, and a DELETE held until an approver
#     releases it;
#  4. the audit trail of those exchanges; then everything is removed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root" >&2; exit 1; }
build="$(bash "$here/tools/build.sh")"
interlockd="$build/userspace/daemon/interlockd"
interlock="$build/tools/interlock/interlock"
# The agents get their trust settings from `interlock run`, not from this shell.
unset SSL_CERT_FILE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE NODE_EXTRA_CA_CERTS
work="$(mktemp -d /tmp/interlock-demo-http-XXXXXX)"
chmod 0755 "$work"
suffix="demo-http-$$"
api=127.0.0.51
nginx_pid=""; daemon_pid=""; agent_pid=""

. "$here/tools/lib/interlockd.sh"    # start_interlockd, wait_for_approval
. "$here/tools/lib/throwaway_pg.sh"  # free_port, stop_pid
cleanup() {
  set +e
  [ -n "$agent_pid" ] && stop_pid "$agent_pid" TERM
  if [ -n "$daemon_pid" ]; then stop_pid "$daemon_pid" TERM; wait "$daemon_pid" 2>/dev/null; fi
  [ -f "$work/cfg.yaml" ] && "$interlock" --config "$work/cfg.yaml" teardown >/dev/null 2>&1
  [ -n "$nginx_pid" ] && stop_pid "$nginx_pid" TERM
  # `interlock run` copied the CA's public half for the agents; this CA dies with the demo.
  if [ -f "$work/state/interception-ca.crt" ]; then
    fp="$(openssl x509 -in "$work/state/interception-ca.crt" -outform DER | sha256sum | cut -c1-16)"
    rm -rf "/run/interlock/trust/$fp"
  fi
  [ -n "${KEEP_DEMO_LOG:-}" ] && cp "$work/interlockd.log" /tmp/demo-http-interlockd.log
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cli() { "$interlock" --config "$work/cfg.yaml" "$@"; }

step "nginx on $api: a customers API over HTTPS (crm.demo), wanting a bearer token"
port="$(free_port)"
mkdir -p "$work/www/v1/customers" "$work/tmp"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=demo CA" \
  -keyout "$work/ca.key" -out "$work/ca.crt" -addext basicConstraints=critical,CA:TRUE 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=crm.demo" \
  -keyout "$work/crm.key" -out "$work/crm.csr" 2>/dev/null
openssl x509 -req -in "$work/crm.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days 1 \
  -extfile <(printf 'subjectAltName=DNS:crm.demo\nextendedKeyUsage=serverAuth\n') -out "$work/crm.crt" 2>/dev/null
token="$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
umask 077; printf '%s\n' "$token" >"$work/crm.token"; umask 022
cat >"$work/www/v1/customers/index.json" <<'JSON'
[{"id": 1, "name": "Ada Lovelace", "email": "ada@example.com", "ssn": "123-45-6789",
  "card": 4111111111111111, "notes": "paid by card 5500 0000 0000 0004"},
 {"id": 2, "name": "Alan Turing", "email": "alan@example.com", "ssn": "219-09-9999",
  "card": "4012888888881881", "notes": "prefers email"}]
JSON
cat >"$work/nginx.conf" <<NGINX
daemon off; master_process off; worker_processes 1;
pid $work/nginx.pid; error_log $work/nginx.err;
events { worker_connections 64; }
http {
  access_log $work/access.log;
  gzip on; gzip_types application/json; gzip_min_length 0;
  client_body_temp_path $work/tmp/body; proxy_temp_path $work/tmp/proxy;
  fastcgi_temp_path $work/tmp/fcgi; uwsgi_temp_path $work/tmp/uwsgi; scgi_temp_path $work/tmp/scgi;
  server {
    listen $api:$port ssl; server_name crm.demo;
    ssl_certificate $work/crm.crt; ssl_certificate_key $work/crm.key;
    root $work/www; default_type application/json;
    # Only interlockd's token opens the API.
    if (\$http_authorization != "Bearer $token") { return 401 '{"error": "token required"}\n'; }
    location = /v1/customers { try_files /v1/customers/index.json =404; }
    location /v1/customers/ { if (\$request_method = DELETE) { return 204; } return 200 '{"id": 2}\n'; }
    location /admin/ { return 200 '{"admin": "everything"}\n'; }
  }
}
NGINX
/usr/sbin/nginx -c "$work/nginx.conf" -e "$work/nginx.err" >"$work/nginx.out" 2>&1 &
nginx_pid=$!
for _ in $(seq 1 50); do
  curl -s -o /dev/null --cacert "$work/ca.crt" --resolve "crm.demo:$port:$api" "https://crm.demo:$port/" && break
  sleep 0.1
done
echo "without the token nginx says: $(curl -s --cacert "$work/ca.crt" --resolve "crm.demo:$port:$api" \
  "https://crm.demo:$port/v1/customers")"

step "interlockd: an HTTPS resource, the token only it can read, an HTTP policy"
cat >"$work/policy.yaml" <<'YAML'
resources:
  - {resource: crm, default_action: ACTION_DENY}
rules:
  - id: read-customers
    match: {resources: [crm], http: {methods: [GET, HEAD], paths: ["/v1/customers", "/v1/customers/*"]}}
    action: ACTION_MASK
    mask_profile: pii
    reason: agents see customers, not their identifiers
  - id: review-deletes
    match: {resources: [crm], http: {methods: [DELETE], paths: ["/v1/customers/*"]}}
    action: ACTION_REVIEW
    reason: deleting a customer needs a human
  - id: deny-admin
    match: {resources: [crm], http: {paths: ["/admin/**"]}}
    action: ACTION_DENY
    reason: admin endpoints are off limits to agents
mask_profiles:
  - name: pii
    columns: [{column: "ssn", mask: {style: MASK_STYLE_PARTIAL, keep_last: 4}}]
    detectors:
      - {detector: DETECTOR_CARD, mask: {style: MASK_STYLE_PARTIAL, keep_last: 4}}
      - {detector: DETECTOR_EMAIL}
YAML
cat >"$work/cfg.yaml" <<YAML
listener: {address_v4: 127.0.0.1, address_v6: "::1", port: $(free_port)}
state_dir: $work/state
pin_path: /sys/fs/bpf/interlock-$suffix
cgroup_root: interlock-$suffix
policy_file: $work/policy.yaml
resources:
  - name: crm
    address: $api
    port: $port
    protocol: PROTOCOL_HTTPS
    http:
      credential: {bearer_ref: "file:$work/crm.token"}
      upstream_ca_file: $work/ca.crt
YAML
cli ca init | head -2
start_interlockd "$work/cfg.yaml" "$work/interlockd.log" || exit 1
echo "interlockd is up; policy: $(grep -c '^  - id:' "$work/policy.yaml") rules"

agent() {  # an unmodified agent: uid nobody, no token, no CA flags
  cli run --as crm-agent --user nobody -- "$@" 2>&1 | grep -v '^interlock: run: note'
}
curl_agent() { agent curl -sS --max-time 30 --resolve "crm.demo:$port:$api" -w '  -> HTTP %{http_code}\n' "$@"; }
url="https://crm.demo:$port"

step "what nginx holds (read directly, with the token): SSNs, card numbers, emails"
curl -s --cacert "$work/ca.crt" --resolve "crm.demo:$port:$api" -H "Authorization: Bearer $token" \
  "$url/v1/customers" | sed 's/^/  /'

step "agent (curl) lists customers: interlockd injects the token and masks the answer"
curl_agent "$url/v1/customers"

step "the same, gzip-compressed by nginx: decoded, masked, re-compressed"
curl_agent --compressed -D - "$url/v1/customers" | grep -iv '^\(date\|server\|connection\):' 

step "agent (Python requests, by address: no SNI, a leaf for the IP) on a kept-alive session"
agent /usr/bin/python3 -c "
import requests
s = requests.Session()
for path in ('/v1/customers/2', '/admin/users'):
    r = s.get('https://$api:$port' + path, headers={'Host': 'crm.demo'})
    print(' ', path, r.status_code, r.headers['content-type'], r.text.strip()[:100])
"

step "agent tries the admin API, then spells it to dodge the rule: both denied"
curl_agent "$url/admin/users"
curl_agent --path-as-is "$url/v1/customers/../../%61dmin/users"

step "agent tries to smuggle a second request in a body: refused (400), nothing forwarded"
printf 'POST /v1/customers HTTP/1.1\r\nHost: crm.demo\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin/users HTTP/1.1\r\nHost: crm.demo\r\n\r\n' >"$work/smuggle.req"
chmod 0644 "$work/smuggle.req"
agent /bin/sh -c "openssl s_client -quiet -servername crm.demo -connect $api:$port <'$work/smuggle.req' 2>/dev/null | head -1" || true

step "agent deletes customer 2: held for a human"
curl_agent -X DELETE "$url/v1/customers/2" >"$work/agent.out" 2>&1 &
agent_pid=$!
wait_for_approval "$work/cfg.yaml"
id="$approval_id"

step "an approver (not the agent) approves it; the request is released as it was held"
cli approve "$id" --reason "ticket CRM-1234" | head -3
wait "$agent_pid" || true
agent_pid=""
echo "agent saw:"; sed 's/^/  /' "$work/agent.out"

step "what reached nginx (every request carried interlockd's token, none the agent's)"
awk '{print "  " $6, $7, $9}' "$work/access.log" | tr -d '"'

step "the audit trail: one event per exchange"
cli status >/dev/null  # interlockd writes buffered audit lines before it answers
/usr/bin/python3 - "$work/state/audit/audit.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("kind") != "AUDIT_KIND_HTTP_REQUEST":
        continue
    h, d = e["http"], e.get("decision", {})
    print(f"  {h.get('method',''):6} {h.get('path','') or h.get('target',''):26} {h.get('status',0):3} "
          f"{d.get('action',''):6} rule={d.get('rule_id','') or '-':16} answered_by={h.get('answered_by','')} "
          f"credential={h.get('credential_injected','') or '-'}"
          + (f" masked={h['body_masking']}:{h.get('masking', {}).get('values_masked', 0)}" if h.get('body_masking') else ""))
PY

step "cleaning up part 3 (interlockd, nginx, pins, cgroups, files)"
