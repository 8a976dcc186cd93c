#!/usr/bin/env bash
# Writes a throw-away test CA and certificates into DIR (openssl), for the
# SDK suites' TLS servers (scripts/test.sh): ca.pem; server.pem/server-key.pem
# for localhost and 127.0.0.1; client.pem/client-key.pem (mutual TLS).
# Never use these outside tests.
#   scripts/test-certificates.sh DIR
set -euo pipefail
dir=${1:?usage: scripts/test-certificates.sh DIR}
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
key ca-key.pem
openssl req -x509 -new -key ca-key.pem -out ca.pem -days 2 -subj "/CN=fathom test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
issue() { # name subject extensions
    key "$1-key.pem"
    openssl req -new -key "$1-key.pem" -out "$1.csr" -subj "/CN=$2"
    printf '%s\n' "$3" "basicConstraints=CA:FALSE" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
        -out "$1.pem" -extfile "$1.ext" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
issue server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
issue client "fathom test client" "extendedKeyUsage=clientAuth"
