#!/usr/bin/env bash
# The build's man pages (interlock(1), interlockd(8), interlock.yaml(5)) render without
# warnings and say what the binaries and config.proto say; the bash completion offers
# every command and each command's flags. $1 = the build directory.
set -euo pipefail
build="$1"
docs="$build/docs"
fail() { echo "docs_test: $*" >&2; exit 1; }

commands=(run status sessions replay verify report teardown approvals approve deny grant grants
          revoke reload auditor-keygen ca ssh assertion-key enroll unenroll upgrade)

render() {  # $1 = page; prints the text, fails on any groff/man warning
  local err
  err="$(MANWIDTH=100 man --warnings -l "$1" 2>&1 >/dev/null)" || fail "man -l $1 failed: $err"
  [ -z "$err" ] || fail "man --warnings -l $1: $err"
  MANWIDTH=100 man -l "$1" 2>/dev/null | col -b
}

for page in interlock.1 interlockd.8 interlock.yaml.5; do
  [ -s "$docs/$page" ] || fail "missing $docs/$page"
done

text="$(render "$docs/interlock.1")"
grep -q "interlock - the administrator's command line for interlockd" <<<"$text" || fail "interlock.1: NAME"
for c in "${commands[@]}" "ca init" "ca show" "ca bundle" "assertion-key init" "assertion-key show"; do
  grep -Eq "^   interlock $c\$" <<<"$text" || fail "interlock.1: no section for '$c'"
done
for flag in --as --preserve-fds --token-file --unseal --asciicast --audit-file --format --reason --for \
            --state-dir; do
  grep -q -- "$flag" <<<"$text" || fail "interlock.1: no $flag"
done
version="$("$build/tools/interlock/interlock" --version)"
grep -q "$version" <<<"$text" || fail "interlock.1: not the version of the binary ($version)"

text="$(render "$docs/interlockd.8")"
for flag in --config --check-config --syntax-only --verbose --version; do
  grep -q -- "$flag" <<<"$text" || fail "interlockd.8: no $flag"
done

text="$(render "$docs/interlock.yaml.5")"
# Every field of the root message, and an enum value with its comment.
fields="$(sed -n '/^message Config {/,/^}/p' "$(dirname "$0")/../../../../schemas/interlock/v1/config.proto" |
          sed -n 's/^  [a-zA-Z0-9_.<>, ]* \([a-z_0-9]*\) = [0-9]*;.*/\1/p')"
[ "$(wc -l <<<"$fields")" -ge 19 ] || fail "could not read Config's fields from config.proto"
for f in $fields; do
  grep -Eq "^       $f \(" <<<"$text" || fail "interlock.yaml.5: no field $f"
done
grep -q "RELAY_MODE_SOCKMAP" <<<"$text" || fail "interlock.yaml.5: no RELAY_MODE_SOCKMAP"
grep -Eq "sk_msg +splices +agent" <<<"$text" || fail "interlock.yaml.5: enum comments missing"

# Completion: what bash offers after "interlock ", "interlock approve --", ...
# shellcheck source=/dev/null
source "$docs/interlock.bash"
complete_words() {  # the words typed so far; the last one is being completed
  COMP_WORDS=("$@")
  COMP_CWORD=$(($# - 1))
  COMPREPLY=()
  _interlock
  printf '%s\n' "${COMPREPLY[@]}" | sort
}
offered="$(complete_words interlock "")"
[ "$offered" = "$(printf '%s\n' "${commands[@]}" | sort)" ] ||
  fail "completion of 'interlock ': got $(tr '\n' ' ' <<<"$offered")"
[ "$(complete_words interlock --config /etc/x.yaml ap)" = "$(printf 'approvals\napprove')" ] ||
  fail "completion after --config PATH"
offered="$(complete_words interlock approve apr-1 --)"
for flag in --reason --for --json --help --config; do
  grep -qx -- "$flag" <<<"$offered" || fail "completion of 'interlock approve --': no $flag"
done
grep -qx -- "--as" <<<"$offered" && fail "completion of 'interlock approve --' offers run's --as"
[ "$(complete_words interlock ca "")" = "$(printf 'bundle\ninit\nshow')" ] || fail "completion of 'interlock ca '"
offered="$(complete_words interlock ca bundle --)"
grep -qx -- "--out" <<<"$offered" || fail "completion of 'interlock ca bundle --': no --out"
[ "$(complete_words interlock report --format "")" = "$(printf 'html\njson\nmd')" ] ||
  fail "completion of 'interlock report --format '"
# After run's "--", the words are CMD's: no interlock flags.
[ -z "$(complete_words interlock run --as a -- ls --)" ] || fail "completion inside run's CMD"
echo "docs ok"
