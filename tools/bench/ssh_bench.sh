#!/usr/bin/env bash
# SSH benchmark: OpenSSH's ssh against a throwaway OpenSSH sshd on 127.0.0.81, directly and
# through interlockd (PROTOCOL_SSH: the agent's SSH terminated with interlockd's host key,
# every request judged by the policy, audited and recorded, the upstream logged in with
# the resource's key), in one run on this machine:
#
#   tools/bench/ssh_bench.sh [SIZE]            # or SSH_BENCH_SIZE; default 1G (head -c units)
#        SSH_BENCH_SECONDS=10                 # each connection-rate cell
#        SSH_BENCH_CONCURRENCY=4              # the concurrent cell's clients; 0 skips it
#        SSH_BENCH_SSH_OPTIONS="-c aes128-gcm@openssh.com"   # more ssh options, both paths
#   tools/bench/ssh_bench.sh --smoke           # or SSH_BENCH_SMOKE=1: 2 s cells, 16M
#
# (a) connection rate: `ssh host true` in a loop for SECONDS, one client and then
#     CONCURRENCY clients at once; connections/s, p50/p99 of one connection (connect, key
#     exchange, login, exec, exit status) and interlockd's CPU per connection.
# (b) throughput: `ssh host 'head -c SIZE /dev/zero'` into `wc -c` (the count is checked),
#     MB/s (10^6 bytes) over the whole command, connection set-up included, and interlockd's
#     CPU (user + system) per GB. A stream that arrives short is flagged in its row and the
#     script exits 1 at the end.
# (c) interlockd's memory during (b): VmRSS before, the peak (VmHWM, reset to the current
#     RSS before the transfer through /proc/PID/clear_refs) and the highest VmRSS sampled
#     every 50 ms, to show that a transfer streams through bounded buffers.
# Direct: ssh as root with the login key. Through interlockd: the same ssh as user nobody
# under `interlock run` (no key; it trusts interlockd through `interlock ssh
# known-hosts`), so every connection takes the real connect redirect. Client, proxy and
# server share the machine's CPUs: compare paths within one run, not across machines.
# Prints numbers, no verdict.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
smoke="${SSH_BENCH_SMOKE:-0}"
if [ "${1:-}" = --smoke ]; then smoke=1; shift; fi
if [ "$smoke" = 1 ]; then
  size="${1:-16M}"; secs=2
else
  size="${1:-${SSH_BENCH_SIZE:-1G}}"; secs="${SSH_BENCH_SECONDS:-10}"
fi
conc="${SSH_BENCH_CONCURRENCY:-4}"
bytes="$(numfmt --from=iec "$size" 2>/dev/null)" || { echo "bench: bad SIZE '$size' (e.g. 1G, 256M)" >&2; exit 2; }
[[ "$bytes" =~ ^[1-9][0-9]*$ ]] || { echo "bench: SIZE must be positive" >&2; exit 2; }
[[ "$secs" =~ ^[1-9][0-9]*$ ]] || { echo "bench: SSH_BENCH_SECONDS must be a positive integer" >&2; exit 2; }
[[ "$conc" =~ ^[0-9]+$ ]] || { echo "bench: SSH_BENCH_CONCURRENCY must be an integer" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
for b in /usr/sbin/sshd /usr/bin/ssh /usr/bin/ssh-keygen; do
  [ -x "$b" ] || { echo "bench: $b not installed (tools/setup.sh)" >&2; exit 1; }
done
build="${INTERLOCK_BUILD_DIR:-$(bash "$here/tools/build.sh")}"
interlockd="$build/userspace/daemon/interlockd"
interlock="$build/tools/interlock/interlock"
# The agent gets its trust settings from `interlock run`, not from this shell.
unset SSL_CERT_FILE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE NODE_EXTRA_CA_CERTS SSH_AUTH_SOCK
work="$(mktemp -d /tmp/interlock-sshbench-XXXXXX)"
chmod 0755 "$work"
suffix="sshbench-$$"
box=127.0.0.81
sshd_pid=""; daemon_pid=""; sampler_pid=""; short=0

. "$here/tools/lib/throwaway_pg.sh"  # stop_pid, free_port
. "$here/tools/lib/interlockd.sh"    # start_interlockd
. "$here/tools/lib/throwaway_sshd.sh" # start_throwaway_sshd
cleanup() {
  set +e
  [ -n "$sampler_pid" ] && stop_pid "$sampler_pid" TERM
  if [ -n "$daemon_pid" ]; then stop_pid "$daemon_pid" TERM; wait "$daemon_pid" 2>/dev/null; fi
  [ -f "$work/cfg.yaml" ] && "$interlock" --config "$work/cfg.yaml" teardown >/dev/null 2>&1
  [ -n "$sshd_pid" ] && { stop_pid "$sshd_pid" TERM; wait "$sshd_pid" 2>/dev/null; }
  # `interlock run` copied the interception CA's public half (`ca init` makes one).
  if [ -f "$work/state/interception-ca.crt" ]; then
    fp="$(openssl x509 -in "$work/state/interception-ca.crt" -outform DER | sha256sum | cut -c1-16)"
    rm -rf "/run/interlock/trust/$fp"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "bench: $*" >&2; exit 1; }

# sshd: its own keys and config in $work; lets in root with the login key only.
port="$(free_port)"
start_throwaway_sshd "$work" "$box" "$port" "MaxStartups 100" "MaxSessions 100" || die "sshd did not start"
printf '[%s]:%s %s\n' "$box" "$port" "$(cut -d' ' -f1,2 "$work/host_key.pub")" >"$work/sshd_known_hosts"

cat >"$work/policy.yaml" <<'YAML'
resources:
  - {resource: box, default_action: ACTION_DENY}
rules:
  - id: bench
    match: {resources: [box], ssh: {requests: [exec], programs: ["true", head]}}
    action: ACTION_ALLOW
YAML
cat >"$work/cfg.yaml" <<YAML
listener: {address_v4: 127.0.0.1, address_v6: "::1", port: $(free_port)}
state_dir: $work/state
pin_path: /sys/fs/bpf/interlock-$suffix
cgroup_root: interlock-$suffix
policy_file: $work/policy.yaml
max_sessions: 1000
resources:
  - name: box
    address: $box
    port: $port
    protocol: PROTOCOL_SSH
    ssh:
      login: {user: root, private_key_ref: "file:$work/login_key"}
      upstream_host_key_sha256: ["$(ssh-keygen -l -f "$work/host_key.pub" | awk '{print $2}')"]
YAML
"$interlock" --config "$work/cfg.yaml" ca init >/dev/null
start_interlockd "$work/cfg.yaml" "$work/d.log" || die "interlockd did not start"
"$interlock" --config "$work/cfg.yaml" ssh known-hosts >"$work/known_hosts"

read -ra extra_opts <<<"${SSH_BENCH_SSH_OPTIONS:-}"
common=(-F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null
        -o ConnectTimeout=20 -p "$port" "${extra_opts[@]}")
direct_ssh=(/usr/bin/ssh "${common[@]}" -o UserKnownHostsFile="$work/sshd_known_hosts" -o IdentitiesOnly=yes
            -i "$work/login_key" "root@$box")
via_ssh=(/usr/bin/ssh "${common[@]}" -o UserKnownHostsFile="$work/known_hosts" "root@$box")
direct_run=()
via_run=("$interlock" --config "$work/cfg.yaml" run --as ssh-bench --user nobody --)

# The client loop, run by the path's own user (nobody through interlockd): CLIENTS loops
# of `ssh ... true` for SECS seconds; prints one line per connection (microseconds), and
# "elapsed_us N" last. Any failure stops the run.
cat >"$work/loop.sh" <<'SH'
secs="$1"; clients="$2"; shift 2
now() { date +%s%N; }
t0=$(now); end=$(( t0 + secs * 1000000000 )); pids=()
for _ in $(seq 1 "$clients"); do
  (
    while [ "$(now)" -lt "$end" ]; do
      a=$(now); "$@" true </dev/null || { echo "fail $?"; exit 1; }; b=$(now)
      echo $(( (b - a) / 1000 ))
    done
  ) &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
echo "elapsed_us $(( ($(now) - t0) / 1000 ))"
exit "$rc"
SH
chmod 0644 "$work/loop.sh"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$daemon_pid/stat"; }
hz="$(getconf CLK_TCK)"
kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$daemon_pid/status"; }

# $1 = label, $2 = clients, $3 = path (direct or via).
rate() {
  local label="$1" clients="$2" out t0 t1 el
  local -n run="${3}_run" ssh="${3}_ssh"
  t0="$(cpu_ticks)"
  out="$("${run[@]}" bash "$work/loop.sh" "$secs" "$clients" "${ssh[@]}" 2>"$work/rate.err")" ||
    { echo "$out" | grep fail | head -3 >&2; tail -5 "$work/rate.err" >&2; die "$label: a connection failed"; }
  t1="$(cpu_ticks)"
  el="$(echo "$out" | awk '$1 == "elapsed_us" {print $2}')"
  echo "$out" | grep -v elapsed_us | sort -n | awk -v label="$label" -v c="$clients" -v el="$el" \
    -v cpu=$(( t1 - t0 )) -v hz="$hz" -v via="$([ "$3" = via ] && echo 1 || echo 0)" '
    { v[++n] = $1 }
    function pct(p,  i) { i = int(n * p + 0.999999); if (i < 1) i = 1; return v[i] }
    END {
      printf "%-12s %7d %8d %10.1f %10.1f %10.1f %12s\n", label, c, n, n / (el / 1e6), pct(0.50) / 1000,
        pct(0.99) / 1000, (via && n > 0) ? sprintf("%.2f", cpu * 1000 / hz / n) : "-"
    }'
}

# $1 = label, $2 = path (direct or via).
transfer() {
  local label="$1" t0 t1 got c0 c1
  local -n run="${2}_run" ssh="${2}_ssh"
  c0="$(cpu_ticks)"
  t0="$(date +%s%N)"
  got="$("${run[@]}" "${ssh[@]}" "head -c $bytes /dev/zero" </dev/null 2>"$work/transfer.err" | wc -c)"
  t1="$(date +%s%N)"
  c1="$(cpu_ticks)"
  [ -s "$work/transfer.err" ] && sed 's/^/  stderr: /' "$work/transfer.err" >&2
  printf '%-12s %12s %10.3f %10.1f %10s%s\n' "$label" "$got" "$(awk -v t=$(( t1 - t0 )) 'BEGIN {print t / 1e9}')" \
    "$(awk -v b="$got" -v t=$(( t1 - t0 )) 'BEGIN {print b / 1e6 / (t / 1e9)}')" \
    "$([ "$2" = direct ] && echo - || awk -v c=$(( c1 - c0 )) -v hz="$hz" -v b="$got" 'BEGIN {printf "%.2f", c / hz / (b / 1e9)}')" \
    "$([ "$got" = "$bytes" ] || echo "   SHORT: $(( bytes - got )) of $bytes bytes missing")"
  [ "$got" = "$bytes" ] || short=1
}

echo "SSH benchmark: OpenSSH $(ssh -V 2>&1 | sed 's/,.*//'), sshd on $box:$port, interlockd pid $daemon_pid"
echo "kernel $(uname -r), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)$([ "$smoke" = 1 ] && echo '; smoke run')$([ -n "${SSH_BENCH_SSH_OPTIONS:-}" ] && echo "; ssh options: $SSH_BENCH_SSH_OPTIONS")"
# The cipher each client negotiated (interlockd's own upstream leg: libssh's choice).
for p in direct via; do
  declare -n run="${p}_run" ssh="${p}_ssh"
  printf '%-11s %s\n' "$p:" \
    "$("${run[@]}" "${ssh[@]}" -v true </dev/null 2>&1 | sed -n 's/.*kex: server->client cipher: \([^ ]*\).*/\1/p' | head -1)"
  unset -n run ssh
done
echo
echo "(a) connection rate: ssh host true, ${secs} s per cell"
printf '%-12s %7s %8s %10s %10s %10s %12s\n' path clients conns conn/s "p50 ms" "p99 ms" "cpu ms/conn"
rate direct 1 direct
rate interlockd 1 via
if [ "$conc" -gt 0 ]; then
  rate direct "$conc" direct
  rate interlockd "$conc" via
fi

echo
echo "(b) throughput: ssh host 'head -c $size /dev/zero' | wc -c"
printf '%-12s %12s %10s %10s %10s\n' path "bytes read" seconds MB/s "cpu s/GB"
transfer direct direct
# (c) interlockd's memory: the peak reset to the current RSS, then sampled during the run.
rss_before="$(kib VmRSS)"
echo 5 >"/proc/$daemon_pid/clear_refs"
( max=0; while :; do r="$(awk '$1 == "VmRSS:" {print $2}' "/proc/$daemon_pid/status" 2>/dev/null)"
    [ -n "$r" ] && [ "$r" -gt "$max" ] && { max="$r"; echo "$max" >"$work/rss.max"; }; sleep 0.05; done ) &
sampler_pid=$!
transfer interlockd via
stop_pid "$sampler_pid" TERM; wait "$sampler_pid" 2>/dev/null || true; sampler_pid=""
hwm_after="$(kib VmHWM)"; rss_after="$(kib VmRSS)"

echo
echo "(c) interlockd memory during the transfer through it ($size)"
printf '%-34s %10s\n' measure KiB
printf '%-34s %10s\n' "VmRSS before" "$rss_before"
printf '%-34s %10s\n' "VmHWM (peak; updated lazily)" "$hwm_after"
printf '%-34s %10s\n' "VmRSS sampled max (50 ms)" "$(cat "$work/rss.max" 2>/dev/null || echo -)"
printf '%-34s %10s\n' "VmRSS after" "$rss_after"
printf '%-34s %10s\n' "peak - before" "$(( hwm_after - rss_before ))"
if [ "$short" = 1 ]; then
  echo "bench: a transfer arrived short (see the SHORT row above)" >&2
  exit 1
fi
