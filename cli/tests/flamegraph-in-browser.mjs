// Opens a tracealloc flamegraph in headless Chromium (playwright-core), searches for a function
// and zooms into its frame, and checks what a user would see: the match highlighted and counted,
// the zoomed frame spanning the whole width, no script errors. Usage: node <this> SVG FUNCTION
import { chromium } from "playwright-core";
const [svg, term] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
await page.goto("file://" + svg);
const result = await page.evaluate((term) => {
  search(term);
  const matches = document.getElementById("matched").textContent;
  const highlighted = [...document.querySelectorAll("#frames > g")].filter((g) =>
    g.querySelector("title").textContent.includes(term) &&
    g.querySelector("rect").attributes.fill.value === searchcolor).length;
  reset_search();
  const target = [...document.querySelectorAll("#frames > g")].find((g) =>
    g.querySelector("title").textContent.includes(term));
  const before = target.querySelector("rect").attributes.width.value;
  zoom(target);
  // Widths are percentages of the frame area: a zoomed frame spans all of it.
  const after = target.querySelector("rect").attributes.width.value;
  return { matches, highlighted, widthBefore: before, widthAfter: after };
}, term);
await browser.close();
console.log(JSON.stringify({ ...result, errors }));
const ok = errors.length === 0 && result.highlighted > 0 && result.matches.includes("Matched") &&
  parseFloat(result.widthBefore) < 99 && parseFloat(result.widthAfter) >= 99.9;
process.exit(ok ? 0 : 1);
