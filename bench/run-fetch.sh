#!/usr/bin/env bash
# URL import figures (docs/benchmarks.md): Kiln's direct downloader vs `curl -o` of the same 1 GiB file from a
# loopback origin in alternating rounds (throughput, CPU s/GiB, RSS growth), then pause → resume → complete with the
# bytes the origin sent. The origin is a separate process so the downloader's CPU time is its own. No PostgreSQL.
#   bench/run-fetch.sh            (SIZE_MIB=1024 ROUNDS=3 PORT=18790)
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${SIZE_MIB:-1024}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18790}
dotnet build bench/Kiln.Bench -c Release -v quiet -nologo >/dev/null
bench="dotnet bench/Kiln.Bench/bin/Release/net10.0/Kiln.Bench.dll"

work=$(mktemp -d /tmp/kiln-fetch-bench.XXXXXX)
origin_pid=""
trap '[ -n "$origin_pid" ] && kill "$origin_pid" 2>/dev/null; rm -rf "$work"' EXIT
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$work/file"
$bench fetch origin "$work/file" "$PORT" & origin_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/sent" >/dev/null && break; sleep 0.2; done

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
$bench fetch "http://127.0.0.1:$PORT/" "$ROUNDS" "$work/out"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
