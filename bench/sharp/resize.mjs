// The standard sharp resize task, run as the reference for Kiln's ResizeBenchmark:
// decode an image held in memory, resize to 720 wide (Lanczos3), encode JPEG Q80 to a buffer, with what Kiln's
// output promises: upright (EXIF orientation applied), sRGB (sharp's default), alpha flattened onto white.
// Reports ops/s with 1 and with 2 pipelines in flight; libvips runs 1 thread per pipeline.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import sharp from 'sharp';

const here = path.dirname(fileURLToPath(import.meta.url));
const input = process.argv[2] ?? path.join(here, '..', '..', '..', 'shared', 'corpus', '2569067123_aca715a2ee_o.jpg');
const rounds = Number(process.env.ROUNDS ?? 5);
const seconds = Number(process.env.SECONDS_PER_ROUND ?? 3);

sharp.cache(false);
sharp.concurrency(1);
const buffer = readFileSync(input);

const label = path.basename(input);
const once = () => sharp(buffer)
  .rotate()
  .resize({ width: 720, kernel: sharp.kernel.lanczos3 })
  .flatten({ background: '#ffffff' })
  .jpeg({ quality: 80 })
  .toBuffer({ resolveWithObject: true });

const { info } = await once();
if (info.width !== 720) {
  throw new Error(`unexpected output size ${info.width}x${info.height}`);
}

async function round(inFlight) {
  const deadline = process.hrtime.bigint() + BigInt(seconds * 1e9);
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  let done = 0;
  const lane = async () => {
    while (process.hrtime.bigint() < deadline) {
      await once();
      done++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  return { rate: done / elapsed, cpuMs: (used.user + used.system) / 1000 / Math.max(1, done) };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

console.log(`sharp ${sharp.versions.sharp}, libvips ${sharp.versions.vips}, ${rounds} rounds of ${seconds}s`);
if (process.env.CPU_OPS) {
  // CPU time per operation: far less disturbed by other load on a shared machine than ops/s.
  const count = Number(process.env.CPU_OPS);
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await once();
  const used = process.cpuUsage(cpu);
  const wall = Number(process.hrtime.bigint() - start) / 1e6;
  console.log(`sharp input=${label} cpu-ms/op=${((used.user + used.system) / 1000 / count).toFixed(2)} wall-ms/op=${(wall / count).toFixed(2)}`);
  process.exit(0);
}
for (const inFlight of [1, 2]) {
  await round(inFlight); // warm-up
  const rates = [];
  const cpu = [];
  for (let i = 0; i < rounds; i++) {
    const r = await round(inFlight);
    rates.push(r.rate);
    cpu.push(r.cpuMs);
  }
  console.log(`sharp input=${label} in-flight=${inFlight} median=${median(rates).toFixed(1)} ops/s rounds=[${rates.map((r) => r.toFixed(1)).join(', ')}] cpu-ms/image=${median(cpu).toFixed(2)}`);
}
