#!/usr/bin/env python3
"""Turns scimload JSON reports into the design §7 table (markdown on stdout).

    report.py scim COWORK.json [SCIM2.json]
    report.py scale OUT_DIR          (the files bench/scale.sh writes)

The targets are design.md §7: ratios to scim2-server measured in the same run, and
absolute p99 bounds. Ratios compare throughput (ops/s) at the same concurrency.
"""

import json
import os
import sys

# workload -> (label, minimum ratio to scim2-server, p99 bound in ms or None)
TARGETS = {
    "create": ("create user (durable)", 20, 10.0),
    "get": ("GET by id", 40, 5.0),
    "filter": ('filter userName eq', 40, 5.0),
    "list": ("list, 100 per page", 50, None),
}
GROUP_GROWTH_MAX = 1.5


def load(path):
    with open(path) as f:
        doc = json.load(f)
    by_name = {r["workload"]: r for r in doc["results"]}
    proc = None
    proc_path = path[: -len(".json")] + ".proc.json"
    if os.path.exists(proc_path):
        with open(proc_path) as f:
            proc = json.load(f)
    return doc, by_name, proc


def lone(path):
    """The concurrency-1 create run beside a report (`X.json` -> `X.lone.json`), if any."""
    lone_path = path[: -len(".json")] + ".lone.json"
    if not os.path.exists(lone_path):
        return None
    with open(lone_path) as f:
        doc = json.load(f)
    return next((r for r in doc["results"] if r["workload"] == "create"), None)


def fmt(x, digits=1):
    if x is None:
        return "-"
    if isinstance(x, float) and x != x:  # NaN
        return "-"
    return f"{x:,.{digits}f}"


def clean(r):
    """A workload result counts only if it finished without errors."""
    return r is not None and not r.get("truncated") and r.get("errors", 0) == 0 and r.get("mismatches", 0) == 0


def scim(paths):
    cs_doc, cs, cs_proc = load(paths[0])
    s2 = s2_proc = None
    if len(paths) > 1:
        _, s2, s2_proc = load(paths[1])
    p = cs_doc["params"]
    print(
        f"scimload, concurrency {p['concurrency']}, {p['users']} users, {p['gets']} gets, "
        f"{p['filters']} filters, list {p['page_size']} per page, group growth to "
        f"{p['group_members']} members by {p['patch_batch']} per PATCH\n"
    )
    print("| workload | cowork-sync ops/s | p50 ms | p99 ms | scim2-server ops/s | ratio | design §7 target | result |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    verdicts = []
    for name, (label, min_ratio, p99_max) in TARGETS.items():
        r = cs.get(name)
        ref = s2.get(name) if s2 else None
        ratio = None
        if r and ref and ref.get("ops_per_s"):
            ratio = r["ops_per_s"] / ref["ops_per_s"]
        target = f">= {min_ratio}x" + (f", p99 < {p99_max:g} ms" if p99_max else "")
        checks = []
        if s2 is not None:
            checks.append(ratio is not None and ratio >= min_ratio)
        if p99_max is not None and r:
            checks.append(r["p99_ms"] < p99_max)
        if not clean(r):
            verdict = "FAIL (errors)"
        elif not checks:
            verdict = "n/a"
        else:
            verdict = "pass" if all(checks) else "FAIL"
        verdicts.append(verdict)
        print(
            f"| {label} | {fmt(r and r['ops_per_s'])} | {fmt(r and r['p50_ms'], 2)} | "
            f"{fmt(r and r['p99_ms'], 2)} | {fmt(ref and ref['ops_per_s'])} | "
            f"{fmt(ratio) + 'x' if ratio else '-'} | {target} | {verdict} |"
        )
    g = cs.get("groups")
    gref = s2.get("groups") if s2 else None
    if g:
        growth = g.get("growth_last_over_first")
        ok = clean(g) and growth is not None and growth <= GROUP_GROWTH_MAX
        verdicts.append("pass" if ok else "FAIL")
        ref_txt = "-"
        if gref:
            ref_txt = f"{fmt(gref['ops_per_s'])} (growth {fmt(gref.get('growth_last_over_first'), 1)}x)"
        ratio = g["ops_per_s"] / gref["ops_per_s"] if gref and gref.get("ops_per_s") else None
        print(
            f"| PATCH +{p['patch_batch']} members, group growing to {g.get('final_members')} "
            f"(growth last/first decile {fmt(growth, 2)}x) | {fmt(g['ops_per_s'])} | "
            f"{fmt(g['p50_ms'], 2)} | {fmt(g['p99_ms'], 2)} | {ref_txt} | "
            f"{fmt(ratio) + 'x' if ratio else '-'} | growth <= {GROUP_GROWTH_MAX}x (100k vs 100: bench/scale.sh) | "
            f"{'pass' if ok else 'FAIL'} |"
        )
    cs_lone = lone(paths[0])
    s2_lone = lone(paths[1]) if len(paths) > 1 else None
    if cs_lone:
        ratio = cs_lone["ops_per_s"] / s2_lone["ops_per_s"] if s2_lone and s2_lone.get("ops_per_s") else None
        print(
            f"| create user, concurrency 1 (lone writes) | {fmt(cs_lone['ops_per_s'])} | "
            f"{fmt(cs_lone['p50_ms'], 2)} | {fmt(cs_lone['p99_ms'], 2)} | "
            f"{fmt(s2_lone and s2_lone['ops_per_s'])} | {fmt(ratio) + 'x' if ratio else '-'} | "
            f"no target (p50 must not regress) | - |"
        )
    print()
    for who, proc in (("cowork-sync", cs_proc), ("scim2-server", s2_proc)):
        if proc:
            extra = f", data on disk {proc['disk_kib'] / 1024:,.1f} MiB" if "disk_kib" in proc else ""
            print(
                f"- {who}: {proc['cpu_s']:.1f} CPU-seconds for the whole run, "
                f"resident {proc['rss_kib'] / 1024:,.1f} MiB (peak {proc['hwm_kib'] / 1024:,.1f} MiB){extra}"
            )
    for who, res in (("cowork-sync", cs), ("scim2-server", s2 or {})):
        for name, r in res.items():
            if not clean(r):
                print(f"- {who} {name}: {r.get('errors')} errors, {r.get('mismatches')} mismatches, "
                      f"truncated={r.get('truncated')}; samples: {r.get('error_samples')}")
    fails = sum(1 for v in verdicts if v.startswith("FAIL"))
    print(f"\n{len(verdicts) - fails} of {len(verdicts)} targets met")


def maybe(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def ratio_of(a, b):
    return b / a if a and b else None


def scale(out):
    rows = []
    verdicts = []

    def row(what, small, large, ratio, target, ok):
        verdict = "-" if ok is None else ("pass" if ok else "FAIL")
        if ok is not None:
            verdicts.append(verdict)
        rows.append(f"| {what} | {small} | {large} | {fmt(ratio, 2) + 'x' if ratio else '-'} | {target} | {verdict} |")

    g = maybe(os.path.join(out, "groups.json"))
    if g:
        s, b = g["small_group"], g["big_group"]
        r50 = ratio_of(s["p50_ms"], b["p50_ms"])
        row(f"PATCH adding {g['batch']} members, p50 (p99)",
            f"group of 100: {fmt(s['p50_ms'], 2)} ({fmt(s['p99_ms'], 2)}) ms",
            f"group of {g['members']:,}: {fmt(b['p50_ms'], 2)} ({fmt(b['p99_ms'], 2)}) ms",
            r50, "within 1.5x", r50 is not None and r50 <= 1.5)
    f = maybe(os.path.join(out, "filters.json"))
    if f and "small" in f and "large" in f:
        fs, fl = f["small"], f["large"]
        for attr in ("userName", "externalId"):
            a, b = fs[attr], fl[attr]
            r50 = ratio_of(a["p50_ms"], b["p50_ms"])
            ok = r50 is not None and r50 <= 1.5 and b["p99_ms"] < 5.0 and a["errors"] == 0 and b["errors"] == 0
            row(f"filter `{attr} eq`, p50 (p99), one request at a time, alternating",
                f"{fs['population']:,} users: {fmt(a['p50_ms'], 2)} ({fmt(a['p99_ms'], 2)}) ms",
                f"{fl['population']:,} users: {fmt(b['p50_ms'], 2)} ({fmt(b['p99_ms'], 2)}) ms",
                r50, "within 1.5x; p99 < 5 ms", ok)
    ps, pl = maybe(os.path.join(out, "small.proc.json")), maybe(os.path.join(out, "large-after-reads.proc.json"))
    if pl:
        gib = pl["rss_kib"] / 1024 / 1024
        peak = pl["hwm_kib"] / 1024 / 1024
        row("resident memory (VmRSS; peak VmHWM)",
            f"{ps['users']:,} users: {ps['rss_kib'] / 1024:,.0f} MiB" if ps else "-",
            f"{pl['users']:,} users: {gib * 1024:,.0f} MiB (peak {peak * 1024:,.0f} MiB)",
            None, "under 1 GiB", peak < 1.0)
        row("data on disk (du of the data dir)",
            f"{ps['disk_kib'] / 1024:,.0f} MiB" if ps else "-",
            f"{pl['disk_kib'] / 1024:,.0f} MiB ({pl['disk_kib'] * 1024 / max(pl['users'], 1):,.0f} bytes/user)",
            None, "no target (watch it)", None)
    pgs, pgl = maybe(os.path.join(out, "pages-small.json")), maybe(os.path.join(out, "pages-large.json"))
    if pgs and pgl:
        a, b = pgs["pages"][-1], pgl["pages"][-1]
        row("list page of 100, last page, p50",
            f"startIndex {a['start_index']:,}: {fmt(a['p50_ms'], 2)} ms",
            f"startIndex {b['start_index']:,}: {fmt(b['p50_ms'], 2)} ms",
            ratio_of(a["p50_ms"], b["p50_ms"]), "no target (paging cost grows with startIndex)", None)
    ct = maybe(os.path.join(out, "create-total.json"))
    if ct and ct["seconds"]:
        row("creating users over HTTP (scimload, c=16)", "-",
            f"{ct['users']:,} users in {ct['seconds']} s ({ct['users'] / ct['seconds']:,.0f}/s)",
            None, "-", None)
    if g:
        row("creating users over HTTP (Python driver, c=8)", "-",
            f"{g['users_created']:,} users at {g['users_per_s']:,.0f}/s", None, "-", None)
        row(f"GET of the big group (all members)", "-",
            f"{g['big_group_final_members']:,} members: {fmt(g['get_big_group_ms'], 0)} ms", None, "-",
            None if g["big_group_final_members"] == g["big_group_expected_members"] else False)
    print("| what | small | large | large/small | design §7 target | result |")
    print("|---|---|---|---:|---|---|")
    for r in rows:
        print(r)
    fails = sum(1 for v in verdicts if v == "FAIL")
    print(f"\n{len(verdicts) - fails} of {len(verdicts)} targets met")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "scale":
        scale(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "scim":
        scim(sys.argv[2:])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
