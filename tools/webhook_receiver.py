"""A webhook receiver that trusts nothing but the Standard Webhooks reference library.

Each POST is verified with `standardwebhooks.Webhook(secret).verify(...)` for every
secret in SECRETS_FILE (one a line; after a rotation both the old and the new must
verify), and a copy with one byte of the body changed must fail. Verified deliveries
are answered 204 and appended to LOG as JSON lines; anything else is answered 400 and
logged with "rejected".

    python webhook_receiver.py PORT SECRETS_FILE LOG
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

PORT, SECRETS, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]
LOCK = threading.Lock()


def secrets():
    with open(SECRETS, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 (the standard library's name)
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = {"id": headers.get("webhook-id"), "secrets": 0}
        try:
            for secret in secrets():
                payload = Webhook(secret).verify(body, headers)
                record["secrets"] += 1
                try:
                    Webhook(secret).verify(body + b" ", headers)
                    raise AssertionError("a changed body verified")
                except WebhookVerificationError:
                    pass
            record["type"] = payload["type"]
            status = 204
        except Exception as err:  # noqa: BLE001 (any failure is a rejection)
            record["rejected"] = repr(err)
            status = 400
        with LOCK, open(LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
