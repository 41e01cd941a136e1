#!/usr/bin/env bash
# cowork-sync against the Python reference server scim2-server, in one run, with the
# shared load generator scimload; prints the design §7 table (see bench/README.md).
#
#   bench/scim.sh            # the default bench, a few minutes
#   bench/scim.sh --scale    # then the opt-in scaling benches (bench/scale.sh)
#
# Needs: cargo, python3 (with venv, pip access to PyPI), curl, and scimload from
# ../shared/tools (or SCIMLOAD=/path/to/scimload).
# Env: USERS GETS FILTERS GROUP_MEMBERS PATCH_BATCH CONCURRENCY LONE_USERS (workload sizes),
#      COWORK_SYNC_BIN (skip the build), BENCH_TARGET_DIR (cargo target dir for the build),
#      NO_REFERENCE=1 (cowork-sync only, no ratios), BENCH_KEEP_DATA=1.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCALE=0
for arg in "$@"; do
  case "$arg" in
    --scale) SCALE=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) die "unknown argument $arg (try --help)" ;;
  esac
done

USERS=${USERS:-5000}
GETS=${GETS:-5000}
FILTERS=${FILTERS:-5000}
GROUP_MEMBERS=${GROUP_MEMBERS:-10000}
PATCH_BATCH=${PATCH_BATCH:-100}
CONCURRENCY=${CONCURRENCY:-8}
LONE_USERS=${LONE_USERS:-500}
NO_REFERENCE=${NO_REFERENCE:-0}

bench_init scim
build_cowork
find_scimload
[ "$NO_REFERENCE" = "1" ] || install_scim2_server

load_args=(-w create,get,filter,list,groups -c "$CONCURRENCY" --users "$USERS" --gets "$GETS"
  --filters "$FILTERS" --group-members "$GROUP_MEMBERS" --patch-batch "$PATCH_BATCH"
  --max-seconds 300 --prefix bench)
# Lone writes: creates one at a time, for the p50 of a create nobody waits behind.
lone_args=(-w create -c 1 --users "$LONE_USERS" --max-seconds 120 --prefix lone)

# One server at a time, so neither competes with the other for the two cores.
start_cowork cowork-sync
log "scimload against cowork-sync"
"$SCIMLOAD" -u "$CS_URL" -t "$CS_TOKEN" "${load_args[@]}" --label cowork-sync \
  --json "$OUT/cowork-sync.json" 2>&1 | tee "$OUT/cowork-sync.log" >&2 || true
"$SCIMLOAD" -u "$CS_URL" -t "$CS_TOKEN" "${lone_args[@]}" --label cowork-sync \
  --json "$OUT/cowork-sync.lone.json" 2>&1 | tee -a "$OUT/cowork-sync.log" >&2 || true
read -r rss hwm cpu < <(proc_stats "$CS_PID")
du_kib=$(du -sk "$CS_DATA" | cut -f1)
printf '{"rss_kib": %s, "hwm_kib": %s, "cpu_s": %s, "disk_kib": %s}\n' "$rss" "$hwm" "$cpu" "$du_kib" \
  >"$OUT/cowork-sync.proc.json"
stop_server "$CS_PID"

report_args=("$OUT/cowork-sync.json")
if [ "$NO_REFERENCE" != "1" ]; then
  start_scim2 scim2-server
  log "scimload against scim2-server (about two minutes: it is slow)"
  "$SCIMLOAD" -u "$S2_URL" -t "$S2_TOKEN" "${load_args[@]}" --label scim2-server \
    --json "$OUT/scim2-server.json" 2>&1 | tee "$OUT/scim2-server.log" >&2 || true
  "$SCIMLOAD" -u "$S2_URL" -t "$S2_TOKEN" "${lone_args[@]}" --label scim2-server \
    --json "$OUT/scim2-server.lone.json" 2>&1 | tee -a "$OUT/scim2-server.log" >&2 || true
  read -r rss hwm cpu < <(proc_stats "$S2_PID")
  printf '{"rss_kib": %s, "hwm_kib": %s, "cpu_s": %s}\n' "$rss" "$hwm" "$cpu" \
    >"$OUT/scim2-server.proc.json"
  stop_server "$S2_PID"
  report_args+=("$OUT/scim2-server.json")
fi

python3 "$BENCH_DIR/report.py" scim "${report_args[@]}" | tee "$OUT/summary.md"
log "reports in $OUT"

if [ "$SCALE" = "1" ]; then
  COWORK_SYNC_BIN="$COWORK_BIN" SCIMLOAD="$SCIMLOAD" "$BENCH_DIR/scale.sh"
fi
