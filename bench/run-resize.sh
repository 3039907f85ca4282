#!/usr/bin/env bash
# The resize benchmark in Kiln and in sharp on the same machine, in alternating blocks so that load from
# anything else running shifts both alike; prints the median ops/s of all rounds per tool and images in flight.
#   bench/run-resize.sh                      (BLOCKS=3 ROUNDS=3 SECONDS_PER_ROUND=3 by default)
# NICE=-10 runs both at a higher CPU priority (as root) when other work shares the machine; both tools get the same.
set -euo pipefail
cd "$(dirname "$0")/.."

BLOCKS=${BLOCKS:-3}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-3}
NICE=${NICE:-0}
CPU_IMAGES=${CPU_OPS:-200}
# resize.mjs switches to its CPU mode when CPU_OPS is set, so it must not leak into the ops/s runs.
unset CPU_OPS

dotnet build bench/Kiln.Bench -c Release -v quiet -nologo >/dev/null
if [ ! -d bench/sharp/node_modules/sharp ]; then
  (cd bench/sharp && npm ci --no-audit --no-fund >/dev/null)
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for block in $(seq "$BLOCKS"); do
  echo "--- block $block of $BLOCKS"
  nice -n "$NICE" dotnet bench/Kiln.Bench/bin/Release/net10.0/Kiln.Bench.dll resize --rounds "$ROUNDS" --seconds "$SECONDS_PER_ROUND" | tee -a "$log"
  (cd bench/sharp && ROUNDS="$ROUNDS" SECONDS_PER_ROUND="$SECONDS_PER_ROUND" nice -n "$NICE" node resize.mjs) | tee -a "$log"
  # CPU time per image, one in flight: the figure other load on the machine disturbs least.
  nice -n "$NICE" dotnet bench/Kiln.Bench/bin/Release/net10.0/Kiln.Bench.dll resize --cpu "$CPU_IMAGES" | grep cpu-ms | tee -a "$log"
  (cd bench/sharp && CPU_OPS="$CPU_IMAGES" nice -n "$NICE" node resize.mjs) | grep cpu-ms | tee -a "$log"
done

echo "--- medians over all rounds ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
node - "$log" <<'JS'
const lines = require('fs').readFileSync(process.argv[2], 'utf8').split('\n');
const rounds = {};
for (const line of lines) {
  const m = line.match(/^(kiln|sharp) in-flight=(\d+) .*rounds=\[([^\]]*)\]/);
  if (!m) continue;
  const key = `${m[1]} in-flight=${m[2]}`;
  (rounds[key] ??= []).push(...m[3].split(',').map(Number));
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const i = s.length >> 1; return s.length % 2 ? s[i] : (s[i - 1] + s[i]) / 2; };
const cpu = {};
for (const line of lines) {
  const m = line.match(/^(kiln|sharp) cpu-ms\/op=([\d.]+)/);
  if (m) (cpu[m[1]] ??= []).push(Number(m[2]));
}
for (const key of Object.keys(rounds).sort()) {
  console.log(`${key.padEnd(18)} median ${median(rounds[key]).toFixed(1)} ops/s over ${rounds[key].length} rounds`);
}
for (const key of Object.keys(cpu).sort()) {
  console.log(`${key.padEnd(18)} median ${median(cpu[key]).toFixed(2)} CPU ms per image over ${cpu[key].length} runs`);
}
JS
