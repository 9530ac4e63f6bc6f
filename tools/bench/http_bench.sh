#!/usr/bin/env bash
# HTTP benchmark: wrk against nginx serving a 1 KiB JSON body over keep-alive
# connections, directly and through each proxy, in one run on this machine:
#
#   direct         wrk -> nginx
#   interlockd     wrk (enrolled, `interlock run`) -> redirect -> interlockd -> nginx;
#                  PROTOCOL_HTTP, an allow-all http rule, a bearer token injected, every
#                  request judged, audited and recorded, as in production
#   interlockd-sockmap  the same with relay_mode RELAY_MODE_SOCKMAP: the agent's leg
#                  spliced by sk_msg past loopback TCP (opt-in; README "Relay modes")
#   interlockd-mask  the same as interlockd with a MASK rule: every answer streamed through the JSON
#                  masker (a field rule on "email", card and email detectors on every value)
#   nginx-proxy    wrk -> nginx as a reverse proxy (1 worker, upstream keepalive) -> nginx
#   haproxy        wrk -> haproxy in HTTP mode (1 thread, keep-alive both sides) -> nginx
#
#   tools/bench/http_bench.sh [SECONDS]        # or HTTP_BENCH_SECONDS; default 10
#        HTTP_BENCH_CONNECTIONS="1 8 64"
#        HTTP_BENCH_PATHS="direct interlockd interlockd-sockmap interlockd-mask nginx-proxy haproxy"
#        HTTP_BENCH_PERF=/tmp/http.perf           # perf record the proxy per cell (.PATH.CONNECTIONS)
#   tools/bench/http_bench.sh --smoke          # or HTTP_BENCH_SMOKE=1: every path once, 8
#                                              # connections, 2 s (the ctest bench_smoke run)
#   INTERLOCK_BUILD_DIR=DIR                    # that build's binaries (default: tools/build.sh)
#
# Prints requests/s, p50/p99 latency (wrk --latency) and the proxy's CPU per request
# (utime+stime of its processes over the run, from /proc, divided by requests). Ends
# with the verdict on the targets at 8 connections: interlockd >= nginx-proxy requests/s,
# interlockd CPU/request <= nginx-proxy's; interlockd-mask >= 70% of interlockd's
# requests/s. The machine's cores are shared by wrk, the proxy and nginx: compare paths
# within one run, not across machines. Exits 1 when a path answered no request or answered
# non-2xx; a missed target is only reported.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
smoke="${HTTP_BENCH_SMOKE:-0}"
if [ "${1:-}" = --smoke ]; then smoke=1; shift; fi
if [ "$smoke" = 1 ]; then
  secs="${1:-${HTTP_BENCH_SECONDS:-2}}"; read -ra conns <<<"${HTTP_BENCH_CONNECTIONS:-8}"
else
  secs="${1:-${HTTP_BENCH_SECONDS:-10}}"; read -ra conns <<<"${HTTP_BENCH_CONNECTIONS:-1 8 64}"
fi
read -ra paths <<<"${HTTP_BENCH_PATHS:-direct interlockd interlockd-sockmap interlockd-mask nginx-proxy haproxy}"
[[ "$secs" =~ ^[1-9][0-9]*$ ]] || { echo "bench: SECONDS must be a positive integer" >&2; exit 2; }
for p in "${paths[@]}"; do
  case "$p" in direct | interlockd | interlockd-sockmap | interlockd-mask | nginx-proxy | haproxy) ;; *) echo "bench: bad path '$p'" >&2; exit 2 ;; esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
for b in wrk haproxy /usr/sbin/nginx; do command -v "$b" >/dev/null || { echo "bench: $b not installed (tools/setup.sh)" >&2; exit 1; }; done
build="${INTERLOCK_BUILD_DIR:-$(bash "$here/tools/build.sh")}"
interlockd="$build/userspace/daemon/interlockd"
interlock="$build/tools/interlock/interlock"

work="$(mktemp -d /tmp/interlock-httpbench-XXXXXX)"
chmod 0755 "$work"
suffix="httpbench-$$"
origin=127.0.0.65
proxy_addr=127.0.0.66
nginx_pid=""; proxy_pid=""; daemon_pid=""; broken=0

. "$here/tools/lib/throwaway_pg.sh"  # stop_pid, free_port
. "$here/tools/lib/interlockd.sh"    # start_interlockd, stop_interlockd
cleanup() {
  set +e
  if [ -n "$daemon_pid" ]; then stop_pid "$daemon_pid" TERM; wait "$daemon_pid" 2>/dev/null; fi
  [ -f "$work/cfg.yaml" ] && "$interlock" --config "$work/cfg.yaml" teardown >/dev/null 2>&1
  [ -n "$proxy_pid" ] && stop_pid "$proxy_pid" TERM
  [ -n "$nginx_pid" ] && stop_pid "$nginx_pid" TERM
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
die() { echo "bench: $*" >&2; exit 1; }

# $1 = name, $2 = server block. One nginx process (master_process off), files in $work.
start_nginx() {
  local name="$1" server="$2"
  mkdir -p "$work/$name/tmp"
  cat >"$work/$name/nginx.conf" <<NGINX
daemon off; master_process off; worker_processes 1;
pid $work/$name/nginx.pid; error_log $work/$name/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000; keepalive_timeout 120s;
  client_body_temp_path $work/$name/tmp/b; proxy_temp_path $work/$name/tmp/p;
  fastcgi_temp_path $work/$name/tmp/f; uwsgi_temp_path $work/$name/tmp/u; scgi_temp_path $work/$name/tmp/s;
  $server
}
NGINX
  /usr/sbin/nginx -c "$work/$name/nginx.conf" -e "$work/$name/error.log" >"$work/$name/out.log" 2>&1 &
  echo $!
}

wait_http() {  # $1 = url
  local i
  for i in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done
  echo "bench: $1 never answered" >&2; return 1
}

# CPU seconds (utime+stime) of a process and its threads; $1 = pid.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }

origin_port="$(free_port)"
mkdir -p "$work/www"
/usr/bin/python3 -c "
import json
rows = [{'id': i, 'name': 'customer %d' % i, 'email': 'c%d@example.com' % i, 'tier': 'gold'} for i in range(22)]
s = json.dumps(rows)
print(s[:1023].rsplit('},', 1)[0] + '}]')" >"$work/www/customers.json"
body_bytes="$(stat -c %s "$work/www/customers.json")"
nginx_pid="$(start_nginx origin "server { listen $origin:$origin_port; root $work/www; default_type application/json;
    location = /v1/customers { try_files /customers.json =404; } }")"
wait_http "http://$origin:$origin_port/v1/customers"
[ "$smoke" = 1 ] && smoke_note="; SMOKE RUN (--smoke): checks that every path works, its numbers mean nothing"
echo "origin: nginx on $origin:$origin_port serving a $body_bytes-byte JSON body${smoke_note:-}"

declare -A rps p50 p99 cpu
run_wrk() {  # $1 = path, $2 = connections, $3 = url, $4 = pid whose CPU is the proxy's ("" none), rest = prefix
  local path="$1" c="$2" url="$3" pid="$4"; shift 4
  local threads=$(( c < 2 ? 1 : 2 )) before after out
  "$@" wrk -t"$threads" -c"$c" -d1s "$url" >/dev/null 2>&1 || true  # warm-up
  before="$( [ -n "$pid" ] && cpu_of "$pid" || echo 0)"
  local perf_pid=""
  if [ -n "${HTTP_BENCH_PERF:-}" ] && [ -n "$pid" ]; then  # a profile of the proxy per cell
    perf record -q --call-graph "${HTTP_BENCH_PERF_CALLGRAPH:-dwarf,16384}" -F 1000 \
      -o "$HTTP_BENCH_PERF.$path.$c" -p "$pid" 2>/dev/null &
    perf_pid=$!
  fi
  out="$("$@" wrk -t"$threads" -c"$c" -d"${secs}s" --latency "$url" 2>&1)"
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
  after="$( [ -n "$pid" ] && cpu_of "$pid" || echo 0)"
  local requests; requests="$(awk '/requests in/ {print $1}' <<<"$out")"
  rps[$path,$c]="$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$out")"
  p50[$path,$c]="$(awk '$1 == "50%" {print $2}' <<<"$out")"
  p99[$path,$c]="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  if [ -n "$pid" ] && [ "${requests:-0}" -gt 0 ]; then
    cpu[$path,$c]="$(awk -v a="$after" -v b="$before" -v n="$requests" 'BEGIN {printf "%.1f", (a - b) * 1e6 / n}')"
  else
    cpu[$path,$c]="-"
  fi
  [ "${requests:-0}" -gt 0 ] || { echo "$out" >&2; die "$path at $c connections: no answer"; }
  if grep -q "Non-2xx" <<<"$out"; then
    echo "bench: $path at $c connections got non-2xx answers:" >&2; echo "$out" >&2; broken=1
  fi
  printf '  %-12s %3d conns  %8s req/s  p50 %-9s p99 %-9s proxy CPU %s us/req\n' \
    "$path" "$c" "${rps[$path,$c]}" "${p50[$path,$c]}" "${p99[$path,$c]}" "${cpu[$path,$c]}"
}

for path in "${paths[@]}"; do
  echo "== $path"
  case "$path" in
    direct)
      for c in "${conns[@]}"; do run_wrk direct "$c" "http://$origin:$origin_port/v1/customers" ""; done ;;
    nginx-proxy)
      port="$(free_port)"
      proxy_pid="$(start_nginx proxy "upstream origin { server $origin:$origin_port; keepalive 128; }
  server { listen $proxy_addr:$port; location / { proxy_pass http://origin; proxy_http_version 1.1;
    proxy_set_header Connection \"\"; proxy_set_header Authorization \"Bearer bench-token\"; } }")"
      wait_http "http://$proxy_addr:$port/v1/customers"
      for c in "${conns[@]}"; do run_wrk nginx-proxy "$c" "http://$proxy_addr:$port/v1/customers" "$proxy_pid"; done
      stop_pid "$proxy_pid" TERM; proxy_pid="" ;;
    haproxy)
      port="$(free_port)"
      cat >"$work/haproxy.cfg" <<HA
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend f
  bind $proxy_addr:$port
  http-request set-header Authorization "Bearer bench-token"
  default_backend b
backend b
  server origin $origin:$origin_port
HA
      haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
      proxy_pid=$!
      wait_http "http://$proxy_addr:$port/v1/customers"
      for c in "${conns[@]}"; do run_wrk haproxy "$c" "http://$proxy_addr:$port/v1/customers" "$proxy_pid"; done
      stop_pid "$proxy_pid" TERM; proxy_pid="" ;;
    interlockd | interlockd-sockmap | interlockd-mask)
      umask 077; echo "bench-token" >"$work/token"; umask 022
      relay_mode=RELAY_MODE_PLAIN; [ "$path" = interlockd-sockmap ] && relay_mode=RELAY_MODE_SOCKMAP
      if [ "$path" != interlockd-mask ]; then
        cat >"$work/policy.yaml" <<'YAML'
resources:
  - {resource: api, default_action: ACTION_DENY}
rules:
  - {id: allow-all, match: {resources: [api], http: {}}, action: ACTION_ALLOW}
YAML
      else
        cat >"$work/policy.yaml" <<'YAML'
resources:
  - {resource: api, default_action: ACTION_DENY}
rules:
  - {id: mask-all, match: {resources: [api], http: {}}, action: ACTION_MASK, mask_profile: pii}
mask_profiles:
  - name: pii
    columns: [{column: "email", mask: {style: MASK_STYLE_REDACT}}]
    detectors: [{detector: DETECTOR_CARD}, {detector: DETECTOR_EMAIL}]
YAML
      fi
      cat >"$work/cfg.yaml" <<YAML
listener: {address_v4: 127.0.0.1, address_v6: "::1", port: $(free_port)}
state_dir: $work/state
pin_path: /sys/fs/bpf/interlock-$suffix
cgroup_root: interlock-$suffix
policy_file: $work/policy.yaml
max_sessions: 10000
relay_mode: $relay_mode
resources:
  - name: api
    address: $origin
    port: $origin_port
    protocol: PROTOCOL_HTTP
    http: {credential: {bearer_ref: "file:$work/token"}}
YAML
      start_interlockd "$work/cfg.yaml" "$work/interlockd.log" || exit 1
      if [ "$path" = interlockd-mask ]; then  # the path measured is the one that masks
        "$interlock" --config "$work/cfg.yaml" run --as bench --user nobody -- \
          curl -s "http://$origin:$origin_port/v1/customers" 2>/dev/null | grep -q '\[REDACTED\]' ||
          { echo "bench: interlockd-mask did not mask the body" >&2; exit 1; }
      fi
      for c in "${conns[@]}"; do
        run_wrk "$path" "$c" "http://$origin:$origin_port/v1/customers" "$daemon_pid" \
          "$interlock" --config "$work/cfg.yaml" run --as bench --user nobody --
      done
      stop_interlockd "$work/cfg.yaml" ;;
  esac
done

if [[ " ${paths[*]} " == *" interlockd "* && " ${paths[*]} " == *" nginx-proxy "* ]]; then
  echo "== targets at 8 connections"
  i="${rps[interlockd,8]:-0}"; n="${rps[nginx-proxy,8]:-0}"
  ic="${cpu[interlockd,8]:-0}"; nc="${cpu[nginx-proxy,8]:-0}"
  verdict() { [ "$1" = 1 ] && echo met || echo "NOT met"; }
  echo "  interlockd $i req/s vs nginx-proxy $n req/s: $(verdict "$(awk -v a="$i" -v b="$n" 'BEGIN {print (a >= b)}')")"
  echo "  interlockd $ic us/req vs nginx-proxy $nc us/req CPU: $(verdict "$(awk -v a="$ic" -v b="$nc" 'BEGIN {print (a <= b)}')")"
  if [[ " ${paths[*]} " == *" interlockd-sockmap "* ]]; then
    sk="${rps[interlockd-sockmap,8]:-0}"; skc="${cpu[interlockd-sockmap,8]:-0}"
    echo "  interlockd-sockmap $sk req/s vs nginx-proxy $n req/s: $(verdict "$(awk -v a="$sk" -v b="$n" 'BEGIN {print (a >= b)}')")"
    echo "  interlockd-sockmap $skc us/req vs nginx-proxy $nc us/req CPU: $(verdict "$(awk -v a="$skc" -v b="$nc" 'BEGIN {print (a <= b)}')")"
  fi
  if [[ " ${paths[*]} " == *" interlockd-mask "* ]]; then
    m="${rps[interlockd-mask,8]:-0}"
    echo "  interlockd-mask $m req/s vs 70% of interlockd's: $(verdict "$(awk -v a="$m" -v b="$i" 'BEGIN {print (a >= 0.7 * b)}')")"
  fi
fi
if [ "$broken" = 1 ]; then
  echo "bench: a path answered non-2xx (see above)" >&2
  exit 1
fi
