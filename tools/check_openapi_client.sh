#!/usr/bin/env bash
# Generates a Python client from the checked-in OpenAPI document with
# openapi-python-client, as a new user of the API would, and fails when the generator
# leaves anything out (it warns and carries on) or when an operation has no function in
# the client. Needs python3 with venv and the package index; no build.
#
#   tools/check_openapi_client.sh [DOCUMENT]   (default openapi/openapi.json)
set -euo pipefail
document="$(realpath "${1:-$(dirname "$0")/../openapi/openapi.json}")"
cd "$(dirname "$0")/.."

work="${OPENAPI_CLIENT_DIR:-target/openapi-client}"
mkdir -p "$work"
work="$(cd "$work" && pwd)" # absolute: the generator runs ruff from elsewhere
requirements=tools/requirements-openapi.txt
venv="$work/venv"

# A virtualenv of the pinned generator, made again when the pins change.
if ! cmp -s "$requirements" "$venv/requirements.txt" 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
fi

out="$work/generated"
log="$work/generate.log"
rm -rf "$out"
mkdir -p "$out"
# ruff (one of the pins) formats the client; the generator looks for it on PATH.
if ! PATH="$venv/bin:$PATH" openapi-python-client generate \
    --path "$document" --meta none --output-path "$out/client" >"$log" 2>&1; then
    cat "$log"
    echo "openapi-python-client failed on $document" >&2
    exit 1
fi
# It says nothing but "Generating ..." when it generated everything; anything else is a
# warning about a piece it skipped.
if grep -v -e '^Generating ' -e '^$' "$log" | grep -q .; then
    cat "$log"
    echo "openapi-python-client could not generate everything in $document" >&2
    exit 1
fi

# Every operation has its own module in the client, and every module imports.
"$venv/bin/python" - "$document" "$out" <<'PY'
import importlib
import json
import pathlib
import re
import sys

document, out = sys.argv[1], pathlib.Path(sys.argv[2])
spec = json.loads(pathlib.Path(document).read_text())
methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
problems, seen = [], {}
modules = {p.stem for p in (out / "client" / "api").rglob("*.py")} - {"__init__"}
for path, item in spec["paths"].items():
    for method, operation in item.items():
        if method not in methods:
            continue
        where = f"{method.upper()} {path}"
        op_id = operation.get("operationId")
        if not op_id:
            problems.append(f"{where} has no operationId")
            continue
        if op_id in seen:
            problems.append(f"{where} shares operationId {op_id!r} with {seen[op_id]}")
        seen.setdefault(op_id, where)
        module = re.sub(r"[^0-9a-z]+", "_", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", op_id).lower()).strip("_")
        if module not in modules:
            problems.append(f"{where} ({op_id}) is missing from the generated client")

sys.path.insert(0, str(out))
for module in sorted((out / "client").rglob("*.py")):
    name = ".".join(module.relative_to(out).with_suffix("").parts)
    try:
        importlib.import_module(name.removesuffix(".__init__"))
    except Exception as err:  # noqa: BLE001 - any failure to import is a finding
        problems.append(f"{name} does not import: {err}")

for problem in problems:
    print(problem, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"client generated: {len(seen)} operations, {len(modules)} modules")
PY
