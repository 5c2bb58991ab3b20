#!/bin/sh
# Install Debian's chromium for the HTML report's browser test. Idempotent: does nothing when a
# chromium binary is already on PATH. Needs root (or sudo) and access to the Debian package mirror.
set -eu
for bin in chromium chromium-browser; do
    if command -v "$bin" >/dev/null 2>&1; then
        echo "install_chromium: $bin already installed ($("$bin" --version 2>/dev/null || echo unknown version))"
        exit 0
    fi
done
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install_chromium: need root or sudo to apt-get install chromium" >&2; exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium >/dev/null 2>&1 && chromium --version
