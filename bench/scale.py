#!/usr/bin/env python3
"""Direct driver for the scaling benches of design §7 (standard library only).

    scale.py filters --target 'small|URL|TOKEN|sc00:1000' --target 'large|URL|TOKEN|sc00:1000,sc01:99000' --json OUT
    scale.py groups  --url URL --token T --members 100000 --json OUT
    scale.py pages   --url URL --token T --total N --json OUT

filters: random `userName eq` and `externalId eq` filters over users created by
    scimload (userName `<prefix>-u<7 digits>`, externalId `ext-<userName>`), one
    request at a time, so the figures are latencies, not queueing; with several
    targets the requests alternate between them, so machine noise hits all alike.
groups:  creates the users itself (it needs their ids), grows one group to
    --members members with PATCHes of --fill-batch, builds --samples groups of 100,
    then times PATCHes adding --batch new members, alternating a small group and the
    big one so that drift hits both alike.
pages:   latency of one list page (100 per page) near the start, middle and end.

Latencies are measured in this client (Python http.client over a kept-alive
connection) and include its overhead, about 0.1 ms per request on this machine.
"""

import argparse
import json
import random
import statistics
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENT_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


class Client:
    """One kept-alive connection per thread."""

    def __init__(self, base, token):
        u = urllib.parse.urlsplit(base)
        self.host, self.port, self.path = u.hostname, u.port, u.path.rstrip("/")
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/scim+json",
            "Accept": "application/scim+json",
        }
        self.local = threading.local()

    def conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = HTTPConnection(self.host, self.port, timeout=120)
            self.local.conn = c
        return c

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(2):
            c = self.conn()
            try:
                t = time.perf_counter()
                c.request(method, self.path + path, body=data, headers=self.headers)
                r = c.getresponse()
                raw = r.read()
                ms = (time.perf_counter() - t) * 1000
                doc = json.loads(raw) if raw else None
                return r.status, doc, ms
            except (ConnectionError, OSError):
                # The server closed an idle kept-alive connection: reconnect once.
                c.close()
                self.local.conn = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")


def pct(sorted_ms, q):
    if not sorted_ms:
        return None
    i = min(len(sorted_ms) - 1, max(0, int(q * len(sorted_ms) + 0.999999) - 1))
    return round(sorted_ms[i], 3)


def summary(lat):
    s = sorted(lat)
    return {
        "n": len(s),
        "p50_ms": pct(s, 0.50),
        "p90_ms": pct(s, 0.90),
        "p99_ms": pct(s, 0.99),
        "max_ms": round(s[-1], 3) if s else None,
        "mean_ms": round(statistics.fmean(s), 3) if s else None,
    }


def user_body(prefix, i):
    un = f"{prefix}-u{i:07d}"
    return {
        "schemas": [USER_SCHEMA, ENT_SCHEMA],
        "userName": un,
        "externalId": f"ext-{un}",
        "name": {"givenName": f"Given{i}", "familyName": f"Family{i % 997}", "formatted": f"Given{i} Family{i % 997}"},
        "displayName": f"Given{i} Family{i % 997}",
        "active": True,
        "emails": [
            {"value": f"{un}@example.com", "type": "work", "primary": True},
            {"value": f"{un}@home.example.org", "type": "home"},
        ],
        ENT_SCHEMA: {"department": f"Dept {i % 50}", "employeeNumber": str(i)},
    }


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
    log(f"wrote {path}")


# ---------------------------------------------------------------- filters


def parse_population(spec):
    pop = []
    for part in spec.split(","):
        prefix, n = part.rsplit(":", 1)
        pop.append((prefix, int(n)))
    return pop


def cmd_filters(a):
    """Interleaves the targets request by request, so machine noise hits them alike."""
    targets = []
    for spec in a.target:
        name, url, token, population = spec.split("|")
        pop = parse_population(population)
        targets.append({"name": name, "client": Client(url, token), "pop": pop,
                        "total": sum(n for _, n in pop)})
    rng = random.Random(a.seed)

    def pick(t):
        k = rng.randrange(t["total"])
        for prefix, n in t["pop"]:
            if k < n:
                return f"{prefix}-u{k:07d}"
            k -= n
        raise AssertionError

    out = {"samples": a.samples, "warmup": a.warmup}
    for t in targets:
        out[t["name"]] = {"population": t["total"]}
    for attr in ("userName", "externalId"):
        lat = {t["name"]: [] for t in targets}
        bad = {t["name"]: 0 for t in targets}
        for i in range(a.warmup + a.samples):
            for t in targets:
                un = pick(t)
                value = un if attr == "userName" else f"ext-{un}"
                q = urllib.parse.quote(f'{attr} eq "{value}"')
                status, doc, ms = t["client"].call("GET", f"/Users?filter={q}")
                ok = status == 200 and doc and doc.get("totalResults") == 1
                if i >= a.warmup:
                    lat[t["name"]].append(ms)
                    bad[t["name"]] += 0 if ok else 1
        for t in targets:
            s = summary(lat[t["name"]])
            s["errors"] = bad[t["name"]]
            out[t["name"]][attr] = s
            log(f"filter {attr} eq at {t['total']:,} users: p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, "
                f"errors {s['errors']}")
    write_json(a.json, out)


# ---------------------------------------------------------------- pages


def cmd_pages(a):
    cl = Client(a.url, a.token)
    out = {"total": a.total, "pages": []}
    for start in sorted({1, max(1, a.total // 2), max(1, a.total - 99)}):
        lat = []
        for _ in range(a.repeat):
            status, doc, ms = cl.call("GET", f"/Users?startIndex={start}&count=100")
            if status != 200:
                raise SystemExit(f"list page at {start}: status {status}")
            lat.append(ms)
        s = summary(lat)
        s["start_index"] = start
        out["pages"].append(s)
        log(f"list page at startIndex {start:,}: p50 {s['p50_ms']} ms")
    write_json(a.json, out)


# ---------------------------------------------------------------- groups


def create_users(cl, prefix, n, conc):
    ids = [None] * n
    done = [0]
    lock = threading.Lock()
    t0 = time.perf_counter()

    def one(i):
        status, doc, _ = cl.call("POST", "/Users", user_body(prefix, i))
        if status != 201:
            raise SystemExit(f"POST /Users: status {status}: {str(doc)[:200]}")
        ids[i] = doc["id"]
        with lock:
            done[0] += 1
            if done[0] % 10000 == 0:
                log(f"  {done[0]:,}/{n:,} users ({done[0] / (time.perf_counter() - t0):,.0f}/s)")

    with ThreadPoolExecutor(conc) as ex:
        list(ex.map(one, range(n)))
    return ids, time.perf_counter() - t0


def patch_add(cl, gid, member_ids):
    body = {"schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": m} for m in member_ids]}]}
    status, doc, ms = cl.call("PATCH", f"/Groups/{gid}", body)
    if status not in (200, 204):
        raise SystemExit(f"PATCH /Groups/{gid}: status {status}: {str(doc)[:200]}")
    return ms


def cmd_groups(a):
    cl = Client(a.url, a.token)
    small_base = 100
    extra = a.samples * a.batch
    n = a.members + extra + small_base
    log(f"creating {n:,} users ({a.members:,} for the big group, {extra:,} to add, {small_base} for small groups)")
    ids, el = create_users(cl, "grp", n, a.concurrency)
    log(f"created {n:,} users in {el:.0f} s ({n / el:,.0f}/s)")
    big_members, extra_ids = ids[: a.members], ids[a.members: a.members + extra]
    base = ids[a.members + extra:]

    status, doc, _ = cl.call("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "bench-big"})
    if status != 201:
        raise SystemExit(f"POST /Groups: {status}")
    big = doc["id"]
    fill = []
    t0 = time.perf_counter()
    for k in range(0, a.members, a.fill_batch):
        ms = patch_add(cl, big, big_members[k: k + a.fill_batch])
        fill.append([k + a.fill_batch, round(ms, 2)])
    log(f"grew a group to {a.members:,} members with PATCHes of {a.fill_batch} in {time.perf_counter() - t0:.0f} s "
        f"(first {fill[0][1]} ms, last {fill[-1][1]} ms per PATCH)")

    smalls = []
    for j in range(a.samples):
        status, doc, _ = cl.call("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": f"bench-small-{j:03d}",
                                                      "members": [{"value": m} for m in base]})
        if status != 201:
            raise SystemExit(f"POST /Groups (small): {status}")
        smalls.append(doc["id"])

    lat_small, lat_big = [], []
    for j in range(a.samples):
        batch = extra_ids[j * a.batch: (j + 1) * a.batch]
        lat_small.append(patch_add(cl, smalls[j], batch))
        lat_big.append(patch_add(cl, big, batch))
    s_small, s_big = summary(lat_small), summary(lat_big)

    status, doc, ms_get = cl.call("GET", f"/Groups/{big}")
    final = len(doc.get("members", [])) if status == 200 and doc else None
    expect = a.members + extra
    out = {
        "members": a.members, "batch": a.batch, "samples": a.samples, "fill_batch": a.fill_batch,
        "users_created": n, "users_per_s": round(n / el, 1),
        "small_group": s_small, "big_group": s_big,
        "ratio_p50": round(s_big["p50_ms"] / s_small["p50_ms"], 3),
        "ratio_mean": round(s_big["mean_ms"] / s_small["mean_ms"], 3),
        "fill_series_members_ms": fill,
        "big_group_final_members": final, "big_group_expected_members": expect,
        "get_big_group_ms": round(ms_get, 1),
    }
    log(f"PATCH +{a.batch} to a group of {small_base}: p50 {s_small['p50_ms']} ms; to a group of "
        f"{a.members:,}: p50 {s_big['p50_ms']} ms; ratio {out['ratio_p50']}x (mean {out['ratio_mean']}x)")
    if final != expect:
        log(f"warning: the big group has {final} members, expected {expect}")
    write_json(a.json, out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("filters", "groups", "pages"):
        p = sub.add_parser(name)
        if name != "filters":
            p.add_argument("--url", required=True)
            p.add_argument("--token", required=True)
        p.add_argument("--json", required=True)
        if name == "filters":
            p.add_argument("--target", action="append", required=True,
                           help="NAME|URL|TOKEN|PREFIX:COUNT,PREFIX:COUNT (repeat; requests alternate)")
            p.add_argument("--samples", type=int, default=2000)
            p.add_argument("--warmup", type=int, default=200)
            p.add_argument("--seed", type=int, default=7)
        elif name == "groups":
            p.add_argument("--members", type=int, default=100000)
            p.add_argument("--fill-batch", type=int, default=1000)
            p.add_argument("--batch", type=int, default=100)
            p.add_argument("--samples", type=int, default=50)
            p.add_argument("--concurrency", type=int, default=8)
        else:
            p.add_argument("--total", type=int, required=True)
            p.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    {"filters": cmd_filters, "groups": cmd_groups, "pages": cmd_pages}[a.cmd](a)


if __name__ == "__main__":
    main()
