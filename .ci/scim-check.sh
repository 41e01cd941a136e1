#!/usr/bin/env bash
# Starts the built daemon on a free port with a fresh data directory and runs the
# scim2-tester compliance checks against it. Fails on any failed check.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${COWORK_TOOLS_CACHE:-$HOME/.cache/cowork-sync-tools}"
venv="$cache/ci-venv"
stamp="$venv/.req-$(sha256sum .ci/scim-check-requirements.txt | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r .ci/scim-check-requirements.txt
  touch "$stamp"
fi
cargo build -q
bin="${CARGO_TARGET_DIR:-target}/debug/cowork-sync"
data=$(mktemp -d)
log="$data/daemon.log"
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
COWORK_SYNC__SERVER__LISTEN=127.0.0.1:0 COWORK_SYNC__STORAGE__DATA_DIR="$data" COWORK_SYNC__LOG__LEVEL=info \
  "$bin" serve >"$data/stdout" 2>"$log" &
pid=$!
for _ in $(seq 1 300); do
  grep -q "serving SCIM at" "$log" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
base=$(grep -o 'serving SCIM at [^ ]*' "$log" | head -1 | awk '{print $4}')
token=$(COWORK_SYNC__STORAGE__DATA_DIR="$data" "$bin" token mint --scope scim --subject scim-check)
"$venv/bin/python" .ci/scim_check.py "$base" "$token"
