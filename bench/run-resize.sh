#!/usr/bin/env bash
# The resize benchmark in Kiln and in sharp on the same machine, for every input family, in alternating blocks so
# that load from anything else running shifts both alike; prints the median ops/s of all rounds per tool, input and
# images in flight, and the median CPU time per image.
#   bench/run-resize.sh                      (BLOCKS=3 ROUNDS=3 SECONDS_PER_ROUND=3 by default)
#   INPUTS="jpeg-plain.jpg png-alpha.png" bench/run-resize.sh      (a subset; names as generated below)
# NICE=-10 runs both at a higher CPU priority (as root) when other work shares the machine; both tools get the same.
set -euo pipefail
cd "$(dirname "$0")/.."

BLOCKS=${BLOCKS:-3}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-3}
NICE=${NICE:-0}
CPU_IMAGES=${CPU_OPS:-200}
INPUT_DIR=${INPUT_DIR:-/tmp/kiln-bench-resize}
INPUTS=${INPUTS:-jpeg-plain.jpg jpeg-exif6.jpg jpeg-icc.jpg png-8bit.png png-alpha.png png-16bit.png webp.webp tiff-lzw.tif}
# resize.mjs switches to its CPU mode when CPU_OPS is set, so it must not leak into the ops/s runs.
unset CPU_OPS

dotnet build bench/Kiln.Bench -c Release -v quiet -nologo >/dev/null
if [ ! -d bench/sharp/node_modules/sharp ]; then
  (cd bench/sharp && npm ci --no-audit --no-fund >/dev/null)
fi
bench="dotnet bench/Kiln.Bench/bin/Release/net10.0/Kiln.Bench.dll"
# Inputs are generated from the shared corpus (no large binaries in the repository).
$bench resize-inputs "$INPUT_DIR"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
for block in $(seq "$BLOCKS"); do
  for input in $INPUTS; do
    echo "--- block $block of $BLOCKS, $input (load $(cut -d' ' -f1 /proc/loadavg))"
    nice -n "$NICE" $bench resize --input "$INPUT_DIR/$input" --rounds "$ROUNDS" --seconds "$SECONDS_PER_ROUND" | grep in-flight | tee -a "$log"
    (cd bench/sharp && ROUNDS="$ROUNDS" SECONDS_PER_ROUND="$SECONDS_PER_ROUND" nice -n "$NICE" node resize.mjs "$INPUT_DIR/$input") | grep in-flight | tee -a "$log"
    # CPU time per image, one in flight: the figure other load on the machine disturbs least.
    nice -n "$NICE" $bench resize --input "$INPUT_DIR/$input" --cpu "$CPU_IMAGES" | grep cpu-ms | tee -a "$log"
    (cd bench/sharp && CPU_OPS="$CPU_IMAGES" nice -n "$NICE" node resize.mjs "$INPUT_DIR/$input") | grep cpu-ms | tee -a "$log"
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"

echo "--- medians over all rounds ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
node - "$log" <<'JS'
const lines = require('fs').readFileSync(process.argv[2], 'utf8').split('\n');
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const i = s.length >> 1; return s.length % 2 ? s[i] : (s[i - 1] + s[i]) / 2; };
const rounds = {};
const cpu = {};
for (const line of lines) {
  let m = line.match(/^(kiln|sharp) input=(\S+) in-flight=(\d+) .*rounds=\[([^\]]*)\]/);
  if (m) ((rounds[m[2]] ??= {})[`${m[1]} ${m[3]}`] ??= []).push(...m[4].split(',').map(Number));
  m = line.match(/^(kiln|sharp) input=(\S+) cpu-ms\/op=([\d.]+)/);
  if (m) ((cpu[m[2]] ??= {})[m[1]] ??= []).push(Number(m[3]));
}
const f = (x, d = 1) => (x === undefined ? '-' : x.toFixed(d));
console.log('| input | Kiln 1 | sharp 1 | ratio | Kiln 2 | sharp 2 | ratio | Kiln CPU ms | sharp CPU ms |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const input of Object.keys(rounds)) {
  const r = rounds[input];
  const m = (k) => (r[k] ? median(r[k]) : undefined);
  const c = (k) => (cpu[input]?.[k] ? median(cpu[input][k]) : undefined);
  const [k1, s1, k2, s2] = [m('kiln 1'), m('sharp 1'), m('kiln 2'), m('sharp 2')];
  console.log(`| ${input} | ${f(k1)} | ${f(s1)} | ${f(k1 / s1, 2)}x | ${f(k2)} | ${f(s2)} | ${f(k2 / s2, 2)}x | ${f(c('kiln'), 2)} | ${f(c('sharp'), 2)} |`);
}
JS
