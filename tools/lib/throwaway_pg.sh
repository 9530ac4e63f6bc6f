# Shared by the benchmarks and the demo (source it): stopping processes we started, a free
# loopback port, and a throwaway PostgreSQL 15 in a temp dir.
#
#   . "$here/tools/lib/throwaway_pg.sh"
#   port="$(free_port)"
#   start_throwaway_pg "$work" 127.0.0.49 "$port" "fsync = off"   # sets pg_pid
#   ...; stop_pid "$pg_pid" INT

pgbin=/usr/lib/postgresql/15/bin

# $1 = pid, $2 = signal; waits up to 15 s, then SIGKILL.
stop_pid() {
  local pid="$1" i
  kill -"$2" "$pid" 2>/dev/null || return 0
  for i in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

# A TCP port nobody on this host uses now.
free_port() {
  # Below the kernel's ephemeral range (ip_local_port_range), so that no client connection
  # can take the port between this check and the bind; free in every state (a connection's
  # local port blocks a listener's bind as much as a listener does).
  local p low
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range
  [ "$low" -gt 21000 ] || low=50000
  while :; do
    p=$(( 20000 + RANDOM % (low - 20000) ))
    ss -Htan "( sport = :$p or dport = :$p )" | grep -q . || { echo "$p"; return; }
  done
}

# $1 = work dir (data in $1/data, socket and log in $1/sock), $2 = listen address,
# $3 = port, rest = extra postgresql.conf lines. SCRAM over TCP, trust on the socket.
# With PG_NETNS set, the server runs in that network namespace (a "remote" database
# behind a veth pair the caller made) and accepts SCRAM from the namespace's own subnets
# (`samenet`) instead of 127.0.0.0/8. The Unix socket is a path: reachable from the host.
# Sets pg_pid (the postmaster) for the caller's cleanup; returns non-zero with the log on
# stderr when the server does not start.
start_throwaway_pg() {
  local work="$1" addr="$2" port="$3" line hba_net=127.0.0.0/8 in_ns=(); shift 3
  if [ -n "${PG_NETNS:-}" ]; then in_ns=(ip netns exec "$PG_NETNS"); hba_net=samenet; fi
  mkdir -m 0700 "$work/data" && mkdir -m 0755 "$work/sock"
  chown postgres: "$work/data" "$work/sock"
  runuser -u postgres -- "$pgbin/initdb" -D "$work/data" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 -E UTF8 --no-sync >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; return 1; }
  printf 'local all all trust\nhost all all %s scram-sha-256\n' "$hba_net" >"$work/data/pg_hba.conf"
  {
    printf "listen_addresses = '%s'\nport = %s\nunix_socket_directories = '%s'\n" "$addr" "$port" "$work/sock"
    for line in "$@"; do printf '%s\n' "$line"; done
  } >>"$work/data/postgresql.conf"
  "${in_ns[@]}" runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/data" -l "$work/sock/postgres.log" -w -t 60 start >/dev/null \
    || { cat "$work/sock/postgres.log" >&2; return 1; }
  pg_pid="$(head -1 "$work/data/postmaster.pid")"
}
