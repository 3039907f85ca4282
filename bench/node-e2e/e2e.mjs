// Node reference for Kiln's image-api benchmark (the default image pipeline end to end), idiomatic Node:
// Express + multer (uploads to disk) + BullMQ on Redis (a probe job, then optimize and thumbnails as its
// follow-ups, 2 image jobs at a time like Kiln's image slots) + sharp. Server, worker and client share this
// process, as in Kiln's benchmark. Prints images/s per round, CPU ms per image and the peak RSS (VmHWM).
//   REDIS_PORT=6390 node e2e.mjs IMAGES ROUNDS [photo]
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, mkdtempSync, rmSync, statSync, copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import multer from 'multer';
import { Queue, Worker } from 'bullmq';
import sharp from 'sharp';

const here = path.dirname(fileURLToPath(import.meta.url));
const images = Number(process.argv[2] ?? 40);
const rounds = Number(process.argv[3] ?? 3);
const photoPath = process.argv[4] ?? path.join(here, '..', '..', '..', 'shared', 'corpus', '2569067123_aca715a2ee_o.jpg');
const optimizedFormat = /\.jpe?g$/i.test(photoPath) ? 'jpeg' : 'webp';
const connection = { host: '127.0.0.1', port: Number(process.env.REDIS_PORT ?? 6390) };
const data = mkdtempSync(path.join(tmpdir(), 'node-e2e-'));
sharp.cache(false);

const queue = new Queue('image', { connection });
await queue.obliterate({ force: true }).catch(() => {});
const assets = new Map(); // id -> { path, pending, failed }
let nextId = 0;

const sha256 = (file) => new Promise((resolve, reject) => {
  const h = createHash('sha256');
  createReadStream(file).on('data', (c) => h.update(c)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
});

const thumbnails = [
  { name: 'thumbnail', width: 150, height: 150, fit: 'cover' },
  { name: 'medium', width: 800, height: 600, fit: 'inside' },
  { name: 'large', width: 1920, height: 1080, fit: 'inside' },
];

const handlers = {
  async probe(job) {
    const { path: file } = assets.get(job.data.asset);
    const [hash, meta] = await Promise.all([sha256(file), sharp(file).metadata()]);
    await queue.addBulk(['optimize', 'thumbnails'].map((name) => ({ name, data: job.data, opts: { removeOnComplete: true } })));
    return { hash, width: meta.width, height: meta.height };
  },
  async optimize(job) {
    const { path: file, dir } = assets.get(job.data.asset);
    // Kiln's auto format for the inputs the bench sends: JPEG stays JPEG, a lossless photo (PNG, TIFF) becomes WebP Q80.
    const webp = optimizedFormat === 'webp';
    const out = path.join(dir, webp ? 'optimized.webp' : 'optimized.jpg');
    const encoder = sharp(file).rotate();
    const info = await (webp ? encoder.webp({ quality: 80 }) : encoder.jpeg({ quality: 80, optimizeCoding: true })).toFile(out);
    if (info.size >= statSync(file).size) copyFileSync(file, out); // keep the original when re-encoding does not help
    return info.size;
  },
  async thumbnails(job) {
    const { path: file, dir } = assets.get(job.data.asset);
    await Promise.all(thumbnails.map((t) => sharp(file).rotate()
      .resize(t.width, t.height, { fit: t.fit, withoutEnlargement: true, kernel: 'lanczos3' })
      .flatten({ background: '#ffffff' }).jpeg({ quality: 80, optimizeCoding: true })
      .toFile(path.join(dir, `${t.name}.jpg`))));
  },
};

const worker = new Worker('image', async (job) => handlers[job.name](job), { connection, concurrency: 2 });
worker.on('completed', (job) => {
  if (job.name === 'probe') return;
  const a = assets.get(job.data.asset);
  a.pending--;
});
worker.on('failed', (job, err) => { assets.get(job.data.asset).failed = String(err); });

const app = express();
const upload = multer({ dest: path.join(data, 'uploads') });
app.post('/api/uploads', upload.single('file'), async (req, res) => {
  const id = String(nextId++);
  const dir = path.join(data, 'assets', id);
  mkdirSync(dir, { recursive: true });
  assets.set(id, { path: req.file.path, dir, pending: 2, failed: null });
  await queue.add('probe', { asset: id }, { removeOnComplete: true });
  res.status(201).json({ assets: [{ id }] });
});
app.get('/api/assets/:id', (req, res) => {
  const a = assets.get(req.params.id);
  res.json({ done: a.pending === 0, failed: a.failed });
});
const server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
const base = `http://127.0.0.1:${server.address().port}`;
const photo = readFileSync(photoPath);

async function batch(count) {
  const ids = await Promise.all(Array.from({ length: count }, async (_, i) => {
    const form = new FormData();
    form.append('file', new Blob([photo]), `photo-${i}${path.extname(photoPath)}`);
    const r = await fetch(`${base}/api/uploads`, { method: 'POST', body: form });
    if (r.status !== 201) throw new Error(`upload ${r.status}`);
    return (await r.json()).assets[0].id;
  }));
  for (const id of ids) {
    for (;;) {
      const s = await (await fetch(`${base}/api/assets/${id}`)).json();
      if (s.failed) throw new Error(s.failed);
      if (s.done) break;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

const peakRss = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
await batch(4); // warm-up
const rates = [];
const cpus = [];
for (let r = 0; r < rounds; r++) {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  await batch(images);
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  rates.push(images / s);
  cpus.push((used.user + used.system) / 1000 / images);
  console.log(`node round ${r + 1}: ${images} images in ${s.toFixed(2)} s = ${(images / s).toFixed(2)} images/s, cpu ${cpus[r].toFixed(1)} ms/image`);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`node e2e median=${median(rates).toFixed(2)} images/s cpu-ms/image=${median(cpus).toFixed(1)} peak-rss-mib=${peakRss().toFixed(0)} rounds=[${rates.map((x) => x.toFixed(2)).join(', ')}] sharp ${sharp.versions.sharp} libvips ${sharp.versions.vips}`);
await worker.close();
await queue.close();
server.close();
rmSync(data, { recursive: true, force: true });
process.exit(0);
