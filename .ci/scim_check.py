#!/usr/bin/env python3
"""Runs the scim2-tester checks against BASE_URL with a bearer TOKEN.

Prints each failure and a final `N passed, M failed` line; exits 1 on any failure.
"""
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

PASSED = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}


def main() -> int:
    base, token = sys.argv[1].rstrip("/") + "/", sys.argv[2]
    headers = {"Accept": "application/scim+json", "Authorization": f"Bearer {token}"}
    client = SyncSCIMClient(Client(base_url=base, headers=headers, timeout=30.0))
    results = check_server(client)
    failed = [r for r in results if r.status not in PASSED and r.status != Status.SKIPPED]
    for r in failed:
        print(f"{r.status.name:10} [{r.resource_type}] {r.title}: {r.reason}")
    passed = sum(1 for r in results if r.status in PASSED)
    print(f"{passed} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
