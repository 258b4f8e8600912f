#!/usr/bin/env bash
# kcat is the independent Kafka client the tests read topics with; install it from Debian if missing.
set -euo pipefail
command -v kcat >/dev/null 2>&1 && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing kcat (Debian package) ..." >&2
$sudo apt-get update -qq >/dev/null
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
command -v kcat >/dev/null
