"""The soak's checker and recorder, beside the load.

Checker: on subjects of its own, grants `marketing.email` through one instance, then
withdraws it through one or the other; once the withdrawal is answered 200, asks both
instances for a decision and counts every `allow` as a violation. Recorder: every few
seconds, each instance's resident memory. Runs until DURATION seconds have passed, then
prints a JSON summary and exits 1 on any violation or error.

Usage: soak_check.py DURATION OUT_DIR TOKEN URL_A PID_A URL_B PID_B
"""

import http.client
import json
import sys
import threading
import time
from urllib.parse import urlparse

duration, out_dir, token = float(sys.argv[1]), sys.argv[2], sys.argv[3]
instances = [(sys.argv[4], int(sys.argv[5])), (sys.argv[6], int(sys.argv[7]))]
deadline = time.monotonic() + duration


class Client:
    def __init__(self, url):
        parsed = urlparse(url)
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)

    def call(self, method, path, body):
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.connection.request(method, path, json.dumps(body), headers)
        response = self.connection.getresponse()
        return response.status, response.read()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def record_memory():
    started = time.monotonic()
    with open(f"{out_dir}/rss.csv", "w") as out:
        out.write("seconds,instance,rss_kib\n")
        while time.monotonic() < deadline:
            for name, (_, pid) in zip("AB", instances):
                out.write(f"{time.monotonic() - started:.1f},{name},{rss_kib(pid)}\n")
            out.flush()
            time.sleep(5)


def check(worker, summary):
    clients = [Client(url) for url, _ in instances]
    n = 0
    while time.monotonic() < deadline:
        subject = f"soak-{worker}-{n % 50}"
        writer, other = clients[n % 2], clients[(n + 1) % 2]
        n += 1
        path = f"/v1/subjects/{subject}/consents/marketing.email"
        if n <= 50:
            status, body = writer.call("PUT", f"/v1/subjects/{subject}", {"region": "DE"})
            if status not in (200, 201):
                summary["errors"].append(f"create {subject}: {status} {body[:200]!r}")
                continue
        status, body = other.call("PUT", path, {"status": "granted", "source": "api"})
        if status != 200:
            summary["errors"].append(f"grant {subject}: {status} {body[:200]!r}")
            continue
        # Both instances now hold the grant in their caches.
        for client in clients:
            client.call("POST", "/v1/decisions", decision(subject))
        status, body = writer.call("PUT", path, {"status": "denied", "source": "portal"})
        if status != 200:
            summary["errors"].append(f"withdraw {subject}: {status} {body[:200]!r}")
            continue
        summary["withdrawals"] += 1
        answered = time.monotonic()
        for role, client in (("writer", writer), ("other", other)):
            status, body = client.call("POST", "/v1/decisions", decision(subject))
            summary["decisions_checked"] += 1
            if status != 200:
                summary["errors"].append(f"decide {subject} ({role}): {status}")
            elif json.loads(body)["decision"] != "deny":
                summary["violations"][role] += 1
                if role == "other":
                    lag = time_to_deny(client, subject, answered)
                    summary["cross_instance_lag_ms"].append(round(lag * 1000, 1))


def decision(subject):
    return {"subject_id": subject, "purpose": "marketing.email"}


def time_to_deny(client, subject, since):
    """How long after the withdrawal was answered the instance first denies."""
    while time.monotonic() - since < 10:
        status, body = client.call("POST", "/v1/decisions", decision(subject))
        if status == 200 and json.loads(body)["decision"] == "deny":
            break
        time.sleep(0.001)
    return time.monotonic() - since


summary = {
    "withdrawals": 0,
    "decisions_checked": 0,
    "violations": {"writer": 0, "other": 0},
    "cross_instance_lag_ms": [],
    "errors": [],
}
threads = [threading.Thread(target=record_memory)]
threads += [threading.Thread(target=check, args=(w, summary)) for w in range(2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
lags = sorted(summary.pop("cross_instance_lag_ms"))
if lags:
    summary["cross_instance_lag_ms"] = {"n": len(lags), "p50": lags[len(lags) // 2], "max": lags[-1]}
summary["errors"] = summary["errors"][:20]
print(json.dumps(summary))
violated = summary["violations"]["writer"] or summary["violations"]["other"]
sys.exit(1 if violated or summary["errors"] else 0)
