#!/usr/bin/env bash
# The default image pipeline end to end (upload → probe → optimize + three thumbnails ready), Kiln against the Node
# reference (bench/node-e2e: Express + multer + BullMQ + sharp) in alternating blocks of the same run, so both see
# the same load. Prints each side's images/s per round, CPU ms per image and peak RSS.
#   KILN_BENCH_PG="Host=…;Username=…;Password=…" bench/run-image-e2e.sh      (BLOCKS=2 IMAGES=40 ROUNDS=3)
# Redis for BullMQ comes from Debian (installed here when missing, never by kiln.sh), run with AOF everysec on a
# private port and stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

BLOCKS=${BLOCKS:-2}
IMAGES=${IMAGES:-40}
ROUNDS=${ROUNDS:-3}
REDIS_PORT=${REDIS_PORT:-6390}
: "${KILN_BENCH_PG:?set KILN_BENCH_PG to a PostgreSQL connection string (a fresh database is created on it)}"

if ! command -v redis-server >/dev/null; then
  apt-get install -y -qq redis-server >/dev/null
fi
if [ ! -d bench/node-e2e/node_modules/bullmq ]; then
  (cd bench/node-e2e && npm install --no-audit --no-fund >/dev/null)
fi
dotnet build bench/Kiln.Bench -c Release -v quiet -nologo >/dev/null

redis_dir=$(mktemp -d)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$redis_dir" --save '' --appendonly yes --appendfsync everysec --daemonize yes --pidfile "$redis_dir/pid" >/dev/null
log=$(mktemp)
trap 'kill "$(cat "$redis_dir/pid")" 2>/dev/null || true; rm -rf "$redis_dir" "$log"' EXIT

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
for block in $(seq "$BLOCKS"); do
  echo "--- block $block of $BLOCKS (load $(cut -d' ' -f1 /proc/loadavg))"
  dotnet bench/Kiln.Bench/bin/Release/net10.0/Kiln.Bench.dll image-api --pipeline default --images "$IMAGES" --rounds "$ROUNDS" | tee -a "$log"
  (cd bench/node-e2e && REDIS_PORT="$REDIS_PORT" node e2e.mjs "$IMAGES" "$ROUNDS") | tee -a "$log"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
grep -E '^(kiln|node) e2e' "$log"
