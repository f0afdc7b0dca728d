#!/usr/bin/env bash
# Create .venv and install Shipyard with its development tools. Idempotent.
# Also installs bubblewrap (the strongest sandbox layer) where the platform allows;
# without it Shipyard falls back to weaker layers and says so in every IsolationReport.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "Shipyard needs Python >= 3.11 (found $("$PY" --version))" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq bubblewrap) >/dev/null 2>&1 \
      || echo "note: could not install bubblewrap; the sandbox will use weaker layers" >&2
  else
    echo "note: bubblewrap (bwrap) not found; install it for the strongest sandbox layer" >&2
  fi
fi
