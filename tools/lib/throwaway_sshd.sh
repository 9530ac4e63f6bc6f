# Shared by the SSH demo and benchmark (source it, after throwaway_pg.sh for stop_pid): a
# throwaway OpenSSH sshd, its own keys and config in a work dir, letting in root with the
# login key only (tests use tests/testing/sshd_server.h, the same setup in C++).
#
#   . "$here/tools/lib/throwaway_sshd.sh"
#   start_throwaway_sshd "$work" 127.0.0.81 "$(free_port)" "MaxSessions 100"   # sets sshd_pid
#   # $work/host_key(.pub): the server's key; $work/login_key: root's login key (0600)
#   ...; stop_pid "$sshd_pid" TERM

# $1 = work dir, $2 = listen address, $3 = port, rest = extra sshd_config lines. Sets
# sshd_pid; returns non-zero with the log on stderr when sshd does not start.
start_throwaway_sshd() {
  local work="$1" addr="$2" port="$3" line
  shift 3
  ssh-keygen -q -t ed25519 -N '' -C "throwaway sshd host key" -f "$work/host_key"
  ssh-keygen -q -t ed25519 -N '' -C "throwaway sshd login key" -f "$work/login_key"   # 0600, root's
  cp "$work/login_key.pub" "$work/authorized_keys"
  cat >"$work/sshd_config" <<SSHD
Port $port
ListenAddress $addr
HostKey $work/host_key
PidFile $work/sshd.pid
AuthorizedKeysFile $work/authorized_keys
AllowUsers root
PermitRootLogin prohibit-password
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PrintMotd no
PrintLastLog no
X11Forwarding no
SSHD
  for line in "$@"; do printf '%s\n' "$line" >>"$work/sshd_config"; done
  mkdir -p /run/sshd  # sshd's privilege separation directory (made by its unit otherwise)
  /usr/sbin/sshd -t -f "$work/sshd_config" || return 1
  /usr/sbin/sshd -D -e -f "$work/sshd_config" >"$work/sshd.log" 2>&1 &
  sshd_pid=$!
  for _ in $(seq 1 100); do grep -q 'Server listening' "$work/sshd.log" && return 0; sleep 0.1; done
  cat "$work/sshd.log" >&2
  return 1
}
