#!/usr/bin/env python3
"""Checks a Consentry audit export offline, as docs/audit-export.md specifies it.

Written from that document alone, apart from the service's own code, so that an auditor
need trust neither: standard library plus `cryptography` (tools/requirements.txt).

    verify_audit_export.py EXPORT --jwks JWKS      # every check, the signature included
    verify_audit_export.py EXPORT --no-signature   # the chain alone: the header is unproven

Exit status: 0 when the export verifies, 1 naming the first bad line, 2 for bad usage.
"""

import argparse
import base64
import csv
import datetime
import hashlib
import itertools
import json
import re
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

VERSION = "consentry.audit.export.v2"
HASH_TAG = "consentry.audit.v1"
ZERO_HASH = "0" * 64
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")
EVENT_FIELDS = ("seq", "occurred_at", "actor_role", "actor_id", "action",
                "subject_pseudonym", "payload", "payload_digest", "prev_hash", "hash")
KEYS = {
    "header": {"version", "exported_at", "filters", "first_seq", "last_seq"},
    "event": set(EVENT_FIELDS),
    "link": {"seq", "prev_hash", "hash"},
    "checkpoint": {"seq", "hash", "kid", "signature"},
}
FILTERS = {"from", "to", "subject_pseudonym", "action", "actor"}
CSV_COLUMNS = ["type"] + list(EVENT_FIELDS)


class Failure(Exception):
    def __init__(self, line, problem):
        super().__init__(f"line {line}: {problem}" if line else problem)


def sha256_hex(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical(event):
    """The event hash's input: compact JSON, non-ASCII and '/' unescaped."""
    return json.dumps([HASH_TAG] + [event[k] for k in EVENT_FIELDS if k not in ("payload", "hash")],
                      ensure_ascii=False, separators=(",", ":"))


def is_time(value):
    if not isinstance(value, str) or not TIME.match(value):
        return False
    try:
        datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")
        return True
    except ValueError:
        return False


def is_seq(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def b64url(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def json_lines(first, rest):
    for n, raw in enumerate(itertools.chain([first], rest), 1):
        if raw.strip():
            try:
                yield n, json.loads(raw)
            except ValueError as e:
                raise Failure(n, f"not JSON: {e}")


def read_back(cell):
    """A CSV cell's value: the service writes a cell that starts with = + - @, a tab, a
    carriage return or ' with one more ' in front (so that spreadsheets do not run it);
    one leading ' is dropped."""
    return cell[1:] if cell.startswith("'") else cell


def csv_lines(first, rest):
    rows = csv.reader(itertools.chain([first], rest))
    if next(rows, None) != CSV_COLUMNS:
        raise Failure(1, "not the export's CSV columns")
    for row in rows:
        n = rows.line_num
        row = [read_back(cell) for cell in row]
        if len(row) != len(CSV_COLUMNS):
            raise Failure(n, "wrong number of columns")
        cell = dict(zip(CSV_COLUMNS, row))
        kind = cell["type"]
        try:
            if kind == "header":
                yield n, json.loads(cell["payload"])
                continue
            seq = int(cell["seq"])
        except ValueError as e:
            raise Failure(n, f"unreadable: {e}")
        if kind == "event":
            line = {k: cell[k] or None if k in ("actor_id", "subject_pseudonym") else cell[k]
                    for k in EVENT_FIELDS}
        elif kind == "link":
            line = {"prev_hash": cell["prev_hash"], "hash": cell["hash"]}
        elif kind == "checkpoint":
            line = {"hash": cell["hash"], "kid": cell["actor_id"], "signature": cell["payload"]}
        else:
            raise Failure(n, f"unknown line type {kind!r}")
        yield n, dict(line, type=kind, seq=seq)


def shape(n, line):
    kind = line.get("type") if isinstance(line, dict) else None
    if kind not in KEYS or set(line) != KEYS[kind] | {"type"}:
        raise Failure(n, f"not an export line (a {kind} line has exactly the keys {sorted(KEYS.get(kind, []))})")
    if kind != "header" and not is_seq(line["seq"]):
        raise Failure(n, "seq is not a positive integer")
    strings = [k for k in line if k not in ("type", "seq", "filters", "first_seq", "last_seq")]
    optional = ("actor_id", "subject_pseudonym")
    if not all(isinstance(line[k], str) or (k in optional and line[k] is None) for k in strings):
        raise Failure(n, "a field that must be a string is not")
    return kind


def check_header(n, header):
    if shape(n, header) != "header":
        raise Failure(n, "the export must start with its header")
    if header["version"] != VERSION:
        raise Failure(n, f"the format is {header['version']!r}; this verifier reads {VERSION}")
    filters = header["filters"]
    if not isinstance(filters, dict) or set(filters) != FILTERS:
        raise Failure(n, f"filters must have exactly the keys {sorted(FILTERS)}")
    if not all(v is None or (is_time(v) if k in ("from", "to") else isinstance(v, str))
               for k, v in filters.items()) or not is_time(header["exported_at"]):
        raise Failure(n, "a filter or exported_at is not in its form")
    first, last = header["first_seq"], header["last_seq"]
    unfiltered = all(v is None for v in filters.values())
    if first is None and last is None:
        if unfiltered:
            raise Failure(n, "an unfiltered export cannot be empty")
    elif not (is_seq(first) and is_seq(last) and first <= last):
        raise Failure(n, "first_seq and last_seq are not a range")
    if unfiltered and first != 1:
        raise Failure(n, "an unfiltered export must start at event 1")
    return filters


def check_event(n, event, filters):
    seq = event["seq"]
    if event["payload"] != "" and sha256_hex(event["payload"]) != event["payload_digest"]:
        raise Failure(n, f"event {seq}: the payload does not match its digest")
    if not is_time(event["occurred_at"]):
        raise Failure(n, f"event {seq}: occurred_at is not a UTC time with six fractional digits")
    if sha256_hex(canonical(event)) != event["hash"]:
        raise Failure(n, f"event {seq}: the hash does not match the event's fields")
    at = event["occurred_at"]
    wanted = {"subject_pseudonym": filters["subject_pseudonym"], "action": filters["action"],
              "actor_id": filters["actor"]}
    if ((filters["from"] is not None and at < filters["from"])
            or (filters["to"] is not None and at > filters["to"])
            or any(v is not None and event[k] != v for k, v in wanted.items())):
        raise Failure(n, f"event {seq} does not match the export's filters")


def check_signature(n, checkpoint, jwks):
    """The JWS's claims, once its Ed25519 signature verifies with the key set's key."""
    listed = jwks.get("keys") if isinstance(jwks, dict) else None
    keys = {k.get("kid"): k for k in listed or [] if isinstance(k, dict)}
    key = keys.get(checkpoint["kid"])
    if key is None or key.get("kty") != "OKP" or key.get("crv") != "Ed25519":
        raise Failure(n, f"the key {checkpoint['kid']!r} is not an Ed25519 key of the key set")
    parts = checkpoint["signature"].split(".")
    try:
        head, claims = json.loads(b64url(parts[0])), json.loads(b64url(parts[1]))
        Ed25519PublicKey.from_public_bytes(b64url(key["x"])).verify(
            b64url(parts[2]), f"{parts[0]}.{parts[1]}".encode("ascii"))
    except (InvalidSignature, ValueError, IndexError, KeyError, TypeError):
        raise Failure(n, "the checkpoint's signature does not verify")
    if not isinstance(head, dict) or head.get("alg") != "EdDSA" or head.get("kid") != checkpoint["kid"]:
        raise Failure(n, "the JWS header is not EdDSA with the checkpoint's kid")
    if not isinstance(claims, dict):
        raise Failure(n, "the signed claims are not an object")
    return claims


def verify(lines, jwks):
    """Checks (number, line) pairs in order; returns a summary or raises Failure."""
    lines = iter(lines)
    n, header = next(lines, (None, None))
    if header is None:
        raise Failure(None, "the export is empty")
    filters = check_header(n, header)
    first, last = header["first_seq"], header["last_seq"]
    previous, closing, counts = None, None, {"event": 0, "link": 0}
    for n, line in lines:
        if closing:
            raise Failure(n, "nothing may follow the checkpoint")
        kind = shape(n, line)
        if kind == "header":
            raise Failure(n, "a second header")
        if kind == "checkpoint":
            closing = (n, line)
            continue
        if kind == "event":
            check_event(n, line, filters)
        counts[kind] += 1
        seq = line["seq"]
        if previous is None:
            if seq != first:
                raise Failure(n, f"the header says the export starts at event {first}, found {seq}")
            if kind != "event":
                raise Failure(n, "the export must start with a whole event, not a link")
            if seq == 1 and line["prev_hash"] != ZERO_HASH:
                raise Failure(n, "event 1 must follow the zero hash")
        elif seq != previous[0] + 1:
            raise Failure(n, f"expected event {previous[0] + 1} here, found {seq}")
        elif line["prev_hash"] != previous[1]:
            raise Failure(n, f"event {seq}: prev_hash is not the previous event's hash")
        previous = (seq, line["hash"], kind)
    if closing is None:
        raise Failure(None, "the export has no closing checkpoint (it was cut short)")
    n, checkpoint = closing
    if previous is not None:
        if previous[0] != last:
            raise Failure(n, f"the header says the export ends at event {last}, found {previous[0]}")
        if previous[2] != "event":
            raise Failure(n, "the export must end with a whole event, not a link")
        if (checkpoint["seq"], checkpoint["hash"]) != previous[:2]:
            raise Failure(n, "the checkpoint does not pin the last event")
    elif first is not None:
        raise Failure(n, "the header promises events, and there are none")
    if jwks is not None:
        claims = check_signature(n, checkpoint, jwks)
        expected = {k: header[k] for k in KEYS["header"]}
        expected.update(seq=checkpoint["seq"], hash=checkpoint["hash"])
        iat = claims.pop("iat", None)
        if not isinstance(iat, int) or claims != expected:
            raise Failure(n, "the signature covers other claims than this header's and checkpoint's")
    return {"events": counts["event"], "links": counts["link"], "first_seq": first,
            "last_seq": last, "head_seq": checkpoint["seq"], "signature_checked": jwks is not None}


def verify_file(path, jwks):
    with open(path, encoding="utf-8", newline="") as f:
        first = f.readline()
        reader = json_lines if first.lstrip().startswith("{") else csv_lines
        return verify(reader(first, f), jwks)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", help="the export file (JSON Lines or CSV)")
    keys = parser.add_mutually_exclusive_group(required=True)
    keys.add_argument("--jwks", help="the service's key set (/.well-known/jwks.json)")
    keys.add_argument("--no-signature", action="store_true",
                      help="check the chain alone; the header's claims are then unproven")
    args = parser.parse_args(argv)
    try:
        jwks = None
        if args.jwks:
            with open(args.jwks, encoding="utf-8") as f:
                jwks = json.load(f)
        report = verify_file(args.export, jwks)
    except (OSError, ValueError, Failure) as e:
        print(f"{args.export}: {e}", file=sys.stderr)
        return 1
    print(f"{args.export}: ok — {report['events']} events and {report['links']} links, "
          f"events {report['first_seq']} to {report['last_seq']}, pinning event {report['head_seq']}; "
          + ("signature verified" if report["signature_checked"]
             else "signature NOT checked (--no-signature): the header's claims are unproven"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
