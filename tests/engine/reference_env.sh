#!/bin/sh
# Create (once) the virtualenv holding the reference engine, flagsmith-flag-engine 10.2.0, and
# print its interpreter. It is separate from the project's venv, whose SDK needs engine 11.
set -eu
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${ENSIGN_REFERENCE_VENV:-$root/.venv-ref}"
python="$venv/bin/python"
if ! "$python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("flagsmith-flag-engine") != "10.2.0")' 2>/dev/null; then
    "$root/scripts/uv" venv -q "$venv" >&2
    "$root/scripts/uv" pip install -q --python "$python" "flagsmith-flag-engine==10.2.0" >&2
fi
echo "$python"
