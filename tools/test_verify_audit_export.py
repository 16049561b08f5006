"""The Python verifier against the worked example of docs/audit-export.md.

Run: python3 -m unittest discover -s tools -p 'test_*.py'
"""

import base64
import csv
import io
import json
import pathlib
import re
import unittest

import verify_audit_export as v

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "audit-export.md"


def example_blocks():
    text = DOC.read_text(encoding="utf-8")
    return dict(re.findall(r"<!-- example: (\S+) -->\n```\w*\n(.*?)```", text, re.S))


def numbered(text):
    lines = text.splitlines(True)
    return v.json_lines(lines[0], lines[1:])


def as_csv(text):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(v.CSV_COLUMNS)
    for line in map(json.loads, text.splitlines()):
        kind = line["type"]
        row = dict.fromkeys(v.CSV_COLUMNS, "")
        if kind == "header":
            row["payload"] = json.dumps(line, ensure_ascii=False, separators=(",", ":"))
        elif kind == "checkpoint":
            row.update(seq=line["seq"], hash=line["hash"], actor_id=line["kid"],
                       payload=line["signature"])
        else:
            row.update({k: "" if val is None else val for k, val in line.items()})
        row["type"] = kind
        writer.writerow([inert(str(row[c])) for c in v.CSV_COLUMNS])
    return out.getvalue()


def inert(cell):
    """As the service writes a CSV cell: with a leading ' when a spreadsheet would run it."""
    return "'" + cell if cell.startswith(("=", "+", "-", "@", "\t", "\r", "'")) else cell


def unsigned_chain(values):
    """An unfiltered export of events with the given fields, chained, its checkpoint unsigned."""
    header = {"type": "header", "version": v.VERSION, "exported_at": "2026-11-23T12:05:00.000000Z",
              "filters": dict.fromkeys(v.FILTERS), "first_seq": 1, "last_seq": len(values)}
    lines, prev = [header], v.ZERO_HASH
    for seq, fields in enumerate(values, start=1):
        event = {"type": "event", "seq": seq, "occurred_at": f"2026-11-23T12:00:0{seq}.000000Z",
                 "actor_role": "service", "actor_id": "crm", "action": "consent.granted",
                 "subject_pseudonym": None, "payload": "{}", "prev_hash": prev}
        event.update(fields)
        event["payload_digest"] = v.sha256_hex(event["payload"])
        event["hash"] = prev = v.sha256_hex(v.canonical(event))
        lines.append(event)
    lines.append({"type": "checkpoint", "seq": len(values), "hash": prev, "kid": "k",
                  "signature": "unsigned"})
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


class WorkedExample(unittest.TestCase):
    def setUp(self):
        self.blocks = example_blocks()
        self.export = self.blocks["export"]
        self.jwks = json.loads(self.blocks["jwks"])

    def fails(self, text, expected, jwks="default"):
        with self.assertRaises(v.Failure) as caught:
            v.verify(numbered(text), self.jwks if jwks == "default" else jwks)
        self.assertIn(expected, str(caught.exception))

    def test_the_example_verifies(self):
        report = v.verify(numbered(self.export), self.jwks)
        self.assertEqual((report["events"], report["links"], report["head_seq"]), (2, 1, 3))
        self.assertTrue(report["signature_checked"])

    def test_the_hash_input_and_hash_are_as_documented(self):
        event = json.loads(self.export.splitlines()[1])
        self.assertEqual(v.canonical(event) + "\n", self.blocks["canonical"])
        self.assertEqual(v.sha256_hex(v.canonical(event)) + "\n", self.blocks["hash"])
        self.assertEqual(event["hash"] + "\n", self.blocks["hash"])

    def test_the_jws_decodes_to_the_documented_header_and_claims(self):
        signature = json.loads(self.export.splitlines()[-1])["signature"]
        head, claims, _ = signature.split(".")
        self.assertEqual(json.loads(v.b64url(head)), json.loads(self.blocks["jws-header"]))
        self.assertEqual(json.loads(v.b64url(claims)), json.loads(self.blocks["jws-claims"]))

    def test_the_csv_form_verifies_too(self):
        rows = as_csv(self.export).splitlines(True)
        report = v.verify(v.csv_lines(rows[0], rows[1:]), self.jwks)
        self.assertEqual((report["events"], report["links"]), (2, 1))

    def test_csv_cells_a_spreadsheet_would_run_read_back_to_their_values(self):
        export = unsigned_chain([
            {"actor_id": "=HYPERLINK(\"https://evil.example\")", "payload": "-1+2"},
            {"action": "@SUM(A1)", "payload": "'quoted"},
            {"actor_id": "+1", "subject_pseudonym": "\t=1", "payload": "\r=2"},
        ])
        text = as_csv(export)
        cells = [c for row in csv.reader(io.StringIO(text)) for c in row]
        self.assertFalse([c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")])
        self.assertIn("'=HYPERLINK", text)
        rows = text.splitlines(True)
        report = v.verify(v.csv_lines(rows[0], rows[1:]), None)
        self.assertEqual(report["events"], 3)
        # Taken as they stand, the marked cells are other values: the chain breaks.
        original, v.read_back = v.read_back, lambda cell: cell
        try:
            with self.assertRaises(v.Failure):
                v.verify(v.csv_lines(rows[0], rows[1:]), None)
        finally:
            v.read_back = original

    def test_tampering_is_named(self):
        lines = self.export.splitlines(True)
        self.fails(self.export.replace("Zoë", "Zoe", 1), "line 2: event 1: the payload")
        self.fails("".join(lines[:1] + lines[2:]), "starts at event 1, found 2")
        self.fails("".join(lines[:2] + lines[3:]), "expected event 2 here, found 3")
        self.fails("".join(lines[:-1]), "cut short")
        edited = self.export.replace('"action":null', '"action":"consent.granted"', 1)
        self.fails(edited, "does not match the export's filters")
        edited = self.export.replace('"from":null', '"from":"2026-11-23T12:00:00.000000Z"', 1)
        self.fails(edited, "line 5: the signature covers other claims")
        self.fails(self.export.replace(',"actor":null}', "}", 1), "filters must have exactly the keys")
        other = json.loads(self.blocks["jwks"])
        other["keys"][0]["x"] = base64.urlsafe_b64encode(bytes(32)).decode().rstrip("=")
        self.fails(self.export, "does not verify", jwks=other)

    def test_an_emptied_payload_is_not_a_failure_but_a_changed_one_is(self):
        event = json.loads(self.export.splitlines()[3])
        self.assertEqual(event["payload"], "")
        forged = self.export.replace('"payload":""', '"payload":"{}"', 1)
        self.fails(forged, "line 4: event 3: the payload does not match its digest")

    def test_without_keys_only_the_chain_is_checked(self):
        report = v.verify(numbered(self.export), None)
        self.assertFalse(report["signature_checked"])
        edited = self.export.replace('"from":null', '"from":"2026-11-23T12:00:00.000000Z"', 1)
        self.assertEqual(v.verify(numbered(edited), None)["events"], 2)


if __name__ == "__main__":
    unittest.main()
