# Shared by the benchmarks (source it): run interlockd from a build on a config of the
# caller's, and stop it again. Uses the caller's $interlockd and $interlock (binaries).
#
#   . "$here/tools/lib/interlockd.sh"
#   start_interlockd "$work/cfg.yaml" "$work/d.log" || die "interlockd did not start"
#   ...; stop_interlockd "$work/cfg.yaml"

# $1 = config, $2 = log file. Sets daemon_pid; returns once `interlock status` answers,
# or non-zero with the log on stderr when interlockd exits or 15 s pass.
start_interlockd() {
  local cfg="$1" log="$2" i
  "$interlockd" --config "$cfg" >"$log" 2>&1 &
  daemon_pid=$!
  for i in $(seq 1 150); do
    "$interlock" --config "$cfg" status >/dev/null 2>&1 && return 0
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$log" >&2
  return 1
}

# $1 = config. SIGTERM, wait, then remove its pins and cgroups (interlock teardown).
stop_interlockd() {
  kill -TERM "$daemon_pid"
  wait "$daemon_pid" || true
  daemon_pid=""
  "$interlock" --config "$1" teardown >/dev/null
}
