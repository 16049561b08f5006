"""Loads every demo subject into the decision cache: batches of 1,000 decisions."""
import json
import os
import sys
import urllib.request

base, token, subjects = sys.argv[1], os.environ["TOKEN"], int(os.environ.get("SUBJECTS", "100000"))
for start in range(1, subjects + 1, 1000):
    items = [{"subject_id": f"demo-{n:06d}", "purpose": "analytics"} for n in range(start, min(start + 1000, subjects + 1))]
    request = urllib.request.Request(
        f"{base}/v1/decisions/batch",
        data=json.dumps({"items": items}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200, response.status
