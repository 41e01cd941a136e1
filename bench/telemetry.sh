#!/usr/bin/env bash
# The cost of telemetry on a SCIM write: creates with `[telemetry]` off and on (exporting
# traces, metrics and audit records to a do-nothing OTLP receiver, bench/otlp_sink.py),
# at concurrency 1 and 8, alternating off/on for ROUNDS rounds on fresh data directories.
# Prints one table; see bench/README.md ("Telemetry cost").
#
# Needs: cargo (or COWORK_SYNC_BIN), python3, curl, scimload (../shared/tools or SCIMLOAD).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS="${ROUNDS:-2}"
USERS="${USERS:-3000}"            # creates at concurrency 8
LONE_USERS="${LONE_USERS:-500}"   # creates at concurrency 1

bench_init telemetry
build_cowork
find_scimload

sink_port=$(free_port)
python3 "$BENCH_DIR/otlp_sink.py" "$sink_port" >"$OUT/sink.log" 2>&1 &
BENCH_PIDS+=("$!")
wait_http "http://127.0.0.1:$sink_port/counts" 10 || die "the OTLP sink did not start"

run() { # run MODE ROUND
  local mode=$1 round=$2 name="$1-$2"
  if [ "$mode" = on ]; then
    export COWORK_SYNC__TELEMETRY__OTLP_ENDPOINT="http://127.0.0.1:$sink_port"
  else
    unset COWORK_SYNC__TELEMETRY__OTLP_ENDPOINT
  fi
  start_cowork "$name"
  "$SCIMLOAD" -u "$CS_URL" -t "$CS_TOKEN" -w create -c 1 --users "$LONE_USERS" \
    --max-seconds 120 --prefix "lone$round" --label "$name" --json "$OUT/$name.c1.json" \
    >>"$OUT/$name.log" 2>&1 || true
  "$SCIMLOAD" -u "$CS_URL" -t "$CS_TOKEN" -w create -c 8 --users "$USERS" \
    --max-seconds 120 --prefix "many$round" --label "$name" --json "$OUT/$name.c8.json" \
    >>"$OUT/$name.log" 2>&1 || true
  read -r _ hwm cpu < <(proc_stats "$CS_PID")
  printf '{"hwm_kib": %s, "cpu_s": %s}\n' "$hwm" "$cpu" >"$OUT/$name.proc.json"
  stop_server "$CS_PID"
}
unset OTEL_EXPORTER_OTLP_ENDPOINT OTEL_SDK_DISABLED
for round in $(seq 1 "$ROUNDS"); do
  run off "$round"
  run on "$round"
done
curl -s "http://127.0.0.1:$sink_port/counts" >"$OUT/sink.counts.json"

python3 - "$OUT" "$ROUNDS" <<'PY' | tee "$OUT/summary.md"
import json, sys, statistics
out, rounds = sys.argv[1], int(sys.argv[2])
def result(path):
    with open(path) as f:
        doc = json.load(f)
    return next(r for r in doc["results"] if r["workload"] == "create")
print("| creates | telemetry | ops/s (per round) | p50 ms | p99 ms | CPU s (whole run) |")
print("|---|---|---|---|---|---|")
med = {}
for c in ("c1", "c8"):
    for mode in ("off", "on"):
        rs = [result(f"{out}/{mode}-{i}.{c}.json") for i in range(1, rounds + 1)]
        cpu = [json.load(open(f"{out}/{mode}-{i}.proc.json"))["cpu_s"] for i in range(1, rounds + 1)]
        ops = [r["ops_per_s"] for r in rs]
        bad = sum(r.get("errors", 0) for r in rs)
        med[(c, mode)] = statistics.median(ops)
        print(f"| concurrency {c[1:]} | {mode} | {', '.join(f'{o:,.0f}' for o in ops)} | "
              f"{statistics.median(r['p50_ms'] for r in rs):.2f} | "
              f"{statistics.median(r['p99_ms'] for r in rs):.2f} | "
              f"{', '.join(f'{x:g}' for x in cpu)} |" + (f" {bad} errors" if bad else ""))
for c in ("c1", "c8"):
    print(f"\nconcurrency {c[1:]}: on/off throughput {med[(c, 'on')] / med[(c, 'off')]:.2f}")
print("\nOTLP receiver:", open(f"{out}/sink.counts.json").read())
PY
