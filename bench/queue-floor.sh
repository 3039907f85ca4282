#!/usr/bin/env bash
# The floor of a durable enqueue on this machine, without Kiln (issue 14 target 3): pgbench with one client and
# prepared statements, each transaction one statement in autocommit (one round trip, one durable commit), on the
# Kiln schema in a scratch database of the bench cluster that bench/run-queue.sh starts (/var/tmp/benchpg, fsync=on).
# Prints p50 / p90 / p99 of the per-transaction latencies: a round trip, a one-row insert into a one-column table, a
# one-row insert into jobs, and that insert with a NOTIFY in the same transaction.
#   bench/queue-floor.sh            (SECONDS_PER_RUN=6 ROUNDS=2; PGHOST/PGPORT/PGUSER/PGPASSWORD to use your own server)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${SECONDS_PER_RUN:-6}
ROUNDS=${ROUNDS:-2}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5545} PGUSER=${PGUSER:-postgres}
export PGPASSWORD=${PGPASSWORD:-$(cat /var/tmp/benchpg/password)}
work=$(mktemp -d)
trap 'rm -rf "$work"; psql -qd postgres -c "drop database if exists kiln_floor" >/dev/null 2>&1 || true' EXIT
psql -qd postgres -c "drop database if exists kiln_floor" -c "create database kiln_floor" >/dev/null 2>&1
psql -qd kiln_floor -c "create table floor_t (id uuid primary key)" >/dev/null
for f in src/Kiln/Data/Migrations/0*.sql; do psql -qd kiln_floor -f "$f" >/dev/null; done
echo 'select 1;' > "$work/select1.sql"
echo 'insert into floor_t (id) values (gen_random_uuid());' > "$work/insert1.sql"
echo "insert into jobs (id, kind, queue, state, priority, max_attempts) values (gen_random_uuid(), 'bench', 'bench', 'queued', 10, 3);" > "$work/insertjob.sql"
echo "insert into jobs (id, kind, queue, state, priority, max_attempts) values (gen_random_uuid(), 'bench', 'bench', 'queued', 10, 3) \\; select pg_notify('kiln_jobs', 'bench');" > "$work/insertnotify.sql"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  for script in select1:prepared insert1:prepared insertjob:prepared insertnotify:simple; do
    name=${script%%:*}
    rm -f "$work"/log.*
    (cd "$work" && pgbench -n -c 1 -T "$SECONDS_PER_RUN" -M "${script##*:}" -f "$name.sql" --log --log-prefix=log kiln_floor >/dev/null 2>&1)
    cat "$work"/log.* | awk '{print $3 / 1000}' | sort -n | awk -v s="$name" -v r="$round" \
      '{a[NR] = $1} END {printf "round %d %-13s n=%-6d p50 %.3f ms  p90 %.3f  p99 %.3f\n", r, s, NR, a[int(NR * 0.5)], a[int(NR * 0.9)], a[int(NR * 0.99)]}'
  done
done
