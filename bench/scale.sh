#!/usr/bin/env bash
# The opt-in scaling benches of design §7 (see bench/README.md). Long: building a
# directory of 1,000,000 users over HTTP takes several minutes on two cores.
#
#   bench/scale.sh                 # both parts
#   bench/scale.sh groups          # PATCH +100 members: group of 100,000 vs group of 100
#   bench/scale.sh filters         # filters at 1,000 vs 1,000,000 users; memory, disk
#
# Env: SCALE_USERS (default 1000000), SCALE_CHUNK (users per scimload run, 100000),
#      SCALE_GROUP_MEMBERS (100000), SCALE_SAMPLES (PATCHes per size, 50),
#      FILTER_SAMPLES (per attribute and size, 2000), CREATE_CONCURRENCY (16),
#      COWORK_SYNC_BIN, BENCH_TARGET_DIR, SCIMLOAD, BENCH_KEEP_DATA=1.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PARTS=("$@")
[ ${#PARTS[@]} -gt 0 ] || PARTS=(groups filters)
for p in "${PARTS[@]}"; do
  case "$p" in
    groups|filters) ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) die "unknown part $p (groups, filters)" ;;
  esac
done

SCALE_USERS=${SCALE_USERS:-1000000}
SCALE_CHUNK=${SCALE_CHUNK:-100000}
SCALE_GROUP_MEMBERS=${SCALE_GROUP_MEMBERS:-100000}
SCALE_SAMPLES=${SCALE_SAMPLES:-50}
FILTER_SAMPLES=${FILTER_SAMPLES:-2000}
CREATE_CONCURRENCY=${CREATE_CONCURRENCY:-16}
SMALL_USERS=1000

bench_init scale
build_cowork

run_groups() {
  start_cowork groups
  log "groups: PATCH +100 members to a group of $SCALE_GROUP_MEMBERS vs a group of 100"
  python3 "$BENCH_DIR/scale.py" groups --url "$CS_URL" --token "$CS_TOKEN" \
    --members "$SCALE_GROUP_MEMBERS" --samples "$SCALE_SAMPLES" --json "$OUT/groups.json"
  read -r rss hwm cpu < <(proc_stats "$CS_PID")
  printf '{"rss_kib": %s, "hwm_kib": %s, "cpu_s": %s, "disk_kib": %s}\n' \
    "$rss" "$hwm" "$cpu" "$(du -sk "$CS_DATA" | cut -f1)" >"$OUT/groups.proc.json"
  stop_server "$CS_PID"
}

# create_chunk URL TOKEN PREFIX N: N users named PREFIX-u0000000.. through scimload.
create_chunk() {
  local url=$1 token=$2 prefix=$3 n=$4
  "$SCIMLOAD" -u "$url" -t "$token" -w create -c "$CREATE_CONCURRENCY" --users "$n" \
    --prefix "$prefix" --max-seconds 3600 --label "$prefix" --json "$OUT/create-$prefix.json" \
    2>>"$OUT/create.log" | tee -a "$OUT/create.log" >&2 \
    || die "creating users $prefix failed (see $OUT/create.log)"
}

snapshot() { # NAME PID DATA USERS: resident memory, CPU, disk of a server
  read -r rss hwm cpu < <(proc_stats "$2")
  printf '{"users": %s, "rss_kib": %s, "hwm_kib": %s, "cpu_s": %s, "disk_kib": %s}\n' \
    "$4" "$rss" "$hwm" "$cpu" "$(du -sk "$3" | cut -f1)" >"$OUT/$1.proc.json"
}

# Two servers: a small directory and one grown to SCALE_USERS. The filters then
# alternate between them request by request, so load from other processes on the
# machine hits both measurements alike.
run_filters() {
  find_scimload
  start_cowork filters-small
  local small_pid=$CS_PID small_url=$CS_URL small_token=$CS_TOKEN small_data=$CS_DATA
  create_chunk "$small_url" "$small_token" sc00 "$SMALL_USERS"
  snapshot small "$small_pid" "$small_data" "$SMALL_USERS"

  start_cowork filters-large
  local population="sc00:$SMALL_USERS" chunk=1 n created=0 prefix
  create_chunk "$CS_URL" "$CS_TOKEN" sc00 "$SMALL_USERS"
  created=$SMALL_USERS
  local t0=$SECONDS
  while [ "$created" -lt "$SCALE_USERS" ]; do
    n=$((SCALE_USERS - created))
    [ "$n" -le "$SCALE_CHUNK" ] || n=$SCALE_CHUNK
    prefix=$(printf 'sc%02d' "$chunk")
    create_chunk "$CS_URL" "$CS_TOKEN" "$prefix" "$n"
    population+=",$prefix:$n"
    created=$((created + n))
    chunk=$((chunk + 1))
    log "  $created users ($(( (created - SMALL_USERS) / (SECONDS - t0 + 1) ))/s), resident $(awk '/^VmRSS:/{printf "%.0f MiB", $2/1024}' "/proc/$CS_PID/status")"
  done
  echo "{\"users\": $((created - SMALL_USERS)), \"seconds\": $((SECONDS - t0))}" >"$OUT/create-total.json"
  snapshot large "$CS_PID" "$CS_DATA" "$created"

  log "filters: $SMALL_USERS users vs $created users, alternating"
  python3 "$BENCH_DIR/scale.py" filters --samples "$FILTER_SAMPLES" --json "$OUT/filters.json" \
    --target "small|$small_url|$small_token|sc00:$SMALL_USERS" \
    --target "large|$CS_URL|$CS_TOKEN|$population"
  python3 "$BENCH_DIR/scale.py" pages --url "$small_url" --token "$small_token" --total "$SMALL_USERS" \
    --json "$OUT/pages-small.json"
  python3 "$BENCH_DIR/scale.py" pages --url "$CS_URL" --token "$CS_TOKEN" --total "$created" \
    --json "$OUT/pages-large.json"
  snapshot large-after-reads "$CS_PID" "$CS_DATA" "$created"
  stop_server "$CS_PID"
  stop_server "$small_pid"
}

for p in "${PARTS[@]}"; do
  case "$p" in
    groups) run_groups ;;
    filters) run_filters ;;
  esac
done

python3 "$BENCH_DIR/report.py" scale "$OUT" | tee "$OUT/summary.md"
log "reports in $OUT"
