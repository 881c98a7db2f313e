#!/usr/bin/env bash
# Build, once, the Debian sid chroot the Asterisk tests run a real PBX from.
#
# Debian bookworm has no asterisk package; sid has 22.x (res_agi, chan_pjsip). The chroot is
# cached outside the repository so every test run and every CI run on this machine reuses it;
# a marker file is written last, so a half-built chroot is never taken for a finished one.
#
#   tests/asterisk/chroot.sh            build if absent, print the chroot's path
#   METERLINE_ASTERISK_CHROOT=DIR ...   build somewhere else
#
# Needs root and debootstrap; reaches only the Debian mirror this machine's apt uses.
set -euo pipefail

dir="${METERLINE_ASTERISK_CHROOT:-/var/cache/meterline/asterisk-sid}"
marker="$dir/.meterline-complete"
packages="asterisk asterisk-modules asterisk-core-sounds-ru-gsm"

if [ -f "$marker" ]; then
  echo "$dir"
  exit 0
fi

# The Debian mirror configured for apt here (deb822 or one-line format), else the default.
mirror="$(
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'
  } | grep -v -e security -e '^$' | grep -i debian | head -n1 || true
)"
mirror="${mirror:-http://deb.debian.org/debian}"

mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9
if [ -f "$marker" ]; then # another run finished it while we waited
  echo "$dir"
  exit 0
fi

started=$(date +%s)
work="$dir.partial"
cleanup() {
  umount "$work/proc" 2>/dev/null || true
}
trap cleanup EXIT
rm -rf "$work" "$dir"
echo "building the Asterisk chroot from $mirror into $dir" >&2
debootstrap --variant=minbase sid "$work" "$mirror" >&2

# Services must not start inside the chroot while packages install.
printf '#!/bin/sh\nexit 101\n' >"$work/usr/sbin/policy-rc.d"
chmod +x "$work/usr/sbin/policy-rc.d"
mount -t proc proc "$work/proc"
chroot "$work" apt-get -o Acquire::Check-Valid-Until=false -qq update >&2
DEBIAN_FRONTEND=noninteractive chroot "$work" apt-get -o Acquire::Check-Valid-Until=false \
  install -y -qq --no-install-recommends $packages >&2
chroot "$work" apt-get clean
umount "$work/proc"

mv "$work" "$dir"
echo "built $(date -u +%FT%TZ) in $(($(date +%s) - started)) s: $packages" >"$marker"
echo "$dir"
