#!/usr/bin/env bash
# The outside IdP conformance suites against the real binary, each on a fresh daemon
# (the suites count users, so none may see another's data): scim2-tester (scim-check),
# Okta's SCIM 2.0 SPEC test (okta-spec) and Microsoft's SCIM test collection
# (ms-scim-tests). Prints each suite's tally and its failed assertions, then compares
# the failures with the deviations kept on purpose (bench/idp-suites.known, reasons in
# bench/README.md "IdP conformance suites").
#
#   bench/idp-suites.sh [TOOLS_DIR]      # default: $COWORK_TOOLS_DIR, else ../shared/tools
#
# Needs: cargo (unless COWORK_SYNC_BIN is set), curl, python3 with venv and pip access to
# PyPI (scim-check), node and npm (ms-scim-tests). The tools install themselves into
# $COWORK_TOOLS_CACHE (default ~/.cache/cowork-sync-tools) on first use.
# Env: COWORK_SYNC_BIN (skip the build; the default is a debug build, which is enough
#      for conformance), SUITES="scim-check okta-spec ms-scim-tests" (a subset),
#      BENCH_KEEP_DATA=1. Output: bench/out/idp-suites-<timestamp>/ (reports and logs).
# Exit: 0 when every failure is a known deviation, 1 when some is not, 2 when a suite
# could not run (tools missing, daemon did not start).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
  -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
esac

TOOLS_DIR="${1:-${COWORK_TOOLS_DIR:-}}"
if [ -z "$TOOLS_DIR" ]; then
  for c in "$REPO_DIR/../shared/tools" "$REPO_DIR/../../shared/tools"; do
    if [ -d "$c" ]; then TOOLS_DIR="$c"; break; fi
  done
fi
if [ -z "$TOOLS_DIR" ] || [ ! -d "$TOOLS_DIR" ]; then
  die "the outside checkers are not here (looked in ${TOOLS_DIR:-../shared/tools}): pass their directory as the first argument or set COWORK_TOOLS_DIR. They are not part of this repository."
fi
TOOLS_DIR="$(cd "$TOOLS_DIR" && pwd)"
SUITES=${SUITES:-"scim-check okta-spec ms-scim-tests"}
for s in $SUITES; do
  [ -x "$TOOLS_DIR/$s" ] || die "$TOOLS_DIR/$s is missing or not executable"
done
KNOWN="$BENCH_DIR/idp-suites.known"

bench_init idp-suites
if [ -n "${COWORK_SYNC_BIN:-}" ]; then
  [ -x "$COWORK_SYNC_BIN" ] || die "COWORK_SYNC_BIN=$COWORK_SYNC_BIN is not executable"
  COWORK_BIN="$COWORK_SYNC_BIN"
else
  target="${BENCH_TARGET_DIR:-${CARGO_TARGET_DIR:-$REPO_DIR/target}}"
  log "building cowork-sync (debug) in $target"
  CARGO_TARGET_DIR="$target" cargo build --quiet --bin cowork-sync --manifest-path "$REPO_DIR/Cargo.toml" \
    || die "cargo build failed"
  COWORK_BIN="$target/debug/cowork-sync"
fi
echo "binary: $COWORK_BIN" >>"$OUT/machine.txt"

# The stable part of a failure line (without ids, statuses and timings), for matching
# against bench/idp-suites.known: `suite | request name | assertion`.
failure_key() {
  local suite=$1
  case "$suite" in
    ms-scim-tests) sed -n 's/^FAIL \([^|]*\) | \([^|]*\) |.*/\1| \2/p' ;;
    okta-spec) sed -n 's/^FAIL \(step [0-9.]*\):\([^|]*\).*/\1:\2/p' ;;
    *) grep -E '^(FAIL|ERROR|CRITICAL)' || true ;;
  esac | sed "s/^/$suite | /; s/[[:space:]]*\$//"
}

status=0
summary=()
: >"$OUT/failures.txt"
for suite in $SUITES; do
  start_cowork "$suite"
  args=("$CS_URL" "$CS_TOKEN")
  [ "$suite" = "okta-spec" ] && args+=(--seed-user)
  log "$suite against $CS_URL"
  set +e
  CHECK_REPORT="$OUT/$suite.json" "$TOOLS_DIR/$suite" "${args[@]}" >"$OUT/$suite.log" 2>"$OUT/$suite.err"
  rc=$?
  set -e
  stop_server "$CS_PID"
  tally=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$OUT/$suite.log" | tail -1 || true)
  if [ -z "$tally" ]; then
    log "$suite did not finish (exit $rc): see $OUT/$suite.err"
    tail -5 "$OUT/$suite.err" >&2 || true
    summary+=("$(printf '%-14s did not run (exit %s)' "$suite" "$rc")")
    status=2
    continue
  fi
  summary+=("$(printf '%-14s %s' "$suite" "$tally")")
  failure_key "$suite" <"$OUT/$suite.log" >>"$OUT/failures.txt"
done

echo
echo "IdP conformance suites ($(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)):"
printf '  %s\n' "${summary[@]}"
unexpected=$(grep -v -x -F -f <(grep -v '^#' "$KNOWN" | sed '/^$/d; s/[[:space:]]*$//') "$OUT/failures.txt" || true)
known=$(grep -c -x -F -f <(grep -v '^#' "$KNOWN" | sed '/^$/d; s/[[:space:]]*$//') "$OUT/failures.txt" || true)
echo "  failures that are known deviations (bench/idp-suites.known): ${known:-0}"
if [ -n "$unexpected" ]; then
  echo "  failures that are NOT known deviations:"
  printf '%s\n' "$unexpected" | sed 's/^/    /'
  [ "$status" = 0 ] && status=1
fi
echo "  reports: $OUT"
{ printf '%s\n' "${summary[@]}"; } >"$OUT/summary.txt"
exit "$status"
