// Drives the dashboard for dashboard_test.go in headless Chromium, talking
// to the test over stdin/stdout, one line each way:
//   → READY            the grid of STORE is on screen and live
//   ← WARM             the test published an event for WARM_PRODUCT
//   → WARM ok|no       its cell changed within 3 s (no: the test publishes again)
//   ← TARGET           the test published an event for TARGET_PRODUCT
//   → CHANGED ms       its cell changed, ms after TARGET arrived
//   → REQUESTS [urls]  every request the page made (JSON), at the end
// Requests to anything but the server's own address are aborted and listed.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const [url, key, store, warmProduct, targetProduct] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM;
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (s) => process.stdout.write(s + "\n");
const hear = async () => (await lines.next()).value;

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
const requests = [];
try {
  const page = await browser.newPage();
  const origin = new URL(url).origin;
  page.on("websocket", (ws) => requests.push(ws.url()));
  await page.route("**/*", (route) => {
    const u = route.request().url();
    requests.push(u);
    return new URL(u).origin === origin ? route.continue() : route.abort();
  });
  await page.goto(url + "/dashboard");
  await page.fill("#key", key);
  await page.click("#connect button");
  await page.waitForSelector("#store:not([disabled])");
  await page.selectOption("#store", store);
  await page.waitForSelector(`#grid[data-store="${store}"][data-ready="true"] [data-product="${targetProduct}"]`, { timeout: 30000 });
  const cell = (p) => `#grid [data-product="${p}"]`;
  const changed = (p, before, timeout) => page.waitForFunction(
    ([sel, was]) => { const c = document.querySelector(sel); return c && (c.dataset.updated + "|" + c.dataset.probability) !== was; },
    [cell(p), before], { timeout });
  const stamp = (p) => page.$eval(cell(p), (c) => c.dataset.updated + "|" + c.dataset.probability);
  say("READY");

  // The subscription is registered asynchronously: warm-up events until
  // one shows, so the target event cannot beat the subscription.
  let before;
  for (;;) {
    const was = await stamp(warmProduct);
    if ((await hear()) !== "WARM") throw new Error("expected WARM");
    const ok = await changed(warmProduct, was, 3000).then(() => true, () => false);
    // The target's state is read before the test may publish for it.
    before = await stamp(targetProduct);
    say(ok ? "WARM ok" : "WARM no");
    if (ok) break;
  }
  if ((await hear()) !== "TARGET") throw new Error("expected TARGET");
  const start = Date.now();
  await changed(targetProduct, before, 30000);
  say("CHANGED " + (Date.now() - start));
} finally {
  say("REQUESTS " + JSON.stringify(requests));
  await browser.close();
}
