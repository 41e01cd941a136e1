# Shared pieces of bench/scim.sh and bench/scale.sh: build, locate tools, start and stop
# servers. Sourced, not run. Every server started here is recorded in BENCH_PIDS and
# stopped by bench_cleanup (installed as an EXIT/INT/TERM trap by bench_init).

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
TOOLS_CACHE="${COWORK_TOOLS_CACHE:-$HOME/.cache/cowork-sync-tools}"
SCIM2_SERVER_VERSION="${SCIM2_SERVER_VERSION:-0.8.3}"
BENCH_PIDS=()
BENCH_TMP=""

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 2; }

bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${BENCH_PIDS[@]}"; do
    # Give each server a few seconds to exit cleanly, then insist.
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  BENCH_PIDS=()
  if [ -n "$BENCH_TMP" ] && [ "${BENCH_KEEP_DATA:-0}" != "1" ]; then
    rm -rf "$BENCH_TMP"
  fi
}

# bench_init NAME: output directory bench/out/NAME-<timestamp> (OUT), scratch space
# (BENCH_TMP, deleted on exit unless BENCH_KEEP_DATA=1), cleanup trap.
bench_init() {
  command -v python3 >/dev/null || die "python3 is required"
  command -v curl >/dev/null || die "curl is required"
  OUT="$BENCH_DIR/out/$1-$(date +%Y%m%d-%H%M%S)"
  mkdir -p "$OUT"
  ln -sfn "$(basename "$OUT")" "$BENCH_DIR/out/latest-$1"
  BENCH_TMP="$(mktemp -d "${BENCH_DATA_ROOT:-${TMPDIR:-/tmp}}/cowork-bench.XXXXXX")"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  {
    echo "date: $(date -Is)"
    echo "host: $(uname -srm), $(nproc) cpus"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "commit: $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO_DIR" diff --quiet 2>/dev/null || echo ' (dirty)')"
  } >"$OUT/machine.txt"
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  if python3 -c "import sys; sys.exit(0 if float('$load') > 1.0 else 1)"; then
    log "warning: load average is $load before the bench starts; figures will be noisy"
  fi
}

# Sets COWORK_BIN: $COWORK_SYNC_BIN if given, else builds the release binary.
build_cowork() {
  if [ -n "${COWORK_SYNC_BIN:-}" ]; then
    [ -x "$COWORK_SYNC_BIN" ] || die "COWORK_SYNC_BIN=$COWORK_SYNC_BIN is not executable"
    COWORK_BIN="$COWORK_SYNC_BIN"
    return
  fi
  local target="${BENCH_TARGET_DIR:-${CARGO_TARGET_DIR:-$REPO_DIR/target}}"
  log "building cowork-sync (release) in $target"
  CARGO_TARGET_DIR="$target" cargo build --release --quiet --manifest-path "$REPO_DIR/Cargo.toml" \
    || die "cargo build --release failed"
  COWORK_BIN="$target/release/cowork-sync"
}

# Sets SCIMLOAD: $SCIMLOAD if given, else the shared tools' wrapper next to the checkout.
find_scimload() {
  local c
  for c in "${SCIMLOAD:-}" "$REPO_DIR/../shared/tools/scimload" "$REPO_DIR/../../shared/tools/scimload"; do
    if [ -n "$c" ] && [ -x "$c" ]; then
      SCIMLOAD="$c"
      # The wrapper builds scimload on first use; do it now, untimed.
      "$SCIMLOAD" --help >/dev/null || die "$SCIMLOAD does not run"
      return
    fi
  done
  die "scimload not found: set SCIMLOAD=/path/to/scimload (it lives in ../shared/tools/)"
}

# Sets SCIM2_BIN, installing scim2-server into its own venv on first use.
install_scim2_server() {
  local venv="$TOOLS_CACHE/scim2-server-venv"
  local stamp="$venv/.scim2-server-$SCIM2_SERVER_VERSION"
  if [ ! -f "$stamp" ]; then
    log "installing scim2-server==$SCIM2_SERVER_VERSION into $venv"
    mkdir -p "$TOOLS_CACHE"
    python3 -m venv "$venv" >/dev/null \
      && "$venv/bin/pip" install -q "scim2-server==$SCIM2_SERVER_VERSION" >&2 \
      && touch "$stamp" \
      || die "could not install scim2-server into $venv"
  fi
  SCIM2_BIN="$venv/bin/scim2-server"
}

# wait_http URL SECONDS [PID]: until URL answers (any HTTP status); fails if PID exits.
wait_http() {
  local url=$1 secs=$2 pid=${3:-}
  local deadline=$((SECONDS + secs))
  while [ $SECONDS -lt $deadline ]; do
    if curl -s -o /dev/null --max-time 2 "$url"; then
      return 0
    fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    sleep 0.2
  done
  return 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_cowork NAME: a fresh cowork-sync on a free port with its own data dir.
# Sets CS_PID, CS_URL (the SCIM base), CS_TOKEN, CS_DATA.
start_cowork() {
  local name=$1 port
  port=$(free_port)
  CS_DATA="$BENCH_TMP/$name-data"
  mkdir -p "$CS_DATA"
  env -u RUST_LOG \
    COWORK_SYNC__SERVER__LISTEN="127.0.0.1:$port" \
    COWORK_SYNC__STORAGE__DATA_DIR="$CS_DATA" \
    COWORK_SYNC__SERVER__RATE_LIMIT_PER_SECOND=0 \
    COWORK_SYNC__LOG__LEVEL=warn \
    "$COWORK_BIN" serve >"$OUT/$name.stdout" 2>"$OUT/$name.stderr" &
  CS_PID=$!
  BENCH_PIDS+=("$CS_PID")
  wait_http "http://127.0.0.1:$port/healthz" 30 "$CS_PID" \
    || die "cowork-sync did not start (see $OUT/$name.stderr)"
  CS_URL="http://127.0.0.1:$port/scim/v2"
  CS_TOKEN=$(sed -n '/^SCIM token/{n;p;q}' "$OUT/$name.stdout")
  if [ -z "$CS_TOKEN" ]; then
    CS_TOKEN=$(env COWORK_SYNC__STORAGE__DATA_DIR="$CS_DATA" "$COWORK_BIN" token mint --scope scim) \
      || die "could not mint a SCIM token"
  fi
  # The token is a secret of a throwaway data dir, but keep it out of the saved output.
  sed -i '/^ey/d' "$OUT/$name.stdout"
  log "cowork-sync ($name) pid $CS_PID at $CS_URL"
}

# start_scim2 NAME: the Python reference server, in memory. Sets S2_PID, S2_URL, S2_TOKEN.
start_scim2() {
  local name=$1 port
  port=$(free_port)
  S2_TOKEN="bench-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
  "$SCIM2_BIN" --hostname 127.0.0.1 --port "$port" --bearer-token "$S2_TOKEN" \
    >"$OUT/$name.stdout" 2>"$OUT/$name.stderr" &
  S2_PID=$!
  BENCH_PIDS+=("$S2_PID")
  wait_http "http://127.0.0.1:$port/v2/ServiceProviderConfig" 30 "$S2_PID" \
    || die "scim2-server did not start (see $OUT/$name.stderr)"
  S2_URL="http://127.0.0.1:$port/v2"
  log "scim2-server ($name) pid $S2_PID at $S2_URL"
}

# stop_server PID: stops one server started here and forgets it.
stop_server() {
  local pid=$1 keep=() p
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${BENCH_PIDS[@]}"; do
    [ "$p" = "$pid" ] || keep+=("$p")
  done
  BENCH_PIDS=("${keep[@]}")
}

# proc_stats PID: "rss_kib hwm_kib cpu_seconds" of a running process.
proc_stats() {
  local pid=$1 rss hwm ticks
  rss=$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status")
  hwm=$(awk '/^VmHWM:/{print $2}' "/proc/$pid/status")
  ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  echo "$rss $hwm $(python3 -c "print(round($ticks / $(getconf CLK_TCK), 2))")"
}
