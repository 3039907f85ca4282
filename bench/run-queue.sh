#!/usr/bin/env bash
# The queue (issue 14 target 3): Kiln's PostgreSQL queue, durable, against BullMQ on Redis with AOF everysec, in
# alternating blocks of one run so both see the same load. Each block: throughput (no-op jobs/s, CPU per job),
# enqueue→start latency on an idle queue and the enqueue call alone, then Kiln's enqueue split into its steps.
# The disk's fsync cost (pg_test_fsync) is printed first: a durable enqueue cannot return before one WAL flush.
#   bench/run-queue.sh            (BLOCKS=2 JOBS=100000 ROUNDS=3 SAMPLES=2000; KILN_BENCH_PG to use your own server)
# Without KILN_BENCH_PG a private PostgreSQL 15 with fsync=on is started in /var/tmp/benchpg (BENCH_PG_PORT, default 5545,
# apart from the 5544 of `./kiln.sh run`'s own PostgreSQL) and left
# running for the next run. Redis comes from Debian (installed here when missing), on a private port, stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

BLOCKS=${BLOCKS:-2}
JOBS=${JOBS:-100000}
ROUNDS=${ROUNDS:-3}
SAMPLES=${SAMPLES:-2000}
REDIS_PORT=${REDIS_PORT:-6391}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
BENCH_PG_DIR=/var/tmp/benchpg
BENCH_PG_PORT=${BENCH_PG_PORT:-5545}

if [[ -z "${KILN_BENCH_PG:-}" ]]; then
  if [[ ! -f "$BENCH_PG_DIR/cluster/PG_VERSION" ]]; then
    mkdir -p "$BENCH_PG_DIR" && chown postgres "$BENCH_PG_DIR" && chmod 700 "$BENCH_PG_DIR"
    (umask 077; head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > "$BENCH_PG_DIR/password")
    chown postgres "$BENCH_PG_DIR/password"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$BENCH_PG_DIR/cluster" -U postgres --pwfile="$BENCH_PG_DIR/password" \
      --auth=scram-sha-256 -E UTF8 >/dev/null
  fi
  if ! runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$BENCH_PG_DIR/cluster" status >/dev/null 2>&1; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$BENCH_PG_DIR/cluster" -l "$BENCH_PG_DIR/log" -w start -o \
      "-c listen_addresses=127.0.0.1 -c port=$BENCH_PG_PORT -c unix_socket_directories=$BENCH_PG_DIR -c max_connections=300 -c shared_buffers=256MB -c fsync=on -c synchronous_commit=on" >/dev/null
  fi
  KILN_BENCH_PG="Host=127.0.0.1;Port=$BENCH_PG_PORT;Username=postgres;Password=$(cat "$BENCH_PG_DIR/password");Database=postgres"
fi
export KILN_BENCH_PG

if ! command -v redis-server >/dev/null; then
  apt-get install -y -qq redis-server >/dev/null
fi
if [ ! -d bench/node-e2e/node_modules/bullmq ]; then
  (cd bench/node-e2e && npm ci --no-audit --no-fund >/dev/null)
fi
dotnet build bench/Kiln.Bench -c Release -v quiet -nologo >/dev/null

redis_dir=$(mktemp -d)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$redis_dir" --save '' --appendonly yes --appendfsync everysec \
  --daemonize yes --pidfile "$redis_dir/pid" >/dev/null
log=$(mktemp)
trap 'kill "$(cat "$redis_dir/pid")" 2>/dev/null || true; rm -rf "$redis_dir" "$log"' EXIT

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
if [[ -d "$BENCH_PG_DIR" ]]; then
  echo "fdatasync of one 8 kB write on the cluster's disk (pg_test_fsync):"
  fsync_report=$(runuser -u postgres -- "$PG_BIN/pg_test_fsync" -s 2 -f "$BENCH_PG_DIR/fsync-test" 2>/dev/null || true)
  grep -m1 -E '^\s+fdatasync' <<<"$fsync_report" | tee -a "$log"
  rm -f "$BENCH_PG_DIR/fsync-test"
fi
for block in $(seq "$BLOCKS"); do
  echo "--- block $block of $BLOCKS (load $(cut -d' ' -f1 /proc/loadavg))" | tee -a "$log"
  dotnet bench/Kiln.Bench/bin/Release/net10.0/Kiln.Bench.dll queue --jobs "$JOBS" --rounds "$ROUNDS" --samples "$SAMPLES" --steps | tee -a "$log"
  echo "--- BullMQ, Redis AOF everysec (load $(cut -d' ' -f1 /proc/loadavg))" | tee -a "$log"
  NODE_PATH=bench/node-e2e/node_modules REDIS_PORT="$REDIS_PORT" \
    node bench/Kiln.Bench/QueueBullmqReference.js "$JOBS" "$ROUNDS" 256 "$SAMPLES" | tee -a "$log"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
echo "=== summary"
grep -E 'throughput median|latency over|enqueue call|CPU per job|--- |WAL flush' "$log"
