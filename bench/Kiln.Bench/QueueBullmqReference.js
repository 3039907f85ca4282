// BullMQ reference in the same conditions as Kiln's queue benchmark: no-op jobs, bulk add in chunks,
// one worker process, jobs/s from the first add to the last completion; latency one job at a time.
const { Queue, Worker, QueueEvents } = require('bullmq');
const port = Number(process.env.REDIS_PORT || 6380);
const connection = { host: '127.0.0.1', port };
const jobs = Number(process.argv[2] || 100000), rounds = Number(process.argv[3] || 3), concurrency = Number(process.argv[4] || 256);
const chunk = 5000;
const opts = { removeOnComplete: { count: 1000 }, removeOnFail: { count: 200 } };

async function round(name, n) {
  const queue = new Queue(name, { connection });
  await queue.obliterate({ force: true }).catch(() => {});
  let done = 0, resolveDone;
  const finished = new Promise(r => (resolveDone = r));
  const worker = new Worker(name, async () => {}, { connection, concurrency, autorun: true });
  worker.on('completed', () => { if (++done === n) resolveDone(process.hrtime.bigint()); });
  await worker.waitUntilReady();
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i += chunk) {
    const size = Math.min(chunk, n - i);
    await queue.addBulk(Array.from({ length: size }, () => ({ name: 'noop', data: {}, opts })));
  }
  const end = await finished;
  const cpu = process.cpuUsage(cpu0);
  await worker.close(); await queue.obliterate({ force: true }).catch(() => {}); await queue.close();
  const s = Number(end - start) / 1e9;
  return { s, rate: n / s, nodeCpuUsPerJob: (cpu.user + cpu.system) / n };
}

async function latency(samples) {
  const queue = new Queue('lat', { connection });
  await queue.obliterate({ force: true }).catch(() => {});
  let onStart = null;
  const worker = new Worker('lat', async () => { onStart && onStart(process.hrtime.bigint()); }, { connection, concurrency: 1 });
  await worker.waitUntilReady();
  const out = [], adds = [];
  const cpu0 = process.cpuUsage();
  for (let i = -50; i < samples; i++) {
    const started = new Promise(r => (onStart = r));
    const t0 = process.hrtime.bigint();
    await queue.add('noop', {}, opts);
    const tAdd = process.hrtime.bigint();
    const t1 = await started;
    if (i >= 0) { out.push(Number(t1 - t0) / 1e6); adds.push(Number(tAdd - t0) / 1e6); }
    await new Promise(r => setTimeout(r, 2));
  }
  const cpu = process.cpuUsage(cpu0);
  await worker.close(); await queue.close();
  const stats = v => {
    v.sort((a, b) => a - b);
    const p = q => v[Math.min(v.length - 1, Math.ceil(q * v.length) - 1)].toFixed(2);
    return `p50 ${p(0.5)} ms, p90 ${p(0.9)} ms, p99 ${p(0.99)} ms, max ${v[v.length - 1].toFixed(2)} ms`;
  };
  console.log(`latency over ${samples}, add call to worker start: ${stats(out)}; node CPU ${((cpu.user + cpu.system) / (samples + 50)).toFixed(0)} us/job`);
  console.log(`  of which the add call: ${stats(adds)}`);
}

(async () => {
  console.log(`bullmq ${require('bullmq/package.json').version}, redis port ${port}, jobs=${jobs}, concurrency=${concurrency}`);
  const w = await round('warm', 30000); console.log(`warm-up: ${w.rate.toFixed(0)} jobs/s`);
  const rates = [];
  for (let r = 1; r <= rounds; r++) {
    const x = await round('bench' + r, jobs); rates.push(x.rate);
    console.log(`round ${r}: ${jobs} jobs in ${x.s.toFixed(2)} s = ${x.rate.toFixed(0)} jobs/s; node CPU ${x.nodeCpuUsPerJob.toFixed(0)} us/job`);
  }
  rates.sort((a, b) => a - b);
  console.log(`throughput median: ${rates[Math.floor(rates.length / 2)].toFixed(0)} jobs/s`);
  await latency(Number(process.argv[5] || 1000));
  process.exit(0);
})();
