#!/usr/bin/env bash
# Runs every scenario against the AWS Labs reference server, as
# `scenario run --server-command` does for any MCP server, on a standalone
# emulator holding the demo set, and prints which scenarios it completes.
# Not part of .ci/run: it downloads the reference server from PyPI. The
# README's side-by-side table comes from this script.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=0.1.1
venv=target/reference-venv
if [ ! -x "$venv/bin/awslabs.healthimaging-mcp-server" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "awslabs.healthimaging-mcp-server==$version"
fi
cargo build --quiet -p healthimaging-mcp
bin=target/debug/healthimaging-mcp
log=$(mktemp)
"$bin" emulator --fixtures demo --listen 127.0.0.1:0 >"$log" 2>&1 &
emulator=$!
trap 'kill $emulator 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do grep -q "listening on" "$log" && break; sleep 1; done
url=$(grep -o "listening on http://[0-9.:]*" "$log" | head -1 | cut -d' ' -f3)
# The reference server reads the endpoint and region the way boto3 does;
# placeholder credentials, never the instance metadata service.
export AWS_ENDPOINT_URL_MEDICAL_IMAGING="$url" AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=placeholder AWS_SECRET_ACCESS_KEY=placeholder AWS_EC2_METADATA_DISABLED=true
echo "== this server ($url)"
"$bin" scenario run --all --endpoint-url "$url" | grep -E "^━━|passed|FAILED" || true
echo "== awslabs.healthimaging-mcp-server $version"
"$bin" scenario run --all --allow-writes-on-real-data \
    --server-command "$venv/bin/python tests/reference/shim.py" | grep -E "^━━|✗|passed|FAILED" || true
