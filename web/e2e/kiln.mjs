// Test harness for the browser tests: a real built Kiln (its own database on the throwaway PostgreSQL that
// `./kiln.sh test` exports as KILN_TEST_PG, its own data directory), keys, media made with ffmpeg, and Debian's
// Chromium driven by playwright-core (no browser download).
import { spawn, execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { randomBytes, createHash } from "node:crypto";
import { chromium } from "playwright-core";

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const KILN_DLL = join(ROOT, "src/Kiln/bin/Release/net10.0/kiln.dll");
export const CHROMIUM = process.env.KILN_CHROMIUM ?? "/usr/bin/chromium";
export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
  "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required"];

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

/** Polls `fn` until it returns a truthy value; fails with `what` after `timeoutMs` (generous: CI runs loaded). */
export async function waitFor(what, fn, timeoutMs = 120_000, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export class Kiln {
  static async start(extraEnv = {}) {
    const pg = process.env.KILN_TEST_PG;
    if (!pg) throw new Error("KILN_TEST_PG is not set: run the browser tests through ./kiln.sh test");
    if (!existsSync(KILN_DLL)) throw new Error(`${KILN_DLL} is missing: build first (./kiln.sh test does)`);
    const db = `kiln_e2e_${randomBytes(6).toString("hex")}`;
    const data = mkdtempSync(join(tmpdir(), "kiln-e2e-data-"));
    const port = await freePort();
    const env = {
      ...process.env,
      ConnectionStrings__Kiln: pg.replace(/Database=[^;]*/i, `Database=${db}`),
      Kiln__DataDirectory: data,
      Kiln__Logging__Format: "simple",
      Logging__LogLevel__Default: "Warning",
      Kiln__Security__CreateAdminKeyOnFirstStart: "true",
      Kiln__Security__PerKeyRequestsPerSecond: "0",
      Kiln__Security__GlobalRequestsPerSecond: "0",
      Kiln__Queue__IdlePollSeconds: "2",
      // test.sleep: a job that runs as long as a test needs, reporting progress (never enabled in production).
      Kiln__Testing__EnableTestKinds: "true",
      Kiln__Workers__Slots__test: "4",
      ...extraEnv,
    };
    const k = new Kiln(env, data, `http://127.0.0.1:${port}`);
    k.proc = spawn("dotnet", [KILN_DLL, "serve", "--urls", k.base], { env, stdio: ["ignore", "pipe", "pipe"] });
    k.proc.stdout.on("data", (d) => { k.output += d; });
    k.proc.stderr.on("data", (d) => { k.output += d; });
    k.proc.on("exit", (code) => { k.exited = code ?? -1; });
    try {
      // The first start prints the admin key once on standard output.
      k.adminKey = await waitFor("the admin key on the server's output",
        () => (k.exited !== undefined ? "exited" : k.output.match(/(kiln_[A-Za-z0-9_-]{20,})/)?.[1]), 600_000);
      if (k.exited !== undefined) throw new Error(`kiln exited (${k.exited}):\n${k.output}`);
      await waitFor("the server to answer", async () => (await fetch(`${k.base}/health/live`)).ok, 600_000);
    } catch (e) {
      await k.stop(); // never leave a server behind a failed start
      throw e;
    }
    return k;
  }

  constructor(env, data, base) { this.env = env; this.data = data; this.base = base; this.output = ""; }

  async stop() {
    if (this.proc && this.exited === undefined) {
      this.proc.kill("SIGTERM");
      await waitFor("kiln to stop", () => this.exited !== undefined, 60_000).catch(() => this.proc.kill("SIGKILL"));
    }
    rmSync(this.data, { recursive: true, force: true });
  }

  /** A key made the way an operator makes one (`kiln keys create`). */
  async createKey(name, role = "client") {
    const { stdout } = await run("dotnet", [KILN_DLL, "keys", "create", "--name", name, "--role", role], { env: this.env });
    return stdout.trim().split("\n").pop().trim();
  }

  async api(path, key, init = {}) {
    const res = await fetch(this.base + path, { ...init, headers: { Authorization: `Bearer ${key}`, ...(init.headers ?? {}) } });
    const text = await res.text();
    if (!res.ok) throw new Error(`${init.method ?? "GET"} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }

  async upload(key, name, bytes, settings) {
    const form = new FormData();
    if (settings) form.append("settings", JSON.stringify(settings));
    form.append("file", new Blob([bytes]), name);
    return this.api("/api/uploads", key, { method: "POST", body: form });
  }
}

/** Media made on the spot with ffmpeg's lavfi sources (no binary fixtures in git). */
export async function makeMedia() {
  const dir = mkdtempSync(join(tmpdir(), "kiln-e2e-media-"));
  const video = join(dir, "clip.mp4");
  const audio = join(dir, "tone.wav");
  const image = join(dir, "photo.jpg");
  await run("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1600x1200:duration=1", "-frames:v", "1", "-q:v", "1", image]);
  await run("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc=duration=4:size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:duration=4",
    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", video]);
  await run("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "sine=frequency=330:duration=3,volume=0.8", "-ac", "1", audio]);
  // A large file of random bytes (incompressible) for the resumable upload.
  const big = join(dir, "big.bin");
  writeFileSync(big, randomBytes(24 * 1024 * 1024));
  return { dir, image, video, audio, big, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function sha256(path) { return createHash("sha256").update(readFileSync(path)).digest("hex"); }

export async function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/** Signs in through the page's form. */
export async function signIn(page, base, key) {
  await page.goto(base + "/");
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Main" }).waitFor({ timeout: 60_000 });
}
