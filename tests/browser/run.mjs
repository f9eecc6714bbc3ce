// Vitrine's pages in headless Chromium (Debian's /usr/bin/chromium, driven
// by playwright-core), against a live `vitrine serve` that
// scripts/web-test.sh starts. Loads a small catalog of real photos
// through the signed webhook, then: a photo of a product finds it first;
// a `<script>` title is shown as text and never runs; the category filter
// narrows the grid; a text search finds a product by its title; the admin
// console logs in, filters to failed events, counts them for a bulk
// replay, shows an event's attempts, retries one and shows its new status; no page asks another host or
// breaks its Content-Security-Policy; each page fits a phone's width.
// Screenshots of each page at desktop and phone size go to $ARTIFACTS.
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const BASE = must("BASE_URL"), SECRET = must("WEBHOOK_SECRET"), ADMIN = must("VITRINE_ADMIN_TOKEN");
const PHOTOS = must("PHOTOS"), ART = process.env.ARTIFACTS || "tests/browser/artifacts";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">Evil & co';
const DESKTOP = { width: 1280, height: 800 }, PHONE = { width: 390, height: 844 };

function must(name) {
  const v = process.env[name];
  if (!v) { console.error(`${name} is not set`); process.exit(2); }
  return v;
}

const failures = [];
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok    ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failures.push(name);
    console.log(`FAIL  ${name}: ${e && e.stack || e}`);
  }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }

async function send(ev) {
  const body = JSON.stringify(ev);
  const sig = "sha256=" + crypto.createHmac("sha256", SECRET).update(body).digest("hex");
  const r = await fetch(`${BASE}/api/v1/webhooks/bakai`, {
    method: "POST", body, headers: { "content-type": "application/json", "x-webhook-signature": sig },
  });
  assert(r.ok, `webhook answered ${r.status}: ${await r.text()}`);
}

async function waitStatus(id, want, seconds = 180) {
  const until = Date.now() + seconds * 1000;
  for (;;) {
    const r = await fetch(`${BASE}/api/v1/products/${encodeURIComponent(id)}`);
    const p = r.ok ? await r.json() : null;
    if (p && p.status === want) return p;
    if (Date.now() > until) throw new Error(`${id} is ${p && p.status}, not ${want}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

// The catalog: one product per photo, a hostile title, and one whose image
// does not exist (it fails, for the admin console).
const files = fs.readdirSync(PHOTOS).filter((f) => f.endsWith(".jpg")).sort().slice(0, 12);
assert(files.length >= 6, `need photos in ${PHOTOS}`);
const CATEGORIES = ["plants", "food", "things"];
const products = files.map((f, i) => ({
  product_id: `bt-${i}`,
  title: i === 3 ? HOSTILE : f.replace(/\.jpg$/, "").replace(/_/g, " "),
  category: CATEGORIES[i % 3],
  price: 5 + i * 3,
  currency: "USD",
  image_key: f,
}));
const now = new Date().toISOString();
const t0 = Date.now();
for (const p of products) {
  await send({ event_type: "product.created", event_id: `bt-evt-${p.product_id}`, timestamp: now, data: p });
}
await send({ event_type: "product.created", event_id: "bt-evt-missing", timestamp: now,
  data: { product_id: "bt-missing", title: "Lost", image_key: "no-such-photo.jpg" } });
for (const p of products) await waitStatus(p.product_id, "indexed");
await waitStatus("bt-missing", "failed");
console.log(`catalog of ${products.length} indexed in ${Date.now() - t0} ms`);

fs.mkdirSync(ART, { recursive: true });
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "vitrine-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: CHROMIUM,
  headless: true,
  viewport: DESKTOP,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic"],
});
const external = [], cspErrors = [], pageErrors = [];
context.on("request", (r) => {
  const u = new URL(r.url());
  if (u.protocol.startsWith("http") && u.origin !== new URL(BASE).origin) external.push(r.url());
});
const page = context.pages()[0] || await context.newPage();
page.on("console", (m) => { if (/Content.Security.Policy/i.test(m.text())) cspErrors.push(m.text()); });
page.on("pageerror", (e) => pageErrors.push(String(e)));

async function shots(name) {
  await page.setViewportSize(PHONE);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.screenshot({ path: path.join(ART, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(DESKTOP);
  await page.screenshot({ path: path.join(ART, `${name}-desktop.png`), fullPage: true });
  assert(width <= PHONE.width, `${name} scrolls sideways on a phone: ${width}px wide`);
}

const firstCard = () => page.locator("#grid a.card").first();

await check("the shopper page shows the catalog at once", async () => {
  await page.goto(`${BASE}/`);
  const n = await page.locator("#grid a.card").count();
  assert(n === products.length, `${n} cards for ${products.length} products`);
  await shots("home");
});

await check("a photo of an indexed product finds it first", async () => {
  await page.goto(`${BASE}/`);
  await page.setInputFiles("#photo-file", path.join(PHOTOS, files[5]));
  await page.waitForFunction(() => document.getElementById("results-title").textContent.includes("look like"));
  const href = await firstCard().getAttribute("href");
  assert(href === "/products/bt-5", `first result is ${href}`);
  const score = await firstCard().locator(".score").textContent();
  assert(/match \d+%/.test(score), score);
  await shots("photo-search");
});

await check("a <script> title is shown as text and never runs", async () => {
  await page.goto(`${BASE}/`);
  const t = await page.locator('a.card[href="/products/bt-3"] .title').textContent();
  assert(t === HOSTILE, `server-rendered title: ${t}`);
  await page.setInputFiles("#photo-file", path.join(PHOTOS, files[3]));
  await page.waitForFunction(() => document.getElementById("results-title").textContent.includes("look like"));
  const s = await firstCard().locator(".title").textContent();
  assert(s === HOSTILE, `script-rendered title: ${s}`);
  await page.goto(`${BASE}/products/bt-3`);
  assert((await page.locator("h1").textContent()) === HOSTILE, "product page title");
  assert(await page.evaluate(() => window.pwned === undefined), "the title ran as script");
  await shots("product");
});

await check("the category filter narrows the grid", async () => {
  await page.goto(`${BASE}/`);
  await page.selectOption('select[name="category"]', "plants");
  await Promise.all([page.waitForURL(/category=plants/), page.click('#filters button[type="submit"]')]);
  const hrefs = await page.locator("#grid a.card").evaluateAll((as) => as.map((a) => a.getAttribute("href")).sort());
  const want = products.filter((p) => p.category === "plants").map((p) => `/products/${p.product_id}`).sort();
  assert(JSON.stringify(hrefs) === JSON.stringify(want), `${hrefs} != ${want}`);
});

await check("the admin console: log in, filter failed, retry, see the status change", async () => {
  await page.goto(`${BASE}/admin`);
  await shots("admin-login");
  await page.fill("#token", "wrong-token");
  await page.click('#login-form button[type="submit"]');
  await page.locator("#login-error").waitFor({ state: "visible" });
  await page.fill("#token", ADMIN);
  await page.click('#login-form button[type="submit"]');
  await page.locator("#console").waitFor({ state: "visible" });
  assert(!page.url().includes(ADMIN), "the token is in the URL");
  assert(await page.evaluate((t) => sessionStorage.getItem("vitrine.adminToken") === t, ADMIN), "token not in sessionStorage");
  await page.selectOption('#event-filters select[name="status"]', "failed");
  await page.click('#event-filters button[type="submit"]');
  await page.waitForFunction(() => /^1 event$/.test(document.getElementById("list-status").textContent));
  const statuses = await page.locator("#events tbody td.st-failed").count();
  assert(statuses === 1, `${statuses} failed rows`);
  // Bulk replay's dry run counts what the filters match.
  await page.click("#replay-count");
  await page.waitForFunction(() => /^1 event match/.test(document.getElementById("replay-status").textContent));
  assert(await page.locator("#replay-start").isVisible(), "no button to start the replay");
  await page.locator("#events tbody tr").first().click();
  await page.locator("#detail").waitFor({ state: "visible" });
  assert((await page.locator("#detail-payload").textContent()).includes('"image_key": "no-such-photo.jpg"'), "payload not pretty-printed");
  assert((await page.locator("#detail-error").textContent()).includes("not found"), "error not shown");
  assert((await page.locator("#detail-status").textContent()) === "failed", "detail status");
  const tries = await page.locator("#attempts tbody tr").count();
  assert(tries >= 1, "no attempts shown");
  await shots("admin-detail");
  await page.click("#retry");
  await page.waitForFunction(() => document.getElementById("retry-status").textContent.includes("now pending"));
  assert((await page.locator("#detail-status").textContent()) === "pending", "status did not change");
  // Still logged in after a reload (same tab), and logged out after "Log out".
  await page.reload();
  await page.locator("#console").waitFor({ state: "visible" });
  await page.click("#logout");
  await page.locator("#login").waitFor({ state: "visible" });
});

await check("the admin dashboard draws its charts from the stats endpoint", async () => {
  await page.goto(`${BASE}/admin`);
  await page.fill("#token", ADMIN);
  await page.click('#login-form button[type="submit"]');
  await page.waitForFunction(() => document.querySelectorAll("#charts .uplot").length >= 5);
  const status = await page.locator("#stats-status").textContent();
  assert(/^Queue now: \d+ pending/.test(status), status);
  await shots("admin-dashboard");
});

await check("the admin console lists the CRM's rules with their counts", async () => {
  const rule = { name: "won to sales", triggers: ["stage_changed"],
    conditions: { field: "status_id", op: "==", value: 142 },
    actions: [{ type: "kommo_tag", tag: "won" }] };
  const r = await fetch(`${BASE}/api/v1/crm/rules`, { method: "POST", body: JSON.stringify(rule),
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` } });
  assert(r.status === 201, `creating a rule answered ${r.status}: ${await r.text()}`);
  await page.goto(`${BASE}/admin`);
  await page.locator("#rules-panel").waitFor({ state: "visible" });
  await page.waitForFunction(() => /^1 rule$/.test(document.getElementById("rules-status").textContent));
  const cells = await page.locator("#rules tbody tr").first().locator("td").allTextContents();
  assert(cells[0] === "won to sales" && cells[2] === "stage_changed" && cells[3] === "kommo_tag", cells.join(" | "));
  await page.locator("#rules tbody tr").first().click();
  await page.locator("#rule-detail").waitFor({ state: "visible" });
  assert((await page.locator("#rule-spec").textContent()).includes('"status_id"'), "rule conditions not shown");
  const names = await page.locator("#providers dt").allTextContents();
  assert(names.includes("bakai") && names.includes("kommo"), `providers: ${names}`);
});

await check("the admin console lists a re-uploaded product as a near-duplicate", async () => {
  await send({ event_type: "product.created", event_id: "bt-evt-dup", timestamp: now,
    data: { product_id: "bt-dup", title: "Same photo, other seller", image_key: files[0] } });
  await waitStatus("bt-dup", "indexed");
  await page.goto(`${BASE}/admin`);
  await page.waitForFunction(() => /^1 cluster/.test(document.getElementById("duplicates-status").textContent));
  const links = await page.locator("#duplicates tbody tr").first().locator("a").allTextContents();
  assert(JSON.stringify(links) === JSON.stringify(["bt-0", "bt-dup"]), `cluster: ${links}`);
});

await check("the admin console stores a bot, never shows its token, disables and rotates it", async () => {
  const token = "7000001:AAbrowserTestTokenNeverShown", secret = "browser-bot-secret-1";
  await page.goto(`${BASE}/admin`);
  await page.locator("#bots-panel").waitFor({ state: "visible" });
  await page.waitForFunction(() => /stored bot/.test(document.getElementById("bots-status").textContent));
  const form = page.locator("#bot-form");
  await form.locator("select[name=kind]").selectOption("telegram");
  await form.locator("input[name=name]").fill("Browser shop");
  await form.locator("input[name=token]").fill(token);
  await form.locator("input[name=secret]").fill(secret);
  await form.locator("button[type=submit]").click();
  await page.waitForFunction(() => document.getElementById("bots-status").textContent === "Added Browser shop");
  const row = page.locator("#bots tbody tr", { hasText: "Browser shop" });
  let cells = await row.locator("td").allTextContents();
  assert(cells[1] === "telegram" && cells[2] === "7000001" && cells[3] === "yes" && cells[4] === "set",
    `bot row: ${cells.join(" | ")}`);
  const html = await page.content();
  assert(!html.includes(token) && !html.includes(secret), "the page shows a token or a secret");
  const listed = await (await fetch(`${BASE}/api/v1/channels/bots`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
  assert(!listed.includes("AAbrowserTest") && !listed.includes(secret), `the list shows a secret: ${listed}`);
  await row.locator("button", { hasText: "Disable" }).click();
  await page.waitForFunction(() => /Browser shop disabled/.test(document.getElementById("bots-status").textContent));
  cells = await page.locator("#bots tbody tr", { hasText: "Browser shop" }).locator("td").allTextContents();
  assert(cells[3] === "no", `after disabling: ${cells.join(" | ")}`);
  await page.locator("#bots tbody tr", { hasText: "Browser shop" }).locator("button", { hasText: "Rotate" }).click();
  await page.locator("#rotate-form").waitFor({ state: "visible" });
  await page.locator("#rotate-form input[name=secret]").fill("browser-bot-secret-2");
  await page.locator("#rotate-form button[type=submit]").click();
  await page.waitForFunction(() => document.getElementById("bots-status").textContent === "Rotated");
  await shots("admin-bots");
});

await check("Swagger UI renders the API from this server", async () => {
  await page.goto(`${BASE}/docs/`);
  await page.locator(".opblock").first().waitFor({ timeout: 15000 });
  await shots("docs");
});

await check("a text search finds a product by a title word", async () => {
  await page.goto(`${BASE}/`);
  const want = products[5];
  await page.fill("#q", want.title);
  await Promise.all([page.waitForURL(/[?&]q=/), page.click('#filters button[type="submit"]')]);
  const href = await firstCard().getAttribute("href");
  assert(href === `/products/${want.product_id}`, `first result for "${want.title}" is ${href}`);
  const heading = await page.locator("#results-title").textContent();
  assert(heading.includes(want.title), heading);
  await shots("text-search");
  // Its page names what the classifier sees in the photo, each a search.
  await page.goto(`${BASE}/products/${want.product_id}`);
  const labels = await page.locator("p.labels a").count();
  assert(labels > 0, "no labels on the product page");
});

await check("no request left this server, and no page broke its CSP", async () => {
  assert(external.length === 0, `requests to other hosts: ${external.join(", ")}`);
  assert(cspErrors.length === 0, `CSP violations: ${cspErrors.join(" | ")}`);
  assert(pageErrors.length === 0, `script errors: ${pageErrors.join(" | ")}`);
});

await context.close();
fs.rmSync(userDataDir, { recursive: true, force: true });
console.log(failures.length ? `\n${failures.length} browser check(s) failed` : "\nall browser checks passed");
process.exit(failures.length ? 1 : 0);
