#!/usr/bin/env bash
# Turns TLS on in a local PostgreSQL for the TLS tests (tests/api/tls.rs), keeping plain
# connections working for the rest of the suite:
#
#   tools/postgres_tls.sh [ADMIN_URL]    # default postgres://postgres@127.0.0.1:5432/postgres
#
# Makes a throw-away CA and a server certificate for localhost and 127.0.0.1 signed by
# it, plus a second, unrelated CA (for the test that a server signed by another CA is
# refused), in the folder `test-tls` of the server's data directory, owned by the data
# directory's owner (server key mode 0600). The CAs' private keys are not kept. Then
# `ALTER SYSTEM SET ssl = on, ssl_cert_file, ssl_key_file` and `pg_reload_conf()`.
# Idempotent: a second run changes nothing (certificates are made again only when missing,
# not signed by the CA beside them, for other names, or expiring within 30 days).
#
# Needs the openssl and psql commands, a superuser in ADMIN_URL, and must run on the
# database's machine as root or as the data directory's owner. Prints the CA's path on
# stdout (everything else goes to stderr): CONSENTRY_TEST_PG_TLS_ROOT for the tests.
set -euo pipefail

ADMIN_URL="${1:-postgres://postgres@127.0.0.1:5432/postgres}"
say() { printf '%s\n' "$*" >&2; }
sql() { psql "$ADMIN_URL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

DATA_DIR="$(sql 'SHOW data_directory')"
[ -d "$DATA_DIR" ] || { say "data directory $DATA_DIR is not on this machine"; exit 1; }
OWNER="$(stat -c %U "$DATA_DIR")"
DIR="$DATA_DIR/test-tls"
CA="$DIR/ca.crt" OTHER_CA="$DIR/other-ca.crt"
CERT="$DIR/server.crt" KEY="$DIR/server.key"
# Only IPv4: libpq refuses a name check against a certificate holding an IPv6 address.
NAMES="DNS:localhost, IP Address:127.0.0.1"

certificates_usable() {
    [ -s "$CA" ] && [ -s "$OTHER_CA" ] && [ -s "$CERT" ] && [ -s "$KEY" ] \
        && openssl verify -CAfile "$CA" "$CERT" >/dev/null 2>&1 \
        && openssl x509 -in "$CERT" -noout -ext subjectAltName | grep -qxF "    $NAMES" \
        && openssl x509 -in "$CERT" -noout -checkend $((30 * 86400)) >/dev/null
}

make_certificates() {
    local work="$WORK"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -days 3650 -subj "/CN=Consentry test CA" \
        -keyout "$work/ca.key" -out "$work/ca.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        2>/dev/null
    openssl req -x509 "${ec[@]}" -days 3650 -subj "/CN=Consentry test CA (unrelated)" \
        -keyout "$work/other-ca.key" -out "$work/other-ca.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        2>/dev/null
    openssl req -new "${ec[@]}" -subj "/CN=localhost" \
        -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" >"$work/server.ext"
    openssl x509 -req -in "$work/server.csr" -days 3650 -extfile "$work/server.ext" \
        -CA "$work/ca.crt" -CAkey "$work/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
        -out "$work/server.crt" 2>/dev/null
    install -d -m 0700 "$DIR"
    install -m 0644 "$work/ca.crt" "$work/other-ca.crt" "$work/server.crt" "$DIR/"
    install -m 0600 "$work/server.key" "$DIR/"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R "$OWNER:" "$DIR"
    fi
}

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

changed=0
if certificates_usable; then
    say "certificates in $DIR are in place"
else
    say "making a throw-away CA and a server certificate for localhost in $DIR"
    make_certificates
    changed=1
fi

for setting in "ssl=on" "ssl_cert_file=$CERT" "ssl_key_file=$KEY"; do
    name="${setting%%=*}" value="${setting#*=}"
    if [ "$(sql "SHOW $name")" != "$value" ]; then
        say "ALTER SYSTEM SET $name = '$value'"
        sql "ALTER SYSTEM SET $name = '$value'"
        changed=1
    fi
done

if [ "$changed" -eq 1 ]; then
    sql 'SELECT pg_reload_conf()' >/dev/null
    # The reload is asynchronous, and a bad file is only logged: wait until it took.
    for _ in $(seq 1 50); do
        [ "$(sql 'SHOW ssl_cert_file')" = "$CERT" ] && [ "$(sql 'SHOW ssl')" = on ] && break
        sleep 0.1
    done
fi

# Both kinds of connection work: TLS verified against the CA, and plain.
PGSSLMODE=verify-full PGSSLROOTCERT="$CA" sql 'SELECT 1' >/dev/null \
    || { say "a verified TLS connection failed (see the server log)"; exit 1; }
PGSSLMODE=disable sql 'SELECT 1' >/dev/null \
    || { say "a plain connection failed"; exit 1; }
say "TLS is on (CA: $CA)"
printf '%s\n' "$CA"
