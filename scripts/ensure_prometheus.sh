#!/usr/bin/env bash
# promtool checks the alerting rules (deploy/prometheus/) and the dashboard test runs a real
# Prometheus server: both come with Debian's prometheus package; install it if missing. The
# package's own service is not wanted (the tests start the server themselves): where no
# policy-rc.d forbids starting services, one is put in place for the install and removed after.
set -euo pipefail
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing prometheus and promtool (Debian package) ..." >&2
policy=/usr/sbin/policy-rc.d
ours=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  ours=yes
fi
trap '[ -z "$ours" ] || $sudo rm -f "$policy"' EXIT
$sudo apt-get update -qq >/dev/null
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v promtool >/dev/null && command -v prometheus >/dev/null
