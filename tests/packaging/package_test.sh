#!/usr/bin/env bash
# Builds the .deb and the .rpm (packaging/build_packages.sh) and checks them without
# installing anything:
#   - lintian: no error and no warning (pedantic and info tags are printed, not failed on);
#   - rpmlint: no error; warnings only from the accepted list below;
#   - the files a user gets (binaries, unit, man pages, bash completion, copyright,
#     changelog), modes and root ownership, md5sums;
#   - the conffile /etc/interlock/interlock.yaml in both packages (a real conffile, valid
#     for interlockd, with admin_group: interlock and the socket under /run/interlock);
#   - maintainer scripts: deb-systemd-helper/deb-systemd-invoke, no systemctl but the
#     daemon-reload debhelper itself emits, the group created, no stop on upgrade;
#   - the unit passes `systemd-analyze verify` (Exec paths pointed at the extracted tree).
set -euo pipefail
build="$1"
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d /tmp/interlock-pkg-XXXXXX)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

bash "$src/packaging/build_packages.sh" "$build" "$work/out" all >"$work/built"
deb="$(grep '\.deb$' "$work/built")"
rpm="$(grep '\.rpm$' "$work/built")"
[ -f "$deb" ] || fail "no .deb built"
[ -f "$rpm" ] || fail "no .rpm built"

# --- lintian ------------------------------------------------------------------------------
# Suppressed, for a reason: initial-upload-closes-no-bugs is about uploads to the Debian
# archive (an ITP bug to close); this package is not uploaded there.
lintian --no-cfg --display-info --fail-on error,warning \
  --suppress-tags initial-upload-closes-no-bugs "$deb" >"$work/lintian" 2>&1 || {
  cat "$work/lintian"; fail "lintian reported errors or warnings"; }
grep -v 'running with root privileges' "$work/lintian" >"$work/lintian.tags" || true
echo "lintian: $(grep -c '^[EW]:' "$work/lintian.tags" || true) errors/warnings," \
     "$(grep -c '^I:' "$work/lintian.tags" || true) info tags"
sed 's/^/  /' "$work/lintian.tags"

# --- rpmlint ------------------------------------------------------------------------------
# Signed first, as the release pipeline signs: with a throwaway key, in a throwaway rpm
# database and GnuPG home (HOME points rpm at them through ~/.rpmmacros), so that rpmlint's
# signature check sees what a user's rpm would see.
sign="$work/sign"
mkdir -m 0700 "$sign" "$sign/gnupg"
export GNUPGHOME="$sign/gnupg"
gpg --batch --quiet --passphrase '' --quick-gen-key 'Interlock CI <ci@interlock.invalid>' \
  ed25519 sign 1d 2>/dev/null
gpg --batch --armor --export ci@interlock.invalid >"$sign/key.asc"
printf '%%_dbpath %s/rpmdb\n%%__gpg /usr/bin/gpg\n%%_gpg_name ci@interlock.invalid\n' "$sign" \
  >"$sign/.rpmmacros"
HOME="$sign" rpm --initdb
HOME="$sign" rpm --import "$sign/key.asc"
HOME="$sign" rpmsign --addsign "$rpm" </dev/null >/dev/null 2>&1 || fail "rpmsign failed"
gpgconf --kill all
unset GNUPGHOME
# Accepted warnings, each for a reason:
#   invalid-license: LicenseRef-Proprietary is not in rpmlint's list of open licenses.
#   no-manual-page-for-binary: a false positive of rpmlint 2.4.0 (FilesCheck records the
#     man section, not the page's name); the pages are in the package, checked below.
accepted='invalid-license|no-manual-page-for-binary'
HOME="$sign" rpmlint -c "$src/packaging/rpm/rpmlint.toml" "$rpm" >"$work/rpmlint" 2>&1 || true
if grep -q ': E: ' "$work/rpmlint"; then cat "$work/rpmlint"; fail "rpmlint reported errors"; fi
unexpected="$(grep ': W: ' "$work/rpmlint" | grep -Ev "$accepted" || true)"
[ -z "$unexpected" ] || { cat "$work/rpmlint"; fail "rpmlint warnings not on the accepted list"; }
echo "rpmlint: $(tail -n1 "$work/rpmlint")"
grep ': W: ' "$work/rpmlint" | sed 's/^/  accepted: /' || true
rpm -qlp "$rpm" 2>/dev/null >"$work/rpm-files"
for page in man1/interlock.1.gz man8/interlockd.8.gz man5/interlock.yaml.5.gz; do
  grep -qx "/usr/share/man/$page" "$work/rpm-files" || fail "the rpm lacks $page"
done

# --- contents -----------------------------------------------------------------------------
dpkg-deb -x "$deb" "$work/root"
for f in usr/sbin/interlockd usr/bin/interlock lib/systemd/system/interlockd.service \
         lib/systemd/system/interlock-agents.slice \
         etc/interlock/interlock.yaml etc/ssh/ssh_config.d/interlock.conf usr/share/doc/interlock/copyright \
         usr/share/doc/interlock/changelog.Debian.gz \
         usr/share/doc/interlock/interlock.yaml.example usr/share/man/man1/interlock.1.gz \
         usr/share/man/man8/interlockd.8.gz usr/share/man/man5/interlock.yaml.5.gz \
         usr/share/bash-completion/completions/interlock; do
  [ -e "$work/root/$f" ] || fail "missing /$f in $deb"
done
# Every path root:root, directories 0755, programs 0755, everything else 0644.
dpkg-deb -c "$deb" >"$work/listing"
awk '$2 != "root/root" {print}' "$work/listing" | grep . && fail "files not owned by root:root"
awk '$1 ~ /^d/ && $1 != "drwxr-xr-x" {print}' "$work/listing" | grep . && fail "directory not 0755"
awk '$1 ~ /^-/ && $1 != "-rw-r--r--" && $6 !~ /bin\/interlockd?$/ {print}' "$work/listing" |
  grep . && fail "file not 0644"
depends="$(dpkg-deb -f "$deb" Depends)"
grep -q 'libbpf1' <<<"$depends" || fail "Depends lacks libbpf1"
grep -q 'adduser' <<<"$depends" || fail "Depends lacks adduser"
(cd "$work/root" && dpkg-deb -I "$deb" md5sums | md5sum --quiet -c -) || fail "md5sums do not match"
deb_version="$(dpkg-deb -f "$deb" Version)"
[ "$("$work/root/usr/bin/interlock" --version)" = "interlock ${deb_version%-*}" ] ||
  fail "interlock --version does not match the package version"

# --- conffiles ----------------------------------------------------------------------------
[ "$(dpkg-deb -I "$deb" conffiles)" = "$(printf '%s\n' /etc/interlock/interlock.yaml /etc/ssh/ssh_config.d/interlock.conf)" ] ||
  fail "conffiles is not exactly /etc/interlock/interlock.yaml and /etc/ssh/ssh_config.d/interlock.conf"
cmp -s "$src/packaging/etc/ssh/interlock.conf" "$work/root/etc/ssh/ssh_config.d/interlock.conf" ||
  fail "the deb's /etc/ssh/ssh_config.d/interlock.conf is not packaging/etc/ssh/interlock.conf"
# OpenSSH accepts the include (-G parses the configuration and prints it).
ssh -G -F "$work/root/etc/ssh/ssh_config.d/interlock.conf" localhost >/dev/null ||
  fail "ssh does not accept /etc/ssh/ssh_config.d/interlock.conf"
conf="$work/root/etc/interlock/interlock.yaml"
"$work/root/usr/sbin/interlockd" --check-config --syntax-only --config "$conf" >/dev/null
grep -qx 'admin_group: interlock' "$conf" || fail "the conffile does not set admin_group: interlock"
grep -qx 'control_socket: /run/interlock/control.sock' "$conf" ||
  fail "the conffile does not put the control socket in /run/interlock"
[ "$(rpm -qp --configfiles "$rpm" 2>/dev/null)" = "$(printf '%s\n' /etc/interlock/interlock.yaml /etc/ssh/ssh_config.d/interlock.conf)" ] ||
  fail "the rpm's config files are not exactly /etc/interlock/interlock.yaml and /etc/ssh/ssh_config.d/interlock.conf"
rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm" 2>/dev/null >"$work/rpm-flags"
grep -qx 'cn /etc/interlock/interlock.yaml' "$work/rpm-flags" || fail "the rpm's conffile is not %config(noreplace)"
grep -qx 'cn /etc/ssh/ssh_config.d/interlock.conf' "$work/rpm-flags" || fail "the rpm's ssh include is not %config(noreplace)"
rpm2cpio "$rpm" | (mkdir "$work/rpmroot" && cd "$work/rpmroot" && cpio -idm --quiet)
cmp -s "$conf" "$work/rpmroot/etc/interlock/interlock.yaml" || fail "the two packages' conffiles differ"

# --- maintainer scripts -------------------------------------------------------------------
for s in preinst postinst prerm postrm; do
  dpkg-deb -I "$deb" "$s" >"$work/$s" || fail "missing maintainer script $s"
  sh -n "$work/$s" || fail "$s: syntax error"
  # The only systemctl call allowed is the daemon-reload dh_installsystemd itself emits.
  grep -n 'systemctl' "$work/$s" | grep -v '^[0-9]*:\s*#' |
    grep -v 'systemctl --system daemon-reload >/dev/null || true' && fail "$s calls systemctl"
  grep -q 'cp .*/usr/share/doc' "$work/$s" && fail "$s copies configuration out of /usr/share/doc"
done
grep -q "deb-systemd-helper enable 'interlockd.service'" "$work/postinst" || fail "postinst does not enable with deb-systemd-helper"
grep -q "deb-systemd-invoke \$_dh_action 'interlockd.service'" "$work/postinst" || fail "postinst does not start/restart with deb-systemd-invoke"
grep -q 'addgroup --system --quiet interlock' "$work/postinst" || fail "postinst does not create the interlock group"
grep -q "deb-systemd-helper purge 'interlockd.service'" "$work/postrm" || fail "postrm does not purge the unit's state"
# prerm stops the service on removal only: every stop is under [ "$1" = remove ].
grep -n 'stop' "$work/prerm" | grep -v '^[0-9]*:\s*#' | grep -q 'deb-systemd-invoke stop' || fail "prerm never stops on removal"
sed -n '/deb-systemd-invoke stop/{x;p;d}; x' "$work/prerm" | grep -q '"$1" = remove' || fail "prerm stops the service other than on removal"
rpm -qp --scripts "$rpm" 2>/dev/null >"$work/rpm-scripts"
grep -q 'groupadd -r interlock' "$work/rpm-scripts" || fail "the rpm does not create the interlock group"
grep -q 'try-restart interlockd.service' "$work/rpm-scripts" || fail "the rpm does not try-restart after an upgrade"
# Upgrades hand the running daemon over to the new binary first (userspace/daemon/handover.h).
grep -q 'interlock upgrade' "$work/postinst" || fail "postinst does not hand over with interlock upgrade"
grep -q 'interlock upgrade' "$work/rpm-scripts" || fail "the rpm's %post does not hand over with interlock upgrade"

# --- the unit -----------------------------------------------------------------------------
unit="$work/root/lib/systemd/system/interlockd.service"
grep -qx 'Type=notify' "$unit" || fail "the unit is not Type=notify"
grep -q '^WatchdogSec=' "$unit" || fail "the unit has no WatchdogSec="
grep -qx 'NotifyAccess=all' "$unit" || fail "the unit lets only the main pid notify (a handed-over daemon says MAINPID=)"
sed "s#/usr/sbin/interlockd#$work/root/usr/sbin/interlockd#g" "$unit" >"$work/interlockd.service"
# --man=no: the man pages it names are in the package, not installed on this machine.
out="$(systemd-analyze verify --man=no "$work/interlockd.service" 2>&1 || true)"
[ -z "$out" ] || { echo "$out"; fail "systemd-analyze verify reported problems"; }
score="$(systemd-analyze security --offline=yes "$work/interlockd.service" 2>/dev/null | tail -n1 || true)"
echo "systemd-analyze security: ${score:-unavailable}"
echo "packages ok: $(basename "$deb") $(basename "$rpm")"
