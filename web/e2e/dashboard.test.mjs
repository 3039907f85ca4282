// Browser tests of the dashboard (issue 10): a real Kiln, real PostgreSQL, ffmpeg-made media, Debian's Chromium.
// Run by `./kiln.sh test`; alone: `KILN_TEST_PG=... node --test e2e/dashboard.test.mjs` after a Release build.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { Kiln, launchBrowser, makeMedia, sha256, signIn, waitFor } from "./kiln.mjs";
// The page's unit-testable pieces run with the browser tests (./kiln.sh test runs this one file).
import "./framePacer.test.mjs";


describe("dashboard", { timeout: 60 * 60_000 }, () => {
  let kiln, browser, media, clientKey, otherKey;
  const shots = process.env.KILN_SCREENSHOTS; // a directory: save a screenshot of every page (docs/dashboard)

  before(async () => {
    [kiln, media, browser] = await Promise.all([Kiln.start(), makeMedia(), launchBrowser()]);
    // Playwright waits 30 s by default; a CI machine at load 27 (or 100) needs longer. Polls have their own bounds.
    const newContext = browser.newContext.bind(browser);
    browser.newContext = async (options) => {
      const context = await newContext(options);
      context.setDefaultTimeout(180_000);
      return context;
    };
    [clientKey, otherKey] = await Promise.all([kiln.createKey("e2e client"), kiln.createKey("e2e other client")]);
  });

  after(async () => {
    await browser?.close();
    await kiln?.stop();
    media?.cleanup();
    if (process.exitCode && kiln) console.error(kiln.output.slice(-4000));
  });

  async function adminPage() {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await signIn(page, kiln.base, kiln.adminKey);
    return page;
  }
  const shot = (page, name) => (shots ? page.screenshot({ path: `${shots}/${name}.png`, fullPage: true }) : Promise.resolve());

  test("sign in: the key opens the dashboard, a wrong key is refused with the server's reason", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(kiln.base + "/jobs"); // a client route: the SPA fallback serves the page
    await shot(page, "signin");
    await page.getByLabel("API key").fill("kiln_not_a_real_key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "auth.invalid_key" }).waitFor();
    await page.getByLabel("API key").fill(kiln.adminKey);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    const nav = await page.getByRole("navigation", { name: "Main" }).innerText();
    for (const name of ["Upload", "Assets", "Jobs", "Queues", "Workers", "Keys", "System"]) assert.match(nav, new RegExp(name));
    // Kept for the tab's session only.
    assert.equal(await page.evaluate(() => sessionStorage.getItem("kiln.apiKey")), kiln.adminKey);
    assert.equal(await page.evaluate(() => localStorage.getItem("kiln.apiKey")), null);
    await context.close();
  });

  test("upload an image: progress bar, then its jobs and thumbnail appear without a reload; asset shows comparison and bytes saved", async () => {
    const page = await adminPage();
    await page.goto(kiln.base + "/upload");
    await page.getByRole("heading", { name: "Upload" }).waitFor();
    const navigations = [];
    page.on("framenavigated", (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
    await page.getByLabel("Choose files").setInputFiles(media.image);
    const item = page.locator('.upload-item[data-file="photo.jpg"]');
    const bar = item.getByRole("progressbar", { name: "Upload of photo.jpg" });
    await waitFor("the upload bar to reach 100", async () => (await bar.getAttribute("aria-valuenow")) === "100");
    await item.locator('[data-kind="image.thumbnails"]').waitFor();
    const thumbnail = item.getByRole("img", { name: "Thumbnail of photo.jpg" });
    await thumbnail.waitFor({ timeout: 120_000 });
    // The element is in the page before its bytes arrive: wait for the browser to have decoded it.
    await waitFor("the thumbnail to load", async () => thumbnail.evaluate((img) => img.complete && img.naturalWidth > 0));
    assert.equal(await thumbnail.evaluate((img) => img.naturalWidth), 150, "the thumbnail's width");
    await waitFor("every job of the image to finish", async () => (await item.getAttribute("data-state")) === "done");
    assert.deepEqual(navigations, [], "no reload or navigation happened");
    await shot(page, "upload");

    await item.getByRole("link", { name: "Open asset" }).click();
    await page.getByTestId("compare").waitFor();
    const saved = await page.getByTestId("savings").innerText();
    assert.match(saved, /saved|larger/);
    assert.match(saved, /ratio \d\.\d\d/);
    assert.equal(await page.getByRole("img", { name: /photo.jpg: (original|processed)/ }).count(), 2);
    await page.getByRole("img", { name: "photo.jpg: processed" }).evaluate((img) => img.decode());
    await shot(page, "asset-image");

    await page.goto(kiln.base + "/library");
    await page.locator(".asset-card").first().waitFor();
    await shot(page, "assets");
    await page.context().close();
  });

  test("a lavfi video plays its HLS in the page (the video's time advances)", async () => {
    const uploaded = await kiln.upload(kiln.adminKey, "clip.mp4", await import("node:fs").then((fs) => fs.readFileSync(media.video)));
    const asset = uploaded.assets[0];
    const page = await adminPage();
    await page.goto(`${kiln.base}/library/${asset.id}`);
    const video = page.getByTestId("hls-video");
    await video.waitFor({ timeout: 300_000 });
    await waitFor("HLS metadata", () => video.evaluate((v) => v.readyState >= 1), 120_000);
    await video.evaluate((v) => v.play());
    await waitFor("the video's currentTime to advance", () => video.evaluate((v) => v.currentTime > 0.5), 120_000);
    assert.ok(await video.evaluate((v) => !v.error), "no media error");
    await page.getByText("Preview clip").waitFor({ timeout: 120_000 });
    await shot(page, "asset-video");
    await page.context().close();
  });

  test("an audio file shows a waveform drawn from its peaks", async () => {
    const fs = await import("node:fs");
    const uploaded = await kiln.upload(kiln.adminKey, "tone.wav", fs.readFileSync(media.audio));
    const page = await adminPage();
    await page.goto(`${kiln.base}/library/${uploaded.assets[0].id}`);
    const canvas = page.getByTestId("waveform");
    await canvas.waitFor({ timeout: 300_000 });
    await waitFor("the waveform to be drawn", async () => Number(await canvas.getAttribute("data-drawn")) > 0, 60_000);
    // Painted pixels, not an empty canvas: a sine at 0.8 fills most of the height.
    const painted = await canvas.evaluate((c) => {
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
      return n / (c.width * c.height);
    });
    assert.ok(painted > 0.3, `the waveform covers ${painted} of the canvas`);
    await shot(page, "asset-audio");
    await page.context().close();
  });

  test("cancel a running job from the Jobs page; its row changes live", async () => {
    const page = await adminPage();
    await page.goto(`${kiln.base}/jobs?kind=test.sleep`);
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    await waitFor("the hub to be live", async () => (await page.locator("[data-hub]").getAttribute("data-hub")) === "live");
    // A job that reports progress for ten minutes unless cancelled, created after the page loaded.
    const up = await kiln.upload(kiln.adminKey, "sleep.bin", new Uint8Array(64), { jobs: ["test.sleep"], params: { "test.sleep": { durationMs: 600000, steps: 2400 } } });
    const job = up.assets[0].jobs.find((j) => j.kind === "test.sleep");
    const row = page.locator(`tr[data-job="${job.id}"]`);
    // The hub announces it ("1 new job — show"), unless the page's catch-up load when the hub went live already
    // read it: either way it appears without a reload.
    const announced = page.getByRole("button", { name: /new job/ });
    await waitFor("the new job to be announced or shown", async () => (await announced.count()) > 0 || (await row.count()) > 0, 120_000);
    if (await row.count() === 0) await announced.click();
    // Running and progressing, seen through hub events (no reload).
    await waitFor("the job to show running", async () => (await row.getAttribute("data-state")) === "running", 120_000);
    const bar = row.getByRole("progressbar");
    const first = Number(await bar.getAttribute("aria-valuenow"));
    await waitFor("progress to advance live", async () => Number(await bar.getAttribute("aria-valuenow")) > first, 60_000);
    await shot(page, "jobs");
    await row.getByRole("button", { name: /^Cancel job/ }).click();
    await waitFor("the row to show cancelled", async () => (await row.getAttribute("data-state")) === "cancelled", 60_000);
    assert.equal((await kiln.api(`/api/jobs/${job.id}`, kiln.adminKey)).state, "cancelled");

    await page.goto(`${kiln.base}/jobs/${job.id}`);
    await page.getByText("test.sleep").first().waitFor();
    await shot(page, "job-detail");
    await page.context().close();
  });

  test("a job cancelled elsewhere changes state on the open Jobs page (hub event)", async () => {
    const up = await kiln.upload(kiln.adminKey, "sleep2.bin", new Uint8Array(64), { jobs: ["test.sleep"], params: { "test.sleep": { durationMs: 600000, steps: 600 } } });
    const job = up.assets[0].jobs.find((j) => j.kind === "test.sleep");
    await waitFor("the job to run", async () => (await kiln.api(`/api/jobs/${job.id}`, kiln.adminKey)).state === "running");
    const page = await adminPage();
    // Filtered by asset, not by state: a list read after the cancel (a poll while the hub connects, its catch-up when
    // it goes live) keeps the row, where a state=running view rightly drops it; that race once failed this test.
    await page.goto(`${kiln.base}/jobs?kind=test.sleep&assetId=${up.assets[0].id}`);
    const row = page.locator(`tr[data-job="${job.id}"]`);
    await row.waitFor();
    await waitFor("the hub to be live", async () => (await page.locator("[data-hub]").getAttribute("data-hub")) === "live");
    // From here on the list cannot be read again, so the new state can only come through the hub.
    await page.route(/\/api\/jobs\?/, (route) => route.abort());
    await kiln.api(`/api/jobs/${job.id}/cancel`, kiln.adminKey, { method: "POST" });
    await waitFor("the row to show cancelled", async () => (await row.getAttribute("data-state")) === "cancelled", 60_000);
    await page.context().close();
  });

  test("when the hub drops the page says so, keeps the table current by polling, and reconnects", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // Control the hub's transport: proxy its WebSocket to the server until `blocked`, then close it and refuse
    // new ones (negotiation included, so SignalR cannot fall back to another transport either).
    let blocked = false;
    const sockets = [];
    await page.routeWebSocket(/\/hubs\/jobs/, (ws) => {
      if (blocked) { ws.close(); return; }
      ws.connectToServer();
      sockets.push(ws);
    });
    await page.route(/\/hubs\/jobs\/negotiate/, (route) => (blocked ? route.fulfill({ status: 503, body: "" }) : route.continue()));
    await signIn(page, kiln.base, kiln.adminKey);
    const up = await kiln.upload(kiln.adminKey, "sleep3.bin", new Uint8Array(64), { jobs: ["test.sleep"], params: { "test.sleep": { durationMs: 600000, steps: 600 } } });
    const job = up.assets[0].jobs.find((j) => j.kind === "test.sleep");
    await waitFor("the job to run", async () => (await kiln.api(`/api/jobs/${job.id}`, kiln.adminKey)).state === "running");
    await page.goto(`${kiln.base}/jobs?kind=test.sleep`); // no state filter: the reloaded list still holds the row
    const row = page.locator(`tr[data-job="${job.id}"]`);
    await row.waitFor();
    const hub = page.locator("[data-hub]");
    await waitFor("the hub to be live", async () => (await hub.getAttribute("data-hub")) === "live");

    blocked = true;
    for (const ws of sockets) await ws.close();
    await waitFor("the page to say live updates are down", async () => (await hub.getAttribute("data-hub")) !== "live" && /disconnected|Connecting/.test(await hub.innerText()));
    await kiln.api(`/api/jobs/${job.id}/cancel`, kiln.adminKey, { method: "POST" });
    await waitFor("polling to show the cancellation", async () => (await row.getAttribute("data-state")) === "cancelled", 60_000);
    assert.notEqual(await hub.getAttribute("data-hub"), "live", "the change came by polling, not the hub");

    blocked = false;
    await waitFor("the hub to reconnect", async () => (await hub.getAttribute("data-hub")) === "live", 60_000);
    await context.close();
  });

  test("a long Jobs page keeps only the rows near the viewport in the DOM and follows only them on the hub; scrolling reaches the last one", async () => {
    const listed = 150;
    let next = 0;
    await Promise.all(Array.from({ length: 6 }, async () => {
      while (next < listed) await kiln.upload(kiln.adminKey, `quick-${next++}.bin`, new Uint8Array(8), { jobs: ["test.sleep"], params: { "test.sleep": { durationMs: 0, steps: 1 } } });
    }));
    const filter = "kind=test.sleep&state=completed";
    await waitFor(`${listed} completed jobs`, async () => (await kiln.api(`/api/jobs?${filter}&pageSize=1`, kiln.adminKey)).total >= listed);
    const all = await kiln.api(`/api/jobs?${filter}&pageSize=500`, kiln.adminKey);
    const page = await adminPage();
    // What the page asks of the hub: SignalR invocations (JSON, records end with \x1e) it sends on the WebSocket.
    const calls = [];
    page.on("websocket", (ws) => ws.on("framesent", ({ payload }) => {
      for (const frame of String(payload).split("\x1e")) {
        try { const m = JSON.parse(frame); if (m.type === 1) calls.push({ target: m.target, arg: m.arguments?.[0] }); } catch { /* handshake or binary */ }
      }
    }));
    const joined = () => new Set(calls.filter((c) => c.target === "join-job").map((c) => c.arg));
    await page.goto(`${kiln.base}/jobs?${filter}&pageSize=500`);
    const table = page.locator("table.jobs-table");
    await waitFor("the table to list them all", async () => Number(await table.getAttribute("aria-rowcount")) - 1 === all.total);
    const inDom = await page.locator("tr[data-job]").count();
    assert.ok(inDom > 0 && inDom < all.total, `${inDom} of ${all.total} rows are in the DOM`);
    assert.equal(await page.locator(`tr[data-job="${all.items.at(-1).id}"]`).count(), 0, "the last row waits below the viewport");
    // The page hears new jobs announced and follows the rows it renders, not every job (join-all is left if joined).
    await waitFor("the rows on screen to be followed", async () => joined().has(all.items[0].id));
    // The hub may have joined everything before the page mounted; leaving it follows the rows' joins (CI saw the
    // check run between them), so wait for it rather than expect it at once.
    const targets = () => calls.map((c) => c.target);
    const narrowed = () => targets().includes("join-new") && (!targets().includes("join-all") || targets().lastIndexOf("leave-all") > targets().lastIndexOf("join-all"));
    await waitFor("the page to hear new jobs only", async () => { assert.ok(narrowed(), targets().join(", ")); return true; }, 30_000);
    assert.ok(joined().size < all.total / 2 && !joined().has(all.items.at(-1).id), `${joined().size} of ${all.total} jobs joined (${inDom} rows in the DOM)`);
    await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    const last = page.locator(`tr[data-job="${all.items.at(-1).id}"]`);
    await last.waitFor({ timeout: 60_000 });
    assert.equal(await last.getAttribute("aria-rowindex"), String(all.total + 1));
    await waitFor("the last row to be followed and the first left", async () =>
      joined().has(all.items.at(-1).id) && calls.some((c) => c.target === "leave-job" && c.arg === all.items[0].id));
    await page.context().close();
  });

  test("pause a queue and see it marked paused; resume it", async () => {
    const page = await adminPage();
    await page.goto(`${kiln.base}/queues`);
    const card = page.locator('.queue-card[data-queue="image"]');
    await card.waitFor();
    assert.equal(await card.getByTestId("queue-status").innerText(), "running");
    await card.getByRole("button", { name: "Pause queue image" }).click();
    await waitFor("the card to show paused", async () => (await card.getByTestId("queue-status").innerText()) === "paused");
    assert.equal((await kiln.api("/api/queues/image", kiln.adminKey)).paused, true);
    await shot(page, "queues");
    await card.getByRole("button", { name: "Resume queue image" }).click();
    await waitFor("the card to show running", async () => (await card.getByTestId("queue-status").innerText()) === "running");
    assert.equal((await kiln.api("/api/queues/image", kiln.adminKey)).paused, false);

    for (const [path, name] of [["/workers", "workers"], ["/keys", "keys"], ["/system", "system"]]) {
      await page.goto(kiln.base + path);
      await page.locator("main h1").waitFor();
      await page.waitForLoadState("networkidle").catch(() => undefined);
      await shot(page, name);
    }
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(kiln.base + "/upload");
    await page.getByRole("heading", { name: "Upload" }).waitFor();
    await shot(page, "phone-upload");
    await page.context().close();
  });

  test("a client key sees no admin pages and cannot open another client's asset", async () => {
    const fs = await import("node:fs");
    const others = await kiln.upload(otherKey, "theirs.jpg", fs.readFileSync(media.image));
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, kiln.base, clientKey);
    const nav = await page.getByRole("navigation", { name: "Main" }).innerText();
    assert.doesNotMatch(nav, /Workers|Keys/);
    assert.match(nav, /Upload/);
    assert.equal(await page.getByLabel("Signed-in role").innerText(), "client");
    for (const path of ["/keys", "/workers"]) {
      await page.goto(kiln.base + path);
      await page.getByRole("heading", { name: "Not found" }).waitFor();
    }
    await page.goto(`${kiln.base}/library/${others.assets[0].id}`);
    await page.getByRole("heading", { name: "Asset not found" }).waitFor();
    await page.goto(`${kiln.base}/library`);
    await page.getByText("No assets match.").waitFor();
    // Admin controls are absent from the queues page too.
    await page.goto(`${kiln.base}/queues`);
    await page.locator(".queue-card").first().waitFor();
    assert.equal(await page.getByRole("button", { name: /^Pause queue/ }).count(), 0);
    await context.close();
  });

  test("a resumable upload interrupted midway finishes from where it stopped; the server receives each byte once", async (t) => {
    const tus = await fetch(`${kiln.base}/api/tus`, { method: "OPTIONS" });
    if (!tus.headers.get("Tus-Version")) { t.skip("this server has no tus endpoint yet"); return; }
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, kiln.base, clientKey);
    await page.goto(kiln.base + "/upload");
    // Slow the upload down so it can be interrupted midway (Chromium's own network throttling).
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 4 * 1024 * 1024 });
    // Every PATCH: the offset it starts at and, once answered, the server's new offset (what it stored).
    const patches = [];
    page.on("request", (r) => {
      if (r.method() === "PATCH" && r.url().includes("/api/tus/")) patches.push({ request: r, url: r.url(), offset: Number(r.headers()["upload-offset"]), end: null });
    });
    page.on("response", (res) => {
      const p = patches.find((x) => x.request === res.request());
      if (p && res.status() === 204) p.end = Number(res.headers()["upload-offset"]);
    });
    const size = statSync(media.big).size;
    await page.getByLabel("Choose files").setInputFiles(media.big);
    const item = page.locator('.upload-item[data-file="big.bin"]');
    const bar = item.getByRole("progressbar", { name: "Upload of big.bin" });
    await waitFor("a third of the upload", async () => Number(await bar.getAttribute("aria-valuenow")) >= 33, 180_000);
    await item.getByRole("button", { name: "Pause upload of big.bin" }).click();
    assert.equal(await item.getAttribute("data-state"), "paused");
    const uploadUrl = patches[0].url;
    // What the server holds now, by tus HEAD.
    const held = Number((await fetch(uploadUrl, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0", Authorization: `Bearer ${clientKey}` } })).headers.get("Upload-Offset"));
    assert.ok(held > 0 && held < size, `the server holds ${held} of ${size} bytes`);
    const before = patches.length;
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await item.getByRole("button", { name: "Resume upload of big.bin" }).click();
    await waitFor("the upload to finish", async () => ["processing", "done"].includes(await item.getAttribute("data-state")), 180_000);
    const resumed = patches.slice(before);
    assert.ok(resumed.length > 0 && resumed.every((p) => p.end !== null), "every PATCH after resuming was answered");
    assert.equal(resumed[0].offset, held, "the first PATCH after the interruption starts at the server's offset");
    for (let i = 1; i < resumed.length; i++) assert.equal(resumed[i].offset, resumed[i - 1].end, "chunks follow each other");
    assert.equal(resumed.at(-1).end, size);
    // Bytes the server stored per PATCH (the interrupted one stored up to what HEAD said) add up to the file: none twice.
    const stored = patches.reduce((n, p) => n + ((p.end ?? held) - p.offset), 0);
    assert.equal(stored, size, "the server received each byte once");
    const assetLink = await item.getByRole("link", { name: "Open asset" }).getAttribute("href");
    const asset = await waitFor("the probe", async () => {
      const a = (await kiln.api(`/api/assets/${assetLink.split("/").pop()}`, clientKey)).asset;
      return a.sha256 ? a : null;
    });
    assert.equal(asset.size, size);
    assert.equal(asset.sha256, sha256(media.big), "the stored file is the file, byte for byte");
    await context.close();
  });
});
