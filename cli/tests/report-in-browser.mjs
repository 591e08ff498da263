// Opens a tracealloc HTML report in headless Chromium (playwright-core) and checks what a user
// would see: no script errors; the leaks section puts LEAK first and the top table has it;
// searching filters the rows;
// sorting by a column reorders them; the timeline marks the peak; each flamegraph frame runs its
// own search. Usage: node <this> REPORT LEAK SEARCH [SCREENSHOT.png]
import { chromium } from "playwright-core";
const [report, leak, term, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const errors = [];
const requests = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
page.on("request", (r) => { if (!/^(file|data):/.test(r.url())) requests.push(r.url()); });
await page.goto("file://" + report);
await page.click("nav button[data-section=tables]");
const visibleRows = () => page.evaluate(() =>
  [...document.querySelectorAll("table.top[data-by=line] tbody tr")]
    .filter((r) => r.style.display !== "none")
    .map((r) => r.cells[r.cells.length - 1].textContent));
const before = await visibleRows();
await page.fill("#search", term);
const filtered = await visibleRows();
await page.fill("#search", "");
// Sort by total (ascending after two clicks: descending first).
await page.click("table.top[data-by=line] th:nth-child(4)");
await page.click("table.top[data-by=line] th:nth-child(4)");
const sortedTotals = await page.evaluate(() =>
  [...document.querySelectorAll("table.top[data-by=line] tbody tr")].map((r) => Number(r.cells[3].dataset.v)));
await page.click("nav button[data-section=timeline]");
const peakMarked = await page.evaluate(() =>
  [...document.querySelectorAll("#timeline svg text")].some((t) => t.textContent.startsWith("peak ")));
await page.click("nav button[data-section=leaks]");
const firstLeak = await page.evaluate(() =>
  document.querySelector("#leaks pre").textContent.split("\n#2")[0]);
await page.click("nav button[data-section=flamegraphs]");
await page.waitForTimeout(500);
const flames = [];
for (const frame of page.frames().slice(1)) {
  await frame.waitForFunction(() => typeof search === "function" && document.getElementById("matched"));
  flames.push(await frame.evaluate((term) => {
    search(term);
    return document.getElementById("matched").textContent;
  }, term));
}
if (screenshot) {
  await page.click("nav button[data-section=tables]");
  await page.screenshot({ path: screenshot });
}
await browser.close();
const result = { errors, requests, firstLeak, rows: before.length, filtered, sortedTotals, peakMarked, flames };
console.log(JSON.stringify(result));
const ascending = sortedTotals.every((v, i) => i === 0 || sortedTotals[i - 1] <= v);
const ok = errors.length === 0 && requests.length === 0 && before.length > 1 &&
  firstLeak.includes(leak) && before.some((k) => k.includes(leak)) && filtered.length > 0 && filtered.length < before.length &&
  filtered.every((k) => k.toLowerCase().includes(term.toLowerCase())) && ascending &&
  peakMarked && flames.length >= 4 && flames.some((m) => m.includes("Matched"));
process.exit(ok ? 0 : 1);
