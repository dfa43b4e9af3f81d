#!/bin/sh
# Fails when C sources call a function STYLE.md bans.
set -eu
cd "$(dirname "$0")/.."
pat='\<(sprintf|strcpy|strcat|strtok|atoi|atol|gets|system|popen)[[:space:]]*\('
hits=$(grep -nE "$pat" lib/*.c lib/*.h */*.c */*.h integrations/*/*.c tests/unit/*.c 2>/dev/null | grep -v 'banned-ok' || true)
if [ -n "$hits" ]; then
    echo "banned functions used:" >&2
    echo "$hits" >&2
    exit 1
fi
