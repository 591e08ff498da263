// Opens a tracealloc HTML report in headless Chromium (playwright-core) at 1280x800 and checks
// what a user would see, taking a screenshot of the first screen of every tab:
// - no script errors, nothing loaded from the network;
// - the Summary answers its three questions with top lines, LEAK among what leaked (first with
//   --diff, where what leaked is what grew), in human numbers (no raw figures of five digits);
// - the top table filters on a search and sorts by a column; the timeline marks the peak;
// - with --diff, the Changes tab ranks LEAK first, as grown;
// - the Leaks tab has one row per line, LEAK among them (first with --diff), its stacks beneath;
// - every flamegraph frame is as tall as its graph (nothing to scroll inside) and runs its own
//   search; the first graph's largest box (the widest but the root) lies in the first viewport,
//   callers at the top and allocating calls at the top; with the latter, that box is LARGEST.
// Usage: node <this> REPORT LEAK SEARCH LARGEST SHOTS_DIR NAME
// (screenshots: SHOTS_DIR/NAME-<tab>.png)
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
const [report, leak, term, largestName, shots, name] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const viewport = { width: 1280, height: 800 };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport });
const errors = [];
const requests = [];
const problems = [];
const expect = (ok, what) => { if (!ok) problems.push(what); };
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
page.on("request", (r) => { if (!/^(file|data):/.test(r.url())) requests.push(r.url()); });
await page.goto("file://" + report);
const shot = (tab) => page.screenshot({ path: `${shots}/${name}-${tab}.png` });
const tabs = await page.$$eval("nav button", (bs) => bs.map((b) => b.dataset.section));
// With --diff, what leaked is what grew: the leak alone, so first.
const compared = tabs.includes("changes");
const leakRow = (rows) => compared ? rows.length > 0 && rows[0].includes(leak) : rows.some((r) => r.includes(leak));

// Summary: the first screen.
await shot("summary");
const summary = await page.evaluate(() => {
  const rows = (id) => [...document.querySelectorAll(`#${id} table tbody tr`)].map((r) => r.textContent);
  const cards = [...document.querySelectorAll("#summary .card, #summary .answer")].map((c) => c.textContent).join("\n");
  const bottom = (sel) => { const e = document.querySelector(sel); return e ? e.getBoundingClientRect().bottom : Infinity; };
  return { live: rows("live-now"), peak: rows("at-peak"), leaked: rows("leaked"), cards,
           liveBottom: bottom("#live-now table") };
});
expect(summary.live.length > 0 && summary.peak.length > 0, "summary: top lines live now and at the peak");
expect(leakRow(summary.leaked), `summary: ${leak} among what leaked`);
expect(!/\b\d{5,}\b/.test(summary.cards), "summary: human numbers (no raw five-digit figures)");
expect(summary.liveBottom <= viewport.height, "summary: the top lines live now are on the first screen");

// Top sites: search and sort.
await page.click("nav button[data-section=tables]");
await shot("tables");
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
expect(before.length > 1 && before.some((k) => k.includes(leak)), "top sites: rows, LEAK among them");
expect(filtered.length > 0 && filtered.length < before.length &&
  filtered.every((k) => k.toLowerCase().includes(term.toLowerCase())), "top sites: search filters");
expect(sortedTotals.every((v, i) => i === 0 || sortedTotals[i - 1] <= v), "top sites: sorting");

await page.click("nav button[data-section=timeline]");
await shot("timeline");
const peakMarked = await page.evaluate(() =>
  [...document.querySelectorAll("#timeline svg text")].some((t) => t.textContent.startsWith("peak ")));
expect(peakMarked, "timeline: the peak is marked");

let changes = null;
if (tabs.includes("changes")) {
  await page.click("nav button[data-section=changes]");
  await shot("changes");
  changes = await page.evaluate(() =>
    [...document.querySelectorAll("table.changes tbody tr")].map((r) => ({ grew: r.className, text: r.textContent })));
  expect(changes.length > 0 && changes[0].text.includes(leak) && changes[0].grew === "grew",
    "changes: LEAK first, grown");
}

await page.click("nav button[data-section=leaks]");
await shot("leaks");
const leaks = await page.evaluate(() => [...document.querySelectorAll("table.leaks tbody tr")].map((r) => ({
  line: r.querySelector("summary").textContent,
  details: r.querySelectorAll("details").length,
  stacks: [...r.querySelectorAll("ol.stacks pre")].map((p) => p.textContent),
  open: r.querySelector("details").open,
})));
const lines = leaks.map((l) => l.line);
const leakAt = leaks.findIndex((l) => l.line.includes(leak));
expect(leakRow(lines), "leaks: LEAK's row");
expect(leaks.every((l) => l.details === 1 && l.stacks.length > 0), "leaks: each row one line with its stacks");
expect(new Set(lines).size === lines.length, "leaks: one row per line");
expect(leaks[0].open, "leaks: the first row's stacks shown");
expect(leakAt >= 0 && leaks[leakAt].stacks.some((s) => s.split("\n").length > 1 && s.includes(leak)),
  "leaks: LEAK's stacks, a frame per line");

// Flamegraphs: each frame fits its graph; the largest box in the first viewport.
await page.click("nav button[data-section=flamegraphs]");
const flameFrames = async (way) => {
  const handles = await page.$$(`iframe.flame[data-way=${way}]`);
  const out = [];
  for (const h of handles) {
    const frame = await h.contentFrame();
    await frame.waitForFunction(() => typeof search === "function" && document.getElementById("matched"));
    out.push({ handle: h, frame });
  }
  return out;
};
// The largest box: the widest but the root, in page coordinates; and whether the frame scrolls
// inside.
const largestBox = async ({ handle, frame }) => {
  const outer = await handle.boundingBox();
  const inner = await frame.evaluate(() => {
    const all = [...document.querySelectorAll("#frames > g")].map((g) => {
      const r = g.querySelector("rect").getBoundingClientRect();
      return { title: g.querySelector("title").textContent, x: r.x, y: r.y, width: r.width, height: r.height };
    });
    const root = all.find((b) => b.title.startsWith("all "));
    // Among boxes of one width (a chain of callers), the one nearest the root: it holds the rest.
    const boxes = all.filter((b) => b !== root);
    boxes.sort((a, b) => b.width - a.width || Math.abs(a.y - root.y) - Math.abs(b.y - root.y));
    const page = document.documentElement;
    return { box: boxes[0], scrolls: page.scrollHeight > innerHeight + 1 || page.scrollWidth > innerWidth + 1 };
  });
  const b = inner.box;
  return { title: b.title, x: outer.x + b.x, y: outer.y + b.y, width: b.width, height: b.height, scrolls: inner.scrolls };
};
const inViewport = (b) => b.x >= 0 && b.y >= 0 && b.x + b.width <= viewport.width + 0.5 && b.y + b.height <= viewport.height;
const callers = await flameFrames("callers");
await shot("flamegraphs");
const flames = [];
for (const f of callers) {
  flames.push(await f.frame.evaluate((term) => { search(term); const m = document.getElementById("matched").textContent; reset_search(); return m; }, term));
}
const callersLargest = await largestBox(callers[0]);
const callersScroll = [];
for (const f of callers) callersScroll.push((await largestBox(f)).scrolls);
expect(callers.length >= 4 && flames.every((m) => m.includes("Matched")), "flamegraphs: each searches");
expect(inViewport(callersLargest), "flamegraphs: the largest box in the first viewport (callers at the top)");
expect(callersScroll.every((s) => !s), "flamegraphs: nothing scrolls inside a frame (callers)");
await page.click("button.way[data-way=sites]");
const sites = await flameFrames("sites");
await page.evaluate(() => scrollTo(0, 0));
await shot("flamegraphs-sites");
const sitesLargest = await largestBox(sites[0]);
const sitesScroll = [];
for (const f of sites) sitesScroll.push((await largestBox(f)).scrolls);
expect(inViewport(sitesLargest) && sitesLargest.title.includes(largestName),
  `flamegraphs: the largest allocating call (${largestName}) in the first viewport`);
expect(sitesScroll.every((s) => !s), "flamegraphs: nothing scrolls inside a frame (sites)");
await browser.close();
expect(errors.length === 0, "no script errors");
expect(requests.length === 0, "nothing loaded from the network");
const result = { problems, errors, requests, tabs, summary, rows: before.length, filtered, sortedTotals, peakMarked,
  changes: changes && changes.slice(0, 3), leaks: leaks.map((l) => l.line), flames, callersLargest, sitesLargest };
console.log(JSON.stringify(result, null, 1));
process.exit(problems.length === 0 ? 0 : 1);
