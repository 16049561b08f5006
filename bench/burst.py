"""A write burst over HTTP: creates SUBJECTS subjects (`demo-000001`...) and grants
CONSENTS consents among them, 16 requests in flight. Prints the rate and any failure."""
import json
import os
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

base, token = sys.argv[1], os.environ["TOKEN"]
subjects = int(os.environ.get("SUBJECTS", "10000"))
consents = int(os.environ.get("CONSENTS", str(subjects // 2)))
headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}


def put(path, body):
    request = urllib.request.Request(f"{base}{path}", data=json.dumps(body).encode(), headers=headers, method="PUT")
    with urllib.request.urlopen(request) as response:
        return response.status


def create(n):
    return put(f"/v1/subjects/demo-{n:06d}", {"region": "DE"})


def grant(n):
    subject = 1 + (n * 7919) % subjects
    return put(f"/v1/subjects/demo-{subject:06d}/consents/analytics", {"status": "granted", "source": "api"})


for name, work, count in (("subjects created", create, subjects), ("consents granted", grant, consents)):
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(work, range(1, count + 1)))
    took = time.monotonic() - started
    bad = [s for s in statuses if s not in (200, 201)]
    print(f"{count} {name} in {took:.1f} s ({count / took:.0f}/s), {len(bad)} failed")
