#!/usr/bin/env bash
# Create .venv and install Shipyard with its development tools; a no-op when nothing changed.
# Also installs bubblewrap (the strongest sandbox layer) where the platform allows; without
# it Shipyard falls back to weaker layers and says so in every IsolationReport. As root it
# also installs slirp4netns (outbound network for a setup a person approved) and Debian's
# chromium, which the console's browser tests drive.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
stamp=.venv/.installed
want=$(cat pyproject.toml scripts/setup.sh | "$PY" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/shipyard ]; then
  exit 0
fi
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "Shipyard needs Python >= 3.11 (found $("$PY" --version 2>&1))" >&2; exit 1; }
command -v git >/dev/null || { echo "Shipyard needs git" >&2; exit 1; }
echo "setting up .venv (first run only)..." >&2
[ -x .venv/bin/python ] || "$PY" -m venv .venv
quiet() {  # drop pip's notes about this machine's unused local index folders
  "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
}
quiet .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
quiet .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
# system_package PROGRAM PACKAGE WHAT: install PACKAGE with apt when PROGRAM is missing and
# this runs as root; otherwise say what goes without it (WHAT).
system_package() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq "$2") >/dev/null 2>&1 \
      || echo "note: could not install $2; $3" >&2
  else
    echo "note: $1 not found; $3 (apt-get install $2)" >&2
  fi
}
# bubblewrap: the strongest sandbox layer.
system_package bwrap bubblewrap "the sandbox will use weaker layers"
# slirp4netns: outbound network for an approved environment setup, in a namespace of its
# own (never the host's).
system_package slirp4netns slirp4netns "a setup that asks for the network fails, saying why"
# Debian's Chromium, driven by the console's browser tests.
system_package chromium chromium "the console's browser tests will skip"
echo "$want" > "$stamp"
