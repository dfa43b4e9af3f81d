#!/bin/sh
# Installs the Debian packages Drover builds and tests with, when missing.
# Idempotent: does nothing when everything is present.
set -eu
PKGS="build-essential pkg-config libpq-dev libev-dev libssl-dev libcurl4-openssl-dev
libjansson-dev libhwloc-dev libhttp-parser-dev postgresql python3 openssl"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing packages:$missing" >&2
    echo "deps.sh: run as root: apt-get update && apt-get install -y$missing" >&2
    exit 1
fi
echo "deps.sh: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
